/**
 * The committed lock files match their package.json files, so `npm install`
 * on a fresh clone leaves them untouched (`npm ci` refuses a lock that
 * disagrees with package.json; a rewritten lock on every install hides real
 * changes). The root lock once recorded the uWebSockets.js alias as a range
 * (`^20.30.0-unofficial.0`) where package.json pins it exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

/** Every package.json with a committed lock next to it. */
const packageDirs = [repoRoot, path.join(repoRoot, 'bench', 'peers')];
const specFields = ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies'] as const;

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

test('each lock file records exactly the dependency specs of its package.json', () => {
  for (const dir of packageDirs) {
    const pkg = readJson(path.join(dir, 'package.json'));
    const lock = readJson(path.join(dir, 'package-lock.json'));
    const root = (lock['packages'] as Record<string, Record<string, unknown>>)[''] ?? {};
    for (const field of specFields) {
      assert.deepEqual(root[field], pkg[field], `${path.relative(repoRoot, dir) || '.'}: ${field}`);
    }
  }
});

test('npm install --package-lock-only, offline, leaves each lock file byte for byte', (t) => {
  for (const dir of packageDirs) {
    const work = tempDir(t, 'vrep-lock-');
    copyFileSync(path.join(dir, 'package.json'), path.join(work, 'package.json'));
    copyFileSync(path.join(dir, 'package-lock.json'), path.join(work, 'package-lock.json'));
    // Offline: a lock that matches package.json needs nothing from the registry.
    const run = spawnSync(
      'npm',
      ['install', '--package-lock-only', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'],
      { cwd: work, encoding: 'utf8', timeout: 120_000 },
    );
    const label = path.relative(repoRoot, dir) || '.';
    assert.equal(run.status, 0, `${label}: npm install failed:\n${run.stdout}\n${run.stderr}`);
    assert.equal(
      readFileSync(path.join(work, 'package-lock.json'), 'utf8'),
      readFileSync(path.join(dir, 'package-lock.json'), 'utf8'),
      `${label}: npm rewrote the lock file; commit the lock npm writes`,
    );
  }
});
