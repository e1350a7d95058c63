/**
 * Child-process helpers for multi-process tests: every process started here
 * is killed when the test ends (even on failure), and every wait has a limit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Started {
  child: ChildProcess;
  /** All stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stdout line matching `re`; rejects after timeoutMs. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  /** Resolves with the exit code (or signal name); rejects after timeoutMs. */
  exited(timeoutMs: number): Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Runs the CLI from source (`src/cli/main.ts`) through tsx. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): Started {
  return startNode(['--import', 'tsx', path.join(repoRoot, 'src', 'cli', 'main.ts'), ...args], env);
}

export function startNode(args: string[], env: NodeJS.ProcessEnv = {}): Started {
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? signal ?? 'unknown');
    });
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitForLine(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(`no line matching ${re} within ${timeoutMs} ms; stdout:\n${out}\nstderr:\n${err}`),
          );
        }, timeoutMs);
        const check = (): void => {
          for (const line of out.split('\n')) {
            const m = re.exec(line);
            if (m) {
              cleanup();
              resolve(m);
              return;
            }
          }
        };
        const onExit = (): void => {
          cleanup();
          reject(new Error(`process exited before a line matching ${re}; stdout:\n${out}\nstderr:\n${err}`));
        };
        const cleanup = (): void => {
          clearTimeout(timer);
          child.stdout?.off('data', check);
          child.off('exit', onExit);
        };
        child.stdout?.on('data', check);
        child.once('exit', onExit);
        check();
      });
    },
    exited(timeoutMs) {
      return Promise.race([
        exit,
        new Promise<never>((_, reject) =>
          setTimeout(
            () => reject(new Error(`process did not exit within ${timeoutMs} ms`)),
            timeoutMs,
          ).unref(),
        ),
      ]);
    },
    kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/**
 * `vrep serve` arguments of node i (n1, n2, ...) of a role-auto cluster on
 * the given peer and HTTP addresses, with the fast timings multi-process
 * tests use (election 1 s, heartbeat 100 ms) and fsync always.
 */
export function autoServeArgs(
  i: number,
  peers: readonly string[],
  https: readonly string[],
  dir: string,
): string[] {
  return [
    'serve',
    '--node-id',
    `n${i + 1}`,
    '--data-dir',
    path.join(dir, `n${i + 1}`),
    '--http',
    https[i] as string,
    '--role',
    'auto',
    '--bind',
    peers[i] as string,
    '--peers',
    peers.filter((_, j) => j !== i).join(','),
    '--election-timeout-ms',
    '1000',
    '--heartbeat-interval-ms',
    '100',
    '--fsync',
    'always',
  ];
}
