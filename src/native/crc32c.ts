// Placeholder: filled in by its module's work.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface Crc32cBinding {}
