/**
 * Three-node vrep clusters for the multi-process benches, each node in its
 * own process (bench/lib/node-child.ts): a primary and 2 replicas whose roles
 * the operator sets, or 3 voters in role auto that elect their primary. Also
 * the "replicated" figure the benches share: vectors / time from the first
 * write until the slowest replica has applied the last batch.
 */
import path from 'node:path';
import type { ConsistencyLevel } from '../../src/node/consistency.ts';
import type {
  ReplicationNodeOptions,
  ReplicationOptions,
  ReplicationStatus,
  StorageOptions,
} from '../../src/node/types.ts';
import { NodeChild, type IngestArgs, type IngestResult, type LoopStats } from './node-client.ts';
import { freePort, waitUntil, wallMs } from './processes.ts';

export type ClusterKind = 'manual' | 'auto';

export interface Cluster {
  kind: ClusterKind;
  /** Every node, in start order (auto: n1, n2, n3). */
  nodes: NodeChild[];
  /** The node that takes writes now (auto: the elected leader, see `refreshLeader`). */
  primary: NodeChild;
  /** The other two. */
  replicas: NodeChild[];
  /** The primary's HTTP API port (manual clusters started with `primaryHttp`), else null. */
  primaryHttpPort: number | null;
}

export interface ClusterOptions {
  /** Directory under which each node gets a data dir named by its id. */
  dir: string;
  /** Prefix of the node ids, so two clusters in one run keep apart. */
  idPrefix: string;
  storage?: StorageOptions;
  /** Added to every node's replication options (timing, for instance). */
  replication?: ReplicationOptions;
  /** Manual: the primary serves its HTTP API too (for clients in other processes). */
  primaryHttp?: boolean;
  timeoutMs: number;
}

/**
 * Primary + 2 replicas, each in its own process; resolves once both replicas
 * are Connected members. The primary names them in `peers`, so its first
 * config record makes them members and Quorum and All count them; replicas
 * that merely dial in would be observers, never counted (docs/replication.md,
 * "Membership").
 */
export async function startManualCluster(o: ClusterOptions): Promise<Cluster> {
  const [primaryAddress, ...replicaAddresses] = await autoAddresses(3);
  const node = (id: string, replication: ReplicationOptions): ReplicationNodeOptions => ({
    nodeId: `${o.idPrefix}${id}`,
    dataDir: path.join(o.dir, `${o.idPrefix}${id}`),
    ...(o.storage ? { storage: o.storage } : {}),
    replication: { ...o.replication, ...replication },
  });
  const { child: primary, started } = await NodeChild.fork(
    `vrep primary ${o.idPrefix}p`,
    node('p', { role: 'primary', bindAddress: primaryAddress as string, peers: replicaAddresses }),
    o.timeoutMs,
    { http: o.primaryHttp === true },
  );
  const replicas: NodeChild[] = [];
  try {
    for (const [i, id] of ['r1', 'r2'].entries()) {
      const { child } = await NodeChild.fork(
        `vrep replica ${o.idPrefix}${id}`,
        node(id, {
          role: 'replica',
          bindAddress: replicaAddresses[i] as string,
          masterAddress: primaryAddress as string,
        }),
        o.timeoutMs,
      );
      replicas.push(child);
    }
    await waitUntil(
      async () => {
        const { status } = await primary.status();
        const counted = status.replicas.filter((r) => r.status === 'Connected' && r.member);
        return counted.length >= 2 ? true : undefined;
      },
      o.timeoutMs,
      'the vrep primary to list 2 Connected replicas, both members',
      20,
    );
    return {
      kind: 'manual',
      nodes: [primary, ...replicas],
      primary,
      replicas,
      primaryHttpPort: started?.httpPort ?? null,
    };
  } catch (err) {
    await Promise.allSettled([primary, ...replicas].map((c) => c.stop(5000)));
    throw err;
  }
}

/** The options of voter `i` of an auto cluster whose peer listeners are `addresses`. */
export function autoNodeOptions(o: ClusterOptions, addresses: string[], i: number): ReplicationNodeOptions {
  const id = `${o.idPrefix}n${i + 1}`;
  return {
    nodeId: id,
    dataDir: path.join(o.dir, id),
    ...(o.storage ? { storage: o.storage } : {}),
    replication: {
      ...o.replication,
      role: 'auto',
      bindAddress: addresses[i] as string,
      peers: addresses.filter((_, j) => j !== i),
    },
  };
}

/** Distinct peer listener addresses on 127.0.0.1 (ports free a moment ago). */
export async function autoAddresses(count: number): Promise<string[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports].map((p) => `127.0.0.1:${p}`);
}

/**
 * Three voters in role auto, each in its own process; resolves once one
 * leads and lists both others Connected.
 */
export async function startAutoCluster(o: ClusterOptions): Promise<Cluster> {
  const addresses = await autoAddresses(3);
  const started = await Promise.allSettled(
    [0, 1, 2].map((i) =>
      NodeChild.fork(`vrep auto ${o.idPrefix}n${i + 1}`, autoNodeOptions(o, addresses, i), o.timeoutMs),
    ),
  );
  const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value.child] : []));
  try {
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const cluster: Cluster = {
      kind: 'auto',
      nodes,
      primary: nodes[0] as NodeChild,
      replicas: [],
      primaryHttpPort: null,
    };
    await refreshLeader(cluster, o.timeoutMs);
    return cluster;
  } catch (err) {
    await Promise.allSettled(nodes.map((c) => c.stop(5000)));
    throw err;
  }
}

/** The node among `nodes` that leads with the highest term, with its status; null: none leads. */
export async function findLeader(
  nodes: (NodeChild | null)[],
  timeoutMs = 2000,
): Promise<{ index: number; status: ReplicationStatus } | null> {
  const statuses = await Promise.all(
    nodes.map((n) => (n ? n.status(timeoutMs).catch(() => null) : Promise.resolve(null))),
  );
  let best: { index: number; status: ReplicationStatus } | null = null;
  statuses.forEach((s, index) => {
    if (s?.status.state === 'leader' && (best === null || s.status.term > best.status.term)) {
      best = { index, status: s.status };
    }
  });
  return best;
}

/**
 * Auto: waits for a leader that lists both other voters Connected, and makes
 * it the cluster's primary (the others its replicas). Manual: a no-op.
 */
export async function refreshLeader(cluster: Cluster, timeoutMs: number): Promise<void> {
  if (cluster.kind === 'manual') return;
  const index = await waitUntil(
    async () => {
      const found = await findLeader(cluster.nodes);
      if (!found) return undefined;
      const connected = found.status.replicas.filter((r) => r.status === 'Connected').length;
      return connected >= cluster.nodes.length - 1 ? found.index : undefined;
    },
    timeoutMs,
    'a leader listing every other voter Connected',
    20,
  );
  cluster.primary = cluster.nodes[index] as NodeChild;
  cluster.replicas = cluster.nodes.filter((_, i) => i !== index);
}

/**
 * When every replica held `lsn`, as wall ms: `logged` in its log (status
 * last_lsn), `applied` to what reads see (lastLsn; role auto applies only
 * through the commit point the leader last told it). Polled every 2 ms.
 */
export async function replicasReach(
  replicas: NodeChild[],
  lsn: number,
  timeoutMs: number,
  what: string,
): Promise<{ loggedMs: number; appliedMs: number }> {
  let loggedMs: number | null = null;
  const appliedMs = await waitUntil(
    async () => {
      const statuses = await Promise.all(replicas.map((r) => r.status()));
      const now = wallMs();
      if (loggedMs === null && statuses.every((s) => s.status.last_lsn >= lsn)) loggedMs = now;
      return statuses.every((s) => s.lastLsn >= lsn) ? now : undefined;
    },
    timeoutMs,
    what,
    2,
  );
  return { loggedMs: loggedMs ?? appliedMs, appliedMs };
}

export async function digestsEqual(nodes: NodeChild[], collection: string): Promise<boolean> {
  const digests = await Promise.all(nodes.map((n) => n.call<string>({ cmd: 'digest', collection }, 60_000)));
  return digests.every((d) => d === digests[0]);
}

export interface ReplicatedCase {
  ingest: IngestResult;
  /** Vectors / (time from the first write until every replica applied the last). */
  replicatedPerSec: number;
  /** Vectors / (time from the first write until every replica's log held the last). */
  loggedPerSec: number;
  digestsEqual: boolean;
  /** Each replica's event-loop delay and CPU from the first write until it applied the last. */
  replicaLoops: LoopStats[];
}

export interface ReplicatedCaseOptions {
  /** The ingest, run inside the primary's process, into a new collection `args.collection`. */
  args: IngestArgs;
  /**
   * Writes the batches some other way (a client in another process, say)
   * instead of the primary's own ingest of `args`; `args` still names the
   * collection and its dimension.
   */
  drive?: () => Promise<IngestResult>;
  /** Limit of the ingest call (its own duration plus slack). */
  ingestTimeoutMs: number;
  /** Limit of each wait for the replicas. */
  catchUpTimeoutMs: number;
}

/**
 * Creates a collection, ingests into it on the primary (in its process, one
 * batch in flight), waits until every replica applied the last batch,
 * compares digests and drops the collection (the drop replicates too, which
 * frees the memory before the next case).
 */
export async function replicatedCase(cluster: Cluster, o: ReplicatedCaseOptions): Promise<ReplicatedCase> {
  const { primary, replicas } = cluster;
  const { args } = o;
  const collection = args.collection;
  const created = await primary.call<{ lsn: number }>(
    { cmd: 'createCollection', name: collection, dimension: args.dim, metric: 'l2' },
    10_000,
  );
  await replicasReach(replicas, created.lsn, o.catchUpTimeoutMs, `replicas to create ${collection}`);
  await Promise.all(replicas.map((r) => r.call({ cmd: 'loopStart' }, 10_000)));
  const ingest = o.drive
    ? await o.drive()
    : await primary.call<IngestResult>({ cmd: 'ingest', args }, o.ingestTimeoutMs);
  const reached = await replicasReach(
    replicas,
    ingest.lastLsn,
    o.catchUpTimeoutMs,
    `replicas to reach LSN ${ingest.lastLsn}`,
  );
  const replicaLoops = await Promise.all(replicas.map((r) => r.call<LoopStats>({ cmd: 'loopStop' }, 10_000)));
  const equal = await digestsEqual([primary, ...replicas], collection);
  await primary.call({ cmd: 'dropCollection', name: collection }, 30_000);
  return {
    ingest,
    replicatedPerSec: (ingest.vectors * 1000) / (reached.appliedMs - ingest.startWallMs),
    loggedPerSec: (ingest.vectors * 1000) / (reached.loggedMs - ingest.startWallMs),
    digestsEqual: equal,
    replicaLoops,
  };
}

/** The level's name as the reports spell it. */
export const LEVEL_NAME: Record<ConsistencyLevel, string> = { one: 'One', quorum: 'Quorum', all: 'All' };
