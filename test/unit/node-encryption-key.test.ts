// berth-node encryption-key: the three rounds of a rotation on a keyring file, and the
// mistakes it refuses (dropping the primary key, using a key that is not there).
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { formatKeyringFile, newKeyring, parseKeyringFile } from '../../pkg/api/server/encryption.js';
import { NodeConfigError } from '../../cmd/node/config.js';
import { editKeyring, runEncryptionKey } from '../../cmd/node/encryption-key.js';

test('add, use, drop: a rotation in three rounds; the file stays owner-only', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-keys-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'encryption.json');
  await writeFile(path, formatKeyringFile(newKeyring('old')), { mode: 0o600 });
  const lines: string[] = [];
  const print = (l: string) => lines.push(l);

  await runEncryptionKey('add', 'new', dir, print);
  let ring = parseKeyringFile(await readFile(path, 'utf8'));
  t.is(ring.primary, 'old', 'a new key is not used for writing until every node holds it');
  t.deepEqual([...ring.keys.keys()], ['old', 'new']);

  await runEncryptionKey('use', 'new', dir, print);
  ring = parseKeyringFile(await readFile(path, 'utf8'));
  t.is(ring.primary, 'new');

  await runEncryptionKey('drop', 'old', dir, print);
  ring = parseKeyringFile(await readFile(path, 'utf8'));
  t.deepEqual([...ring.keys.keys()], ['new']);
  t.is((await stat(path)).mode & 0o777, 0o600);
  t.true(lines.some((l) => l.includes('copy') && l.includes('restart')));

  lines.length = 0;
  await runEncryptionKey('status', undefined, dir, print);
  t.deepEqual(lines, ['new  (primary: seals every write)']);
});

test('refused: dropping the primary, using or dropping a missing key, an unknown action', async (t) => {
  const ring = newKeyring('only');
  t.throws(() => editKeyring(ring, { kind: 'drop', name: 'only' }), {
    instanceOf: NodeConfigError,
    message: /use another key first/,
  });
  t.throws(() => editKeyring(ring, { kind: 'use', name: 'nope' }), { message: /no key "nope"/ });
  t.throws(() => editKeyring(ring, { kind: 'add', name: 'only' }), { message: /has a key "only" already/ });
  const dir = await mkdtemp(join(tmpdir(), 'berth-keys-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'encryption.json'), formatKeyringFile(ring), { mode: 0o600 });
  await t.throwsAsync(
    runEncryptionKey('spin', undefined, dir, () => {}),
    { message: /unknown action "spin"/ },
  );
  await t.throwsAsync(
    runEncryptionKey('use', undefined, dir, () => {}),
    { message: /needs the key's name/ },
  );
});
