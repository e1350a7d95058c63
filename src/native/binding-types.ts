/**
 * The raw shape of build/Release/vrep.node. Each native module declares its
 * own part next to its typed wrapper; only the wrappers call these.
 */
import type { RingBinding } from './ring-log.ts';
import type { DistanceBinding } from './distance.ts';
import type { BatchCodecBinding } from './batch-codec.ts';
import type { Crc32cBinding } from './crc32c.ts';
import type { JsonPointsBinding } from './json-points.ts';
import type { JsonObjectsBinding } from './json-objects.ts';
import type { PrefaultBinding } from './prefault.ts';
import type { IdIndexBinding } from './id-index.ts';
import type { ExternalMemoryBinding } from './external-memory.ts';
import type { CopyFloatsBinding } from './copy-floats.ts';

export interface NativeBinding
  extends
    RingBinding,
    DistanceBinding,
    BatchCodecBinding,
    Crc32cBinding,
    JsonPointsBinding,
    JsonObjectsBinding,
    PrefaultBinding,
    IdIndexBinding,
    ExternalMemoryBinding,
    CopyFloatsBinding {
  /** Registers the class native code uses for every error it throws. */
  setErrorClass(ctor: new (code: string, message: string) => Error): void;
}
