// The docs' error and close-code tables are the user's contract; the
// registries in the code are what runs. This holds each to the other, so a
// code added, renamed or given another status fails here until the docs say so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorRegistry, httpStatusOf, isErrorCode, type ErrorCode } from '../../src/errors.ts';
import { CloseCodes } from '../../src/transport/link.ts';
import { ReplicationCloseCodes } from '../../src/replication/close-codes.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const registryCodes = Object.keys(errorRegistry) as ErrorCode[];

function doc(name: string): string {
  return readFileSync(path.join(root, 'docs', name), 'utf8');
}

/** The cells of one table row; `\|` inside a cell is text, not a border. */
function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\||\|$/g, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());
}

/** The first table under the heading `## title`, as rows keyed by the header's column names. */
function tableUnder(markdown: string, title: string): Record<string, string>[] {
  const lines = markdown.split('\n');
  const at = lines.findIndex((l) => l.trim() === `## ${title}`);
  assert.ok(at >= 0, `no heading "## ${title}"`);
  let i = at + 1;
  while (i < lines.length && !lines[i]?.startsWith('|')) {
    assert.ok(!lines[i]?.startsWith('## '), `no table under "## ${title}"`);
    i++;
  }
  const header = cells(lines[i] as string);
  const rows: Record<string, string>[] = [];
  for (i += 2; i < lines.length && lines[i]?.startsWith('|'); i++) {
    const row = cells(lines[i] as string);
    rows.push(Object.fromEntries(header.map((h, k) => [h, row[k] ?? ''])));
  }
  assert.ok(rows.length > 0, `empty table under "## ${title}"`);
  return rows;
}

function codesIn(text: string): string[] {
  return [...text.matchAll(/`(ERR_[A-Z0-9_]+)`/g)].map((m) => m[1] as string);
}

function allDocs(dir = path.join(root, 'docs')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? allDocs(path.join(dir, e.name))
      : e.name.endsWith('.md')
        ? [path.join(dir, e.name)]
        : [],
  );
}

/** Problems of the http-api.md Errors table against the registry (empty: they agree). */
function httpTableProblems(markdown: string): string[] {
  const problems: string[] = [];
  const documented = new Set<string>();
  for (const row of tableUnder(markdown, 'Errors')) {
    const status = Number(row['status']);
    const codes = codesIn(row['codes'] ?? '');
    if (codes.length === 0) problems.push(`row ${row['status']}: no codes`);
    for (const code of codes) {
      documented.add(code);
      if (!isErrorCode(code)) problems.push(`${code} is documented but not in src/errors.ts`);
      else if (httpStatusOf(code) !== status)
        problems.push(`${code}: documented ${status}, the registry says ${httpStatusOf(code)}`);
    }
  }
  for (const code of registryCodes) {
    if (httpStatusOf(code) !== null && !documented.has(code))
      problems.push(`${code} answers HTTP ${httpStatusOf(code)} but the Errors table does not list it`);
  }
  return problems;
}

test('docs/http-api.md Errors: every code with its status, and every code that answers HTTP', () => {
  assert.deepEqual(httpTableProblems(doc('http-api.md')), []);
});

test('the docs test fails on a broken row (a status changed, a code dropped)', () => {
  const good = doc('http-api.md');
  const changed = good.replace(/^\| 413 (\s*\|)/m, '| 400 $1');
  assert.notEqual(changed, good);
  assert.ok(httpTableProblems(changed).some((p) => p.includes('documented 400')));
  const dropped = good.replace(/, `ERR_WAL_CLOSED`/, '');
  assert.notEqual(dropped, good);
  assert.ok(httpTableProblems(dropped).some((p) => p.startsWith('ERR_WAL_CLOSED answers HTTP 503')));
});

test('docs/architecture.md Error codes lists every registry code, and only those', () => {
  const listed = tableUnder(doc('architecture.md'), 'Error codes').flatMap((r) => codesIn(r['code'] ?? ''));
  assert.equal(new Set(listed).size, listed.length, 'a code listed twice');
  assert.deepEqual(
    listed.filter((c) => !isErrorCode(c)),
    [],
    'listed but not in src/errors.ts',
  );
  assert.deepEqual(
    registryCodes.filter((c) => !listed.includes(c)),
    [],
    'in src/errors.ts but not listed',
  );
});

test('every code the docs name exists, and every status they give it in prose is its own', () => {
  const problems: string[] = [];
  for (const file of [...allDocs(), path.join(root, 'README.md')]) {
    const text = readFileSync(file, 'utf8');
    const name = path.relative(root, file);
    // OpenSSL's codes (ERR_SSL_...) appear where TLS failures are described.
    for (const code of codesIn(text).filter((c) => !c.startsWith('ERR_SSL_'))) {
      if (!isErrorCode(code)) problems.push(`${name}: ${code} is not in src/errors.ts`);
    }
    // "409 `ERR_ROLE`" and "`ERR_CONSISTENCY_TIMEOUT` (HTTP 503".
    const claims = [
      ...[...text.matchAll(/\b([1-5]\d\d)\s+`(ERR_[A-Z0-9_]+)`/g)].map((m) => [m[2], m[1]]),
      ...[...text.matchAll(/`(ERR_[A-Z0-9_]+)`\s+\(HTTP\s+([1-5]\d\d)\b/g)].map((m) => [m[1], m[2]]),
    ];
    for (const [code, status] of claims) {
      if (isErrorCode(code) && httpStatusOf(code) !== Number(status))
        problems.push(`${name}: says ${status} ${code}, the registry says ${httpStatusOf(code)}`);
    }
  }
  assert.deepEqual(problems, []);
});

function numbersIn(rows: Record<string, string>[]): number[] {
  return rows.map((r) => Number(r['code'])).sort((a, b) => a - b);
}

function valuesOf(table: object): number[] {
  return Object.values(table)
    .flatMap((v) => (typeof v === 'number' ? [v] : valuesOf(v as object)))
    .sort((a, b) => a - b);
}

test('docs/wire-protocol.md close codes are the transport table (CloseCodes)', () => {
  assert.deepEqual(
    numbersIn(tableUnder(doc('wire-protocol.md'), 'Closing and recovery')),
    valuesOf(CloseCodes),
  );
});

test('docs/replication.md close codes are the replication table (ReplicationCloseCodes)', () => {
  assert.deepEqual(
    numbersIn(tableUnder(doc('replication.md'), 'Close codes of the replication layer')),
    valuesOf(ReplicationCloseCodes),
  );
});
