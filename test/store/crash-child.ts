/**
 * Child of the crash test: opens the store with fsync=always and applies the
 * workload from `startSeq` on, printing "ACK <seq>" (synchronously, so the
 * line is in the pipe before the next write starts) after each write is
 * acknowledged. The parent kills it with SIGKILL at a random moment.
 *
 *   node --import tsx crash-child.ts <dataDir> <seed> <startSeq>
 */
import { writeSync } from 'node:fs';
import { ReplicationNode } from '../../src/node/replication-node.ts';
import { DIM, workOp } from './crash-workload.ts';

const [dataDir, seedArg, startArg] = process.argv.slice(2) as [string, string, string];
const seed = Number(seedArg);
const node = await ReplicationNode.start({
  dataDir,
  nodeId: 'crash',
  storage: {
    fsync: 'always',
    walSegmentBytes: 64 * 1024,
    snapshotEveryBytes: 200 * 1024,
    logBytes: 1024 * 1024,
  },
});
if (node.collections().length === 0) await node.createCollection('c', { dimension: DIM, metric: 'l2' });
writeSync(1, `READY ${node.lastLsn}\n`);
for (let seq = Number(startArg); ; seq++) {
  const op = workOp(seed, seq);
  if (op.kind === 'upsert')
    await node.writePacked('c', { ids: op.ids, vectors: op.vectors, payloads: op.payloads });
  else await node.delete('c', op.ids);
  writeSync(1, `ACK ${seq}\n`);
}
