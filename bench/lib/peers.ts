/**
 * The libraries the benches compare against live in their own package,
 * bench/peers/ (installed by `npm run bench:deps`), not in vrep's
 * devDependencies: usearch needs Node >= 22 and vrep supports Node >= 20, so
 * as a devDependency it warned EBADENGINE on every install.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const peersDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'peers');

/**
 * The part of usearch's API the benches call. usearch's own types come with
 * the package, which `npm run typecheck` cannot count on being installed.
 */
export interface Usearch {
  MetricKind: { L2sq: string; IP: string; Cos: string };
  exactSearch(
    dataset: Float32Array,
    queries: Float32Array,
    dimensions: number,
    count: number,
    metric: string,
    threads?: number,
  ): unknown;
}

/** usearch from bench/peers/node_modules; throws naming the command that installs it. */
export function loadUsearch(): Usearch {
  const require = createRequire(path.join(peersDir, 'package.json'));
  try {
    return require('usearch') as Usearch;
  } catch (err) {
    throw new Error('bench: usearch (a bench-only peer) is not installed: run `npm run bench:deps`', {
      cause: err,
    });
  }
}
