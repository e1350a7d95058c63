/** What the native core picked on this machine (for /health and `vrep info`). */
import { distanceCapabilities } from './distance.ts';
import { crc32cImplementation } from './crc32c.ts';

export interface NativeInfo {
  distance: { selected: string; available: string[]; forcedScalar: boolean };
  crc32c: string;
}

export function nativeInfo(): NativeInfo {
  const d = distanceCapabilities();
  return {
    distance: { selected: d.selected, available: d.available, forcedScalar: d.forcedScalar },
    crc32c: crc32cImplementation(),
  };
}
