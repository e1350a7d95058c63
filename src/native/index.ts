/** Typed wrappers over the native addon: the only API the rest of vrep uses. */
export * from './ring-log.ts';
export * from './distance.ts';
export * from './batch-codec.ts';
export * from './crc32c.ts';
export * from './json-points.ts';
export * from './json-objects.ts';
export * from './prefault.ts';
export * from './id-index.ts';
export * from './external-memory.ts';
export * from './copy-floats.ts';
