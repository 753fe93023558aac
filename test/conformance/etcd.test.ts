// The conformance suite against the reference: a real 3-member etcd 3.4 cluster, through
// createEtcdStore. Where this fails, the suite (or the adapter) is wrong, not etcd.
//
// Needs the `etcd` binary: scripts/ensure-etcd.sh installs it (Debian's etcd-server). When it
// is missing, this file runs that script once (it needs root and Debian's package mirror).

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { StoreError, StoreErrorCode } from '../../pkg/store/errors.js';
import { createEtcdStore } from '../../pkg/store/etcd-store.js';
import type { WatchEvent } from '../../pkg/store/types.js';
import { type EtcdCluster, etcdVersion, startEtcdCluster } from '../support/etcd-cluster.js';
import { kvConformance } from './kv-conformance.js';

const ensureScript = fileURLToPath(new URL('../../../scripts/ensure-etcd.sh', import.meta.url));

let cluster: EtcdCluster | undefined;

test.before(async () => {
  if (etcdVersion() === undefined) {
    // Its output goes to stderr: stdout may be ava's TAP stream.
    const r = spawnSync('bash', [ensureScript], { stdio: ['ignore', 2, 2], timeout: 600_000 });
    if (r.status !== 0 || etcdVersion() === undefined) {
      throw new Error(
        `no etcd binary, and ${ensureScript} failed (exit ${r.status}); run as root: bash scripts/ensure-etcd.sh`,
      );
    }
  }
  cluster = await startEtcdCluster({ size: 3 });
});

test.after.always(async () => {
  await cluster?.stop();
});

kvConformance(test, 'etcd', async () => {
  if (!cluster) throw new Error('the etcd cluster did not start (see the before hook)');
  const kv = createEtcdStore({ endpoints: cluster.endpoints });
  return { kv, cleanup: () => kv.close() };
});

// Not part of the conformance suite (it is about the adapter, not about etcd's semantics):
// a watch whose stream breaks when its member dies picks up on another member from the
// revision after its last event, so it delivers the same events a replay from history does.
test('etcd adapter: a watch survives the loss of the member serving it, without gaps or repeats', async (t) => {
  const own = await startEtcdCluster({ size: 3, baseAddress: '127.0.10.11' });
  t.teardown(() => own.stop());
  const kv = createEtcdStore({ endpoints: own.endpoints });
  t.teardown(() => kv.close());
  const enc = (s: string) => new TextEncoder().encode(s);
  const prefix = enc('/failover/');
  const span = { key: prefix, rangeEnd: enc('/failover0') };

  const seen: string[] = [];
  const show = (e: WatchEvent) => `${e.type} ${new TextDecoder().decode(e.kv.key)}@${e.kv.modRevision}`;
  const first = await kv.put({ key: enc('/failover/start'), value: enc('0') });
  await kv.watch({ ...span, startRevision: first.header.revision }, (r) => seen.push(...r.events.map(show)));

  let n = 0;
  const putRetrying = async (key: string) => {
    // A put that meets a dying leader fails with "request timed out" (it may or may not have
    // been applied); the caller retries, as a store user would.
    for (let attempt = 0; ; attempt++) {
      try {
        return await kv.put({ key: enc(key), value: enc('v') });
      } catch (err) {
        if (attempt >= 5 || !(err instanceof StoreError) || err.code !== StoreErrorCode.Timeout) throw err;
      }
    }
  };
  const writeSome = async () => {
    for (let i = 0; i < 5; i++) await putRetrying(`/failover/k${n++}`);
  };
  await writeSome();
  for (let member = 0; member < 3; member++) {
    await own.kill(member);
    // With a new leader in place writes go through at once (a write that meets the dead
    // leader waits out etcd's 7 s request timeout); the watch lost its stream all the same.
    await own.waitHealthy();
    await writeSome();
    await own.restart(member);
    await writeSome();
  }
  const last = (await kv.put({ key: enc('/failover/end'), value: enc('1') })).header.revision;

  const replay: string[] = [];
  await kv.watch({ ...span, startRevision: first.header.revision }, (r) =>
    replay.push(...r.events.map(show)),
  );
  const deadline = Date.now() + 10_000;
  const done = (xs: string[]) => xs.some((x) => x.endsWith(`@${last}`));
  while (!(done(seen) && done(replay)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.true(done(seen), `the surviving watch reached the last write; it saw ${seen.length} events`);
  t.deepEqual(seen, replay, 'the surviving watch saw exactly what a replay from history shows');
  const keys = new Set(replay.map((x) => x.split(' ')[1]?.split('@')[0]));
  for (let i = 0; i < n; i++) t.true(keys.has(`/failover/k${i}`), `write k${i} is an event`);
});
