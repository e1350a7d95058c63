// The lint rule that keeps src/consensus pure (eslint.config.js) is held here,
// so that `npm test` fails if the rule is dropped or loosened, not only when
// someone remembers to run the linter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const root = fileURLToPath(new URL('../..', import.meta.url));
const eslint = new ESLint({ cwd: root });

/** Rule ids and lines of the errors ESLint reports for `code` as if it were src/consensus/x.ts. */
async function errorsOf(code: string): Promise<{ rule: string | null; line: number }[]> {
  const [result] = await eslint.lintText(code, { filePath: 'src/consensus/x.ts' });
  assert.ok(result, 'no lint result');
  return result.messages.filter((m) => m.severity === 2).map((m) => ({ rule: m.ruleId, line: m.line }));
}

test('src/consensus may not import I/O, transport, store, timers or packages', async () => {
  const forbidden = [
    "import { readFileSync } from 'node:fs';",
    "import { setTimeout } from 'timers';",
    "import { Worker } from 'worker_threads';",
    "import os from 'os';",
    "import uws from 'uWebSockets.js';",
    "import { Piscina } from 'piscina';",
    "import { Link } from '../transport/link.ts';",
    "import { Store } from '../store/store.ts';",
    "import type { Wal } from '../log/wal.ts';",
    "import { decodeRecord } from '../log/record.ts';",
    "import { Peers } from '../replication/peers.ts';",
    "import { binding } from '../native/addon.ts';",
  ];
  for (const line of forbidden) {
    const errors = await errorsOf(`${line}\nexport const used = 1;\n`);
    assert.deepEqual(
      errors.filter((e) => e.rule === 'no-restricted-imports').map((e) => e.line),
      [1],
      line,
    );
  }
});

test('src/consensus may not read a clock, randomness or the process', async () => {
  const errors = await errorsOf(
    [
      'export const a = Date.now();',
      'export const b = Math.random();',
      'export const c = new Date();',
      'setTimeout(() => undefined, 1);',
      'export const d = process.env;',
      'export const e = performance.now();',
      'globalThis.setInterval(() => undefined, 1);',
    ].join('\n') + '\n',
  );
  assert.deepEqual([...new Set(errors.map((e) => e.line))], [1, 2, 3, 4, 5, 6, 7], JSON.stringify(errors));
});

test('src/consensus may import its own files and the pure modules', async () => {
  const errors = await errorsOf(
    [
      "import { assert } from './assert.ts';",
      "import type { ErrorCodeSubset } from '../errors.ts';",
      "import { RecordLimits } from '../limits.ts';",
      'export type C = ErrorCodeSubset<"ERR_NOT_LEADER">;',
      'export const used = [assert, RecordLimits, Math.max(1, 2)];',
    ].join('\n') + '\n',
  );
  assert.deepEqual(errors, []);
});
