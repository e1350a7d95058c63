/**
 * Every error vrep raises on purpose is a VrepError with a stable string code,
 * so callers branch on `err.code`, never on message text. Native errors are
 * built as VrepError by the addon itself (see src/native/addon.ts).
 */
export const ErrorCodes = {
  /** An argument has the wrong type, length or value. */
  InvalidArg: 'ERR_INVALID_ARG',
  /** The LSN asked for was overwritten in the circular log. */
  LsnEvicted: 'ERR_LSN_EVICTED',
  /** The LSN asked for has not been appended yet. */
  LsnNotYetWritten: 'ERR_LSN_NOT_YET_WRITTEN',
  /** A record is larger than the log can ever hold. */
  RecordTooLarge: 'ERR_RECORD_TOO_LARGE',
  /** A caller-owned output buffer cannot hold the result. */
  BufferTooSmall: 'ERR_BUFFER_TOO_SMALL',
  /** A frame failed its checks (magic, version, lengths, checksum, zstd). */
  CorruptFrame: 'ERR_CORRUPT_FRAME',
  /** A frame declares more bytes than the caller allows. */
  FrameTooLarge: 'ERR_FRAME_TOO_LARGE',
  /** zstd refused to compress (bad level, out of memory). */
  Compression: 'ERR_COMPRESSION',
  /** The JSON text is not valid JSON. */
  JsonSyntax: 'ERR_JSON_SYNTAX',
  /** A point of a JSON batch is wrong (names the point and the field). */
  JsonPoint: 'ERR_JSON_POINT',
  /** The operation is not available on this CPU or build. */
  Unsupported: 'ERR_UNSUPPORTED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class VrepError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'VrepError';
    this.code = code;
  }
}

/** True when `err` is a VrepError, optionally with the given code. */
export function isVrepError(err: unknown, code?: ErrorCode): err is VrepError {
  return err instanceof VrepError && (code === undefined || err.code === code);
}
