/**
 * The pool as shipped: compiled by tsc with the build config (import
 * specifiers rewritten to .js) and run by plain node, no tsx anywhere, so the
 * worker module must be found as feeder-task.js next to feeder-pool.js.
 * Only the modules the pool needs are compiled, into a directory of .tmp/
 * (inside the repo, so `piscina` resolves from node_modules).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, startNode } from '../helpers/process.ts';

const CHILD = `
import { FeederPool } from './dist/workers/feeder-pool.js';
import { RingLog } from './dist/native/ring-log.js';
import { encodeRecord, Op } from './dist/log/record.js';
import { decodeRecordsFrame, encodeRecordsPrefix } from './dist/replication/records-payload.js';
const decodeRecords = (payload, flags, first, max) => {
  const prefix = encodeRecordsPrefix(1, 0, 0);
  const frame = new Uint8Array(prefix.length + payload.length);
  frame.set(prefix);
  frame.set(payload, prefix.length);
  const d = decodeRecordsFrame(frame, flags, max);
  return d.firstLsn === first ? d.records : [];
};

const ring = new RingLog({ capacityBytes: 1 << 20, capacityRecords: 64 });
const records = [];
for (let lsn = 1; lsn <= 30; lsn++) {
  const vectors = new Float32Array(8 * 64).map((_, i) => Math.sin(lsn + i * 0.01));
  const ids = Array.from({ length: 8 }, (_, i) => 'p' + i);
  const payloads = ids.map(() => new Uint8Array(0));
  const record = encodeRecord({ lsn, term: 1, hlcMs: 1, hlcLogical: 0, origin: 'a', collection: 'c',
    op: Op.Upsert, dimension: 64, ids, vectors, payloads });
  records.push(record);
  ring.append(record);
}
const pool = new FeederPool(ring.handle, { threads: 1 });
const fromRing = await pool.encodeFromRing(2, 30, 1 << 20, { enabled: true, level: 1 });
const fromCaller = await pool.encodeRecords(records.slice(0, 3), { enabled: false, level: 1 });
const same = (a, b) => a.length === b.length && a.every((r, i) => Buffer.compare(r, b[i]) === 0);
const ok =
  same(decodeRecords(fromRing.payload, fromRing.flags, 2, 1 << 20), records.slice(1)) &&
  same(decodeRecords(fromCaller.payload, fromCaller.flags, 1, 1 << 20), records.slice(0, 3));
await pool.close();
console.log('dist pool: ' + fromRing.count + ' + ' + fromCaller.count + ' records, ' + (ok ? 'decoded equal' : 'MISMATCH'));
`;

test('the compiled pool runs under plain node and loads its .js worker', async (t) => {
  const dir = path.join(repoRoot, '.tmp', `feeder-dist-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const fromDir = (p: string): string => path.relative(dir, path.join(repoRoot, p));
  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      extends: fromDir('tsconfig.build.json'),
      compilerOptions: {
        rootDir: fromDir('src'),
        outDir: 'dist',
        declaration: false,
        declarationMap: false,
        sourceMap: false,
      },
      include: [
        fromDir('src/workers/feeder-pool.ts'),
        fromDir('src/workers/feeder-task.ts'),
        fromDir('src/log/record.ts'),
      ],
    }),
  );
  const tsc = spawnSync(
    process.execPath,
    [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir],
    { encoding: 'utf8', timeout: 120_000 },
  );
  assert.equal(tsc.status, 0, `tsc failed:\n${tsc.stdout}\n${tsc.stderr}`);
  assert.ok(existsSync(path.join(dir, 'dist', 'workers', 'feeder-task.js')));
  writeFileSync(path.join(dir, 'child.mjs'), CHILD);

  // Plain node: no --import tsx, no NODE_OPTIONS. The compiled addon loader
  // looks two levels above itself, which is not the repo root here.
  const child = startNode([path.join(dir, 'child.mjs')], {
    NODE_OPTIONS: '',
    VREP_ADDON_PATH: path.join(repoRoot, 'build', 'Release', 'vrep.node'),
  });
  try {
    assert.equal(await child.exited(30_000), 0, child.stderr());
    assert.match(child.stdout(), /^dist pool: 29 \+ 3 records, decoded equal$/m);
  } finally {
    child.kill();
  }
});
