/**
 * The deterministic simulator (test/sim/world.ts) in the test suite: many
 * seeds of the production core, runtime, record codec and apply under
 * faults, every one checked; each broken variant caught within a bounded
 * number of seeds (a checker that cannot fail proves nothing); and a seed
 * that replays exactly.
 *
 * Both modes run: `elections` (role auto: votes, PreVote, CheckQuorum,
 * transfers, linearizable reads) and `manual` (an operator fails over).
 * `npm run test:sim -- --seeds 10000 [--mode manual]` runs the long version.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { repoRoot, startNode } from '../helpers/process.ts';
import { scale } from '../helpers/tmp.ts';
import { runSimulation, faultSchedule } from './world.ts';
import { simOptions, type SimMode } from './run.ts';
import { shrink } from './shrink.ts';
import { VARIANTS, type VariantName } from './variants.ts';

interface SeedLine {
  seed: number;
  ok: boolean;
  violations: string[];
  writes: { ok: number; failed: number; indeterminate: number; byLevel: Record<string, number> };
  stats: {
    applied: number;
    messages: number;
    truncations: number;
    fullSyncs: number;
    alongside: number;
    failovers: number;
    campaigns: number;
    registerOps: number;
  };
  faults: number;
}

const SEEDS = scale(300, 2000);

for (const mode of ['elections', 'manual'] satisfies SimMode[]) {
  test(`simulator (${mode}): ${SEEDS} seeds of faults, every checker holds`, { timeout: 1_200_000 }, (t) =>
    seeds(t, mode),
  );
}

async function seeds(t: import('node:test').TestContext, mode: SimMode): Promise<void> {
  // Two processes, one per core: each runs half of the seeds.
  const half = Math.ceil(SEEDS / 2);
  const runs = [1, 1 + half].map((from) =>
    startNode([
      '--import',
      'tsx',
      path.join(repoRoot, 'test/sim/run.ts'),
      '--from',
      String(from),
      '--seeds',
      String(Math.min(half, SEEDS - from + 1)),
      '--mode',
      mode,
      '--json',
    ]),
  );
  t.after(() => runs.forEach((r) => r.kill()));
  await Promise.all(runs.map((r) => r.exited(1_100_000)));
  const lines: SeedLine[] = runs.flatMap((r) =>
    r
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as SeedLine),
  );
  assert.equal(lines.length, SEEDS, `every seed reported (${runs.map((r) => r.stderr()).join('\n')})`);
  const failed = lines.filter((l) => !l.ok);
  const sum = (f: (l: SeedLine) => number): number => lines.reduce((n, l) => n + f(l), 0);
  t.diagnostic(
    `${SEEDS} seeds: ${sum((l) => l.writes.ok + l.writes.failed + l.writes.indeterminate)} writes (${sum((l) => l.writes.ok)} acknowledged: ${sum((l) => l.writes.byLevel['quorum'] ?? 0)} at quorum, ${sum((l) => l.writes.byLevel['all'] ?? 0)} at all), ${sum((l) => l.faults)} faults, ${sum((l) => l.stats.failovers)} failovers, ${sum((l) => l.stats.campaigns)} campaigns, ${sum((l) => l.stats.registerOps)} register operations checked for linearizability, ${sum((l) => l.stats.truncations)} truncations, ${sum((l) => l.stats.fullSyncs)} full syncs (${sum((l) => l.stats.alongside)} records alongside)`,
  );
  if (mode === 'elections') {
    assert.ok(sum((l) => l.stats.registerOps) > 0, 'register operations were checked');
  }
  const fewest = Math.min(...lines.map((l) => l.writes.ok + l.writes.failed + l.writes.indeterminate));
  assert.ok(fewest >= 1000, `every seed runs thousands of operations (fewest: ${fewest})`);
  assert.deepEqual(
    failed.map(
      (l) => `seed ${l.seed}: ${l.violations.join('; ')} (replay: npm run test:sim -- --seed ${l.seed})`,
    ),
    [],
  );
}

for (const variant of Object.keys(VARIANTS) as VariantName[]) {
  test(`simulator: the broken variant "${variant}" is caught`, { timeout: 600_000 }, (t) => {
    const budget = 60;
    for (let seed = 1; seed <= budget; seed++) {
      const opts = simOptions(seed, variant);
      const r = runSimulation(opts);
      if (r.ok) continue;
      t.diagnostic(`caught at seed ${seed} (${VARIANTS[variant].mode}): ${r.violations[0]}`);
      // The shrunk schedule still fails, and is no longer than the first.
      const small = shrink(opts, faultSchedule(seed, opts.faultCount ?? 12, opts.durationMs), 6);
      assert.ok(small.length <= r.faults.length);
      assert.equal(runSimulation({ ...opts, faults: small }).ok, false, 'the shrunk schedule fails too');
      t.diagnostic(`shrunk from ${r.faults.length} to ${small.length} faults`);
      return;
    }
    assert.fail(`"${variant}" passed ${budget} seeds: the checkers cannot see it`);
  });
}

// Seeds that each found a bug (the fix names it). Any change to the core or the simulator
// changes what a seed does, so these are a floor, not proof: the transcripts pin the rules.
const FOUND_BUGS: Record<SimMode, number[]> = {
  manual: [282, 910, 1801, 2392, 4590, 5151],
  // 5155: a leader's refused no-op (the core); 922 and 2086: the PreVote and One-write checks.
  elections: [922, 2086, 5155],
};

test('simulator: the seeds that once found bugs still pass', () => {
  for (const mode of ['manual', 'elections'] as const) {
    for (const seed of FOUND_BUGS[mode]) {
      const r = runSimulation(simOptions(seed, null, mode));
      assert.ok(
        r.ok,
        `seed ${seed}: ${r.violations[0] ?? ''} (replay: npm run test:sim -- --seed ${seed} --mode ${mode})`,
      );
    }
  }
});

test('simulator: a seed replays exactly, in either mode', () => {
  for (const mode of ['elections', 'manual'] satisfies SimMode[]) {
    const a = runSimulation(simOptions(42, null, mode));
    const b = runSimulation(simOptions(42, null, mode));
    assert.deepEqual(a, b);
  }
});
