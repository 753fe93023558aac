// Re-encryption after a key rotation (or after encryption is first turned on): every value
// of an encrypted resource not sealed with the primary key is opened and sealed again with
// it, byte for byte the same object. Each write is a Txn guarded by the mod revision it read,
// so a concurrent API write is never overwritten: on a lost race the key is read again (a
// concurrent writer with the same primary has already sealed it; a deleted key is skipped).
// Like `kubectl get secrets -A -o json | kubectl replace -f -`, but without a round trip
// through the API's admission, so no object field changes; resourceVersion does.

import type { KV } from '../../store/types.js';
import { prefixEnd } from '../../store/types.js';
import { decryptValue, ENCRYPTED_RESOURCES, encryptValue, type Keyring, needsRewrite } from './encryption.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface RewriteResult {
  /** Values sealed again under the primary key. */
  rewritten: number;
  /** Values already under the primary key (or deleted before their turn). */
  unchanged: number;
}

export interface RewriteOptions {
  /** Resources to rewrite; default ENCRYPTED_RESOURCES. */
  resources?: readonly string[];
  /** Attempts per key when other writers keep winning; default 10. */
  attempts?: number;
}

/** Seal every value of the encrypted resources with `keyring.primary`. Throws EncryptionError for a value no key opens. */
export async function rewriteEncrypted(
  kv: KV,
  keyring: Keyring,
  options: RewriteOptions = {},
): Promise<RewriteResult> {
  const result: RewriteResult = { rewritten: 0, unchanged: 0 };
  const attempts = options.attempts ?? 10;
  for (const resource of options.resources ?? ENCRYPTED_RESOURCES) {
    const prefix = enc.encode(`/registry/${resource}/`);
    const r = await kv.range({ key: prefix, rangeEnd: prefixEnd(prefix) });
    for (const first of r.kvs) {
      let current: typeof first | undefined = first;
      for (let attempt = 1; ; attempt++) {
        if (!current || !needsRewrite(keyring, current.value)) {
          result.unchanged++;
          break;
        }
        const path = dec.decode(current.key);
        const plain = decryptValue(keyring, path, current.value);
        const t = await kv.txn({
          compare: [{ target: 'mod', result: 'equal', key: current.key, modRevision: current.modRevision }],
          success: [
            { put: { key: current.key, value: encryptValue(keyring, path, plain), lease: current.lease } },
          ],
          failure: [{ range: { key: current.key } }],
        });
        if (t.succeeded) {
          result.rewritten++;
          break;
        }
        if (attempt >= attempts) {
          throw new Error(
            `${path}: lost ${attempts} races to other writers while re-encrypting; run it again`,
          );
        }
        const failed = t.responses[0];
        current = failed && 'range' in failed ? failed.range.kvs[0] : undefined;
      }
    }
  }
  return result;
}
