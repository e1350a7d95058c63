/**
 * The packed package installs and works in a fresh app, as README.md
 * ("Installing into an app") tells a user: `npm pack`, then
 * `npm install ./vrep-0.1.0.tgz` in a new app whose package.json has the
 * README's `allowScripts` (vrep's key in the tarball form the README gives),
 * with `--strict-allow-scripts` so a missing entry fails instead of passing
 * by npm's current leniency. The addon is compiled inside the installed
 * package; then a plain .mjs run by plain node imports `vrep`, runs a primary
 * and a replica on 127.0.0.1, writes, waits for the replica, searches, and
 * stops both. It takes a few minutes (the addon build); the registry is used
 * only for what the npm cache lacks (`--prefer-offline`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

const MINUTE_MS = 60_000;

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): SpawnSyncReturns<string> {
  const result = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });
  const tail = `${result.stdout ?? ''}\n${result.stderr ?? ''}`.slice(-6000);
  assert.equal(result.error, undefined, `${cmd} ${args.join(' ')}: ${String(result.error)}\n${tail}`);
  assert.equal(result.status, 0, `${cmd} ${args.join(' ')} exited ${result.status}:\n${tail}`);
  return result;
}

/** The app's allowScripts as README.md gives them (the JSON block that has "allowScripts"). */
function readmeAllowScripts(): Record<string, boolean> {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  for (const m of readme.matchAll(/```json\n([\s\S]*?)```/g)) {
    const block = JSON.parse(m[1] as string) as { allowScripts?: Record<string, boolean> };
    if (block.allowScripts) return block.allowScripts;
  }
  throw new Error('README.md has no ```json block with "allowScripts"');
}

/** Every source map's sources exist in the installed package (maps that point at unshipped files mislead). */
function missingMapSources(packageDir: string): string[] {
  const missing: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (file.endsWith('.map')) {
        const map = JSON.parse(readFileSync(file, 'utf8')) as { sources: string[]; sourceRoot?: string };
        for (const source of map.sources) {
          if (!existsSync(path.resolve(path.dirname(file), map.sourceRoot ?? '', source))) {
            missing.push(`${path.relative(packageDir, file)} -> ${source}`);
          }
        }
      }
    }
  };
  walk(path.join(packageDir, 'dist'));
  return missing;
}

const appScript = `// Plain node, plain ESM: what a user of the installed package writes.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ReplicationNode, ConsistencyLevel } from 'vrep';

const deadline = setTimeout(() => {
  console.error('app: timed out');
  process.exit(2);
}, 60_000);
const root = mkdtempSync(path.join(os.tmpdir(), 'vrep-app-data-'));
const primary = await ReplicationNode.start({
  nodeId: 'p',
  dataDir: path.join(root, 'p'),
  replication: { role: 'primary', bindAddress: '127.0.0.1:0' },
});
const replica = await ReplicationNode.start({
  nodeId: 'r',
  dataDir: path.join(root, 'r'),
  replication: { role: 'replica', bindAddress: '127.0.0.1:0', masterAddress: '127.0.0.1:' + primary.peerPort },
});
try {
  await primary.createCollection('docs', { dimension: 3, metric: 'cosine' });
  const written = await primary.write(
    'docs',
    [
      { id: 'a', vector: [0.1, 0.2, 0.3], payload: { lang: 'en' } },
      { id: 'b', vector: [0.3, 0.2, 0.1], payload: { lang: 'fr' } },
    ],
    { consistency: ConsistencyLevel.One },
  );
  // The replica applies the primary's log in order: at its LSN it holds the write.
  while (replica.lastLsn < written.lsn) await new Promise((r) => setTimeout(r, 50));
  const got = await replica.get('docs', 'b');
  const hits = await replica.search('docs', [0.1, 0.2, 0.25], { k: 2, filter: { lang: 'en' } });
  console.log(JSON.stringify({ lsn: written.lsn, replicaLsn: replica.lastLsn, got: got && got.payload, hits }));
} finally {
  await replica.stop();
  await primary.stop();
  rmSync(root, { recursive: true, force: true });
  clearTimeout(deadline);
}
`;

test(
  'the packed tarball installs into a fresh app, builds its addon there and replicates',
  { timeout: 20 * MINUTE_MS },
  (t) => {
    const work = tempDir(t, 'vrep-package-');
    const packDir = path.join(work, 'pack');
    const appDir = path.join(work, 'app');
    run('mkdir', ['-p', packDir, appDir], work, MINUTE_MS);

    // npm pack runs prepare (tsc) and packs what package.json's "files" lists.
    const packed = run('npm', ['pack', '--pack-destination', packDir, '--json'], repoRoot, 5 * MINUTE_MS);
    // Lifecycle output (tsc) may come first; the JSON report is the end of stdout.
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.lastIndexOf('\n[') + 1)) as {
      filename: string;
      files: { path: string }[];
    }[];
    assert.ok(info, 'npm pack --json describes the tarball');
    const shipped = new Set(info.files.map((f) => f.path));
    for (const file of ['package.json', 'binding.gyp', 'scripts/build-native.mjs', 'dist/index.js']) {
      assert.ok(shipped.has(file), `the tarball holds ${file}`);
    }
    const tarball = path.join(packDir, info.filename);

    // README: from a tarball, npm knows vrep by its source, "file:<absolute path>".
    const allowScripts = readmeAllowScripts();
    assert.equal(allowScripts['vrep'], true, 'README allows vrep');
    const appPackage = {
      name: 'vrep-package-test-app',
      private: true,
      type: 'module',
      allowScripts: Object.fromEntries(
        Object.entries(allowScripts).map(([name, allowed]) => [
          name === 'vrep' ? `file:${tarball}` : name,
          allowed,
        ]),
      ),
    };
    writeFileSync(path.join(appDir, 'package.json'), `${JSON.stringify(appPackage, null, 2)}\n`);
    run(
      'npm',
      ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund', '--strict-allow-scripts'],
      appDir,
      15 * MINUTE_MS,
    );
    const installed = path.join(appDir, 'node_modules', 'vrep');
    assert.ok(existsSync(path.join(installed, 'build', 'Release', 'vrep.node')), 'the addon was built');
    assert.deepEqual(missingMapSources(installed), [], 'every source map points at a shipped file');

    writeFileSync(path.join(appDir, 'app.mjs'), appScript);
    const app = run(process.execPath, ['app.mjs'], appDir, 2 * MINUTE_MS);
    const result = JSON.parse(app.stdout.trim().split('\n').pop() as string) as {
      lsn: number;
      replicaLsn: number;
      got: unknown;
      hits: { id: string; payload: unknown }[];
    };
    assert.ok(result.replicaLsn >= result.lsn, 'the replica holds the write');
    assert.deepEqual(result.got, { lang: 'fr' });
    assert.deepEqual(
      result.hits.map((h) => [h.id, h.payload]),
      [['a', { lang: 'en' }]],
    );

    // The package's bin runs from the app too (it loads the addon).
    const cli = run(path.join(appDir, 'node_modules', '.bin', 'vrep'), ['info'], appDir, MINUTE_MS);
    assert.match(cli.stdout, /"distance"/);
  },
);
