// Encryption at rest on real disks: three berth-node processes with --encryption-key-file
// and small --snapshot-entries, so Secrets pass through the Raft log, LevelDB, snapshots and
// a compaction. Then every byte of every file in every data directory is searched: the
// Secret's plaintext (and its base64) is nowhere, while a ConfigMap's control string is
// found (proof the search sees what is stored in the clear).
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { newKeyring, formatKeyringFile } from '../../pkg/api/server/encryption.js';
import type { ApiObject } from '../../pkg/api/types.js';
import { UNENCRYPTED_WARNING } from '../../cmd/node/encryption-flags.js';
import { createApiClient } from '../../pkg/client/api-client.js';
import { createClient } from '../../pkg/client/client.js';
import { BerthCluster } from '../support/berth-cluster.js';
import { b64, distinctive, filesUnder, pieces } from '../support/disk-search.js';

let cluster: BerthCluster | undefined;
let tmp: string | undefined;

test.after.always(async () => {
  await cluster?.destroy();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function retry<T>(what: string, fn: () => Promise<T>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

test('no Secret plaintext in any file of any data directory; the Secret reads back after a restart', async (t) => {
  tmp = await mkdtemp(join(tmpdir(), 'berth-enc-disk-'));
  const keyFile = join(tmp, 'keys.json');
  await writeFile(keyFile, formatKeyringFile(newKeyring('key-test')), { mode: 0o600 });
  cluster = await BerthCluster.start({
    size: 3,
    agent: false,
    snapshotEntries: 50,
    extraArgs: ['--encryption-key-file', keyFile],
  });
  const c = cluster;
  const api = createApiClient({ endpoints: c.endpoints(), requestTimeoutMs: 10_000 });
  const kv = createClient({ endpoints: c.endpoints(), requestTimeoutMs: 10_000 });
  t.teardown(async () => {
    api.close();
    await kv.close();
  });

  const stringSecret = distinctive();
  const dataSecret = distinctive();
  const control = distinctive();
  // The object API answers once there is a leader and namespace default exists.
  await retry('the Secret to be created', () =>
    api.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', namespace: 'default' },
      data: { token: b64(dataSecret) },
      stringData: { password: stringSecret },
    }),
  );
  await api.create({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'control', namespace: 'default' },
    data: { v: control },
  });
  // Enough writes for several snapshots (every 50 applied entries), with Secret updates among them.
  for (let batch = 0; batch < 8; batch++) {
    await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        api.create({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: `filler-${batch}-${i}`, namespace: 'default' },
          data: { n: String(i) },
        }),
      ),
    );
    const s = await api.get('secrets', 'default', 'db');
    await api.update({ ...s, metadata: { ...s.metadata, labels: { batch: String(batch) } } });
  }
  const head = await kv.range({ key: new TextEncoder().encode('/registry/'), countOnly: true });
  await kv.compact({ revision: head.header.revision });

  // A restart replays the log and snapshot from disk; the Secret still opens.
  await c.stop(0);
  await c.start(0);
  const one = createApiClient({ endpoints: [c.node(0).clientAddress], requestTimeoutMs: 10_000 });
  t.teardown(() => one.close());
  const back = await retry('the Secret from the restarted node', () => one.get('secrets', 'default', 'db'));
  const data = (back as ApiObject & { data: Record<string, string> }).data;
  t.is(Buffer.from(data.password ?? '', 'base64').toString(), stringSecret);
  t.is(Buffer.from(data.token ?? '', 'base64').toString(), dataSecret);
  t.is(back.metadata.labels?.batch, '7');

  // Stop cleanly so everything each node holds is on disk, then search every byte.
  for (let i = 0; i < 3; i++) await c.stop(i);
  const forbidden = [stringSecret, b64(stringSecret), dataSecret, b64(dataSecret)].flatMap(pieces);
  let files = 0;
  for (const n of c.nodes) {
    const mode = (await stat(n.dataDir)).mode & 0o777;
    t.is(mode, 0o700, `${n.dataDir} is owner-only`);
    const withControl: string[] = [];
    for (const f of await filesUnder(n.dataDir)) {
      files++;
      const bytes = await readFile(f);
      for (const s of forbidden) t.false(bytes.includes(s), `${f} holds Secret plaintext ${s}`);
      if (bytes.includes(control)) withControl.push(f);
    }
    t.log(`${n.name}: the control string is in ${withControl.join(', ') || 'no file'}`);
    // Per node: the search can see plaintext in this node's files.
    t.true(withControl.length > 0, `${n.name}: the ConfigMap control string is found`);
  }
  t.log(`searched ${files} files`);
  // Every API server, the leader's controllers' too, had the keys: none failed to open a value.
  for (const n of c.nodes) {
    const log = await readFile(n.logFile, 'utf8');
    t.false(log.includes(UNENCRYPTED_WARNING), `${n.name} warned that Secrets are unencrypted`);
    t.false(/EncryptionError|is encrypted with key/.test(log), `${n.name} could not open a Secret`);
  }
});
