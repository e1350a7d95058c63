/**
 * Issue 10 acceptance, on real processes: repeated primary SIGKILLs under
 * Quorum load lose no acknowledged write. Three nodes (the primary lists
 * both replicas in `replication.peers`, so they are members), fsync
 * always everywhere, a client writing at Quorum without pause. The
 * primary is SIGKILLed at random moments and restarted each time with the
 * same data dir and the same options. After the last restart the three
 * nodes must hold the same log and digest, and every point whose write was
 * acknowledged must be on all three.
 *
 * VREP_SAFETY_KILLS sets the number of kills (default 12; a soak: 200).
 * VREP_SAFETY_SEED replays the kill timing of a run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { NodeProc } from '../helpers/node-proc.ts';
import { until } from '../helpers/node-proc.ts';
import { tempDir } from '../helpers/tmp.ts';
import { rng } from '../helpers/rng.ts';
import type { ReplicationNodeOptions } from '../../src/node/types.ts';
import { freePorts, idsOf, missingOn, Procs, sleep, status, waitConverged } from '../helpers/safety.ts';

const KILLS = Number(process.env['VREP_SAFETY_KILLS'] ?? 12);
const SEED = Number(process.env['VREP_SAFETY_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const TIMING = { heartbeatIntervalMs: 100, replicaTimeoutMs: 5000, reconnectIntervalMs: 200 };
const DIM = 16;
const BATCH = 10;
const WORKERS = 3;

test(
  `${KILLS} primary SIGKILLs under Quorum load: every acknowledged write is on all three nodes, digests equal`,
  { timeout: 120_000 + KILLS * 20_000 },
  async (t) => {
    t.diagnostic(`seed ${SEED} (VREP_SAFETY_SEED=${SEED} replays the kill timing)`);
    const rand = rng(SEED);
    const dir = tempDir(t);
    const procs = new Procs(t);
    const [pPort, r1Port, r2Port] = (await freePorts(3)) as [number, number, number];
    const addr = (port: number): string => `127.0.0.1:${port}`;
    const storage = { fsync: 'always' as const };
    const primaryOptions: ReplicationNodeOptions = {
      nodeId: 'p',
      dataDir: path.join(dir, 'p'),
      storage,
      replication: {
        role: 'primary',
        bindAddress: addr(pPort),
        peers: [addr(r1Port), addr(r2Port)],
        ...TIMING,
      },
    };
    const replicaOptions = (id: string, port: number): ReplicationNodeOptions => ({
      nodeId: id,
      dataDir: path.join(dir, id),
      storage,
      replication: { role: 'replica', bindAddress: addr(port), masterAddress: addr(pPort), ...TIMING },
    });
    const r1 = await procs.start(replicaOptions('r1', r1Port));
    const r2 = await procs.start(replicaOptions('r2', r2Port));
    let primary: NodeProc | null = await procs.start(primaryOptions);
    await until(
      async () =>
        (await status(primary as NodeProc)).replicas.filter((r) => r.status === 'Connected').length === 2,
      30_000,
      'both replicas Connected',
    );
    await primary.call('create', { name: 'c', dimension: DIM, consistency: 'all', timeoutMs: 10_000 });

    // The client: WORKERS writers at Quorum, each batch new ids; an ack is the resolved call.
    const acked: number[] = [];
    let failed = 0;
    let next = 0;
    let ackedSinceStart = 0;
    let stopClient = false;
    const worker = async (): Promise<void> => {
      while (!stopClient) {
        const p = primary;
        if (p === null) {
          await sleep(10);
          continue;
        }
        const first = next;
        next += BATCH;
        try {
          await p.call(
            'write',
            { collection: 'c', first, count: BATCH, dimension: DIM, consistency: 'quorum', timeoutMs: 5000 },
            20_000,
          );
          acked.push(first);
          ackedSinceStart++;
        } catch {
          failed++; // the process died under it, a timeout (indeterminate), or not yet serving
          await sleep(20);
        }
      }
    };
    const workers = Array.from({ length: WORKERS }, worker);

    const started = performance.now();
    for (let k = 0; k < KILLS; k++) {
      // Let some writes be acknowledged in this primary's life, then kill it at a random moment.
      await until(async () => ackedSinceStart >= 3, 60_000, `writes acknowledged after restart ${k}`).catch(
        (err: Error) => {
          throw new Error(`${err.message}\n${procs.logs()}`);
        },
      );
      await sleep(50 + Math.floor(rand() * 600));
      const victim = primary as NodeProc;
      primary = null;
      await procs.kill(victim);
      ackedSinceStart = 0;
      primary = await procs.start(primaryOptions);
    }
    await until(async () => ackedSinceStart >= 3, 60_000, 'writes acknowledged after the last restart');
    stopClient = true;
    await Promise.all(workers);
    t.diagnostic(
      `${KILLS} kills in ${Math.round(performance.now() - started)} ms: ${acked.length} Quorum writes acknowledged, ${failed} failed or indeterminate`,
    );

    const nodes = [primary as NodeProc, r1, r2];
    await waitConverged(nodes, 'c', 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${procs.logs()}`);
    });
    const ids = acked.flatMap((first) => idsOf(first, BATCH));
    for (const [name, node] of [
      ['p', nodes[0]],
      ['r1', r1],
      ['r2', r2],
    ] as const) {
      const missing = await missingOn(node as NodeProc, 'c', ids);
      assert.deepEqual(
        missing.slice(0, 20),
        [],
        `${name} lacks ${missing.length} of ${ids.length} acknowledged points (seed ${SEED})`,
      );
    }
    await Promise.all(nodes.map((n) => n.stop()));
  },
);
