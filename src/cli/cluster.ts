/**
 * `vrep cluster up`: a local demo cluster on loopback. Each node is its own
 * `vrep serve` process (this same CLI, so it works from dist/ and through
 * tsx) with its own data dir: n1 the primary, the others its replicas. Logs
 * are streamed prefixed by node id; Ctrl-C or SIGTERM stops every node
 * (SIGTERM, then SIGKILL after 10 s).
 *
 * A node that exits before it serves fails the whole cluster: the others are
 * stopped and the command exits 1 naming the node and its reason.
 */
import { spawn, type ChildProcess } from 'node:child_process';
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
      ...(role === 'replica' ? ['--primary', primaryBind] : []),
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
  return new Promise<number>((resolve) => {
    let phase: 'starting' | 'running' | 'stopping' = 'starting';
    let exitCode = 0;
    let killTimer: NodeJS.Timeout | undefined;
    const members: Member[] = [];

    const live = (): Member[] => members.filter((m) => m.exit === null);
    // Every node must serve within the limit; stopAll is defined below (called later).
    const readyTimer = setTimeout(() => {
      if (phase !== 'starting') return;
      const waiting = members.filter((m) => !m.ready).map((m) => m.plan.id);
      err(`vrep cluster: ${waiting.join(', ')} not serving within ${opts.readyTimeoutMs ?? 60_000} ms`);
      stopAll(1);
    }, opts.readyTimeoutMs ?? 60_000);
    const finishIfDone = (): void => {
      if (live().length > 0) return;
      clearTimeout(readyTimer);
      clearTimeout(killTimer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(exitCode);
    };
    const stopAll = (code: number): void => {
      if (phase === 'stopping') return;
      phase = 'stopping';
      exitCode = code;
      for (const m of live()) m.child.kill('SIGTERM');
      killTimer = setTimeout(() => {
        for (const m of live()) {
          err(`vrep cluster: ${m.plan.id} did not stop within ${opts.killAfterMs ?? 10_000} ms; killing it`);
          m.child.kill('SIGKILL');
        }
      }, opts.killAfterMs ?? 10_000);
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

    const onReady = (): void => {
      if (phase !== 'starting' || members.some((m) => !m.ready)) return;
      phase = 'running';
      clearTimeout(readyTimer);
      const n1 = plan[0] as ClusterNodePlan;
      const reader = plan[1] ?? n1;
      out(`vrep cluster: ${plan.length} node(s) up; Ctrl-C stops them all`);
      for (const p of plan) {
        out(
          `  ${p.id.padEnd(width)}  ${p.role.padEnd(7)}  http://${p.httpAddress}  peer ${p.bindAddress}  data ${p.dataDir}`,
        );
      }
      out('try this:');
      out(
        `  curl -s -X PUT ${n1.httpAddress}/collections/docs -H 'content-type: application/json' -d '{"dimension":3,"metric":"cosine"}'`,
      );
      out(
        `  curl -s -X POST ${n1.httpAddress}/collections/docs/points -H 'content-type: application/json' -d '{"points":[{"id":"a","vector":[1,0,0]}]}'`,
      );
      out(`  curl -s ${reader.httpAddress}/collections/docs/points/a    # read back from ${reader.id}`);
    };

    for (const p of plan) {
      const child = spawn(self.file, [...self.args, ...p.args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: process.env,
      });
      const m: Member = { plan: p, child, ready: false, exit: null, stderrTail: [], lastError: null };
      members.push(m);
      const prefix = `[${p.id.padEnd(width)}] `;
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        out(prefix + formatLogLine(line));
        if (/"level":(50|60)/.test(line)) m.lastError = formatLogLine(line);
        if (!m.ready && isServingLine(line)) {
          m.ready = true;
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
        stopAll(1);
      });
      // 'close' (not 'exit'): the output pipes are drained, so the reason is complete.
      child.on('close', (code, signal) => {
        m.exit = { code, signal };
        const how = code !== null ? `exit code ${code}` : `signal ${signal ?? '?'}`;
        if (phase === 'starting') {
          err(`vrep cluster: node ${p.id} failed to start (${how}): ${reasonOf(m)}`);
          stopAll(1);
        } else if (phase === 'running') {
          err(`vrep cluster: node ${p.id} exited (${how})${code === 0 ? '' : `: ${reasonOf(m)}`}`);
          if (live().length === 0) exitCode = 1;
        }
        finishIfDone();
      });
    }
  });
}
