#!/usr/bin/env node
// Builds the addon with node-gyp. Points node-gyp at the headers of the
// running Node when they are installed next to it (as on Debian/NodeSource
// and official tarballs), so a build never tries to download headers: the
// build machines have no internet beyond the package registries.
// Usage: node scripts/build-native.mjs [dir]   (dir defaults to the package root)
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const dir = path.resolve(process.argv[2] ?? '.');
const require = createRequire(path.join(dir, 'package.json'));
const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');

const args = [nodeGyp, 'rebuild', '-j', process.env.VREP_BUILD_JOBS ?? '2'];
const prefix = path.resolve(path.dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
}
const run = spawnSync(process.execPath, args, { cwd: dir, stdio: 'inherit' });
process.exit(run.status ?? 1);
