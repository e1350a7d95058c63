/**
 * JSON request bodies outside the native points parser: one wording for a
 * syntax error whichever parser found it, and a nesting limit.
 *
 * Data routes parse points with simdjson, control routes (search,
 * configure ...) with JSON.parse; both say `body: not valid JSON (<why>)`,
 * the why being V8's words for the same mistake, so one typo reads the same
 * on every route. The nesting limit is simdjson's (1024 levels): deeper
 * values parse, but later recursion over them (JSON.stringify of an answer
 * or a message) overflows the stack.
 */
import { vrepError, type VrepError } from '../errors.ts';

/** Deepest nesting of objects and arrays accepted, as simdjson's default. */
export const MAX_JSON_DEPTH = 1024;

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** True when JSON text nests objects/arrays deeper than `limit` (brackets inside strings do not count). */
export function jsonNestedDeeperThan(bytes: Uint8Array, limit: number): boolean {
  // Each level takes two bytes at least: short texts (every usual payload) need no scan.
  if (bytes.length <= 2 * limit) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      if (++depth > limit) return true;
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) depth--;
  }
  return false;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function syntaxError(why: string): VrepError {
  return vrepError('ERR_JSON_SYNTAX', why);
}

const TOO_DEEP = `nested deeper than ${MAX_JSON_DEPTH} levels`;

/** Parses a JSON body; throws ERR_JSON_SYNTAX in the shared wording. */
export function parseJsonBody(bytes: Uint8Array): unknown {
  if (jsonNestedDeeperThan(bytes, MAX_JSON_DEPTH)) throw syntaxError(TOO_DEEP);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw syntaxError('not UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw syntaxError((err as Error).message);
  }
}

/**
 * The shared-wording error for a body the native parser refused as not
 * JSON (`nativeWhy` its own message): found again with JSON.parse so the
 * words match the control routes; this runs on the error path only. When
 * JSON.parse accepts what simdjson refused (a number out of its range), the
 * native words are kept.
 */
export function jsonSyntaxErrorOf(bytes: Uint8Array, nativeWhy: string): VrepError {
  try {
    parseJsonBody(bytes);
  } catch (err) {
    return err as VrepError;
  }
  return syntaxError(nativeWhy.replace(/^invalid JSON: /, ''));
}
