// The CA pin a joining node checks before it trusts anything the cluster sends: SHA-256 over
// the DER SubjectPublicKeyInfo of the CA certificate, written `sha256:<64 hex>` exactly as
// kubeadm's --discovery-token-ca-cert-hash. Hashing the key, not the whole certificate,
// keeps the pin valid when the CA is re-issued with the same key.
import { createHash, timingSafeEqual, X509Certificate } from 'node:crypto';
import { MalformedPemError } from './errors.js';

export const CA_HASH_PREFIX = 'sha256:';
const HEX64 = /^[0-9a-f]{64}$/;

/** `sha256:<64 lowercase hex>` of the CA certificate's public key. */
export function caHash(caCertPem: string): string {
  let spki: Buffer;
  try {
    spki = new X509Certificate(caCertPem).publicKey.export({ type: 'spki', format: 'der' });
  } catch (err) {
    throw new MalformedPemError('certificate', err);
  }
  return CA_HASH_PREFIX + createHash('sha256').update(spki).digest('hex');
}

/**
 * True when the certificate's key matches `expected` (`sha256:<hex>`; hex case ignored).
 * A malformed `expected` is simply a mismatch. The compare is constant-time.
 */
export function checkCaHash(caCertPem: string, expected: string): boolean {
  const want = expected.trim().toLowerCase();
  if (!want.startsWith(CA_HASH_PREFIX) || !HEX64.test(want.slice(CA_HASH_PREFIX.length))) return false;
  let actual: string;
  try {
    actual = caHash(caCertPem);
  } catch {
    return false;
  }
  return timingSafeEqual(Buffer.from(actual), Buffer.from(want));
}
