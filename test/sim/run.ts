/**
 * `npm run test:sim -- [--seeds N (default 10,000)] [--from S] [--seed S] [--mode elections|manual] [--variant NAME] [--jobs N] [--verbose]`:
 * runs the deterministic simulator over seeds (mode `elections`, role auto,
 * unless told `manual`: an operator fails over); a failing seed is printed
 * with the command that replays it and its fault schedule shrunk. `--jobs`
 * splits the seeds over that many processes (default: one per CPU).
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { runSimulation, faultSchedule, type SimOptions, type SimResult } from './world.ts';
import { shrink } from './shrink.ts';
import { VARIANTS, type VariantName } from './variants.ts';

/** Seeds without `--seeds`: the acceptance run (npm test runs 300 of the same shape). */
const DEFAULT_SEEDS = 10_000;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/**
 * One seed's run: 3 nodes, about 2,500 client writes and 12 faults over 10
 * virtual seconds, then healing. `npm test` and `npm run test:sim` run the
 * same shape; they differ in how many seeds.
 */
export function simOptions(
  seed: number,
  variant: VariantName | null,
  mode: SimMode = 'elections',
): SimOptions {
  return {
    seed,
    nodes: 3,
    durationMs: 10_000,
    writesPerSec: 250,
    faultCount: 12,
    elections: (variant ? VARIANTS[variant].mode : mode) === 'elections',
    ...(variant ? { coreFaults: VARIANTS[variant].faults } : {}),
  };
}

/** `elections`: role auto, the nodes elect their leader; `manual`: an operator fails over (roles primary / replica). */
export type SimMode = 'elections' | 'manual';

function describe(r: SimResult): string {
  const w = r.writes;
  return `seed ${r.seed}: ${r.ok ? 'ok' : 'FAILED'}; ${r.stats.campaigns} campaigns, ${r.stats.registerOps} register ops; writes ok ${w.ok} (one ${w.byLevel.one}, quorum ${w.byLevel.quorum}, all ${w.byLevel.all}), failed ${w.failed}, indeterminate ${w.indeterminate}; ${r.stats.applied} records applied, ${r.stats.messages} messages, ${r.stats.truncations} truncations, ${r.stats.fullSyncs} full syncs (${r.stats.alongside} records alongside), ${r.stats.failovers} failovers, ${r.stats.tornTails} torn tails, ${r.faults.length} faults`;
}

/** Runs the seed range in `jobs` child processes, passing their output through. */
async function runJobs(from: number, count: number, jobs: number): Promise<void> {
  const started = performance.now();
  const per = Math.ceil(count / jobs);
  const passOn = process.argv.slice(2).filter((a, i, all) => {
    const flag =
      ['--seeds', '--from', '--jobs'].includes(a) ||
      ['--seeds', '--from', '--jobs'].includes(all[i - 1] ?? '');
    return !flag;
  });
  const summaries = await Promise.all(
    Array.from({ length: jobs }, (_, j) => j * per)
      .filter((offset) => offset < count)
      .map(
        (offset) =>
          new Promise<{ failed: number; code: number }>((resolve) => {
            const child = spawn(
              process.execPath,
              [
                ...process.execArgv,
                fileURLToPath(import.meta.url),
                '--from',
                String(from + offset),
                '--seeds',
                String(Math.min(per, count - offset)),
                '--jobs',
                '1',
                ...passOn,
              ],
              { stdio: ['ignore', 'pipe', 'inherit'] },
            );
            let failed = 0;
            let buffered = '';
            child.stdout.on('data', (chunk: Buffer) => {
              buffered += chunk.toString();
              const lines = buffered.split('\n');
              buffered = lines.pop() ?? '';
              for (const line of lines) {
                const summary = /^\d+ seeds, (\d+) failed(.*), [\d.]+ s$/.exec(line);
                if (summary) {
                  failed += Number(summary[1]);
                  if (summary[2]) console.log(`seeds from ${from + offset}:${summary[2]}`);
                } else console.log(line);
              }
            });
            child.on('exit', (code) => resolve({ failed, code: code ?? 1 }));
          }),
      ),
  );
  const failed = summaries.reduce((n, s) => n + s.failed, 0);
  const seconds = (performance.now() - started) / 1000;
  if (!process.argv.includes('--json'))
    console.log(`${count} seeds, ${failed} failed, ${seconds.toFixed(1)} s`);
  process.exit(summaries.some((s) => s.code !== 0) ? 1 : 0);
}

async function main(): Promise<void> {
  const variant = (arg('variant') ?? null) as VariantName | null;
  if (variant !== null && !(variant in VARIANTS)) {
    console.error(`unknown variant ${variant}; known: ${Object.keys(VARIANTS).join(', ')}`);
    process.exit(2);
  }
  const one = arg('seed');
  const jobs = Number(arg('jobs') ?? os.availableParallelism());
  if (one === undefined && jobs > 1) {
    await runJobs(Number(arg('from') ?? 1), Number(arg('seeds') ?? DEFAULT_SEEDS), jobs);
    return;
  }
  const seeds =
    one !== undefined
      ? [Number(one)]
      : Array.from({ length: Number(arg('seeds') ?? DEFAULT_SEEDS) }, (_, i) => Number(arg('from') ?? 1) + i);
  const verbose = process.argv.includes('--verbose');
  const mode = (arg('mode') ?? 'elections') as SimMode;
  if (mode !== 'elections' && mode !== 'manual') {
    console.error(`unknown mode ${String(mode)}; known: elections, manual`);
    process.exit(2);
  }
  const json = process.argv.includes('--json');
  const started = performance.now();
  let failed = 0;
  let ran = 0;
  for (const seed of seeds) {
    ran++;
    const opts = simOptions(seed, variant, mode);
    const r = runSimulation(opts);
    if (json) {
      console.log(
        JSON.stringify({
          seed,
          ok: r.ok,
          violations: r.violations.slice(0, 5),
          writes: r.writes,
          stats: r.stats,
          faults: r.faults.length,
        }),
      );
      if (!r.ok) failed++;
      continue;
    }
    if (verbose || !r.ok || one !== undefined) console.log(describe(r));
    if (!r.ok) {
      failed++;
      for (const v of r.violations.slice(0, 10)) console.log(`  ${v}`);
      const small = shrink(opts, faultSchedule(seed, opts.faultCount ?? 12, opts.durationMs));
      console.log(`  shrunk to ${small.length} faults: ${JSON.stringify(small)}`);
      console.log(
        `  replay: npm run test:sim -- --seed ${seed} --mode ${mode}${variant ? ` --variant ${variant}` : ''}`,
      );
      if (one === undefined && failed >= 3) break;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  if (!json) {
    const stopped = ran < seeds.length ? ` (stopped after ${failed} failures: ${ran} of them ran)` : '';
    console.log(`${seeds.length} seeds, ${failed} failed${stopped}, ${seconds.toFixed(1)} s`);
  }
  process.exit(failed > 0 ? 1 : 0);
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
