// Encryption at rest of Secrets (Kubernetes' aesgcm provider, with the key named in the
// value): the API server seals a value before its write is proposed, so plaintext never
// reaches the Raft log, LevelDB or snapshots, and opens it on every read. Pure: no I/O.
//
//   stored = "berth:enc:aesgcm:v1:<keyName>:" ‖ nonce (12) ‖ ciphertext ‖ tag (16)
//
// The storage key (/registry/secrets/<ns>/<name>) is the GCM additional authenticated data:
// a value copied under another key does not open. Values without the prefix were written
// before encryption was turned on and are read as they are; rewriteEncrypted
// (encryption-rewrite.ts) seals them, and moves values off keys that are no longer primary.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** Resources whose values are sealed (Kubernetes' default EncryptionConfiguration covers these). */
export const ENCRYPTED_RESOURCES: readonly string[] = ['secrets'];

export const ENCRYPTED_PREFIX = 'berth:enc:aesgcm:v1:';

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Key names end up in every stored value and in file names people type: keep them plain. */
const KEY_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * The keys a node seals and opens with. `primary` seals every write; every key opens. Every
 * API server of a cluster must hold every key any stored value was sealed with.
 */
export interface Keyring {
  primary: string;
  keys: ReadonlyMap<string, Buffer>;
}

export const EncryptionErrorCode = {
  UnknownKey: 'ENCRYPTION_UNKNOWN_KEY',
  Corrupt: 'ENCRYPTION_CORRUPT',
  NoKeyring: 'ENCRYPTION_NO_KEYRING',
  BadKeyring: 'ENCRYPTION_BAD_KEYRING',
} as const;
export type EncryptionErrorCode = (typeof EncryptionErrorCode)[keyof typeof EncryptionErrorCode];

/** A value that cannot be opened, or a keyring that cannot be used. Names keys, never data. */
export class EncryptionError extends Error {
  constructor(
    readonly code: EncryptionErrorCode,
    message: string,
    /** The key name the value or keyring entry refers to, when there is one. */
    readonly keyName?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'EncryptionError';
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const PREFIX_BYTES = enc.encode(ENCRYPTED_PREFIX);

/** Does this storage key hold a resource that is sealed? */
export function isEncryptedKey(storageKey: string): boolean {
  return ENCRYPTED_RESOURCES.some((r) => storageKey.startsWith(`/registry/${r}/`));
}

function hasPrefix(stored: Uint8Array): boolean {
  if (stored.length < PREFIX_BYTES.length) return false;
  for (let i = 0; i < PREFIX_BYTES.length; i++) if (stored[i] !== PREFIX_BYTES[i]) return false;
  return true;
}

/** The key name a value is sealed with, or undefined for a value stored in plaintext. */
export function sealedWith(stored: Uint8Array): string | undefined {
  if (!hasPrefix(stored)) return undefined;
  // The name is short and ends at the next ':'; search only a bounded window.
  const window = stored.subarray(PREFIX_BYTES.length, PREFIX_BYTES.length + 65);
  const end = window.indexOf(0x3a);
  if (end <= 0) throw new EncryptionError(EncryptionErrorCode.Corrupt, 'a sealed value has no key name');
  return dec.decode(window.subarray(0, end));
}

export function encryptValue(keyring: Keyring, storageKey: string, plaintext: Uint8Array): Uint8Array {
  const key = keyring.keys.get(keyring.primary);
  if (!key) {
    throw new EncryptionError(
      EncryptionErrorCode.UnknownKey,
      `the primary key "${keyring.primary}" is not in the keyring`,
      keyring.primary,
    );
  }
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(enc.encode(storageKey));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([
    enc.encode(`${ENCRYPTED_PREFIX}${keyring.primary}:`),
    nonce,
    body,
    cipher.getAuthTag(),
  ]);
}

/** Open a stored value; one without the prefix is returned as it is (written before encryption). */
export function decryptValue(
  keyring: Keyring | undefined,
  storageKey: string,
  stored: Uint8Array,
): Uint8Array {
  const name = sealedWith(stored);
  if (name === undefined) return stored;
  if (!keyring) {
    throw new EncryptionError(
      EncryptionErrorCode.NoKeyring,
      `${storageKey} is encrypted with key "${name}" but this API server has no keyring (--encryption-key-file)`,
      name,
    );
  }
  const key = keyring.keys.get(name);
  if (!key) {
    throw new EncryptionError(
      EncryptionErrorCode.UnknownKey,
      `${storageKey} is encrypted with key "${name}", which is not in this node's keyring`,
      name,
    );
  }
  const start = PREFIX_BYTES.length + enc.encode(name).length + 1;
  if (stored.length < start + NONCE_BYTES + TAG_BYTES) {
    throw new EncryptionError(
      EncryptionErrorCode.Corrupt,
      `${storageKey}: the sealed value is truncated`,
      name,
    );
  }
  const nonce = stored.subarray(start, start + NONCE_BYTES);
  const body = stored.subarray(start + NONCE_BYTES, stored.length - TAG_BYTES);
  const tag = stored.subarray(stored.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(enc.encode(storageKey));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch (err) {
    throw new EncryptionError(
      EncryptionErrorCode.Corrupt,
      `${storageKey} does not open with key "${name}": altered, or stored under another key`,
      name,
      { cause: err },
    );
  }
}

/** Would a rewrite change this value: plaintext, or sealed with a key that is not primary? */
export function needsRewrite(keyring: Keyring, stored: Uint8Array): boolean {
  return sealedWith(stored) !== keyring.primary;
}

// ---- keys and the key file ----

/** A name for a new key: key-YYYYMMDDhhmmss (UTC), so names sort by age. */
export function defaultKeyName(now: Date = new Date()): string {
  return `key-${now.toISOString().replace(/[-:T]/g, '').slice(0, 14)}`;
}

export function generateKey(name: string = defaultKeyName()): { name: string; secret: Buffer } {
  checkKeyName(name);
  return { name, secret: randomBytes(KEY_BYTES) };
}

/** A new keyring with one fresh key as primary. */
export function newKeyring(name?: string): Keyring {
  const k = generateKey(name);
  return { primary: k.name, keys: new Map([[k.name, k.secret]]) };
}

/** Add a fresh primary key; old keys stay to open what they sealed until a rewrite. */
export function rotateKeyring(keyring: Keyring, newName?: string): Keyring {
  const k = generateKey(newName);
  if (keyring.keys.has(k.name)) {
    throw new EncryptionError(
      EncryptionErrorCode.BadKeyring,
      `the keyring already has a key "${k.name}"`,
      k.name,
    );
  }
  return { primary: k.name, keys: new Map([...keyring.keys, [k.name, k.secret]]) };
}

function checkKeyName(name: string): void {
  if (!KEY_NAME_RE.test(name)) {
    throw new EncryptionError(
      EncryptionErrorCode.BadKeyring,
      `key name "${name}" must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
      name,
    );
  }
}

interface KeyFile {
  primary: string;
  keys: { name: string; secret: string }[];
}

/** Parse `{ "primary": "...", "keys": [{ "name": "...", "secret": "<base64 of 32 bytes>" }] }`. */
export function parseKeyringFile(text: string): Keyring {
  const bad = (message: string, keyName?: string) =>
    new EncryptionError(EncryptionErrorCode.BadKeyring, message, keyName);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw bad(`not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('must be a JSON object');
  const file = raw as Partial<KeyFile>;
  if (typeof file.primary !== 'string' || file.primary === '') throw bad('"primary" must name a key');
  if (!Array.isArray(file.keys) || file.keys.length === 0) throw bad('"keys" must list at least one key');
  const keys = new Map<string, Buffer>();
  for (const [i, k] of file.keys.entries()) {
    if (typeof k !== 'object' || k === null) throw bad(`keys[${i}] must be an object`);
    const { name, secret } = k as Partial<KeyFile['keys'][number]>;
    if (typeof name !== 'string') throw bad(`keys[${i}].name must be a string`);
    checkKeyName(name);
    if (keys.has(name)) throw bad(`key "${name}" appears twice`, name);
    if (typeof secret !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(secret)) {
      throw bad(`key "${name}": secret must be base64`, name);
    }
    const bytes = Buffer.from(secret, 'base64');
    if (bytes.length !== KEY_BYTES) {
      throw bad(`key "${name}": secret is ${bytes.length} bytes, must be ${KEY_BYTES} (AES-256)`, name);
    }
    keys.set(name, bytes);
  }
  if (!keys.has(file.primary)) throw bad(`primary key "${file.primary}" is not among the keys`, file.primary);
  return { primary: file.primary, keys };
}

export function formatKeyringFile(keyring: Keyring): string {
  const file: KeyFile = {
    primary: keyring.primary,
    keys: [...keyring.keys].map(([name, secret]) => ({ name, secret: secret.toString('base64') })),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}
