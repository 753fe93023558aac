// The whole cluster is shut down cleanly (SIGTERM to every node: the machines are rebooted)
// and started again: every key comes back with the same revisions (only the new leader's
// fence is written), and leases come back with their TTL and their keys.
import test from 'ava';
import { FENCE_KEY } from '../../pkg/controller/leader.js';
import { dec, enc, lostWrites, readDump, TestCluster } from './support-cluster.js';

const PREFIX = 'restart/';

test('a cluster stopped with SIGTERM and started again keeps every key, revision and lease', async (t) => {
  // Snapshots every 100 entries: the restart loads a snapshot and replays the entries after it.
  const tc = await TestCluster.start(t, { size: 3, snapshotEntries: 100 });
  await tc.waitForLeader();
  const client = tc.client();

  // A history with every kind of change: creates, overwrites, deletes, a txn, leased keys.
  const lease = await client.leaseGrant({ ttl: 300 });
  for (let i = 0; i < 200; i++) {
    await client.put({ key: enc(`${PREFIX}k${i % 120}`), value: enc(`v${i}`) });
  }
  await client.deleteRange({ key: enc(`${PREFIX}k10`), rangeEnd: enc(`${PREFIX}k20`) });
  await client.txn({
    compare: [{ target: 'version', result: 'greater', key: enc(`${PREFIX}k1`), version: 0 }],
    success: [
      { put: { key: enc(`${PREFIX}txn-a`), value: enc('a') } },
      { put: { key: enc(`${PREFIX}txn-b`), value: enc('b') } },
    ],
    failure: [],
  });
  const leased = [`${PREFIX}leased-1`, `${PREFIX}leased-2`];
  for (const k of leased) await client.put({ key: enc(k), value: enc('held'), lease: lease.id });

  const before = await readDump(client);
  const beforeTtl = await client.leaseTimeToLive(lease.id, true);
  t.is(beforeTtl.grantedTtl, 300);
  // Every replica has applied everything before the shutdown (a clean stop loses nothing, but
  // this makes the comparison below about the restart alone).
  const replicas = await tc.waitConverged(tc.all(), 20_000);
  t.is(replicas.revision, before.revision);
  t.log(`before: revision ${before.revision}, ${before.kvs.length} keys, lease ${lease.id}`);

  await tc.closeClient(client);
  const codes = await Promise.all(tc.all().map((i) => tc.cluster.stop(i)));
  t.deepEqual(codes, [0, 0, 0], 'every node exits 0 on SIGTERM');
  for (const i of tc.all()) {
    const log = await tc.logOf(i);
    t.regex(log, /"msg":"stopped"/, `n${i + 1} logs a clean stop`);
    t.regex(log, /"msg":"took a snapshot"/, `n${i + 1} took a snapshot`);
  }

  await Promise.all(tc.all().map((i) => tc.cluster.start(i)));
  await tc.waitForLeader(undefined, 30_000);
  for (const i of tc.all()) {
    const started = (await tc.logOf(i)).split('\n').filter((l) => l.includes('"msg":"raft node started"'));
    const last = JSON.parse(started.at(-1) ?? '{}') as { snapshotIndex?: number };
    t.true((last.snapshotIndex ?? 0) > 0, `n${i + 1} restarted from a snapshot: ${started.at(-1)}`);
  }
  const after = tc.client();
  // The new leader writes its controllers' fence (FENCE_KEY) when it starts them: the one
  // write a restart makes. Everything else comes back exactly as it was.
  const converged = await tc.waitConverged(tc.all(), 20_000);
  const read = await readDump(after);
  const data = (d: typeof read) => d.kvs.filter((kv) => kv.key !== FENCE_KEY);
  t.deepEqual(data(read), data(before), 'every key with the same value and create/mod revision and version');
  const moved = read.kvs.filter((kv) => kv.modRevision > before.revision).map((kv) => kv.key);
  t.deepEqual(moved, read.revision > before.revision ? [FENCE_KEY] : [], 'only the fence was written');
  t.deepEqual(data(converged), data(before), 'every replica serves the same state');

  const ttl = await after.leaseTimeToLive(lease.id, true);
  t.is(ttl.grantedTtl, 300);
  t.true(ttl.ttl > 0 && ttl.ttl <= 300, `ttl ${ttl.ttl}`);
  t.deepEqual(ttl.keys.map(dec).sort(), leased);
  const leases = await after.leaseLeases();
  t.true(leases.leases.some((l) => l.id === lease.id));

  // And the restarted cluster takes writes: the revision moves on from where it was.
  const put = await after.put({ key: enc(`${PREFIX}after`), value: enc('x') });
  t.is(put.header.revision, read.revision + 1);
});

// Every machine loses power at once in the middle of a stream of writes (SIGKILL to all):
// what was acknowledged had reached a majority's disks, so it is all there after the restart.
test('acknowledged writes survive every node being SIGKILLed at once', async (t) => {
  const tc = await TestCluster.start(t, { size: 3, snapshotEntries: 300 });
  await tc.waitForLeader();
  const client = tc.client({ requestTimeoutMs: 3000, retries: 2 });
  const writer = tc.writer(client, { prefix: 'crash/', concurrency: 16 });
  await writer.waitAcked(1000, 30_000);
  await Promise.all(tc.all().map((i) => tc.cluster.kill(i)));
  await writer.stop();
  t.log(`${writer.acked.size} acknowledged, ${writer.unknown.size} in flight at the crash`);

  await Promise.all(tc.all().map((i) => tc.cluster.start(i)));
  await tc.waitForLeader(undefined, 30_000);
  const state = await tc.waitConverged(tc.all(), 30_000);
  t.deepEqual(lostWrites(writer, state, 'crash/'), []);
  t.deepEqual(lostWrites(writer, await readDump(tc.client(), 'crash/'), 'crash/'), []);
});
