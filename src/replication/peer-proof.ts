/** Placeholder until transport/peer-auth.ts lands: HMAC-SHA256 proof over length-prefixed fields. */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface ProofInput {
  secret: string;
  clusterId: string;
  fromNodeId: string;
  toNodeId: string;
  fromNonce: string;
  toNonce: string;
  term: number;
}

export function authProof(p: ProofInput): string {
  const h = createHmac('sha256', p.secret);
  for (const field of [
    'vrep-peer-auth-v1',
    p.clusterId,
    p.fromNodeId,
    p.toNodeId,
    p.fromNonce,
    p.toNonce,
    String(p.term),
  ]) {
    const bytes = Buffer.from(field, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(bytes.length);
    h.update(len).update(bytes);
  }
  return h.digest('hex');
}

export function verifyProof(p: ProofInput, proof: string): boolean {
  const want = Buffer.from(authProof(p), 'hex');
  const got = Buffer.from(proof, 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}
