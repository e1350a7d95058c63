// A change-stream consumer: follows a node's /changes WebSocket, prints each
// event, and keeps the position of the last event it handled in a file, so a
// restart resumes after it with no gap and no duplicate (docs/change-streams.md).
//
// Against a local cluster (from the repository, after `npm install`):
//
//   node dist/cli/main.js cluster up --nodes 3          # terminal 1
//   node examples/changes-consumer.mjs                   # terminal 2
//   curl -s -X PUT 127.0.0.1:15002/collections/docs -H 'content-type: application/json' \
//     -d '{"dimension":3,"metric":"cosine"}'             # terminal 3, then write points
//
// Any node of the cluster serves the stream (a replica's events are the same,
// once committed): VREP_URL=http://127.0.0.1:15003 reads n2.
//
// Settings (environment): VREP_URL (default http://127.0.0.1:15002),
// VREP_TOKEN (the node's --token, if any), VREP_COLLECTIONS (comma-separated),
// VREP_POSITION_FILE (default ./changes-position.json).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { WebSocket } from 'ws';

const base = (process.env.VREP_URL ?? 'http://127.0.0.1:15002').replace(/\/+$/, '');
const positionFile = process.env.VREP_POSITION_FILE ?? './changes-position.json';
/** Events credited at a time: the server never sends more than this ahead of what we handled. */
const WINDOW = 500;

/** `TERM:LSN:INDEX` after the last handled event, or `earliest` the first time. */
function loadFrom() {
  try {
    const { term, lsn, index, count } = JSON.parse(readFileSync(positionFile, 'utf8'));
    // After the whole record when its last point was handled, else after that point.
    return index === count - 1 ? `${term}:${lsn}` : `${term}:${lsn}:${index}`;
  } catch {
    return 'earliest';
  }
}

/** Written atomically (a crash leaves the old position or the new one). */
function savePosition(e) {
  const tmp = `${positionFile}.tmp`;
  writeFileSync(tmp, JSON.stringify({ ...e.position, index: e.index, count: e.count }));
  renameSync(tmp, positionFile);
}

const url = new URL(`${base}/changes`);
url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
url.searchParams.set('from', loadFrom());
if (process.env.VREP_COLLECTIONS) url.searchParams.set('collections', process.env.VREP_COLLECTIONS);

const headers = process.env.VREP_TOKEN ? { authorization: `Bearer ${process.env.VREP_TOKEN}` } : {};
const ws = new WebSocket(url, { headers });
console.error(`following ${url}`);

ws.on('open', () => ws.send(JSON.stringify({ credit: WINDOW })));
ws.on('unexpected-response', (_req, res) => {
  let body = '';
  res.on('data', (d) => (body += d));
  res.on('end', () => {
    // e.g. 410 ERR_POSITION_EVICTED: the node no longer holds our position; the message names the earliest it holds.
    console.error(`refused: ${res.statusCode} ${body}`);
    process.exit(1);
  });
});
ws.on('message', (data) => {
  const msg = JSON.parse(data.toString());
  if (msg.error) {
    console.error(`stream ended: ${msg.error.code}: ${msg.error.message}`);
    return;
  }
  for (const e of msg.events) {
    // Handle the event, then remember it: at-least-once if this process dies in between.
    console.log(
      JSON.stringify({
        at: `${e.position.term}:${e.position.lsn}`,
        op: e.op,
        collection: e.collection,
        id: e.id,
        payload: e.payload,
      }),
    );
    savePosition(e);
  }
  // Give back the credit these events used.
  ws.send(JSON.stringify({ credit: msg.events.length }));
});
ws.on('close', (code, reason) => {
  console.error(`closed: ${code} ${reason}`);
  process.exit(code === 1000 ? 0 : 1);
});
ws.on('error', (err) => {
  console.error(`no stream from ${url}: ${err.message}`);
  process.exit(1);
});
process.on('SIGINT', () => ws.close(1000));
