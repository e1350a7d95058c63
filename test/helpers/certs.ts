/**
 * Test PKI made with the `openssl` CLI in a temp dir: two unrelated CAs
 * (A and B), a server and a client certificate from CA A, and a client
 * certificate from CA B. EC P-256 keys, so generation takes well under a
 * second. Leaf certificates carry SAN IP:127.0.0.1 and both server and
 * client extended key usage, so any of them can play either role.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export interface CertFiles {
  /** PEM certificate path. */
  cert: string;
  /** PEM private key path. */
  key: string;
}

export interface TestPki {
  dir: string;
  /** CA certificate paths. */
  caA: string;
  caB: string;
  serverA: CertFiles;
  clientA: CertFiles;
  clientB: CertFiles;
}

const CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = vrep-test
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

function newKey(dir: string, name: string): string {
  const file = path.join(dir, `${name}.key`);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file], dir);
  return file;
}

function newCa(dir: string, name: string): CertFiles {
  const key = newKey(dir, name);
  const cert = path.join(dir, `${name}.crt`);
  openssl(
    ['req', '-new', '-x509', '-config', 'openssl.cnf', '-extensions', 'ca', '-days', '2'].concat([
      '-key',
      key,
      '-subj',
      `/CN=${name}`,
      '-out',
      cert,
    ]),
    dir,
  );
  return { cert, key };
}

function newLeaf(dir: string, name: string, ca: CertFiles): CertFiles {
  const key = newKey(dir, name);
  const csr = path.join(dir, `${name}.csr`);
  const cert = path.join(dir, `${name}.crt`);
  openssl(['req', '-new', '-config', 'openssl.cnf', '-key', key, '-subj', `/CN=${name}`, '-out', csr], dir);
  openssl(
    ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-days', '2']
      .concat(['-set_serial', `0x${randomBytes(8).toString('hex')}`])
      .concat(['-extfile', 'openssl.cnf', '-extensions', 'leaf', '-out', cert]),
    dir,
  );
  return { cert, key };
}

/** Writes the whole test PKI into `dir` (which must exist and be empty). */
export function makeTestPki(dir: string): TestPki {
  writeFileSync(path.join(dir, 'openssl.cnf'), CONFIG);
  const caA = newCa(dir, 'ca-a');
  const caB = newCa(dir, 'ca-b');
  return {
    dir,
    caA: caA.cert,
    caB: caB.cert,
    serverA: newLeaf(dir, 'server-a', caA),
    clientA: newLeaf(dir, 'client-a', caA),
    clientB: newLeaf(dir, 'client-b', caB),
  };
}
