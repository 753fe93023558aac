// Join tokens: the string round-trips, every malformed form is refused with a message that
// names the broken part (and never echoes the secret), and checks cover unknown, expired,
// wrong-secret and never-expiring tokens.

import test from 'ava';
import {
  checkJoinToken,
  newJoinToken,
  PkiErrorCode,
  parseJoinToken,
  TOKEN_PREFIX,
  TokenFormatError,
  TokenRejection,
} from '../../pkg/pki/index.js';

const HASH_HEX = 'ab'.repeat(32);
const CA_HASH = `sha256:${HASH_HEX}`;
const NOW = new Date('2030-01-01T00:00:00.000Z');
const HOUR = 60 * 60 * 1000;

/** A deterministic byte source: 0, 1, 2, ... */
const counting = () => {
  let n = 0;
  return (size: number) => Uint8Array.from({ length: size }, () => n++ % 256);
};

test('a new token parses back to its parts and its record holds no secret', (t) => {
  const { token, record } = newJoinToken({
    caHash: CA_HASH,
    role: 'worker',
    ttlMs: 24 * HOUR,
    now: NOW,
    description: 'for rack 3',
  });
  t.regex(token, /^BERTH1-[0-9a-f]{64}-[a-z0-9]{6}\.[a-z0-9]{16}$/);
  const parsed = parseJoinToken(token);
  t.is(parsed.caHash, CA_HASH);
  t.is(parsed.id, record.id);
  t.deepEqual(record, {
    id: parsed.id,
    secretSha256: record.secretSha256,
    role: 'worker',
    expires: '2030-01-02T00:00:00.000Z',
    created: '2030-01-01T00:00:00.000Z',
    description: 'for rack 3',
  });
  t.regex(record.secretSha256, /^[0-9a-f]{64}$/);
  t.false(JSON.stringify(record).includes(parsed.secret));
  t.deepEqual(checkJoinToken(record, parsed.id, parsed.secret, NOW), { ok: true, role: 'worker' });
});

test('randomness is injectable and the output is deterministic with it', (t) => {
  const a = newJoinToken({ caHash: HASH_HEX, role: 'voter', now: NOW, random: counting() });
  const b = newJoinToken({ caHash: CA_HASH.toUpperCase(), role: 'voter', now: NOW, random: counting() });
  t.is(a.token, b.token);
  t.is(a.record.id, 'abcdef');
  t.is(parseJoinToken(a.token).caHash, CA_HASH);
  // Bytes at or above 252 are skipped rather than folded onto the first letters.
  const high = newJoinToken({
    caHash: CA_HASH,
    role: 'voter',
    now: NOW,
    random: (size) => Uint8Array.from({ length: size }, (_, i) => (i % 2 === 0 ? 255 : 1)),
  });
  t.is(high.record.id, 'bbbbbb');
});

test('a malformed CA hash is refused when minting', (t) => {
  t.throws(() => newJoinToken({ caHash: 'sha256:abc', role: 'voter', now: NOW }), {
    instanceOf: TokenFormatError,
  });
});

const malformed: Array<[string, string, RegExp]> = [
  ['wrong prefix', `BERTH2-${HASH_HEX}-abcdef.0123456789abcdef`, /must start with "BERTH1-"/],
  ['no prefix', 'abcdef.0123456789abcdef', /must start with "BERTH1-"/],
  ['no dash after the hash', `${TOKEN_PREFIX}${HASH_HEX}`, /no "-" between the CA hash/],
  [
    'short hash',
    `${TOKEN_PREFIX}${HASH_HEX.slice(2)}-abcdef.0123456789abcdef`,
    /64 lowercase hex characters, got 62/,
  ],
  ['non-hex hash', `${TOKEN_PREFIX}${'zz'.repeat(32)}-abcdef.0123456789abcdef`, /64 lowercase hex/],
  [
    'no dot',
    `${TOKEN_PREFIX}${HASH_HEX}-abcdef0123456789abcdef`,
    /no "\." between the token id and the secret/,
  ],
  ['short id', `${TOKEN_PREFIX}${HASH_HEX}-abcde.0123456789abcdef`, /id must be 6 characters of \[a-z0-9\]/],
  ['upper-case id', `${TOKEN_PREFIX}${HASH_HEX}-ABCDEF.0123456789abcdef`, /id must be 6 characters/],
  [
    'short secret',
    `${TOKEN_PREFIX}${HASH_HEX}-abcdef.0123456789abcde`,
    /secret must be 16 characters of \[a-z0-9\]/,
  ],
  [
    'secret with symbols',
    `${TOKEN_PREFIX}${HASH_HEX}-abcdef.0123456789abcd!f`,
    /secret must be 16 characters/,
  ],
];

for (const [name, token, message] of malformed) {
  test(`parseJoinToken refuses: ${name}`, (t) => {
    const err = t.throws(() => parseJoinToken(token), { instanceOf: TokenFormatError, message });
    t.is(err?.code, PkiErrorCode.TokenFormat);
    t.false(err?.message.includes('0123456789abcd'), 'the secret is not echoed');
  });
}

test('surrounding whitespace is tolerated', (t) => {
  const { token } = newJoinToken({ caHash: CA_HASH, role: 'voter', now: NOW });
  t.is(parseJoinToken(`  ${token}\n`).caHash, CA_HASH);
});

test('checkJoinToken: unknown, wrong secret, expired', (t) => {
  const { token, record } = newJoinToken({ caHash: CA_HASH, role: 'voter', ttlMs: HOUR, now: NOW });
  const { id, secret } = parseJoinToken(token);
  const later = (ms: number) => new Date(NOW.getTime() + ms);

  t.deepEqual(checkJoinToken(undefined, id, secret, NOW), { ok: false, reason: TokenRejection.Unknown });
  t.deepEqual(checkJoinToken({ ...record, id: 'zzzzzz' }, id, secret, NOW), { ok: false, reason: 'unknown' });
  const wrong = secret.endsWith('a') ? `${secret.slice(0, -1)}b` : `${secret.slice(0, -1)}a`;
  t.deepEqual(checkJoinToken(record, id, wrong, NOW), { ok: false, reason: 'wrong-secret' });
  t.deepEqual(checkJoinToken(record, id, secret, later(HOUR - 1)), { ok: true, role: 'voter' });
  t.deepEqual(checkJoinToken(record, id, secret, later(HOUR)), { ok: false, reason: 'expired' });
  // Without the secret, an expired token looks like any wrong guess.
  t.deepEqual(checkJoinToken(record, id, wrong, later(2 * HOUR)), { ok: false, reason: 'wrong-secret' });
});

test('a token without a TTL never expires', (t) => {
  for (const ttlMs of [undefined, 0]) {
    const { token, record } = newJoinToken({ caHash: CA_HASH, role: 'worker', ttlMs, now: NOW });
    t.is(record.expires, undefined);
    const { id, secret } = parseJoinToken(token);
    t.deepEqual(checkJoinToken(record, id, secret, new Date('2999-01-01T00:00:00Z')), {
      ok: true,
      role: 'worker',
    });
  }
});
