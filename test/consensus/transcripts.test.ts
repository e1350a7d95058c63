/**
 * Protocol rules as transcripts (test/consensus/testdata/*.txt): each file
 * is a script of commands against a few replication cores (interaction.ts)
 * with the messages, Readies and state they must produce. A change in the
 * core's behaviour shows as a diff of readable text.
 *
 * VREP_TRANSCRIPT_REWRITE=1 writes the actual output into the files
 * instead of comparing: regenerate, then review the diff.
 *
 * A runner that cannot fail proves nothing: each of the core's deliberate
 * defects (CoreFaults) is run against the transcript of the rule it breaks,
 * and the transcript must no longer match.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CoreFaults } from '../../src/consensus/core.ts';
import { InteractionEnv } from './interaction.ts';
import {
  describeMismatches,
  diffLines,
  parseTranscript,
  runTranscript,
  type TranscriptResult,
} from './transcript.ts';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'testdata');
const REWRITE = process.env['VREP_TRANSCRIPT_REWRITE'] === '1';
const FILES = readdirSync(DIR)
  .filter((f) => f.endsWith('.txt'))
  .sort();

function run(file: string, faults: Partial<CoreFaults> = {}, text?: string): TranscriptResult {
  const env = new InteractionEnv({ faults });
  return runTranscript(text ?? readFileSync(path.join(DIR, file), 'utf8'), (cmd) => env.handle(cmd), file);
}

for (const file of FILES) {
  test(`transcript ${file}`, () => {
    const result = run(file);
    if (REWRITE) {
      const before = readFileSync(path.join(DIR, file), 'utf8');
      if (result.rewritten !== before) writeFileSync(path.join(DIR, file), result.rewritten);
      return;
    }
    assert.equal(
      result.mismatches.length,
      0,
      `${file} does not match (VREP_TRANSCRIPT_REWRITE=1 regenerates it):\n${describeMismatches(file, result.mismatches)}`,
    );
  });
}

test('transcripts: the same script gives the same output twice (seeded, no clocks)', () => {
  for (const file of FILES) assert.equal(run(file).rewritten, run(file).rewritten, file);
});

test('transcript runner: a wrong expectation is a mismatch, and rewriting fixes it', () => {
  const text = [
    '# two nodes',
    'add-nodes 2',
    '----',
    'n1: primary',
    'n2: something else',
    '',
    'status n2',
    '----',
    'wrong',
    '',
  ].join('\n');
  const first = run('<inline>', {}, text);
  assert.deepEqual(
    first.mismatches.map((m) => m.line),
    [2, 7],
  );
  assert.match(describeMismatches('<inline>', first.mismatches), /- n2: something else/);
  const second = run('<inline>', {}, first.rewritten);
  assert.equal(second.mismatches.length, 0);
  assert.equal(second.rewritten, first.rewritten);
  // Comments and the command lines are kept as written.
  assert.deepEqual(
    parseTranscript(first.rewritten).blocks.map((b) => [b.preamble, b.command.text]),
    [
      [['# two nodes'], 'add-nodes 2'],
      [[], 'status n2'],
    ],
  );
});

// Each defect against the transcript that shows the rule it breaks, and the
// block where the broken rule must show (a command and what it then prints).
const BROKEN: { fault: keyof CoreFaults; file: string; command: string; shows: RegExp }[] = [
  // n3, in term 2, appends n1's record of term 1.
  { fault: 'acceptStaleRecords', file: 'term-refusal.txt', command: 'log n3', shows: /^3 t1 h1 "b"/m },
  // n1 keeps its term-1 records 4..5, now labelled with n2's epoch.
  { fault: 'keepDivergentTail', file: 'truncation.txt', command: 'log n1', shows: /^4 t1 h2 "c"/m },
  // One counts the leader's records before its disk has them.
  {
    fault: 'countUndurableLeader',
    file: 'acks-and-commit.txt',
    command: 'held n1',
    shows: /^held one=3 quorum=1/m,
  },
  // The follower's disk refuses records it applied: the state keeps them.
  {
    fault: 'keepRefusedApplied',
    file: 'follower-apply-before-disk.txt',
    command: 'ready n2',
    shows: /^truncate after 0\nhistory \[\]/m,
  },
  // Records go out in the same Ready that starts their append on the leader.
  {
    fault: 'ringBeforeWal',
    file: 'acks-and-commit.txt',
    command: 'ready n1',
    shows: /^append 2\.\.3[\s\S]*Records term=1 from=2/m,
  },
  // Raft figure 8: n1 (term 4) commits its term-2 records 2..3 because a majority holds them.
  {
    fault: 'commitOldTermByCount',
    file: 'election-figure8.txt',
    command: 'held n1',
    shows: /^held one=3 quorum=3 all=0 commit=3$/m,
  },
  // n2 votes for n3, whose log lacks the committed record 2.
  {
    fault: 'voteWithoutLogCheck',
    file: 'election-up-to-date.txt',
    command: 'ready n2',
    shows: /^send n2->n3 Vote term=2 granted$/m,
  },
  // The cut-off n3 campaigns for real (term 2) and, back, deposes the healthy leader.
  {
    fault: 'noPreVote',
    file: 'election-prevote-lease.txt',
    command: 'status n1',
    shows: /^n1 follower term=3/m,
  },
  // The leader cut off from both followers goes on leading, and takes a write.
  {
    fault: 'skipCheckQuorum',
    file: 'election-check-quorum.txt',
    command: 'propose n1 a',
    shows: /^n1 appends 2 in term 1$/m,
  },
  // The read is answered at once, before any follower confirmed the leader.
  {
    fault: 'readWithoutRound',
    file: 'read-index.txt',
    command: 'ready n1',
    shows: /^read r1 served at 1$/m,
  },
  // The leader's refused no-op is never appended again: nothing commits.
  {
    fault: 'noNoopRetry',
    file: 'election-noop-refused.txt',
    command: 'status n2',
    shows: /^n2 leader term=2 vote=n2 commit=0 leader=n2$/m,
  },
  // n2 acknowledges the records it holds in memory alongside its snapshot: they count as held.
  {
    fault: 'ackAlongsideBeforeInstall',
    file: 'full-sync-alongside.txt',
    command: 'status n1',
    shows: /^ {2}peer n2 replicate match=7/m,
  },
];

for (const { fault, file, command, shows } of BROKEN) {
  test(`transcript runner fails on a broken core: ${fault} against ${file}`, () => {
    assert.equal(run(file).mismatches.length, 0, `${file} must match with the core as it is`);
    const result = run(file, { [fault]: true });
    assert.ok(
      result.mismatches.length > 0,
      `${file} still matches with the ${fault} defect switched in: it does not show its rule`,
    );
    const hit = result.mismatches.find((m) => m.command === command && shows.test(m.actual.join('\n')));
    assert.ok(
      hit,
      `with ${fault}, "${command}" should print ${shows}; the mismatches were:\n${describeMismatches(file, result.mismatches)}`,
    );
  });
}

test('transcript runner: a diff shows the lines that differ', () => {
  assert.deepEqual(diffLines(['a', 'b', 'c'], ['a', 'x', 'c', 'd']), [
    '    a',
    '  + x',
    '  - b',
    '    c',
    '  + d',
  ]);
});
