/**
 * A change-stream consumer in its own process, as a user's would be: it
 * opens `GET /changes` (a WebSocket), keeps CREDIT events credited, counts
 * events and message bytes until it has `want` events, and prints one JSON
 * line: {events, bytes, ms}. Args: URL (ws://host:port/changes?...), want,
 * and `commit` to commit each message's events (a group member), as
 * `{"commit": "sent"}` after handling it.
 */
import { WebSocket } from 'ws';

const [url, wantText, mode] = process.argv.slice(2);
const commit = mode === 'commit';
const want = Number(wantText);
if (!url || !Number.isSafeInteger(want) || want < 1) {
  process.stderr.write('usage: changes-client.ts WS_URL EVENTS\n');
  process.exit(2);
}
/** Half the server's limit (CHANGES_WS_LIMITS.maxCredit), topped up as events arrive. */
const CREDIT = 5000;

const ws = new WebSocket(url);
let events = 0;
let bytes = 0;
let credited = 0;
let startedMs = 0;
ws.on('open', () => {
  startedMs = performance.now();
  credited = CREDIT;
  ws.send(JSON.stringify({ credit: CREDIT }));
});
ws.on('message', (data: Buffer) => {
  bytes += data.length;
  const msg = JSON.parse(data.toString('utf8')) as { events?: unknown[]; error?: { message: string } };
  if (msg.error) {
    process.stderr.write(`changes-client: ${msg.error.message}\n`);
    process.exit(1);
  }
  if (msg.events === undefined) return; // a commit's answer
  events += msg.events.length;
  if (commit) ws.send('{"commit":"sent"}');
  if (events >= want) {
    process.stdout.write(`${JSON.stringify({ events, bytes, ms: performance.now() - startedMs })}\n`);
    ws.close();
    return;
  }
  // Keep the window full: credit what arrived once half of it is used.
  const outstanding = credited - events;
  if (outstanding < CREDIT / 2) {
    const more = Math.min(CREDIT - outstanding, want - credited);
    if (more > 0) {
      credited += more;
      ws.send(JSON.stringify({ credit: more }));
    }
  }
});
ws.on('error', (err) => {
  process.stderr.write(`changes-client: ${err.message}\n`);
  process.exit(1);
});
