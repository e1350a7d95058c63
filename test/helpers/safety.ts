/**
 * Shared pieces of the replication safety tests (test/replication/safety-*):
 * free loopback ports (addresses.ts; so a node restarts on the same address), a registry
 * that kills every node process a test started, digests and convergence,
 * and the check that acknowledged point ids are present on a node.
 */
import type { TestContext } from 'node:test';
import { NodeProc, until } from './node-proc.ts';
import type { ReplicationStatus } from '../../src/node/types.ts';
export { freePorts } from './addresses.ts';

/** Every node process a test starts; all are killed when the test ends (even on failure). */
export class Procs {
  private readonly all = new Set<NodeProc>();

  constructor(t: TestContext) {
    t.after(() => {
      for (const p of this.all) {
        p.kill('SIGCONT');
        p.kill('SIGKILL');
      }
    });
  }

  async start(options: Parameters<typeof NodeProc.start>[0]): Promise<NodeProc> {
    const p = await NodeProc.start(options, 60_000);
    // A call racing the process's death must fail that call, not the test process.
    p.child.on('error', () => undefined);
    this.all.add(p);
    void p.exited.then(() => this.all.delete(p));
    return p;
  }

  async kill(p: NodeProc): Promise<void> {
    p.kill('SIGKILL');
    await p.exited;
  }

  /** Output of every live process, for a failure message. */
  logs(chars = 2000): string {
    return [...this.all].map((p) => p.output.slice(-chars)).join('\n---\n');
  }
}

export function status(node: NodeProc): Promise<ReplicationStatus> {
  return node.call<ReplicationStatus>('status');
}

export async function digestOf(
  node: NodeProc,
  collection: string,
): Promise<{ digest: string | null; lastLsn: number }> {
  return node.call('digest', { collection });
}

/** Waits until every node has the same last LSN and the same digest of `collection`; returns the digest. */
export async function waitConverged(
  nodes: NodeProc[],
  collection: string,
  timeoutMs: number,
): Promise<string> {
  try {
    return await until(
      async () => {
        const states = await Promise.all(nodes.map((n) => digestOf(n, collection)));
        const [first] = states;
        if (!first || first.digest === null) return false;
        return states.every((s) => s.lastLsn === first.lastLsn && s.digest === first.digest)
          ? first.digest
          : false;
      },
      timeoutMs,
      'every node to hold the same log and digest',
    );
  } catch (err) {
    const states = await Promise.all(
      nodes.map((n) => digestOf(n, collection).catch((e: Error) => e.message)),
    );
    throw new Error(`${(err as Error).message}; states: ${JSON.stringify(states)}`);
  }
}

/**
 * Waits until every node's log ends where everyone's does, all of it
 * committed and applied, in the same term, with the same digest of
 * `collection`. With elections only committed records are applied, so the
 * applied LSN and the digest alone (waitConverged) are equal while a
 * divergent tail is still in a log; role auto tests wait with this.
 */
export async function waitLogsConverged(
  nodes: NodeProc[],
  collection: string,
  timeoutMs: number,
): Promise<void> {
  const look = (): Promise<LogState[]> =>
    Promise.all(
      nodes.map(async (n) => {
        const [s, d] = await Promise.all([status(n), digestOf(n, collection)]);
        return {
          id: s.node_id,
          term: s.term,
          last: s.last_lsn,
          commit: s.commit_lsn,
          applied: s.applied_lsn,
          digest: d.digest,
        };
      }),
    );
  try {
    await until(
      async () => {
        const states = await look();
        const [a] = states;
        return (
          a !== undefined &&
          a.digest !== null &&
          states.every(
            (s) =>
              s.term === a.term &&
              s.last === a.last &&
              s.commit === a.last &&
              s.applied === a.last &&
              s.digest === a.digest,
          )
        );
      },
      timeoutMs,
      'every node to hold the same log, committed and applied, and the same digest',
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; states: ${JSON.stringify(await look().catch(() => null))}`);
  }
}

interface LogState {
  id: string;
  term: number;
  last: number;
  commit: number;
  applied: number;
  digest: string | null;
}

/** Point ids written by the `write` command of node-child.ts: p<first> .. p<first+count-1>. */
export function idsOf(first: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `p${first + i}`);
}

/** The ids of `ids` that `node` does not hold. */
export async function missingOn(node: NodeProc, collection: string, ids: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (let i = 0; i < ids.length; i += 5000) {
    missing.push(
      ...(await node.call<string[]>('missing', { collection, ids: ids.slice(i, i + 5000) }, 60_000)),
    );
  }
  return missing;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
