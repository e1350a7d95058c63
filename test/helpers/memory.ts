/** What tests of memory residency need: the process's resident memory, and whether the kernel can prefault. */
import { readFileSync } from 'node:fs';
import os from 'node:os';

/** This process's resident anonymous memory, in bytes (Linux). */
export function rssAnonBytes(): number {
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('RssAnon:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? NaN) * 1024;
}

/** MADV_POPULATE_WRITE came with Linux 5.14: there `prefaultAsync` must map the pages. */
export function kernelPrefaults(): boolean {
  if (process.platform !== 'linux') return false;
  const [major = 0, minor = 0] = os.release().split('.').map(Number);
  return major > 5 || (major === 5 && minor >= 14);
}
