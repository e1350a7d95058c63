/**
 * A small runner for transcripts: readable scripts of commands, each
 * followed by the output it must produce (the shape of etcd raft's
 * datadriven interaction tests, testdata/*.txt). A file is a sequence of
 *
 *     # comments and blank lines, kept as they are
 *     command arg key=value
 *     ----
 *     expected output, one or more lines
 *     (a blank line ends the block)
 *
 * The commands mean whatever the handler makes of them (interaction.ts
 * drives the replication core). `runTranscript` runs every block, compares
 * each output with the expected one and returns the file as it would read
 * with the actual outputs written in: with VREP_TRANSCRIPT_REWRITE=1 the
 * test writes that back, so a transcript is maintained by regenerating it
 * and reviewing the diff.
 */

export interface Command {
  /** 1-based line of the command in its file. */
  line: number;
  name: string;
  /** Bare arguments, in order. */
  positional: string[];
  /** key=value arguments. */
  named: Map<string, string>;
  /** The command line as written. */
  text: string;
}

interface Block {
  /** Comment and blank lines before the command. */
  preamble: string[];
  command: Command;
  expected: string[];
}

interface Parsed {
  blocks: Block[];
  /** Comment and blank lines after the last block. */
  trailer: string[];
}

export interface Mismatch {
  line: number;
  command: string;
  expected: string[];
  actual: string[];
}

export interface TranscriptResult {
  mismatches: Mismatch[];
  /** The file with every block's output replaced by what the run produced. */
  rewritten: string;
}

const SEPARATOR = '----';

export class TranscriptSyntaxError extends Error {
  override name = 'TranscriptSyntaxError';
}

function parseCommand(text: string, line: number): Command {
  const tokens = text.trim().split(/\s+/);
  const name = tokens.shift() as string;
  const positional: string[] = [];
  const named = new Map<string, string>();
  for (const token of tokens) {
    const eq = token.indexOf('=');
    if (eq > 0) named.set(token.slice(0, eq), token.slice(eq + 1));
    else positional.push(token);
  }
  return { line, name, positional, named, text: text.trim() };
}

export function parseTranscript(text: string, file = '<transcript>'): Parsed {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const blocks: Block[] = [];
  let preamble: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const raw = lines[i] as string;
    if (raw.trim() === '' || raw.startsWith('#')) {
      preamble.push(raw);
      i++;
      continue;
    }
    const command = parseCommand(raw, i + 1);
    if (lines[i + 1] !== SEPARATOR) {
      throw new TranscriptSyntaxError(`${file}:${i + 2}: expected "${SEPARATOR}" after the command "${raw}"`);
    }
    i += 2;
    const expected: string[] = [];
    while (i < lines.length && (lines[i] as string).trim() !== '') expected.push(lines[i++] as string);
    if (i < lines.length) i++; // the blank line that ends the block
    blocks.push({ preamble, command, expected });
    preamble = [];
  }
  return { blocks, trailer: preamble };
}

/**
 * Runs every block of `text` through `handle` (which returns the block's
 * output lines; at least one, none blank). A handler that throws fails the
 * whole run: that is a broken transcript or harness, not a mismatch.
 */
export function runTranscript(
  text: string,
  handle: (command: Command) => string[],
  file = '<transcript>',
): TranscriptResult {
  const parsed = parseTranscript(text, file);
  const mismatches: Mismatch[] = [];
  const out: string[] = [];
  parsed.blocks.forEach((block, index) => {
    let actual: string[];
    try {
      actual = handle(block.command);
    } catch (err) {
      const e = err as Error;
      e.message = `${file}:${block.command.line}: ${block.command.text}: ${e.message}`;
      throw e;
    }
    if (actual.length === 0) actual = ['ok'];
    const blank = actual.findIndex((l) => l.trim() === '');
    if (blank >= 0) {
      throw new TranscriptSyntaxError(
        `${file}:${block.command.line}: the output of "${block.command.text}" has a blank line (line ${blank + 1}), which would end the block`,
      );
    }
    if (actual.join('\n') !== block.expected.join('\n')) {
      mismatches.push({
        line: block.command.line,
        command: block.command.text,
        expected: block.expected,
        actual,
      });
    }
    out.push(...block.preamble, block.command.text, SEPARATOR, ...actual);
    if (index < parsed.blocks.length - 1 || parsed.trailer.length > 0) out.push('');
  });
  out.push(...parsed.trailer);
  return { mismatches, rewritten: out.join('\n') + '\n' };
}

/** Line diff of two outputs (longest common subsequence; outputs are short). */
export function diffLines(expected: readonly string[], actual: readonly string[]): string[] {
  const n = expected.length;
  const m = actual.length;
  // at(i, j): length of the longest common subsequence of expected[i..] and actual[j..].
  const lcs = new Array<number>((n + 1) * (m + 1)).fill(0);
  const at = (i: number, j: number): number => lcs[i * (m + 1) + j] as number;
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * (m + 1) + j] =
        expected[i] === actual[j] ? at(i + 1, j + 1) + 1 : Math.max(at(i + 1, j), at(i, j + 1));
    }
  }
  const rows: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && expected[i] === actual[j]) {
      rows.push(`    ${expected[i++]}`);
      j++;
    } else if (j < m && (i === n || at(i, j + 1) >= at(i + 1, j))) {
      rows.push(`  + ${actual[j++]}`);
    } else {
      rows.push(`  - ${expected[i++]}`);
    }
  }
  return rows;
}

/** A readable account of mismatches: each command with a diff of expected (-) and actual (+) output. */
export function describeMismatches(file: string, mismatches: readonly Mismatch[]): string {
  return mismatches
    .map((m) => [`${file}:${m.line}: ${m.command}`, ...diffLines(m.expected, m.actual)].join('\n'))
    .join('\n\n');
}
