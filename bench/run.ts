/**
 * `npm run bench`: runs every bench/*.bench.ts in a fresh process (so one
 * bench's heap and JIT state cannot colour another's), then writes
 * bench/results/<time>.json and a readable report.md next to it, and prints
 * the report.
 *
 *   npm run bench                      # all benches
 *   npm run bench -- distance codec    # only files whose name contains these
 *   VREP_BENCH_QUICK=1 npm run bench   # small data, short runs (smoke check)
 *   npm run bench -- failover          # role auto: leader kills, auto vs primary/replica throughput
 *   npm run bench -- changes           # change streams: in process and WebSocket consumers vs raw WAL reads
 *   VREP_BENCH_CHILD_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench -- replication
 *                                      # node flags for every node process a bench forks
 *                                      # (profiles are written when a child exits cleanly)
 *   VREP_BENCH_HEAP_PROFILE_DIR=/tmp/heap npm run bench -- replication
 *                                      # a sampling heap profile of each node process per measured
 *                                      # window, garbage included (bench/lib/node-child.ts)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { RESULT_PREFIX, type Section } from './lib/harness.ts';
import { formatReport } from './lib/report.ts';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const filters = process.argv.slice(2);
const files = readdirSync(benchDir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();

const results: { bench: string; sections: Section[] }[] = [];
let failed = 0;
for (const file of files) {
  process.stderr.write(`bench: ${file} ...\n`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(benchDir, file)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  const lines = run.stdout.split('\n').filter((l) => l.startsWith(RESULT_PREFIX));
  if (run.status !== 0 || lines.length === 0) {
    failed++;
    process.stderr.write(`bench: ${file} failed (exit ${run.status})\n${run.stdout}\n`);
    continue;
  }
  for (const line of lines) results.push(JSON.parse(line.slice(RESULT_PREFIX.length)));
}

const machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  quick: process.env['VREP_BENCH_QUICK'] === '1',
};
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const outDir = path.join(benchDir, 'results');
mkdirSync(outDir, { recursive: true });
const report = formatReport(machine, results);
writeFileSync(path.join(outDir, `${stamp}.json`), JSON.stringify({ machine, results }, null, 2));
writeFileSync(path.join(outDir, `${stamp}.md`), report);
writeFileSync(path.join(outDir, 'latest.json'), JSON.stringify({ machine, results }, null, 2));
writeFileSync(path.join(outDir, 'latest.md'), report);
process.stdout.write(report);
process.stdout.write(`\nwritten: bench/results/${stamp}.{json,md} (and latest.*)\n`);
process.exit(failed === 0 ? 0 : 1);
