#!/usr/bin/env node
/**
 * The `vrep` command line: serve, status, force-sync, cluster up / restart,
 * info. Usage errors (unknown flag, bad value) exit 2, like a bad
 * configuration; a node that does not answer (or refuses) exits 1.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { runServe } from './serve-command.ts';
import { fetchStatus, renderStatus } from './status.ts';
import { callNode, DEFAULT_NODE_URL, NodeUnavailable, nodeUrl } from './node-client.ts';
import { DEFAULT_CHANGES_WINDOW, followChanges } from './changes.ts';
import { clusterRestart, clusterUp, MAX_CLUSTER_NODES, PEER_PORT_OFFSET } from './cluster.ts';
import { nativeInfo } from '../native/info.ts';
import { ENV_SOURCES } from '../config/sources.ts';

function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max)
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got "${value}"`);
    return n;
  };
}

/** The package's version: package.json sits two levels up from src/cli/ and from dist/cli/. */
function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

/** Runs a command that talks to a node; a NodeUnavailable is its one-line message and exit 1. */
async function againstNode(command: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (err) {
    if (!(err instanceof NodeUnavailable)) throw err;
    process.stderr.write(`vrep ${command}: ${err.message}\n`);
    process.exitCode = 1;
  }
}

const program = new Command('vrep')
  .description('A replication node for vector data.')
  .version(packageVersion(), '-V, --version', 'print the version')
  .exitOverride()
  .showSuggestionAfterError();

program
  .command('serve')
  .description('start a node; settings: defaults < config file < environment < flags (docs/config.md)')
  .option('--config <file>', 'YAML config file (or VREP_CONFIG)')
  .option('--node-id <id>', 'this node id (default n1)')
  .option('--data-dir <dir>', 'where the node keeps its data (default ./data)')
  .option('--http <host:port>', 'HTTP listen address (default 127.0.0.1:15002)')
  .option('--bind <host:port>', 'peer listener address (default 127.0.0.1:7001; not used standalone)')
  .option('--role <role>', 'standalone | primary | replica | auto | multi-master (default standalone)')
  .option('--primary <host:port>', "replica: the primary's peer address (its --bind)")
  .option('--peers <list>', 'comma-separated peer addresses (auto / multi-master: every other node)')
  .option(
    '--election-timeout-ms <ms>',
    'role auto: ms without a leader before a voter campaigns (default 1000)',
  )
  .option('--heartbeat-interval-ms <ms>', 'ms between heartbeats (role auto default: election timeout / 10)')
  .option('--fsync <policy>', 'WAL fsync policy: always | everysec | no (default everysec)')
  .option('--token <token>', 'bearer token required on every HTTP route but /health')
  .option('--max-body-bytes <n>', 'largest HTTP request body, in bytes (default 67108864)')
  .option('--log-level <level>', 'fatal | error | warn | info | debug | trace | silent (default info)')
  .option(
    '--insecure-no-auth',
    'accept peers from any address with no secret or TLS (default: loopback only)',
  )
  .addHelpText(
    'after',
    `\nEnvironment variables (overridden by flags): VREP_CONFIG, ${ENV_SOURCES.map((s) => s.name).join(', ')}.`,
  )
  .action(async (opts: Record<string, unknown>) => runServe(opts));

program
  .command('status')
  .description("print a node's replication status (GET /replication/status)")
  .option('--url <url>', 'the node', nodeUrl, DEFAULT_NODE_URL)
  .option('--token <token>', 'bearer token, when the node requires one')
  .option('--json', 'print the raw JSON')
  .action(async (opts: { url: string; token?: string; json?: boolean }) =>
    againstNode('status', async () => {
      const status = await fetchStatus({
        url: opts.url,
        ...(opts.token !== undefined ? { token: opts.token } : {}),
      });
      const text = opts.json === true ? JSON.stringify(status, null, 2) : renderStatus(status).join('\n');
      process.stdout.write(`${text}\n`);
    }),
  );

program
  .command('changes')
  .description("follow a node's change stream (GET /changes, a WebSocket): one JSON line per event")
  .option(
    '--from <position>',
    'earliest | latest | TERM:LSN | TERM:LSN:INDEX (after that position)',
    'latest',
  )
  .option('--collections <list>', 'comma-separated collection names (default: all)')
  .option(
    '--ops <list>',
    'comma-separated: upsert, delete, create_collection, drop_collection (default: all)',
  )
  .option('--include-vectors', "print upserts' vectors")
  .option(
    '--group <name>',
    'read as a member of this consumer group: start after its committed position, commit what was printed',
  )
  .option('--partition-by <how>', 'with --group: id (default) or collection')
  .option('--limit <n>', 'exit after this many events', integer(1, Number.MAX_SAFE_INTEGER))
  .option('--window <n>', 'events credited at a time', integer(1, 10_000), DEFAULT_CHANGES_WINDOW)
  .option('--url <url>', 'the node', nodeUrl, DEFAULT_NODE_URL)
  .option('--token <token>', 'bearer token, when the node requires one')
  .action(
    async (opts: {
      from: string;
      collections?: string;
      ops?: string;
      includeVectors?: boolean;
      group?: string;
      partitionBy?: string;
      limit?: number;
      window: number;
      url: string;
      token?: string;
    }) => againstNode('changes', () => followChanges(opts)),
  );

program
  .command('force-sync')
  .description(
    "make a replica discard its data and take the primary's in full (POST /replication/force-sync)",
  )
  .requiredOption('--replica <id>', "the replica's node id")
  .option('--url <url>', 'the primary', nodeUrl, DEFAULT_NODE_URL)
  .option('--token <token>', 'bearer token, when the node requires one')
  .action(async (opts: { url: string; replica: string; token?: string }) =>
    againstNode('force-sync', async () => {
      await callNode({
        url: opts.url,
        path: '/replication/force-sync',
        method: 'POST',
        body: { replica: opts.replica },
        ...(opts.token !== undefined ? { token: opts.token } : {}),
      });
      process.stdout.write(
        `full sync requested for replica ${opts.replica}: the primary offers it a full sync on its link, and it takes the snapshot, discarding its own records\n`,
      );
    }),
  );

/** One POST/DELETE to a node's replication API, printing the answer's JSON. */
function replicationCommand(
  name: string,
  request: (opts: Record<string, string>) => { path: string; method: string; body?: unknown },
): (opts: Record<string, string>) => Promise<void> {
  return (opts) =>
    againstNode(name, async () => {
      const { body } = await callNode({
        url: opts['url'] as string,
        ...request(opts),
        timeoutMs: 90_000,
        ...(opts['token'] !== undefined ? { token: opts['token'] } : {}),
      });
      process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    });
}

program
  .command('transfer')
  .description('role auto: hand the primary role to a voter (POST /replication/transfer)')
  .requiredOption('--to <id>', "the voter's node id")
  .option('--url <url>', 'the primary', nodeUrl, DEFAULT_NODE_URL)
  .option('--token <token>', 'bearer token, when the node requires one')
  .action(
    replicationCommand('transfer', (o) => ({
      path: '/replication/transfer',
      method: 'POST',
      body: { to: o['to'] },
    })),
  );

const members = program.command('members').description('role auto: the cluster membership');
members
  .command('add-learner')
  .description('add a node as a learner: fed, not counted (POST /replication/learners)')
  .requiredOption('--address <host:port>', "the new node's peer address (its --bind)")
  .option('--url <url>', 'the primary', nodeUrl, DEFAULT_NODE_URL)
  .option('--token <token>', 'bearer token, when the node requires one')
  .action(
    replicationCommand('members add-learner', (o) => ({
      path: '/replication/learners',
      method: 'POST',
      body: { address: o['address'] },
    })),
  );
members
  .command('promote')
  .description('make a caught-up learner a voter (POST /replication/members/:id/promote)')
  .requiredOption('--id <id>', "the learner's node id")
  .option('--url <url>', 'the primary', nodeUrl, DEFAULT_NODE_URL)
  .option('--token <token>', 'bearer token, when the node requires one')
  .action(
    replicationCommand('members promote', (o) => ({
      path: `/replication/members/${encodeURIComponent(o['id'] as string)}/promote`,
      method: 'POST',
    })),
  );
members
  .command('remove')
  .description('remove a member (DELETE /replication/members/:id)')
  .requiredOption('--id <id>', "the member's node id")
  .option('--url <url>', 'the primary', nodeUrl, DEFAULT_NODE_URL)
  .option('--token <token>', 'bearer token, when the node requires one')
  .action(
    replicationCommand('members remove', (o) => ({
      path: `/replication/members/${encodeURIComponent(o['id'] as string)}`,
      method: 'DELETE',
    })),
  );

const cluster = program.command('cluster').description('a local demo cluster');
cluster
  .command('up')
  .description('start N nodes on loopback (n1 primary, the rest replicas); Ctrl-C stops them')
  .option('--nodes <n>', 'how many nodes', integer(1, MAX_CLUSTER_NODES), 3)
  .option(
    '--base-port <port>',
    `HTTP port of n1 (the others follow; peer ports start ${PEER_PORT_OFFSET} higher)`,
    integer(1, 65535 - PEER_PORT_OFFSET - MAX_CLUSTER_NODES),
    15002,
  )
  .option('--data-dir <dir>', 'parent of the nodes data dirs', './cluster-data')
  .addOption(
    new Option('--fsync <policy>', 'WAL fsync policy')
      .choices(['always', 'everysec', 'no'])
      .default('everysec'),
  )
  .action(async (opts: { nodes: number; basePort: number; dataDir: string; fsync: string }) => {
    process.exitCode = await clusterUp(opts);
  });
cluster
  .command('restart')
  .description('restart one node of the cluster that `cluster up` runs on this data dir')
  .argument('<id>', 'the node (n1, n2, ...)')
  .option('--data-dir <dir>', 'the data dir given to cluster up', './cluster-data')
  .option('--kill', 'stop it with SIGKILL (a crash) instead of SIGTERM')
  .action(async (id: string, opts: { dataDir: string; kill?: boolean }) => {
    process.exitCode = await clusterRestart({ id, dataDir: opts.dataDir, kill: opts.kill === true });
  });

program
  .command('info')
  .description('print what the native core picked on this machine')
  .action(() => {
    process.stdout.write(`${JSON.stringify(nativeInfo(), null, 2)}\n`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // Commander already printed the message (or the help).
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  process.stderr.write(`vrep: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
