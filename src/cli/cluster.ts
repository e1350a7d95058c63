/**
 * `vrep cluster up`: a local demo cluster on loopback. Each node is its own
 * `vrep serve` process (this same CLI, so it works from dist/ and through
 * tsx) with its own data dir: n1 the primary, the others its replicas. Logs
 * are streamed prefixed by node id; Ctrl-C or SIGTERM stops every node
 * (SIGTERM, then SIGKILL after 10 s).
 *
 * A node that exits before it serves fails the whole cluster: the others are
 * stopped and the command exits 1 naming the node and its reason.
 *
 * `vrep cluster restart ID` restarts one node inside the running cluster
 * (its logs stay in this stream, Ctrl-C still stops it): once every node
 * serves, the cluster listens on a loopback control port named in
 * `<data-dir>/cluster.json`, which the restart command reads.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import path from 'node:path';

export interface ClusterOptions {
  nodes: number;
  basePort: number;
  dataDir: string;
  fsync: string;
  /** Longest wait for every node to serve. */
  readyTimeoutMs?: number;
  /** Between SIGTERM and SIGKILL when stopping. */
  killAfterMs?: number;
}

export interface ClusterNodePlan {
  id: string;
  role: 'primary' | 'replica';
  httpAddress: string;
  bindAddress: string;
  dataDir: string;
  /** `vrep serve` arguments. */
  args: string[];
}

/** Peer ports sit this far above the HTTP ports. */
export const PEER_PORT_OFFSET = 100;
export const MAX_CLUSTER_NODES = 16;
const HOST = '127.0.0.1';

/** Which node gets which ports, role and data dir. */
export function clusterPlan(opts: ClusterOptions): ClusterNodePlan[] {
  const plan: ClusterNodePlan[] = [];
  const primaryBind = `${HOST}:${opts.basePort + PEER_PORT_OFFSET}`;
  // The replicas are the primary's members from the first start: Quorum is a majority of all nodes.
  const replicaBinds = Array.from(
    { length: opts.nodes - 1 },
    (_, i) => `${HOST}:${opts.basePort + PEER_PORT_OFFSET + i + 1}`,
  );
  for (let i = 0; i < opts.nodes; i++) {
    const id = `n${i + 1}`;
    const role = i === 0 ? 'primary' : 'replica';
    const httpAddress = `${HOST}:${opts.basePort + i}`;
    const bindAddress = `${HOST}:${opts.basePort + PEER_PORT_OFFSET + i}`;
    const dataDir = path.join(opts.dataDir, id);
    const args = [
      'serve',
      '--node-id',
      id,
      '--role',
      role,
      '--http',
      httpAddress,
      '--bind',
      bindAddress,
      '--data-dir',
      dataDir,
      '--fsync',
      opts.fsync,
      // Readiness is read from the "serving" info line: keep it whatever VREP_LOG_LEVEL says.
      '--log-level',
      'info',
      ...(role === 'replica'
        ? ['--primary', primaryBind]
        : replicaBinds.length > 0
          ? ['--peers', replicaBinds.join(',')]
          : []),
    ];
    plan.push({ id, role, httpAddress, bindAddress, dataDir, args });
  }
  return plan;
}

const LEVELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/** A pino JSON line as `level msg {fields}`; any other line unchanged. */
export function formatLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    const o = JSON.parse(line) as Record<string, unknown>;
    if (typeof o['msg'] !== 'string' || typeof o['level'] !== 'number') return line;
    const { level, msg, ...rest } = o;
    for (const k of ['time', 'pid', 'hostname', 'name']) delete rest[k];
    const fields = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
    return `${(LEVELS[level as number] ?? String(level)).padEnd(5)} ${msg as string}${fields}`;
  } catch {
    return line;
  }
}

function isServingLine(line: string): boolean {
  if (!line.includes('vrep node serving')) return false;
  try {
    return (JSON.parse(line) as { msg?: unknown }).msg === 'vrep node serving';
  } catch {
    return false;
  }
}

/** The command that runs this CLI again: node, its flags (tsx loader included), the script. */
function selfCommand(): { file: string; args: string[] } {
  const script = process.argv[1];
  if (script === undefined) throw new Error('cannot tell which script runs this CLI');
  // An inspector port cannot be shared by several processes.
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--inspect'));
  return { file: process.execPath, args: [...execArgv, script] };
}

interface Member {
  plan: ClusterNodePlan;
  child: ChildProcess;
  ready: boolean;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  stderrTail: string[];
  lastError: string | null;
  /** Set while the operator restarts this node: its exit is expected. */
  restarting: boolean;
  /** Resolves once this process serves, rejects with its reason if it exits first. */
  served: Promise<void>;
}

/** The file in the cluster's data dir that tells `vrep cluster restart` where the running cluster listens. */
export const CLUSTER_FILE = 'cluster.json';

export interface ClusterFile {
  pid: number;
  /** The control endpoint, http://127.0.0.1:PORT. */
  control: string;
  nodes: { id: string; http: string; bind: string }[];
}

/** Runs the cluster until it is stopped or fails; resolves with the exit code. */
export function clusterUp(
  opts: ClusterOptions,
  out: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
  err: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<number> {
  const plan = clusterPlan(opts);
  const self = selfCommand();
  const width = Math.max(...plan.map((p) => p.id.length));
  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
  const killAfterMs = opts.killAfterMs ?? 10_000;
  return new Promise<number>((resolve) => {
    let phase: 'starting' | 'running' | 'stopping' = 'starting';
    let exitCode = 0;
    let killTimer: NodeJS.Timeout | undefined;
    let control: ControlServer | undefined;
    const members = new Map<string, Member>();

    const live = (): Member[] => [...members.values()].filter((m) => m.exit === null);
    // Every node must serve within the limit; stopAll is defined below (called later).
    const readyTimer = setTimeout(() => {
      if (phase !== 'starting') return;
      const waiting = [...members.values()].filter((m) => !m.ready).map((m) => m.plan.id);
      err(`vrep cluster: ${waiting.join(', ')} not serving within ${readyTimeoutMs} ms`);
      stopAll(1);
    }, readyTimeoutMs);
    const finishIfDone = (): void => {
      if (live().length > 0) return;
      clearTimeout(readyTimer);
      clearTimeout(killTimer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      const closing = control;
      control = undefined;
      if (closing) void closing.close().then(() => resolve(exitCode));
      else resolve(exitCode);
    };
    const stopAll = (code: number): void => {
      if (phase === 'stopping') return;
      phase = 'stopping';
      exitCode = code;
      for (const m of live()) m.child.kill('SIGTERM');
      killTimer = setTimeout(() => {
        for (const m of live()) {
          err(`vrep cluster: ${m.plan.id} did not stop within ${killAfterMs} ms; killing it`);
          m.child.kill('SIGKILL');
        }
      }, killAfterMs);
      finishIfDone();
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      if (phase === 'stopping') return;
      err(`vrep cluster: ${signal}: stopping ${live().length} node(s)`);
      stopAll(0);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    const reasonOf = (m: Member): string => {
      const lines = m.stderrTail.map((l) => l.replace(/^vrep( serve)?: /, '')).filter((l) => l.trim() !== '');
      return lines.length > 0 ? lines.join('; ') : (m.lastError ?? 'no message');
    };

    const printUp = (): void => {
      const n1 = plan[0] as ClusterNodePlan;
      const reader = plan[1] ?? n1;
      out(`vrep cluster: ${plan.length} node(s) up; Ctrl-C stops them all`);
      for (const p of plan) {
        out(
          `  ${p.id.padEnd(width)}  ${p.role.padEnd(7)}  http://${p.httpAddress}  peer ${p.bindAddress}  data ${p.dataDir}`,
        );
      }
      if (control) out(`restart one node: vrep cluster restart ${reader.id} --data-dir ${opts.dataDir}`);
      out('try this:');
      out(
        `  curl -s -X PUT ${n1.httpAddress}/collections/docs -H 'content-type: application/json' -d '{"dimension":3,"metric":"cosine"}'`,
      );
      out(
        `  curl -s -X POST ${n1.httpAddress}/collections/docs/points -H 'content-type: application/json' -d '{"points":[{"id":"a","vector":[1,0,0]}]}'`,
      );
      out(`  curl -s ${reader.httpAddress}/collections/docs/points/a    # read back from ${reader.id}`);
    };

    const onReady = (): void => {
      if (phase !== 'starting' || [...members.values()].some((m) => !m.ready)) return;
      phase = 'running';
      clearTimeout(readyTimer);
      // The control endpoint first, so the restart hint printed below already works.
      startControl(opts.dataDir, plan, restart).then(
        (c) => {
          if (phase === 'stopping') {
            void c.close();
            return;
          }
          control = c;
          printUp();
        },
        (e: unknown) => {
          err(`vrep cluster: no restart control (${(e as Error).message})`);
          if (phase === 'running') printUp();
        },
      );
    };

    const spawnMember = (p: ClusterNodePlan): Member => {
      const child = spawn(self.file, [...self.args, ...p.args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: process.env,
      });
      let servedResolve!: () => void;
      let servedReject!: (e: Error) => void;
      const served = new Promise<void>((res, rej) => {
        servedResolve = res;
        servedReject = rej;
      });
      served.catch(() => undefined); // looked at only by a restart
      const m: Member = {
        plan: p,
        child,
        ready: false,
        exit: null,
        stderrTail: [],
        lastError: null,
        restarting: false,
        served,
      };
      members.set(p.id, m);
      const prefix = `[${p.id.padEnd(width)}] `;
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        out(prefix + formatLogLine(line));
        if (/"level":(50|60)/.test(line)) m.lastError = formatLogLine(line);
        if (!m.ready && isServingLine(line)) {
          m.ready = true;
          servedResolve();
          onReady();
        }
      });
      createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
        err(prefix + line);
        m.stderrTail.push(line);
        if (m.stderrTail.length > 5) m.stderrTail.shift();
      });
      child.on('error', (e) => {
        err(`vrep cluster: cannot start ${p.id}: ${e.message}`);
        m.exit ??= { code: null, signal: null };
        servedReject(e);
        stopAll(1);
      });
      // 'close' (not 'exit'): the output pipes are drained, so the reason is complete.
      child.on('close', (code, signal) => {
        m.exit = { code, signal };
        const how = code !== null ? `exit code ${code}` : `signal ${signal ?? '?'}`;
        if (!m.ready) servedReject(new Error(`${p.id} exited before serving (${how}): ${reasonOf(m)}`));
        if (m.restarting && phase === 'running') return; // the restart goes on from here
        if (phase === 'starting') {
          err(`vrep cluster: node ${p.id} failed to start (${how}): ${reasonOf(m)}`);
          stopAll(1);
        } else if (phase === 'running') {
          err(`vrep cluster: node ${p.id} exited (${how})${code === 0 ? '' : `: ${reasonOf(m)}`}`);
          if (live().length === 0) exitCode = 1;
        }
        finishIfDone();
      });
      return m;
    };

    /** Stops one node (SIGTERM, or SIGKILL to play a crash) and starts it again on the same data dir. */
    const restart = async (id: string, signal: 'SIGTERM' | 'SIGKILL'): Promise<Member> => {
      const old = members.get(id);
      if (!old)
        throw new RestartError(404, `no node ${id} in this cluster (${[...members.keys()].join(', ')})`);
      if (phase !== 'running') throw new RestartError(409, `the cluster is ${phase}`);
      if (old.restarting) throw new RestartError(409, `${id} is already restarting`);
      old.restarting = true;
      out(`vrep cluster: restarting ${id} (${signal})`);
      if (old.exit === null) {
        const exited = new Promise<void>((res) => old.child.once('close', () => res()));
        old.child.kill(signal);
        const force = setTimeout(() => old.child.kill('SIGKILL'), killAfterMs);
        await exited;
        clearTimeout(force);
      }
      if (phase !== 'running') throw new RestartError(409, `the cluster is ${phase}`);
      const fresh = spawnMember(old.plan);
      const timeout = new Promise<never>((_, rej) =>
        setTimeout(
          () => rej(new Error(`${id} not serving within ${readyTimeoutMs} ms`)),
          readyTimeoutMs,
        ).unref(),
      );
      try {
        await Promise.race([fresh.served, timeout]);
      } catch (e) {
        throw new RestartError(500, (e as Error).message);
      }
      out(`vrep cluster: ${id} restarted (pid ${fresh.child.pid ?? '?'})`);
      return fresh;
    };

    for (const p of plan) spawnMember(p);
  });
}

/** A restart refused or failed, with the HTTP status the control endpoint answers. */
class RestartError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface ControlServer {
  close(): Promise<void>;
}

/**
 * The running cluster's control endpoint (loopback, a free port), named in
 * `<data-dir>/cluster.json`: `POST /nodes/{id}/restart?signal=SIGTERM|SIGKILL`
 * answers once the node serves again.
 */
async function startControl(
  dataDir: string,
  plan: readonly ClusterNodePlan[],
  restart: (id: string, signal: 'SIGTERM' | 'SIGKILL') => Promise<Member>,
): Promise<ControlServer> {
  const server = createServer((req, res) => {
    const answer = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify(body));
    };
    const url = new URL(req.url ?? '/', 'http://control');
    const m = /^\/nodes\/([^/]+)\/restart$/.exec(url.pathname);
    if (req.method !== 'POST' || !m) {
      answer(404, { error: { message: 'POST /nodes/{id}/restart' } });
      return;
    }
    const signal = url.searchParams.get('signal') === 'SIGKILL' ? 'SIGKILL' : 'SIGTERM';
    restart(decodeURIComponent(m[1] as string), signal).then(
      (member) => answer(200, { id: member.plan.id, pid: member.child.pid, http: member.plan.httpAddress }),
      (e: unknown) =>
        answer(e instanceof RestartError ? e.status : 500, { error: { message: (e as Error).message } }),
    );
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(0, HOST, () => res());
  });
  const file: ClusterFile = {
    pid: process.pid,
    control: `http://${HOST}:${(server.address() as AddressInfo).port}`,
    nodes: plan.map((p) => ({ id: p.id, http: p.httpAddress, bind: p.bindAddress })),
  };
  const filePath = path.join(dataDir, CLUSTER_FILE);
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(`${filePath}.tmp`, `${JSON.stringify(file, null, 2)}\n`);
  renameSync(`${filePath}.tmp`, filePath);
  return {
    close: () =>
      new Promise<void>((res) => {
        rmSync(filePath, { force: true });
        server.closeAllConnections();
        server.close(() => res());
      }),
  };
}

/**
 * `vrep cluster restart ID`: asks the cluster running on `dataDir` (found
 * through its cluster.json) to restart one node; resolves with the exit code.
 */
export async function clusterRestart(
  opts: { id: string; dataDir: string; kill?: boolean; timeoutMs?: number },
  out: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
  err: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<number> {
  const filePath = path.join(opts.dataDir, CLUSTER_FILE);
  const noCluster = `no cluster running with data dir ${opts.dataDir}`;
  let file: ClusterFile;
  try {
    file = JSON.parse(readFileSync(filePath, 'utf8')) as ClusterFile;
  } catch {
    err(
      `vrep cluster: ${noCluster} (no ${filePath}; start one with: vrep cluster up --data-dir ${opts.dataDir})`,
    );
    return 1;
  }
  const signal = opts.kill === true ? 'SIGKILL' : 'SIGTERM';
  let res: Response;
  try {
    res = await fetch(`${file.control}/nodes/${encodeURIComponent(opts.id)}/restart?signal=${signal}`, {
      method: 'POST',
      signal: AbortSignal.timeout(opts.timeoutMs ?? 120_000),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    err(`vrep cluster: ${noCluster} (${file.control} from ${filePath} does not answer: ${cause})`);
    return 1;
  }
  const body = (await res.json().catch(() => ({}))) as {
    error?: { message?: string };
    pid?: number;
    http?: string;
  };
  if (res.status !== 200) {
    err(`vrep cluster: cannot restart ${opts.id}: ${body.error?.message ?? `status ${res.status}`}`);
    return 1;
  }
  out(`vrep cluster: ${opts.id} restarted (pid ${body.pid ?? '?'}, http://${body.http ?? '?'})`);
  return 0;
}
