/**
 * `vrep serve`: resolves the configuration (file < env < flags), starts the
 * node and its HTTP API, and stops both on SIGTERM/SIGINT.
 *
 * Exit codes: 0 after a clean shutdown; 2 for a bad configuration or a role
 * this build cannot run (nothing is started); 1 for any other start-up failure.
 *
 * A promise rejection nobody handled is a bug, but not one worth losing the
 * node (and every client's connection) over: it is logged, and the node goes
 * on. Uncaught exceptions still end the process (state may be half-changed).
 */
import { pino } from 'pino';
import { isVrepError } from '../errors.ts';
import { loadServeConfig } from '../config/load.ts';
import { FLAG_SOURCES, flagAttribute } from '../config/sources.ts';
import type { ServeConfig } from '../config/resolve.ts';
import { serve } from '../server/serve.ts';
import { tuneGcForVrep } from '../server/gc-tuning.ts';

/** Commander's options of `vrep serve` → flag values keyed by flag. */
export function serveFlags(opts: Readonly<Record<string, unknown>>): Record<string, string | undefined> {
  const flags: Record<string, string | undefined> = {};
  for (const name of ['--config', ...FLAG_SOURCES.map((s) => s.name)]) {
    const value = opts[flagAttribute(name)];
    if (typeof value === 'string') flags[name] = value;
    else if (value === true) flags[name] = 'true'; // a switch (--insecure-no-auth)
  }
  return flags;
}

/** After a clean stop, the longest the process may linger before it is made to exit. */
const EXIT_AFTER_STOP_MS = 2000;

function printLines(prefix: string, text: string): void {
  for (const line of text.split('\n')) process.stderr.write(`${prefix}${line}\n`);
}

export async function runServe(opts: Readonly<Record<string, unknown>>): Promise<void> {
  let config: ServeConfig;
  try {
    config = loadServeConfig(process.env, serveFlags(opts));
  } catch (err) {
    if (!isVrepError(err, 'ERR_CONFIG')) throw err;
    printLines('vrep serve: ', err.message);
    process.exitCode = 2;
    return;
  }
  const logger = pino({ name: 'vrep', level: config.logLevel });
  process.on('unhandledRejection', (reason) => {
    logger.error({ err: reason }, 'unhandled promise rejection (a bug; the node goes on)');
  });
  for (const warning of config.warnings) logger.warn(warning);
  const gcFlag = tuneGcForVrep();
  logger.debug({ v8Flag: gcFlag ?? 'the operator’s' }, 'V8 heap growing factor');
  let server: Awaited<ReturnType<typeof serve>>;
  try {
    server = await serve({ node: config.node, http: config.http, logger });
  } catch (err) {
    if (isVrepError(err, 'ERR_UNSUPPORTED') || isVrepError(err, 'ERR_CONFIG')) {
      printLines('vrep serve: ', err.message);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
  let stoppingSinceMs: number | undefined;
  const shutdown = (signal: string): void => {
    if (stoppingSinceMs !== undefined) {
      // Ctrl-C reaches a whole process group, so a parent's signal may follow at once:
      // only a later one means "stop now".
      if (Date.now() - stoppingSinceMs < 1000) return;
      logger.warn({ signal }, 'second signal: exiting without a clean shutdown');
      process.exit(1);
    }
    stoppingSinceMs = Date.now();
    logger.info({ signal }, 'shutting down');
    server
      .stop()
      .then(
        () => logger.info('stopped'),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exitCode = 1;
        },
      )
      .finally(() => {
        // Everything is closed; a handle someone forgot must not keep a stopped node around.
        setTimeout(() => {
          logger.warn('handles still open after the shutdown; exiting anyway');
          process.exit();
        }, EXIT_AFTER_STOP_MS).unref();
      });
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}
