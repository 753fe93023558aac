// berth-node --encryption-key-file: parsing, and the checks made when the file is read at
// start (owner-only mode, a well-formed key file), each a NodeConfigError saying what to do.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { formatKeyringFile, newKeyring } from '../../pkg/api/server/encryption.js';
import { NodeConfigError, parseNodeArgs } from '../../cmd/node/config.js';
import { loadKeyring } from '../../cmd/node/encryption-flags.js';

const BASE = ['--name', 'n1', '--initial-cluster', 'n1=127.0.0.1:2380'];

let dir: string;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-enc-flags-'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('the flag is optional and carries the path', (t) => {
  t.deepEqual(parseNodeArgs(BASE).encryption, {});
  t.deepEqual(parseNodeArgs([...BASE, '--encryption-key-file', '/etc/berth/keys.json']).encryption, {
    keyFile: '/etc/berth/keys.json',
  });
  t.throws(() => parseNodeArgs([...BASE, '--encryption-key-file', '']), { instanceOf: NodeConfigError });
});

test('a 0600 key file loads', async (t) => {
  const p = join(dir, 'good.json');
  const ring = newKeyring('k1');
  await writeFile(p, formatKeyringFile(ring), { mode: 0o600 });
  const loaded = await loadKeyring(p);
  t.is(loaded.primary, 'k1');
  t.deepEqual(loaded.keys.get('k1'), ring.keys.get('k1'));
});

test('a key file others can read is refused with the chmod to run', async (t) => {
  const p = join(dir, 'open.json');
  await writeFile(p, formatKeyringFile(newKeyring('k1')));
  await chmod(p, 0o644);
  const err = await t.throwsAsync(loadKeyring(p), { instanceOf: NodeConfigError });
  t.regex(err?.message ?? '', /readable by group or others \(mode 644\): run chmod 600/);
});

test('a missing or malformed key file is a NodeConfigError naming the flag', async (t) => {
  const missing = await t.throwsAsync(loadKeyring(join(dir, 'nope.json')), { instanceOf: NodeConfigError });
  t.regex(missing?.message ?? '', /--encryption-key-file: cannot read .*nope\.json/);
  const p = join(dir, 'bad.json');
  await writeFile(p, JSON.stringify({ primary: 'x', keys: [{ name: 'x', secret: 'AAAA' }] }), {
    mode: 0o600,
  });
  const bad = await t.throwsAsync(loadKeyring(p), { instanceOf: NodeConfigError });
  t.regex(bad?.message ?? '', /--encryption-key-file: .*bad\.json: key "x": secret is 3 bytes, must be 32/);
});
