/**
 * Persistent node metadata: the node id, the hard state (term, the leader
 * accepted in it, a commit floor) and the term history (which epoch wrote
 * which LSNs; src/consensus/term-history.ts). Written with fsync and an
 * atomic rename before anyone is told about a change, so a restarted node
 * never forgets a term it took part in, nor whose records it holds.
 *
 * Format version 2. A version 1 file (a single history id, a previous one
 * it continued, current term and vote) is read and turned into a history of
 * one or two epochs; `migrated` says so, and the store then treats the data
 * it recovered as committed.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { writeFileAtomic } from '../log/atomic-file.ts';
import { VrepError } from '../errors.ts';
import type { Epoch } from '../consensus/term-history.ts';
import type { HardState } from '../consensus/core.ts';

export const NODE_META_FILE = 'node-meta.json';

const hex32 = z.string().regex(/^[0-9a-f]{32}$/);
const nodeId = z.string().min(1).max(255);
const lsn = z.number().int().nonnegative();

const epochSchema = z
  .object({ term: lsn, historyId: hex32, leaderId: nodeId, firstLsn: z.number().int().min(1) })
  .strict();

const metaV2Schema = z
  .object({
    formatVersion: z.literal(2),
    nodeId,
    hardState: z.object({ term: lsn, votedFor: nodeId.nullable(), commit: lsn }).strict(),
    history: z.array(epochSchema).max(4096),
  })
  .strict();

const metaV1Schema = z
  .object({
    formatVersion: z.literal(1),
    nodeId,
    historyId: hex32,
    previousHistoryId: hex32.nullable(),
    previousHistoryEndLsn: lsn.nullable(),
    currentTerm: lsn,
    votedFor: nodeId.nullable(),
  })
  .strict();

export interface NodeMeta {
  nodeId: string;
  hardState: HardState;
  history: Epoch[];
}

/**
 * The epochs of `history` up to the one that wrote `lsn` (the last one is
 * that epoch; LSN 0, an empty state, counts as LSN 1's): what a snapshot at
 * `lsn` carries, and what a snapshot found at start-up must agree with.
 */
export function epochsThrough(history: readonly Epoch[], lsn: number): Epoch[] {
  return history.filter((e) => e.firstLsn <= Math.max(lsn, 1));
}

export function newHistoryId(): string {
  return randomBytes(16).toString('hex');
}

function corrupt(file: string, why: string): VrepError {
  return new VrepError(
    'ERR_CORRUPT_META',
    `${file}: ${why}; refusing to start with an unknown term and history`,
  );
}

/** Loads the meta file: null when there is none (a new data dir); `migrated` for a version 1 file. */
export async function loadNodeMeta(dataDir: string): Promise<{ meta: NodeMeta; migrated: boolean } | null> {
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
    throw corrupt(file, 'not valid JSON');
  }
  const issues = (e: z.ZodError): string =>
    e.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
  if ((parsed as { formatVersion?: unknown } | null)?.formatVersion === 1) {
    const v1 = metaV1Schema.safeParse(parsed);
    if (!v1.success) throw corrupt(file, issues(v1.error));
    const m = v1.data;
    const history: Epoch[] =
      m.previousHistoryId !== null && m.previousHistoryEndLsn !== null
        ? [
            { term: 0, historyId: m.previousHistoryId, leaderId: m.nodeId, firstLsn: 1 },
            {
              term: m.currentTerm,
              historyId: m.historyId,
              leaderId: m.nodeId,
              firstLsn: m.previousHistoryEndLsn + 1,
            },
          ]
        : [{ term: m.currentTerm, historyId: m.historyId, leaderId: m.nodeId, firstLsn: 1 }];
    return {
      meta: {
        nodeId: m.nodeId,
        hardState: { term: m.currentTerm, votedFor: m.votedFor, commit: 0 },
        history,
      },
      migrated: true,
    };
  }
  const v2 = metaV2Schema.safeParse(parsed);
  if (!v2.success) throw corrupt(file, issues(v2.error));
  return {
    meta: { nodeId: v2.data.nodeId, hardState: v2.data.hardState, history: v2.data.history },
    migrated: false,
  };
}

/** Durably replaces the meta file (fsync + rename + directory fsync). */
export async function saveNodeMeta(dataDir: string, meta: NodeMeta): Promise<void> {
  const body = metaV2Schema.parse({ formatVersion: 2, ...meta });
  await writeFileAtomic(path.join(dataDir, NODE_META_FILE), `${JSON.stringify(body, null, 2)}\n`);
}
