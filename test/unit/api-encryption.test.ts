// Secrets encrypted at rest: the sealing itself (AAD, unknown keys, plaintext passthrough,
// the key file), and the API server over a real in-process store: raw values of Secrets hold
// no plaintext while get, list and watch return it, and the rewrite after a rotation.
import { randomBytes } from 'node:crypto';
import test from 'ava';
import pino from 'pino';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import {
  decryptValue,
  ENCRYPTED_PREFIX,
  EncryptionError,
  EncryptionErrorCode,
  encryptValue,
  formatKeyringFile,
  type Keyring,
  newKeyring,
  parseKeyringFile,
  rotateKeyring,
  sealedWith,
} from '../../pkg/api/server/encryption.js';
import { rewriteEncrypted } from '../../pkg/api/server/encryption-rewrite.js';
import { decodeObject } from '../../pkg/api/server/object-store.js';
import type { ApiWatchEvent } from '../../pkg/api/server/watch.js';
import type { ApiObject } from '../../pkg/api/types.js';
import { createLocalStore } from '../../pkg/store/local-store.js';
import type { KV } from '../../pkg/store/types.js';

const logger = pino({ level: 'silent' });
const enc = new TextEncoder();
const dec = new TextDecoder();
const KEY = '/registry/secrets/default/db';

function bytesContain(haystack: Uint8Array, needle: string): boolean {
  return Buffer.from(haystack).includes(Buffer.from(needle));
}

test('a value round-trips, is prefixed with the key name, and differs each time (random nonce)', (t) => {
  const ring = newKeyring('k1');
  const plain = enc.encode('{"data":{"password":"hunter2"}}');
  const a = encryptValue(ring, KEY, plain);
  const b = encryptValue(ring, KEY, plain);
  t.true(dec.decode(a).startsWith(`${ENCRYPTED_PREFIX}k1:`));
  t.is(sealedWith(a), 'k1');
  t.false(bytesContain(a, 'hunter2'));
  t.notDeepEqual(Buffer.from(a), Buffer.from(b));
  t.is(dec.decode(decryptValue(ring, KEY, a)), dec.decode(plain));
  t.is(a.length, `${ENCRYPTED_PREFIX}k1:`.length + 12 + plain.length + 16);
});

test('a value moved under another key does not open (the key is authenticated data)', (t) => {
  const ring = newKeyring('k1');
  const sealed = encryptValue(ring, KEY, enc.encode('x'));
  const err = t.throws(() => decryptValue(ring, '/registry/secrets/default/other', sealed), {
    instanceOf: EncryptionError,
  });
  t.is(err?.code, EncryptionErrorCode.Corrupt);
  t.is(err?.keyName, 'k1');
  // An altered byte fails the tag check too.
  const altered = Buffer.from(sealed);
  const at = altered.length - 20;
  altered.writeUInt8(altered.readUInt8(at) ^ 1, at);
  t.throws(() => decryptValue(ring, KEY, altered), { instanceOf: EncryptionError });
});

test('an unknown key name is an EncryptionError naming the key, never the data', (t) => {
  const sealed = encryptValue(newKeyring('old'), KEY, enc.encode('s3cr3t-value'));
  const err = t.throws(() => decryptValue(newKeyring('new'), KEY, sealed), { instanceOf: EncryptionError });
  t.is(err?.code, EncryptionErrorCode.UnknownKey);
  t.is(err?.keyName, 'old');
  t.regex(err?.message ?? '', /"old"/);
  t.notRegex(err?.message ?? '', /s3cr3t/);
  const none = t.throws(() => decryptValue(undefined, KEY, sealed), { instanceOf: EncryptionError });
  t.is(none?.code, EncryptionErrorCode.NoKeyring);
});

test('values stored before encryption was turned on are read as they are', (t) => {
  const plain = enc.encode('{"kind":"Secret"}');
  t.is(decryptValue(newKeyring('k1'), KEY, plain), plain);
  t.is(decryptValue(undefined, KEY, plain), plain);
  t.is(sealedWith(plain), undefined);
});

test('the key file round-trips, and each mistake is named', (t) => {
  const ring = rotateKeyring(newKeyring('a'), 'b');
  const back = parseKeyringFile(formatKeyringFile(ring));
  t.is(back.primary, 'b');
  t.deepEqual([...back.keys.keys()], ['a', 'b']);
  t.deepEqual(back.keys.get('a'), ring.keys.get('a'));

  const secret = randomBytes(32).toString('base64');
  const cases: [string, RegExp][] = [
    ['not json', /not JSON/],
    ['[]', /JSON object/],
    [JSON.stringify({ keys: [{ name: 'a', secret }] }), /"primary"/],
    [JSON.stringify({ primary: 'a', keys: [] }), /at least one key/],
    [
      JSON.stringify({ primary: 'a', keys: [{ name: 'a', secret: randomBytes(16).toString('base64') }] }),
      /16 bytes, must be 32/,
    ],
    [JSON.stringify({ primary: 'a', keys: [{ name: 'a', secret: 'not base64!' }] }), /base64/],
    [
      JSON.stringify({
        primary: 'a',
        keys: [
          { name: 'a', secret },
          { name: 'a', secret },
        ],
      }),
      /"a" appears twice/,
    ],
    [JSON.stringify({ primary: 'z', keys: [{ name: 'a', secret }] }), /primary key "z" is not among/],
    [JSON.stringify({ primary: 'a:b', keys: [{ name: 'a:b', secret }] }), /key name "a:b"/],
  ];
  for (const [text, re] of cases) {
    const err = t.throws(() => parseKeyringFile(text), { instanceOf: EncryptionError }, text);
    t.is(err?.code, EncryptionErrorCode.BadKeyring);
    t.regex(err?.message ?? '', re, text);
  }
  t.throws(() => rotateKeyring(ring, 'a'), { message: /already has a key "a"/ });
});

test('after a rotation the new primary seals and old values still open', (t) => {
  const old = newKeyring('k1');
  const sealedOld = encryptValue(old, KEY, enc.encode('before'));
  const ring = rotateKeyring(old, 'k2');
  t.is(dec.decode(decryptValue(ring, KEY, sealedOld)), 'before');
  t.is(sealedWith(encryptValue(ring, KEY, enc.encode('after'))), 'k2');
});

// ---- through the API server ----

const SECRET_TEXT = `pw-${randomBytes(8).toString('hex')}`;
const DATA_TEXT = `tok-${randomBytes(8).toString('hex')}`;
const CONTROL_TEXT = `cm-${randomBytes(8).toString('hex')}`;

function secret(name: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: 'default' },
    data: { token: Buffer.from(DATA_TEXT).toString('base64') },
    stringData: { password: SECRET_TEXT },
  };
}

async function server(kv: KV, keyring?: Keyring): Promise<ApiServer> {
  const api = new ApiServer({ kv, logger, keyring });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  return api;
}

async function raw(kv: KV, key: string) {
  const r = await kv.range({ key: enc.encode(key) });
  const v = r.kvs[0];
  if (!v) throw new Error(`no ${key}`);
  return v;
}

function forbidden(): string[] {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return [SECRET_TEXT, b64(SECRET_TEXT), DATA_TEXT, b64(DATA_TEXT)];
}

const decoded = (o: ApiObject, field: string) =>
  Buffer.from(
    ((o as Record<string, unknown>).data as Record<string, string>)[field] ?? '',
    'base64',
  ).toString();

test('a Secret is sealed in the store while a ConfigMap is not; get, list and watch read plaintext', async (t) => {
  const kv = createLocalStore();
  const api = await server(kv, newKeyring('k1'));
  const events: ApiWatchEvent[] = [];
  const handle = await api.watch(
    'secrets',
    { namespace: 'default' },
    { event: (e) => events.push(e), end: () => {} },
  );

  await api.create(secret('db'));
  await api.create({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'cm', namespace: 'default' },
    data: { v: CONTROL_TEXT },
  });
  const stored = await raw(kv, KEY);
  t.is(sealedWith(stored.value), 'k1');
  for (const s of forbidden()) t.false(bytesContain(stored.value, s), s);
  t.true(bytesContain((await raw(kv, '/registry/configmaps/default/cm')).value, CONTROL_TEXT));
  // Without the keyring the raw value does not decode.
  t.throws(() => decodeObject(stored), { instanceOf: EncryptionError });

  const got = await api.get('secrets', 'default', 'db');
  t.is(decoded(got, 'password'), SECRET_TEXT);
  t.is(decoded(got, 'token'), DATA_TEXT);
  const list = await api.list('secrets', { namespace: 'default' });
  t.is(list.items.length, 1);
  t.is(decoded(list.items[0] as ApiObject, 'password'), SECRET_TEXT);

  // An update's watch event carries the new object and was decided on the old (prevKv).
  await api.update({ ...got, metadata: { ...got.metadata, labels: { a: 'b' } } });
  await api.delete('secrets', 'default', 'db');
  const deadline = Date.now() + 2000;
  while (events.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(
    events.map((e) => e.type),
    ['ADDED', 'MODIFIED', 'DELETED'],
  );
  for (const e of events) t.is(decoded(e.object as ApiObject, 'password'), SECRET_TEXT);

  // A watch from a revision replays the sealed history too.
  const replay: ApiWatchEvent[] = [];
  const h2 = await api.watch(
    'secrets',
    { namespace: 'default', resourceVersion: '1' },
    { event: (e) => replay.push(e), end: () => {} },
  );
  while (replay.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.is(replay.length, 3);
  await handle.cancel();
  await h2.cancel();
});

test('without a keyring nothing changes; a server given one later reads the old plaintext', async (t) => {
  const kv = createLocalStore();
  const plain = await server(kv);
  await plain.create(secret('db'));
  t.true(bytesContain((await raw(kv, KEY)).value, Buffer.from(SECRET_TEXT).toString('base64')));
  const sealed = await server(kv, newKeyring('k1'));
  t.is(decoded(await sealed.get('secrets', 'default', 'db'), 'password'), SECRET_TEXT);
});

test('the rewrite moves every Secret to the new primary without changing the objects', async (t) => {
  const kv = createLocalStore();
  await (await server(kv)).create(secret('plain'));
  const k1 = newKeyring('k1');
  const api1 = await server(kv, k1);
  await api1.create(secret('a'));
  await api1.create(secret('b'));
  const k2 = rotateKeyring(k1, 'k2');
  const api2 = await server(kv, k2);
  await api2.create(secret('c'));
  const before = new Map(
    (await api2.list('secrets', { namespace: 'default' })).items.map((o) => [o.metadata.name, o]),
  );

  const result = await rewriteEncrypted(kv, k2);
  t.deepEqual(result, { rewritten: 3, unchanged: 1 });
  for (const name of ['plain', 'a', 'b', 'c']) {
    const v = await raw(kv, `/registry/secrets/default/${name}`);
    t.is(sealedWith(v.value), 'k2', name);
  }
  // A keyring with only the new key reads everything now.
  const onlyK2: Keyring = { primary: 'k2', keys: new Map([['k2', k2.keys.get('k2') as Buffer]]) };
  const api3 = await server(kv, onlyK2);
  for (const o of (await api3.list('secrets', { namespace: 'default' })).items) {
    const was = before.get(o.metadata.name) as ApiObject;
    const strip = (x: ApiObject) => ({ ...x, metadata: { ...x.metadata, resourceVersion: undefined } });
    t.deepEqual(strip(o), strip(was));
  }
  t.deepEqual(await rewriteEncrypted(kv, k2), { rewritten: 0, unchanged: 4 });
});

test('the rewrite retries when another writer wins the race for a key', async (t) => {
  const kv = createLocalStore();
  const k1 = newKeyring('k1');
  const api = await server(kv, k1);
  await api.create(secret('a'));
  const k2 = rotateKeyring(k1, 'k2');
  // The first Txn on the Secret loses: another write lands between the read and the Txn.
  let raced = false;
  const racing: KV = {
    ...kv,
    range: (req) => kv.range(req),
    txn: async (req) => {
      if (!raced) {
        raced = true;
        const cur = await api.get('secrets', 'default', 'a');
        await api.update({ ...cur, metadata: { ...cur.metadata, labels: { late: 'write' } } });
      }
      return kv.txn(req);
    },
  };
  t.deepEqual(await rewriteEncrypted(racing, k2), { rewritten: 1, unchanged: 0 });
  t.is(sealedWith((await raw(kv, '/registry/secrets/default/a')).value), 'k2');
  const after = await server(kv, k2);
  t.deepEqual((await after.get('secrets', 'default', 'a')).metadata.labels, { late: 'write' });
});
