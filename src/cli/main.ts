#!/usr/bin/env node
/** The `vrep` command line. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { pino } from 'pino';
import { serve } from '../server/serve.ts';
import { nativeInfo } from '../native/info.ts';

function hostPort(value: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new InvalidArgumentError(`expected HOST:PORT (port 0-65535), got "${value}"`);
  return { host: m[1] as string, port };
}

function byteCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1 || n > 0xffff_ffff - 32) {
    throw new InvalidArgumentError(`expected a byte count from 1 to ${0xffff_ffff - 32}, got "${value}"`);
  }
  return n;
}

const program = new Command('vrep').description('A replication node for vector data.');

program
  .command('serve')
  .description('start a node (this build: standalone store, HTTP data API)')
  .option('--node-id <id>', 'this node id', 'n1')
  .option('--data-dir <dir>', 'where the node keeps its data', './data')
  .addOption(
    new Option('--fsync <policy>', 'WAL fsync policy')
      .choices(['always', 'everysec', 'no'])
      .default('everysec'),
  )
  .option('--http <host:port>', 'HTTP listen address', hostPort, { host: '127.0.0.1', port: 15002 })
  .option('--token <token>', 'bearer token required on every HTTP route but /health')
  .option('--max-body-bytes <n>', 'largest HTTP request body, in bytes', byteCount, 64 * 1024 * 1024)
  .addOption(
    new Option('--role <role>', 'node role')
      .choices(['standalone', 'primary', 'replica', 'auto', 'multi-master'])
      .default('standalone'),
  )
  .action(
    async (opts: {
      nodeId: string;
      dataDir: string;
      fsync: 'always' | 'everysec' | 'no';
      http: { host: string; port: number };
      role: string;
      token?: string;
      maxBodyBytes: number;
    }) => {
      const logger = pino({ name: 'vrep' });
      if (opts.role !== 'standalone') {
        // Refuse rather than pretend: replication is not in this build yet.
        logger.error(
          { role: opts.role },
          `role "${opts.role}" is not available in this build yet; use standalone`,
        );
        process.exitCode = 2;
        return;
      }
      const server = await serve({
        nodeId: opts.nodeId,
        dataDir: opts.dataDir,
        fsync: opts.fsync,
        httpHost: opts.http.host,
        httpPort: opts.http.port,
        token: opts.token ?? null,
        maxBodyBytes: opts.maxBodyBytes,
        logger,
      });
      const shutdown = (signal: string): void => {
        logger.info({ signal }, 'shutting down');
        server.stop().then(
          () => logger.info('stopped'),
          (err: unknown) => {
            logger.error({ err }, 'shutdown failed');
            process.exitCode = 1;
          },
        );
      };
      process.once('SIGINT', shutdown);
      process.once('SIGTERM', shutdown);
    },
  );

program
  .command('info')
  .description('print what the native core picked on this machine')
  .action(() => {
    process.stdout.write(`${JSON.stringify(nativeInfo(), null, 2)}\n`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`vrep: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
