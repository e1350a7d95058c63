/** vrep: a replication node for vector data. */
export { VrepError, ErrorCodes, isVrepError } from './errors.ts';
export type { ErrorCode } from './errors.ts';
export * from './native/index.ts';
