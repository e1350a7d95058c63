/**
 * TLS material for peer links: three PEM file paths in the config, read once
 * at start-up and checked by building a secure context, so a missing file, a
 * key that does not match its certificate or a non-PEM CA stops start-up
 * with a message naming the file, not the first connection.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { ErrorCodes, VrepError } from '../errors.ts';

/** PEM file paths. Both sides present `cert` and trust only certificates signed by `ca`. */
export interface PeerTlsFiles {
  /** This node's certificate (chain), PEM. */
  cert: string;
  /** Its private key, PEM, unencrypted. */
  key: string;
  /** The cluster CA, PEM: the only issuer trusted for peers, in both directions. */
  ca: string;
}

export interface PeerTlsMaterial {
  files: PeerTlsFiles;
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

/** Peer links speak TLS 1.3 only: both ends are vrep. */
export const PEER_TLS_MIN_VERSION: tls.SecureVersion = 'TLSv1.3';

function readPem(what: keyof PeerTlsFiles, file: unknown): Buffer {
  if (typeof file !== 'string' || file.length === 0) {
    throw new VrepError(
      ErrorCodes.InvalidArg,
      `peer TLS: ${what} must be a PEM file path, got ${String(file)}`,
    );
  }
  try {
    return readFileSync(file);
  } catch (err) {
    throw new VrepError(
      ErrorCodes.InvalidArg,
      `peer TLS: cannot read ${what} file ${file}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Reads and checks the three files; throws ERR_INVALID_ARG naming the file on any problem. */
export function loadPeerTls(files: PeerTlsFiles): PeerTlsMaterial {
  const material: PeerTlsMaterial = {
    files,
    cert: readPem('cert', files.cert),
    key: readPem('key', files.key),
    ca: readPem('ca', files.ca),
  };
  try {
    tls.createSecureContext({ cert: material.cert, key: material.key, ca: material.ca });
  } catch (err) {
    throw new VrepError(
      ErrorCodes.InvalidArg,
      `peer TLS: cert ${files.cert}, key ${files.key}, ca ${files.ca} are not a usable set: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return material;
}
