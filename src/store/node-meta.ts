/**
 * Persistent node metadata: node id, history (replication) id, current term
 * and vote. Written with fsync and atomic rename before anyone is told about
 * a change, so a restarted node never forgets a term it voted in.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { writeFileAtomic } from '../log/atomic-file.ts';
import { VrepError } from '../errors.ts';

export const NODE_META_FILE = 'node-meta.json';

const nodeMetaSchema = z
  .object({
    formatVersion: z.literal(1),
    nodeId: z.string().min(1).max(255),
    /** Changes whenever this node starts a new history (fresh data dir, promotion). */
    historyId: z.string().regex(/^[0-9a-f]{32}$/),
    /** The history this one continued from, and the first LSN of the new one (PSYNC2's replid2). */
    previousHistoryId: z
      .string()
      .regex(/^[0-9a-f]{32}$/)
      .nullable(),
    previousHistoryEndLsn: z.number().int().nonnegative().nullable(),
    currentTerm: z.number().int().nonnegative(),
    votedFor: z.string().min(1).nullable(),
  })
  .strict();

export type NodeMeta = z.infer<typeof nodeMetaSchema>;

export function newHistoryId(): string {
  return randomBytes(16).toString('hex');
}

/** Loads the meta file, or returns null when there is none (a new data dir). */
export async function loadNodeMeta(dataDir: string): Promise<NodeMeta | null> {
  const file = path.join(dataDir, NODE_META_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new VrepError(
      'ERR_CORRUPT_META',
      `${file}: not valid JSON; refusing to start with unknown term and vote`,
    );
  }
  const result = nodeMetaSchema.safeParse(parsed);
  if (!result.success) {
    throw new VrepError(
      'ERR_CORRUPT_META',
      `${file}: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return result.data;
}

/** Durably replaces the meta file (fsync + rename + directory fsync). */
export async function saveNodeMeta(dataDir: string, meta: NodeMeta): Promise<void> {
  nodeMetaSchema.parse(meta);
  await writeFileAtomic(path.join(dataDir, NODE_META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
}
