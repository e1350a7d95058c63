/**
 * Invariant checks of the core (TigerBeetle style): a broken invariant is a
 * bug, never an input error, so it throws an AssertionError naming it.
 */
export class InvariantError extends Error {
  override name = 'InvariantError';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}
