/**
 * Durable small-file replacement: write a temp file, fsync it, rename it over
 * the target, fsync the directory. After `writeFileAtomic` resolves, a crash
 * leaves either the old or the new content, never a mix, and the new content
 * survives power loss (given honest disks).
 */
import { open, rename } from 'node:fs/promises';
import path from 'node:path';

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

let tmpSeq = 0;

export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  // Unique per call: two replacements of one file in flight must not share a temp file.
  const tmp = `${file}.tmp-${process.pid}-${tmpSeq++}`;
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
  await fsyncDir(path.dirname(file));
}
