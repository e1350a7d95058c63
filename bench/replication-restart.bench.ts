/**
 * Restart after SIGKILL (issue 12): a primary with two replicas streaming
 * from it is SIGKILLed and started again at once on the same data dir and
 * the same ports, N times (quick: 3). Each node is a `vrep serve` process
 * run from JavaScript built into this bench's temp dir (as an installed
 * node runs; through tsx the start-up alone takes 2-3 s here), or through
 * tsx when the build fails (the note says so). Measured from the moment the
 * killed process is gone:
 *  - kill -> peer port accepting TCP, and -> HTTP port answering /health;
 *  - kill -> both replicas linked again (the primary lists both Connected
 *    and each says its master is Connected);
 * next to the same run's reference, a fresh `vrep serve` start on an empty
 * data dir and free ports (spawn -> peer port accepting), and against the
 * issue's 2 s goal. The TCP states left on the peer port at each kill
 * (TIME-WAIT: the condition that used to block the bind for a minute) and
 * any EADDRINUSE in the restarted node's output are reported.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { processBench } from './lib/process-bench.ts';
import { isQuick, type Row, type Section } from './lib/harness.ts';
import { freePort, kill, track, waitUntil, withTimeout } from './lib/processes.ts';

const quick = isQuick();
const KILLS = quick ? 3 : 10;
const GOAL_MS = 2000;
const POLL_MS = 5;
const START_TIMEOUT_MS = 30_000;
const LINK_TIMEOUT_MS = 30_000;
const BUILD_TIMEOUT_MS = 180_000;
const WHOLE_BENCH_TIMEOUT_MS = quick ? 5 * 60_000 : 15 * 60_000;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { tmpRoot, problems, run } = processBench('replication-restart', WHOLE_BENCH_TIMEOUT_MS);

function progress(message: string): void {
  process.stderr.write(`replication-restart bench: ${message}\n`);
}

/**
 * Builds src/ into <tmpRoot>/pkg/dist (package.json copied, node_modules and
 * the addon's build/ linked), so the nodes start as an installed one does.
 * Null (with the reason in `problems`-free progress) when tsc cannot emit.
 */
function buildJs(): string[] | null {
  const pkg = path.join(tmpRoot, 'pkg');
  mkdirSync(pkg, { recursive: true });
  copyFileSync(path.join(repoRoot, 'package.json'), path.join(pkg, 'package.json'));
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(pkg, 'node_modules'));
  symlinkSync(path.join(repoRoot, 'build'), path.join(pkg, 'build'));
  const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  // Type errors do not stop the emit; only a missing output does.
  spawnSync(
    process.execPath,
    [tsc, '-p', path.join(repoRoot, 'tsconfig.build.json'), '--outDir', path.join(pkg, 'dist')],
    { stdio: 'ignore', timeout: BUILD_TIMEOUT_MS },
  );
  const main = path.join(pkg, 'dist', 'cli', 'main.js');
  try {
    execFileSync(process.execPath, [main, '--help'], { stdio: 'ignore', timeout: 30_000 });
    return [main];
  } catch {
    return null;
  }
}

interface NodeSpec {
  id: string;
  httpPort: number;
  peerPort: number;
  args: string[];
}

interface Running {
  proc: ChildProcess;
  output: () => string;
}

function startServe(command: string[], spec: NodeSpec): Running {
  const proc = track(
    spawn(process.execPath, [...command, 'serve', '--fsync', 'everysec', ...spec.args], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let out = '';
  // Bounded: only the last 64 KiB are kept (for the EADDRINUSE check and failures).
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-65536);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  return { proc, output: () => out };
}

/** Resolves once a TCP connect to 127.0.0.1:port succeeds (polled every POLL_MS). */
async function accepting(port: number, timeoutMs: number): Promise<void> {
  await waitUntil(
    () =>
      new Promise<true | undefined>((resolve) => {
        const socket = net.connect(port, '127.0.0.1');
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(undefined));
      }),
    timeoutMs,
    `port ${port} to accept`,
    POLL_MS,
  );
}

async function getJson<T>(port: number, route: string): Promise<T | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${route}`, {
      headers: { connection: 'close' },
      signal: AbortSignal.timeout(2000),
    });
    return res.status === 200 ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

interface Status {
  last_lsn: number;
  applied_lsn: number;
  replicas: { id: string; status: string }[];
  master?: { status: string };
}

async function linked(primary: NodeSpec, replicas: NodeSpec[]): Promise<boolean> {
  const p = await getJson<Status>(primary.httpPort, '/replication/status');
  if (!p) return false;
  for (const r of replicas) {
    if (!p.replicas.some((x) => x.id === r.id && x.status === 'Connected')) return false;
    const rs = await getJson<Status>(r.httpPort, '/replication/status');
    if (rs?.master?.status !== 'Connected') return false;
  }
  return true;
}

async function writePoints(port: number, first: number, count: number): Promise<boolean> {
  const points = Array.from({ length: count }, (_, i) => ({
    id: `p${first + i}`,
    vector: Array.from({ length: 16 }, (_, k) => Math.sin(first + i + k)),
  }));
  try {
    const res = await fetch(`http://127.0.0.1:${port}/collections/c/points`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', connection: 'close' },
      body: JSON.stringify({ points }),
      signal: AbortSignal.timeout(5000),
    });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** The TCP states on `port` (either end), as `ss` lists them. */
function socketsOn(port: number): string[] {
  try {
    const out = execFileSync('ss', ['-tanH', `( sport = :${port} or dport = :${port} )`], {
      encoding: 'utf8',
      timeout: 5000,
    });
    return out
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.trim().split(/\s+/)[0] as string);
  } catch {
    return [];
  }
}

async function nodeSpecs(): Promise<{ primary: NodeSpec; replicas: NodeSpec[] }> {
  const ports: number[] = [];
  while (ports.length < 6) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const [pHttp, pPeer] = ports as [number, number];
  const primary: NodeSpec = {
    id: 'p',
    httpPort: pHttp,
    peerPort: pPeer,
    args: ['--node-id', 'p', '--role', 'primary', '--http', `127.0.0.1:${pHttp}`],
  };
  primary.args.push('--bind', `127.0.0.1:${pPeer}`, '--data-dir', path.join(tmpRoot, 'p'));
  const replicas = ['r1', 'r2'].map((id, i): NodeSpec => {
    const httpPort = ports[2 + 2 * i] as number;
    const peerPort = ports[3 + 2 * i] as number;
    return {
      id,
      httpPort,
      peerPort,
      args: [
        ...['--node-id', id, '--role', 'replica', '--primary', `127.0.0.1:${pPeer}`],
        ...['--http', `127.0.0.1:${httpPort}`, '--bind', `127.0.0.1:${peerPort}`],
        ...['--data-dir', path.join(tmpRoot, id)],
      ],
    };
  });
  return { primary, replicas };
}

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
};

async function main(): Promise<Section[]> {
  progress('building the JS the nodes run');
  const built = buildJs();
  const command = built ?? ['--import', 'tsx', path.join(repoRoot, 'src', 'cli', 'main.ts')];
  const how = built ? 'built JS' : 'tsx (the build failed)';
  const { primary, replicas } = await nodeSpecs();

  // Reference: a fresh start, empty data dir and free ports, same machine, same run.
  const freshMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const spec: NodeSpec = { id: 'f', httpPort: await freePort(), peerPort: await freePort(), args: [] };
    spec.args = ['--node-id', 'f', '--role', 'primary', '--http', `127.0.0.1:${spec.httpPort}`];
    spec.args.push('--bind', `127.0.0.1:${spec.peerPort}`, '--data-dir', path.join(tmpRoot, `fresh${i}`));
    const t0 = performance.now();
    const fresh = startServe(command, spec);
    await accepting(spec.peerPort, START_TIMEOUT_MS);
    freshMs.push(performance.now() - t0);
    await kill(fresh.proc);
  }

  let p = startServe(command, primary);
  const others = replicas.map((r) => startServe(command, r));
  try {
    await accepting(primary.peerPort, START_TIMEOUT_MS);
    await waitUntil(
      async () => ((await getJson(primary.httpPort, '/health')) !== undefined ? true : undefined),
      START_TIMEOUT_MS,
      'the primary HTTP API',
      20,
    );
    const create = await fetch(`http://127.0.0.1:${primary.httpPort}/collections/c`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dimension: 16, metric: 'l2' }),
    });
    if (create.status !== 200 && create.status !== 201) throw new Error(`create: ${create.status}`);
    await waitUntil(
      async () => ((await linked(primary, replicas)) ? true : undefined),
      LINK_TIMEOUT_MS,
      'both replicas linked',
      20,
    );

    const bound: number[] = [];
    const http: number[] = [];
    const relinked: number[] = [];
    let timeWaits = 0;
    let busy = 0;
    let next = 0;
    for (let k = 0; k < KILLS; k++) {
      progress(`kill ${k + 1} of ${KILLS}`);
      // Live links carrying records at the kill: writes go on until it.
      let writing = true;
      const writer = (async () => {
        while (writing && (await writePoints(primary.httpPort, next, 200))) next += 200;
      })();
      await new Promise((resolve) => setTimeout(resolve, 300));
      writing = false;
      await kill(p.proc);
      const killedAt = performance.now();
      timeWaits += socketsOn(primary.peerPort).filter((s) => s === 'TIME-WAIT').length;
      p = startServe(command, primary);
      const peerBound = accepting(primary.peerPort, START_TIMEOUT_MS).then(
        () => performance.now() - killedAt,
      );
      const httpBound = waitUntil(
        async () => ((await getJson(primary.httpPort, '/health')) !== undefined ? true : undefined),
        START_TIMEOUT_MS,
        'the restarted primary HTTP API',
        POLL_MS,
      ).then(() => performance.now() - killedAt);
      const link = waitUntil(
        async () => ((await linked(primary, replicas)) ? true : undefined),
        LINK_TIMEOUT_MS,
        'both replicas linked to the restarted primary',
        POLL_MS,
      ).then(() => performance.now() - killedAt);
      const [b, h, l] = await withTimeout(
        Promise.all([peerBound, httpBound, link]),
        LINK_TIMEOUT_MS + START_TIMEOUT_MS,
        'the restart',
      );
      await writer;
      bound.push(b);
      http.push(h);
      relinked.push(l);
      if (/EADDRINUSE|address in use/.test(p.output())) busy++;
    }
    if (busy > 0) problems.push(`${busy} restarts reported EADDRINUSE`);

    const fresh: Row = {
      name: 'reference: fresh start, spawn -> peer port accepting (empty data dir, free ports)',
      value: percentile(freshMs, 50),
      unit: 'ms',
      note: `p50 of 3; ${how}`,
    };
    const goal: Row = { name: 'goal: serving its peers again after a SIGKILL', value: GOAL_MS, unit: 'ms' };
    const vsGoal = (row: Row): Row => ({ ...row, ratio: row.value / GOAL_MS, vs: goal.name });
    const rows: Row[] = [
      goal,
      fresh,
      vsGoal({
        name: 'kill -> peer port accepting, p50',
        value: percentile(bound, 50),
        unit: 'ms',
        note:
          `max ${percentile(bound, 100).toFixed(0)} ms; ${(percentile(bound, 50) - fresh.value).toFixed(0)} ms ` +
          `above a fresh start; ${timeWaits} TIME-WAIT sockets on the peer port over the ${KILLS} kills; ` +
          `EADDRINUSE: ${busy}`,
      }),
      vsGoal({
        name: 'kill -> HTTP port answering /health, p50',
        value: percentile(http, 50),
        unit: 'ms',
        note: `max ${percentile(http, 100).toFixed(0)} ms`,
      }),
      vsGoal({
        name: 'kill -> both replicas linked again, p50',
        value: percentile(relinked, 50),
        unit: 'ms',
        note: `max ${percentile(relinked, 100).toFixed(0)} ms; primary Connected to both, both masters Connected`,
      }),
    ];
    return [
      {
        title:
          `Restart after SIGKILL: a primary with 2 replicas streaming from it, killed ${KILLS} times and ` +
          `started again at once on the same ports (vrep serve, ${how}, WAL fsync everysec)`,
        rows,
      },
    ];
  } finally {
    await Promise.allSettled([p, ...others].map((r) => kill(r.proc)));
  }
}

await run(main);
