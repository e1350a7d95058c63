/**
 * How the CLI talks to a running node: one JSON request with an optional
 * bearer token and a time limit, every failure a NodeUnavailable whose
 * message says what happened (no answer, an error answer, not JSON).
 */
import { InvalidArgumentError } from 'commander';

/** Thrown when the node does not answer, or answers an error or something that is not JSON. */
export class NodeUnavailable extends Error {}

export const DEFAULT_NODE_URL = 'http://127.0.0.1:15002';

/** Commander parser of `--url`: an http(s) URL, or a usage error (exit 2) saying so. */
export function nodeUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`not a valid URL (expected e.g. ${DEFAULT_NODE_URL})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new InvalidArgumentError(`expected an http:// or https:// URL, got ${url.protocol}`);
  return value.replace(/\/+$/, '');
}

export interface NodeRequest {
  url: string;
  path: string;
  method?: string;
  /** Sent as JSON. */
  body?: unknown;
  token?: string;
  timeoutMs?: number;
}

/** Sends one request; resolves with the JSON answer when the status is 2xx. */
export async function callNode(req: NodeRequest): Promise<{ status: number; body: unknown }> {
  const url = `${req.url.replace(/\/+$/, '')}${req.path}`;
  const headers: Record<string, string> = {};
  if (req.token !== undefined) headers['authorization'] = `Bearer ${req.token}`;
  if (req.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(url, {
      method: req.method ?? 'GET',
      headers,
      ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}),
      signal: AbortSignal.timeout(req.timeoutMs ?? 5000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new NodeUnavailable(`no answer from ${url}: ${why} (is the node running?)`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new NodeUnavailable(`${url} answered ${res.status} with something that is not JSON`);
  }
  if (res.status < 200 || res.status > 299) {
    const error = (body as { error?: { code?: string; message?: string } }).error;
    throw new NodeUnavailable(
      `${url} answered ${res.status}${error ? ` ${error.code ?? ''}: ${error.message ?? ''}` : ''}`,
    );
  }
  return { status: res.status, body };
}
