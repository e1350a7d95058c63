/**
 * Change streams (issue 13): how fast committed changes reach consumers.
 * One node (fsync=no, no automatic snapshot, so the WAL holds every record)
 * is filled with dim-128 upserts in batches of 1000, then read back whole:
 * - raw: the WAL segment files read from the page cache (the bound);
 * - in process: node.changes() from earliest, one and four at once;
 * - over the network: GET /changes WebSockets from clients in their own
 *   processes (bench/lib/changes-client.ts), one and four at once.
 * - consumer groups: one member committing (auto-commit in process; a
 *   commit per message over the WebSocket), and four in-process members
 *   sharing the stream by id hash (the events once, in all).
 * Events/s, MB/s (WAL bytes covered per second, so every path is against
 * the raw read of the same bytes; the WebSocket's JSON bytes in the note).
 */
import { fork } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { isQuick, type Row, type Section } from './lib/harness.ts';
import { processBench } from './lib/process-bench.ts';
import { track } from './lib/processes.ts';
import { serve } from '../src/server/serve.ts';
import type { ReplicationNode } from '../src/node/replication-node.ts';

const quick = isQuick();
const DIM = 128;
const BATCH = 1000;
const POINTS = quick ? 20_000 : 200_000;
const { tmpRoot, problems, run } = processBench('changes', quick ? 5 * 60_000 : 20 * 60_000);
const RAW = 'raw WAL read (page cache)';
const clientScript = fileURLToPath(new URL('./lib/changes-client.ts', import.meta.url));

function walBytes(dataDir: string): { files: string[]; bytes: number } {
  const dir = path.join(dataDir, 'wal');
  const files = readdirSync(dir).map((f) => path.join(dir, f));
  return { files, bytes: files.reduce((sum, f) => sum + statSync(f).size, 0) };
}

async function fill(node: ReplicationNode): Promise<void> {
  await node.createCollection('c', { dimension: DIM, metric: 'l2' });
  const vectors = new Float32Array(BATCH * DIM).map((_, i) => Math.sin(i));
  for (let b = 0; b < POINTS / BATCH; b++) {
    const ids = Array.from({ length: BATCH }, (_, i) => `p${b * BATCH + i}`);
    const payloads = ids.map((id) => new TextEncoder().encode(JSON.stringify({ id, group: id.length })));
    await node.writePacked('c', { ids, vectors, payloads });
  }
}

/** `consumers` in-process streams from earliest at once; ms until the last has every event. */
async function inProcess(node: ReplicationNode, consumers: number, events: number): Promise<number> {
  const started = performance.now();
  await Promise.all(
    Array.from({ length: consumers }, async () => {
      const stream = node.changes({ from: 'earliest', includeVectors: true });
      let seen = 0;
      while (seen < events) {
        const batch = await stream.nextBatch();
        if (batch === null) throw new Error('the stream ended early');
        seen += batch.length;
      }
      stream.close();
    }),
  );
  return performance.now() - started;
}

/** A group of `members` in-process members from earliest; ms until they have every event between them. */
async function inProcessGroup(
  node: ReplicationNode,
  group: string,
  members: number,
  events: number,
): Promise<number> {
  const started = performance.now();
  const all = Array.from({ length: members }, () =>
    node.changes({ group, from: 'earliest', includeVectors: true }),
  );
  // Every member joined before any reads, so no rebalance restarts a read.
  await Promise.all(all.map((m) => m.start()));
  let seen = 0;
  let finish: () => void = () => {};
  const done = new Promise<'done'>((r) => (finish = () => r('done')));
  await Promise.all(
    all.map(async (m) => {
      // A member whose share is read out waits on its pull until the others have theirs.
      while (seen < events) {
        const batch = await Promise.race([m.nextBatch(), done]);
        if (batch === 'done') return;
        if (batch === null) throw new Error('a member ended early');
        seen += batch.length;
        if (seen >= events) finish();
      }
    }),
  );
  const ms = performance.now() - started;
  for (const m of all) m.close();
  return ms;
}

/**
 * `consumers` WebSocket clients in their own processes; the slowest client's ms from its socket
 * opening to its last event (process start-up left out), and the JSON bytes each received.
 */
async function overWebSocket(
  port: number,
  consumers: number,
  events: number,
  vectors: boolean,
  group: string | null = null,
): Promise<{ ms: number; jsonBytes: number }> {
  const url = `ws://127.0.0.1:${port}/changes?from=earliest${vectors ? '&include_vectors=true' : ''}${group ? `&group=${group}` : ''}`;
  const results = await Promise.all(
    Array.from(
      { length: consumers },
      () =>
        new Promise<{ bytes: number; ms: number }>((resolve, reject) => {
          const child = track(
            fork(clientScript, [url, String(events), ...(group ? ['commit'] : [])], {
              execArgv: ['--import', 'tsx'],
              stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
            }),
          );
          let out = '';
          child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
          child.on('exit', (code) => {
            if (code !== 0) reject(new Error(`changes-client exited ${code}`));
            else resolve(JSON.parse(out) as { bytes: number; ms: number });
          });
        }),
    ),
  );
  return { ms: Math.max(...results.map((r) => r.ms)), jsonBytes: results[0]?.bytes ?? 0 };
}

async function main(): Promise<Section[]> {
  const dataDir = path.join(tmpRoot, 'n1');
  const server = await serve({
    node: { nodeId: 'n1', dataDir, storage: { fsync: 'no', snapshotEveryBytes: 0 } },
    http: { host: '127.0.0.1', port: 0 },
    logger: pino({ level: 'silent' }),
  });
  try {
    await fill(server.node);
    const events = POINTS + 1; // the create, then one per point
    const wal = walBytes(dataDir);
    const mb = wal.bytes / 1e6;
    // Raw: the same bytes read from the page cache, the best any reader of the WAL can do.
    for (const f of wal.files) readFileSync(f); // warm the cache
    const rawStart = performance.now();
    for (const f of wal.files) readFileSync(f);
    const rawMs = performance.now() - rawStart;
    const raw = mb / (rawMs / 1000);
    const row = (name: string, ms: number, consumers: number, note = ''): Row => ({
      name,
      value: (events * consumers) / (ms / 1000),
      unit: 'events/s',
      ratio: (mb * consumers) / (ms / 1000) / raw,
      vs: RAW,
      note: `${((mb * consumers) / (ms / 1000)).toFixed(0)} MB/s of WAL in all${note}`,
    });
    const rows: Row[] = [
      { name: RAW, value: raw, unit: 'MB/s', note: `${mb.toFixed(0)} MB, ${wal.files.length} segments` },
    ];
    for (const consumers of [1, 4]) {
      const ms = await inProcess(server.node, consumers, events);
      rows.push(
        row(`in process, ${consumers} consumer${consumers > 1 ? 's' : ''} (with vectors)`, ms, consumers),
      );
    }
    for (const vectors of [false, true]) {
      for (const consumers of [1, 4]) {
        const r = await overWebSocket(server.httpPort, consumers, events, vectors);
        rows.push(
          row(
            `WebSocket, ${consumers} client process${consumers > 1 ? 'es' : ''}${vectors ? ' (with vectors)' : ''}`,
            r.ms,
            consumers,
            `; ${(r.jsonBytes / 1e6).toFixed(0)} MB of JSON per client`,
          ),
        );
      }
    }
    // Consumer groups: the same events with their commits (records in the log too).
    const groupRow = (name: string, ms: number): Row => ({
      name,
      value: events / (ms / 1000),
      unit: 'events/s',
      ratio: mb / (ms / 1000) / raw,
      vs: RAW,
      note: `${(mb / (ms / 1000)).toFixed(0)} MB/s of WAL`,
    });
    rows.push(
      groupRow(
        'group, 1 in-process member (auto-commit, with vectors)',
        await inProcessGroup(server.node, 'g1', 1, events),
      ),
    );
    rows.push(
      groupRow(
        'group, 4 in-process members sharing by id (with vectors)',
        await inProcessGroup(server.node, 'g4', 4, events),
      ),
    );
    const ws = await overWebSocket(server.httpPort, 1, events, false, 'gws');
    rows.push({
      ...groupRow('group, 1 WebSocket member committing each message', ws.ms),
      note: `${(mb / (ws.ms / 1000)).toFixed(0)} MB/s of WAL; group position ${JSON.stringify(server.node.consumerGroupsStatus().find((g) => g.name === 'gws')?.position)}`,
    });
    return [
      {
        title: `change streams: ${POINTS / 1000}k upserts of dim ${DIM} in batches of ${BATCH} read from earliest (fsync=no)`,
        rows,
      },
    ];
  } catch (err) {
    problems.push((err as Error).message);
    return [];
  } finally {
    await server.stop();
  }
}

await run(main);
