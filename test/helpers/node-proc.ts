/**
 * Starts test/helpers/node-child.ts in its own process and calls it over
 * IPC. Every process is killed when the test process exits; every call has
 * a time limit.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from './process.ts';
import type { ReplicationNodeOptions } from '../../src/node/types.ts';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export class CallError extends Error {
  constructor(
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

export class NodeProc {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly exited: Promise<number | string>;
  output = '';

  private constructor(readonly child: ChildProcess) {
    live.add(child);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    child.on(
      'message',
      (m: { id: number; ok: boolean; result?: unknown; error?: { code?: string; message: string } }) => {
        const w = this.waiting.get(m.id);
        if (!w) return;
        this.waiting.delete(m.id);
        if (m.ok) w.resolve(m.result);
        else w.reject(new CallError(m.error?.code, m.error?.message ?? 'failed'));
      },
    );
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        live.delete(child);
        for (const w of this.waiting.values()) {
          w.reject(
            new Error(`node process exited (${code ?? signal}); output:\n${this.output.slice(-3000)}`),
          );
        }
        this.waiting.clear();
        resolve(code ?? signal ?? 'unknown');
      }),
    );
  }

  static async start(options: ReplicationNodeOptions, timeoutMs = 30_000): Promise<NodeProc> {
    const child = fork(path.join(repoRoot, 'test', 'helpers', 'node-child.ts'), [], {
      cwd: repoRoot,
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, VREP_CHILD_OPTIONS: JSON.stringify(options) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const proc = new NodeProc(child);
    const ready = new Promise<unknown>((resolve, reject) => proc.waiting.set(0, { resolve, reject }));
    await withTimeout(ready, timeoutMs, `node ${options.nodeId} start; output:\n${proc.output}`);
    return proc;
  }

  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = this.nextId++;
    const p = new Promise<unknown>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.child.send({ id, cmd, args });
    return withTimeout(p, timeoutMs, `${cmd} ${JSON.stringify(args)}`) as Promise<T>;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child.kill(signal);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await this.call('stop').catch(() => undefined);
    await withTimeout(this.exited, 10_000, 'exit').catch(() => this.kill());
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e as Error);
      },
    );
  });
}

/** Polls `check` until it returns a truthy value; throws with `what` after timeoutMs. */
export async function until<T>(
  check: () => Promise<T | false | null | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
