/**
 * A ReplicationNode in a child process, driven over the IPC channel (see
 * node-proc.ts). Options come as JSON in VREP_CHILD_OPTIONS. Vectors are
 * generated here from a seed, so IPC never carries them.
 */
import {
  ReplicationNode,
  type NodeEvent,
  type ReplicationNodeOptions,
} from '../../src/node/replication-node.ts';
import type { ConsistencyLevel } from '../../src/node/consistency.ts';

interface Request {
  id: number;
  cmd: string;
  args: Record<string, unknown>;
}

function vectors(count: number, dim: number, seed: number): Float32Array {
  const out = new Float32Array(count * dim);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) / 4294967296 - 0.5;
  }
  return out;
}

const options = JSON.parse(process.env['VREP_CHILD_OPTIONS'] ?? '{}') as ReplicationNodeOptions;
const node = await ReplicationNode.start(options);
const events: NodeEvent[] = [];
void (async () => {
  for await (const e of node.events()) {
    events.push(e);
    if (events.length > 10_000) events.shift();
  }
})();

async function run(cmd: string, a: Record<string, unknown>): Promise<unknown> {
  switch (cmd) {
    case 'info':
      return { peerPort: node.peerPort, lastLsn: node.lastLsn, historyId: node.historyId, pid: process.pid };
    case 'create':
      return node.createCollection(
        a['name'] as string,
        { dimension: a['dimension'] as number, metric: (a['metric'] as 'l2') ?? 'l2' },
        {
          ...(a['consistency'] !== undefined ? { consistency: a['consistency'] as ConsistencyLevel } : {}),
          ...(a['timeoutMs'] !== undefined ? { timeoutMs: a['timeoutMs'] as number } : {}),
        },
      );
    case 'write': {
      const count = a['count'] as number;
      const dim = a['dimension'] as number;
      const first = a['first'] as number;
      const ids = Array.from({ length: count }, (_, i) => `p${first + i}`);
      const v = vectors(count, dim, (a['seed'] as number) ?? first + 1);
      const payloads = ids.map((id) => new TextEncoder().encode(JSON.stringify({ id })));
      const opts = {
        ...(a['consistency'] ? { consistency: a['consistency'] as ConsistencyLevel } : {}),
        ...(a['timeoutMs'] ? { timeoutMs: a['timeoutMs'] as number } : {}),
      };
      return node.writePacked(a['collection'] as string, { ids, vectors: v, payloads }, opts);
    }
    case 'digest':
      return {
        digest: node.collections().some((c) => c.name === a['collection'])
          ? node.digest(a['collection'] as string)
          : null,
        lastLsn: node.lastLsn,
      };
    case 'status':
      return node.replicationStatus();
    case 'events':
      return events;
    case 'snapshot':
      return (await node.snapshot()).manifest.lsn;
    case 'forceSync':
      return node.forceSync(a['id'] as string);
    case 'addReplica':
      return node.addReplica(a['address'] as string);
    case 'addLearner':
      return node.addLearner(a['address'] as string);
    case 'promoteLearner':
      return node.promoteLearner(a['id'] as string);
    case 'removeReplica':
      return node.removeReplica(a['id'] as string);
    case 'promote':
      return node.promote(a['force'] === true ? { force: true } : {});
    case 'transfer':
      return node.transfer(a['to'] as string);
    case 'read': {
      // A get at `consistency`; IPC carries whether the point is there, not its vector.
      const consistency = (a['consistency'] as 'local' | 'linearizable' | undefined) ?? 'local';
      const p = await node.get(a['collection'] as string, a['id'] as string, { consistency });
      return { found: p !== null, lastLsn: node.lastLsn };
    }
    case 'search': {
      const consistency = (a['consistency'] as 'local' | 'linearizable' | undefined) ?? 'local';
      const v = vectors(1, a['dimension'] as number, (a['seed'] as number) ?? 1);
      const hits = await node.search(a['collection'] as string, v, {
        k: (a['k'] as number) ?? 1,
        consistency,
      });
      return hits.map((h) => h.id);
    }
    case 'attempt': {
      // Runs another command and answers its outcome as data, with the error's code and the
      // primary it names (error.primary), which a rejected call over IPC does not carry.
      try {
        return {
          ok: true,
          result: (await run(a['cmd'] as string, a['args'] as Record<string, unknown>)) ?? null,
        };
      } catch (err) {
        const e = err as { code?: string; message: string; primary?: string | null };
        return {
          ok: false,
          code: e.code,
          message: e.message,
          ...(e.primary !== undefined ? { primary: e.primary } : {}),
        };
      }
    }
    case 'configure':
      return node.configure(a as { role?: 'primary' | 'replica'; masterAddress?: string | null });
    case 'missing': {
      // Which of these point ids this node does not hold (checked here, so IPC carries only ids).
      const collection = a['collection'] as string;
      const out: string[] = [];
      for (const id of a['ids'] as string[]) if ((await node.get(collection, id)) === null) out.push(id);
      return out;
    }
    case 'stop':
      await node.stop();
      setImmediate(() => process.exit(0));
      return null;
    default:
      throw new Error(`unknown command ${cmd}`);
  }
}

process.on('message', (msg: Request) => {
  run(msg.cmd, msg.args).then(
    (result) => process.send?.({ id: msg.id, ok: true, result: result ?? null }),
    (err: unknown) =>
      process.send?.({
        id: msg.id,
        ok: false,
        error: { code: (err as { code?: string }).code, message: (err as Error).message },
      }),
  );
});
process.send?.({ id: 0, ok: true, result: 'ready' });
