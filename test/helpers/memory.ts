/** What tests of memory residency need: a process's resident memory, and whether the kernel can prefault. */
import { readFileSync } from 'node:fs';
import os from 'node:os';

/**
 * A memory field of /proc/<pid>/status in bytes (Linux): `VmRSS` (all
 * resident memory) or `RssAnon` (resident anonymous memory: heap and
 * array buffers, not mapped files).
 */
export function statusBytes(field: 'VmRSS' | 'RssAnon', pid: number | 'self' = 'self'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} for ${pid}`);
  return Number(m[1]) * 1024;
}

/** This process's resident anonymous memory, in bytes. */
export function rssAnonBytes(): number {
  return statusBytes('RssAnon');
}

/** MADV_POPULATE_WRITE came with Linux 5.14: there `prefaultAsync` must map the pages. */
export function kernelPrefaults(): boolean {
  if (process.platform !== 'linux') return false;
  const [major = 0, minor = 0] = os.release().split('.').map(Number);
  return major > 5 || (major === 5 && minor >= 14);
}
