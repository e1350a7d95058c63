// A consumer-group member: follows the leader's /changes WebSocket as a member
// of a group, handles each event, and commits after each message, so the
// group's position is kept by the cluster (a record in the log, replicated)
// instead of a local file. Run several copies: they share the work by id
// hash; one that stops hands its share to the others. After a crash, or a
// failover to a new leader, delivery goes on after the last committed
// position: at-least-once (docs/change-streams.md, "Consumer groups").
//
// Against a local cluster (from the repository, after `npm install`):
//
//   node dist/cli/main.js cluster up --nodes 3 --role auto   # terminal 1
//   node examples/changes-group-consumer.mjs                  # terminals 2, 3, ...
//
// Settings (environment): VREP_URL (any node; default http://127.0.0.1:15002),
// VREP_TOKEN (the node's --token, if any), VREP_GROUP (default "example"),
// VREP_COLLECTIONS (comma-separated).
import { WebSocket } from 'ws';

const group = process.env.VREP_GROUP ?? 'example';
const headers = process.env.VREP_TOKEN ? { authorization: `Bearer ${process.env.VREP_TOKEN}` } : {};
/** Events credited at a time: the server never sends more than this ahead of what we handled. */
const WINDOW = 500;
const RETRY_MS = 1000;
let base = (process.env.VREP_URL ?? 'http://127.0.0.1:15002').replace(/\/+$/, '');

function handle(e) {
  console.log(
    JSON.stringify({ position: e.position, index: e.index, op: e.op, collection: e.collection, id: e.id }),
  );
}

function connect() {
  const url = new URL(`${base}/changes`);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('group', group);
  url.searchParams.set('from', 'earliest'); // only for a group that has no position yet
  if (process.env.VREP_COLLECTIONS) url.searchParams.set('collections', process.env.VREP_COLLECTIONS);
  const ws = new WebSocket(url, { headers });
  let retried = false;
  const retry = () => {
    if (retried) return;
    retried = true;
    setTimeout(connect, RETRY_MS);
  };

  ws.on('open', () => {
    console.error(`member of ${group} at ${base}`);
    ws.send(JSON.stringify({ credit: WINDOW }));
  });
  ws.on('unexpected-response', (_req, res) => {
    let body = '';
    res.on('data', (d) => (body += d));
    res.on('end', () => {
      let error = {};
      try {
        error = JSON.parse(body).error ?? {};
      } catch {
        // not JSON
      }
      // Groups are served by the leader: a follower names it.
      if ((error.code === 'ERR_NOT_LEADER' || error.code === 'ERR_READ_ONLY') && error.primary) {
        base = `http://${error.primary}`;
        console.error(`the leader is at ${base}`);
      } else {
        console.error(`refused: ${res.statusCode} ${body}`);
        if (error.code === 'ERR_POSITION_EVICTED') process.exit(1); // the group lagged out: delete it to start over
      }
      retry();
    });
  });
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    if (msg.error) {
      console.error(`stream ended: ${msg.error.code}: ${msg.error.message}`);
      return;
    }
    if (msg.committed) return; // the cluster holds our position up to here
    for (const e of msg.events) handle(e);
    // Handled: commit the last of them by its position (not "sent": more messages may be on their way), then ask for as many more.
    const last = msg.events.at(-1);
    const at =
      last.index === last.count - 1 ? `${last.term}:${last.lsn}` : `${last.term}:${last.lsn}:${last.index}`;
    ws.send(JSON.stringify({ commit: at }));
    ws.send(JSON.stringify({ credit: msg.events.length }));
  });
  ws.on('close', retry);
  ws.on('error', (err) => {
    console.error(`${base}: ${err.message}`);
    retry();
  });
}

connect();
