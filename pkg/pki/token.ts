// Join tokens: one string a new node is given that both pins the cluster CA and proves it
// was invited, in the spirit of kubeadm's `<id6>.<secret16>` bootstrap tokens plus its
// --discovery-token-ca-cert-hash:
//
//   BERTH1-<64 hex of the CA hash>-<id: 6 of [a-z0-9]>.<secret: 16 of [a-z0-9]>
//
// The cluster stores only a TokenRecord (id, SHA-256 of the secret, role, expiry); the
// secret itself exists only in the token string. Everything here is pure: time and
// randomness come from the caller.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { TokenFormatError } from './errors.js';
import { CA_HASH_PREFIX } from './fingerprint.js';

export const TOKEN_PREFIX = 'BERTH1-';
export const TOKEN_ID_LENGTH = 6;
export const TOKEN_SECRET_LENGTH = 16;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const HEX64 = /^[0-9a-f]{64}$/;
const ID_RE = /^[a-z0-9]{6}$/;
const SECRET_RE = /^[a-z0-9]{16}$/;

export type JoinRole = 'voter' | 'worker';

/** What the cluster stores for a token; holds no secret, so it is safe to list. */
export interface TokenRecord {
  id: string;
  /** Lowercase hex SHA-256 of the secret. */
  secretSha256: string;
  role: JoinRole;
  /** RFC 3339; absent for a token that never expires. */
  expires?: string | undefined;
  /** RFC 3339. */
  created: string;
  description?: string;
}

export interface NewJoinTokenOptions {
  /** The CA pin, `sha256:<hex>` as caHash() returns it (bare hex is accepted too). */
  caHash: string;
  role: JoinRole;
  /** Lifetime; omitted or 0 means the token never expires (as kubeadm's --ttl 0). */
  ttlMs?: number;
  now: Date;
  description?: string;
  /** Source of random bytes; tests pass a seeded one. */
  random?: (size: number) => Uint8Array;
}

export interface ParsedJoinToken {
  /** `sha256:<hex>`, ready for checkCaHash(). */
  caHash: string;
  id: string;
  secret: string;
}

export const TokenRejection = {
  Unknown: 'unknown',
  Expired: 'expired',
  WrongSecret: 'wrong-secret',
} as const;
export type TokenRejection = (typeof TokenRejection)[keyof typeof TokenRejection];

export type TokenCheck = { ok: true; role: JoinRole } | { ok: false; reason: TokenRejection };

export function newJoinToken(opts: NewJoinTokenOptions): { token: string; record: TokenRecord } {
  const hashHex = normalizeCaHash(opts.caHash);
  const random = opts.random ?? randomBytes;
  const id = randomString(TOKEN_ID_LENGTH, random);
  const secret = randomString(TOKEN_SECRET_LENGTH, random);
  const record: TokenRecord = {
    id,
    secretSha256: sha256Hex(secret),
    role: opts.role,
    expires: opts.ttlMs ? new Date(opts.now.getTime() + opts.ttlMs).toISOString() : undefined,
    created: opts.now.toISOString(),
  };
  if (opts.description !== undefined) record.description = opts.description;
  return { token: `${TOKEN_PREFIX}${hashHex}-${id}.${secret}`, record };
}

/** Splits a token into its parts; throws TokenFormatError naming the bad part. */
export function parseJoinToken(str: string): ParsedJoinToken {
  const s = str.trim();
  if (!s.startsWith(TOKEN_PREFIX)) throw new TokenFormatError(`join token must start with "${TOKEN_PREFIX}"`);
  const rest = s.slice(TOKEN_PREFIX.length);
  const dash = rest.indexOf('-');
  if (dash < 0) throw new TokenFormatError('join token has no "-" between the CA hash and the token id');
  const hash = rest.slice(0, dash);
  if (!HEX64.test(hash)) {
    throw new TokenFormatError(`join token CA hash must be 64 lowercase hex characters, got ${hash.length}`);
  }
  const pair = rest.slice(dash + 1);
  const dot = pair.indexOf('.');
  if (dot < 0) throw new TokenFormatError('join token has no "." between the token id and the secret');
  const id = pair.slice(0, dot);
  const secret = pair.slice(dot + 1);
  // The messages describe the rule broken, never the characters given: the secret must not reach logs.
  if (!ID_RE.test(id))
    throw new TokenFormatError(`join token id must be ${TOKEN_ID_LENGTH} characters of [a-z0-9]`);
  if (!SECRET_RE.test(secret)) {
    throw new TokenFormatError(`join token secret must be ${TOKEN_SECRET_LENGTH} characters of [a-z0-9]`);
  }
  return { caHash: CA_HASH_PREFIX + hash, id, secret };
}

/**
 * Checks a presented id and secret against the stored record for that id. The secret is
 * checked before expiry so that a caller without the secret learns nothing about the token.
 */
export function checkJoinToken(
  record: TokenRecord | undefined,
  id: string,
  secret: string,
  now: Date,
): TokenCheck {
  if (!record || record.id !== id) return { ok: false, reason: TokenRejection.Unknown };
  const want = Buffer.from(record.secretSha256.toLowerCase(), 'hex');
  const got = Buffer.from(sha256Hex(secret), 'hex');
  if (want.length !== got.length || !timingSafeEqual(want, got)) {
    return { ok: false, reason: TokenRejection.WrongSecret };
  }
  if (record.expires !== undefined && now.getTime() >= Date.parse(record.expires)) {
    return { ok: false, reason: TokenRejection.Expired };
  }
  return { ok: true, role: record.role };
}

function normalizeCaHash(hash: string): string {
  const h = hash.trim().toLowerCase();
  const hex = h.startsWith(CA_HASH_PREFIX) ? h.slice(CA_HASH_PREFIX.length) : h;
  if (!HEX64.test(hex)) throw new TokenFormatError('CA hash must be sha256:<64 hex characters>');
  return hex;
}

/** Uniform over ALPHABET: bytes at or above the largest multiple of 36 are discarded, not folded. */
function randomString(length: number, random: (size: number) => Uint8Array): string {
  const limit = 256 - (256 % ALPHABET.length);
  let out = '';
  while (out.length < length) {
    for (const b of random(length * 2)) {
      if (b < limit && out.length < length) out += ALPHABET[b % ALPHABET.length];
    }
  }
  return out;
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
