/**
 * The node's snapshots: which exist, which are pinned, and the one build
 * that may run at a time.
 *
 * - One builder at a time: a second request shares the running build's
 *   result (automatic snapshots, full syncs and the operator alike).
 * - Pins are taken synchronously: the newest snapshot is pinned in the same
 *   turn it is looked up, and a build's result is pinned the moment it is
 *   installed, before anything else can run; so is what the caller pins
 *   with it (the WAL after the snapshot, `alsoPin`). A pinned snapshot's
 *   files stay until its last pin is released, even when newer ones exist.
 * - A snapshot of what the newest one already holds (same LSN, same
 *   history: nothing applied since) is not built again: a rebuild would
 *   replace, under the same name, files a full sync may be reading, and a
 *   crash between its remove and its rename would leave no snapshot at all.
 * - Temporary directories are removed only at start-up (a running build
 *   owns its own; a failed build removes its own).
 * - The file format is snapshot.ts's.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from '../log/atomic-file.ts';
import {
  listSnapshots,
  manifestBytes,
  readManifest,
  SNAPSHOT_DIR,
  snapshotName,
  type SnapshotInfo,
  type SnapshotManifest,
} from './snapshot.ts';

/** A snapshot held for a full sync (or a rebuild): its files stay until released. */
export interface SnapshotPin {
  dir: string;
  manifest: SnapshotManifest;
  /** The manifest file exactly as stored (the receiver verifies and keeps it verbatim). */
  manifestText: string;
  release(): void;
}

interface Known {
  name: string;
  dir: string;
  lsn: number;
  /** Its manifest's history id (null: unknown, never reused). */
  historyId: string | null;
  /** Sum of its chunk file sizes (0: its manifest is unreadable). */
  bytes: number;
}

/** What a build would snapshot: the applied LSN and the history id of the epoch holding it. */
export interface SnapshotTarget {
  lsn: number;
  historyId: string;
}

function lsnOf(name: string): number {
  return Number(name.slice('snap-'.length));
}

export class Snapshots {
  private readonly root: string;
  /** Installed snapshots, oldest first. */
  private known: Known[] = [];
  private readonly pins = new Map<string, number>();
  private building: Promise<SnapshotInfo> | null = null;
  private builtCount = 0;

  private constructor(readonly dataDir: string) {
    this.root = path.join(dataDir, SNAPSHOT_DIR);
  }

  static async open(dataDir: string): Promise<Snapshots> {
    const s = new Snapshots(dataDir);
    await s.rescan();
    return s;
  }

  /** Reads the installed snapshots from disk again (after a full sync put one in place). */
  async rescan(): Promise<void> {
    const dirs = await listSnapshots(this.dataDir);
    const known: Known[] = [];
    for (const dir of dirs.reverse()) {
      const manifest = await readManifest(dir).catch(() => null);
      known.push({
        dir,
        name: path.basename(dir),
        lsn: lsnOf(path.basename(dir)),
        historyId: manifest?.historyId ?? null,
        bytes: manifest ? manifestBytes(manifest) : 0,
      });
    }
    this.known = known;
  }

  get newest(): { dir: string; lsn: number; bytes: number } | null {
    const k = this.known.at(-1);
    return k ? { dir: k.dir, lsn: k.lsn, bytes: k.bytes } : null;
  }

  /** Snapshots this process built and installed. */
  get built(): number {
    return this.builtCount;
  }

  /** True while a build runs. */
  get isBuilding(): boolean {
    return this.building !== null;
  }

  /**
   * Builds a snapshot, or joins the build already running (whose LSN may be
   * older than the caller hoped: it is the newest one there is). `build`
   * is called only when a new build starts, and writes the files; not at
   * all when the newest snapshot already is `target` (it is returned).
   * `pinned` runs synchronously the moment the result is in place, before
   * anything can prune it; `afterInstall` runs once it is in place (the WAL
   * before it goes).
   */
  take(
    target: SnapshotTarget,
    build: () => Promise<SnapshotInfo>,
    afterInstall: (info: SnapshotInfo) => Promise<void>,
    pinned?: (name: string) => void,
  ): Promise<SnapshotInfo> {
    if (this.building) return this.building;
    const newest = this.known.at(-1);
    const same = newest !== undefined && newest.lsn === target.lsn && newest.historyId === target.historyId;
    let run: Promise<SnapshotInfo>;
    if (same) {
      pinned?.(newest.name);
      run = (async () => {
        const manifest = await readManifest(newest.dir);
        return { dir: newest.dir, manifest, bytes: manifestBytes(manifest) };
      })();
    } else {
      run = (async () => {
        const info = await build();
        this.builtCount++;
        this.installed(info.dir, info.manifest);
        pinned?.(path.basename(info.dir));
        await afterInstall(info);
        return info;
      })();
    }
    this.building = run.finally(() => {
      this.building = null;
    });
    return this.building;
  }

  /** A snapshot directory was put in place (by a build, or by a full sync). */
  installed(dir: string, manifest: SnapshotManifest): void {
    const name = path.basename(dir);
    const k = this.known.find((x) => x.name === name);
    const bytes = manifestBytes(manifest);
    if (k) {
      k.historyId = manifest.historyId;
      k.bytes = bytes;
    } else {
      this.known.push({ dir, name, lsn: lsnOf(name), historyId: manifest.historyId, bytes });
      this.known.sort((a, b) => a.lsn - b.lsn);
    }
    this.prune();
  }

  /**
   * Pins the newest snapshot (building one if there is none, or if `fresh`)
   * and reads its manifest. The pin, and `alsoPin(lsn)` (what the caller
   * holds with it: the WAL after it), are taken before any await, or in the
   * build's own continuation for a snapshot being built.
   */
  async pinNewest(
    opts: { fresh?: boolean },
    target: () => SnapshotTarget,
    build: () => Promise<SnapshotInfo>,
    alsoPin: (lsn: number) => () => void,
  ): Promise<SnapshotPin> {
    let name: string;
    let releaseAlso: () => void = () => {};
    const hold = (n: string): void => {
      this.pin(n);
      releaseAlso = alsoPin(lsnOf(n));
    };
    const newest = this.known.at(-1);
    if (newest !== undefined && opts.fresh !== true) {
      name = newest.name;
      hold(name);
    } else if (this.building) {
      // Join it; its result is pinned in the continuation that sees it settle.
      const info = await this.building.then((i) => {
        hold(path.basename(i.dir));
        return i;
      });
      name = path.basename(info.dir);
    } else {
      const info = await this.take(target(), build, async () => {}, hold);
      name = path.basename(info.dir);
    }
    const dir = path.join(this.root, name);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      releaseAlso();
      this.unpin(name);
    };
    try {
      const manifestText = await readFile(path.join(dir, 'manifest.json'), 'utf8');
      const manifest = await readManifest(dir);
      return { dir, manifest, manifestText, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  private pin(name: string): void {
    this.pins.set(name, (this.pins.get(name) ?? 0) + 1);
  }

  private unpin(name: string): void {
    const n = (this.pins.get(name) ?? 1) - 1;
    if (n > 0) this.pins.set(name, n);
    else {
      this.pins.delete(name);
      this.prune();
    }
  }

  /** How many pins a snapshot has (tests). */
  pinCount(name: string): number {
    return this.pins.get(name) ?? 0;
  }

  /** Removes every snapshot older than the newest that nobody pins. */
  private prune(): void {
    const newest = this.known.at(-1);
    if (!newest) return;
    const keep: Known[] = [];
    for (const k of this.known) {
      if (k === newest || (this.pins.get(k.name) ?? 0) > 0) keep.push(k);
      else rm(k.dir, { recursive: true, force: true }).catch(() => undefined);
    }
    this.known = keep;
  }

  /** The newest snapshot at or below `lsn` (for a rebuild), or null. */
  atOrBelow(lsn: number): { dir: string; lsn: number } | null {
    for (let i = this.known.length - 1; i >= 0; i--) {
      const k = this.known[i] as Known;
      if (k.lsn <= lsn) return { dir: k.dir, lsn: k.lsn };
    }
    return null;
  }

  /**
   * Removes every snapshot above `lsn`, pinned or not, once a running build
   * has settled (it may install one above `lsn`), and fsyncs the directory
   * before it resolves. For a log cut at `lsn`: the records such a snapshot
   * holds are no longer the log's. Returns the removed snapshots' names.
   */
  async removeAbove(lsn: number): Promise<string[]> {
    await this.settle();
    const above = this.known.filter((k) => k.lsn > lsn);
    if (above.length === 0) return [];
    this.known = this.known.filter((k) => k.lsn <= lsn);
    for (const k of above) await rm(k.dir, { recursive: true, force: true });
    await fsyncDir(this.root);
    return above.map((k) => k.name);
  }

  /** Waits for a running build (closing, or before removeAbove). */
  async settle(): Promise<void> {
    if (this.building) await this.building.catch(() => undefined);
  }

  static nameOf(lsn: number): string {
    return snapshotName(lsn);
  }
}
