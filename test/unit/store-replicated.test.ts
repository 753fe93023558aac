// The replicated store: three members in one process (real LevelDB, the in-process
// transport, real timers). The conformance suite runs against a follower, so every write is
// forwarded to the leader; the rest checks what only a cluster has.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { createLocalNetwork } from '../../pkg/raft/local-transport.js';
import { StateRole } from '../../pkg/raft/types.js';
import { createReplicatedStore, type ReplicatedStore } from '../../pkg/store/replicated-store.js';
import type { WatchEvent } from '../../pkg/store/types.js';
import { kvConformance } from '../conformance/kv-conformance.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Cluster {
  members: ReplicatedStore[];
  root: string;
  start(i: number): Promise<ReplicatedStore>;
  leader(): Promise<ReplicatedStore>;
  follower(): Promise<ReplicatedStore>;
  close(): Promise<void>;
}

async function startCluster(snapshotEntries = 10000): Promise<Cluster> {
  const root = await mkdtemp(join(tmpdir(), 'berth-replicated-'));
  const net = createLocalNetwork();
  const ids = [1, 2, 3];
  const members: ReplicatedStore[] = [];
  const start = async (i: number) => {
    const id = ids[i] as number;
    const m = await createReplicatedStore({
      clusterId: 'c1',
      memberId: `m${id}`,
      leaseCheckIntervalMs: 50,
      raft: {
        id,
        clusterId: 'c1',
        dataDir: join(root, `m${id}`),
        peers: ids.map((p) => ({ id: p, address: `m${p}` })),
        transport: net.transport(id),
        tickMs: 10,
        snapshotEntries,
        catchUpEntries: 5,
        requestTimeoutMs: 5000,
      },
    });
    members[i] = m;
    return m;
  };
  await Promise.all(ids.map((_, i) => start(i)));
  const find = async (role: 'leader' | 'follower') => {
    for (let tries = 0; tries < 500; tries++) {
      const leaders = members.filter((m) => m.raft.status().role === StateRole.Leader);
      if (leaders.length === 1) {
        if (role === 'leader') return leaders[0] as ReplicatedStore;
        const f = members.find((m) => m.raft.status().role === StateRole.Follower && m.raft.status().leader);
        if (f) return f;
      }
      await sleep(10);
    }
    throw new Error(`no ${role} elected`);
  };
  return {
    members,
    root,
    start,
    leader: () => find('leader'),
    follower: () => find('follower'),
    close: async () => {
      await Promise.all(members.map((m) => m.close()));
      await rm(root, { recursive: true, force: true });
    },
  };
}

let shared: Cluster | undefined;

test.before(async () => {
  shared = await startCluster();
});

test.after.always(async () => {
  await shared?.close();
});

kvConformance(test, 'replicated store (through a follower)', async () => {
  if (!shared) throw new Error('cluster did not start');
  const kv = await shared.follower();
  // The members belong to the shared cluster: nothing to clean up per test.
  return { kv, cleanup: async () => {} };
});

test('a write through a follower is read back linearizably from every member', async (t) => {
  const c = await startCluster();
  t.teardown(() => c.close());
  const f = await c.follower();
  const put = await f.put({ key: enc('k'), value: enc('v1') });
  for (const m of c.members) {
    const r = await m.range({ key: enc('k') });
    t.is(dec(r.kvs[0]?.value ?? new Uint8Array()), 'v1');
    t.true(r.header.revision >= put.header.revision);
  }
});

test('an expired lease deletes its keys on every member at the same revision', async (t) => {
  const c = await startCluster();
  t.teardown(() => c.close());
  const f = await c.follower();
  const lease = await f.leaseGrant({ ttl: 2 });
  await f.put({ key: enc('/leased/a'), value: enc('1'), lease: lease.id });
  await f.put({ key: enc('/leased/b'), value: enc('2'), lease: lease.id });
  const deletes: WatchEvent[][] = [[], [], []];
  for (const [i, m] of c.members.entries()) {
    await m.watch({ key: enc('/leased/'), rangeEnd: enc('/leased0') }, (r) =>
      deletes[i]?.push(...r.events.filter((e) => e.type === 'delete')),
    );
  }
  const deadline = Date.now() + 8000;
  while (Date.now() < deadline && deletes.some((d) => d.length < 2)) await sleep(50);
  for (const d of deletes) t.is(d.length, 2, 'both keys deleted, seen by this member');
  const revs = deletes.map((d) => d.map((e) => e.kv.modRevision));
  t.deepEqual(revs[1], revs[0]);
  t.deepEqual(revs[2], revs[0]);
  t.is(revs[0]?.[0], revs[0]?.[1], 'one revision for the whole revocation');
  const ttl = await f.leaseTimeToLive(lease.id);
  t.is(ttl.ttl, -1, 'the lease is gone');
});

test('keep-alives through any member keep a lease alive across a leader change', async (t) => {
  const c = await startCluster();
  t.teardown(() => c.close());
  const f = await c.follower();
  const lease = await f.leaseGrant({ ttl: 2 });
  await f.put({ key: enc('/kept'), value: enc('x'), lease: lease.id });
  const leader = await c.leader();
  const other = c.members.find((m) => m !== leader && m !== f) as ReplicatedStore;
  await leader.raft.transferLeadership(other.raft.id);
  for (let i = 0; i < 8; i++) {
    await sleep(500);
    const ka = await f.leaseKeepAlive(lease.id);
    t.is(ka.ttl, 2);
  }
  const r = await other.range({ key: enc('/kept') });
  t.is(r.count, 1, 'four seconds later the key is still there');
  const ttl = await other.leaseTimeToLive(lease.id, true);
  t.is(ttl.grantedTtl, 2);
  t.deepEqual(ttl.keys.map(dec), ['/kept']);
});

test('a member restored from a snapshot has exactly the same keys, revisions and leases', async (t) => {
  const c = await startCluster(50);
  t.teardown(() => c.close());
  const f = await c.follower();
  const lease = await f.leaseGrant({ ttl: 60 });
  const lagging = c.members.find(
    (m) => m !== f && m.raft.status().role === StateRole.Follower,
  ) as ReplicatedStore;
  const idx = c.members.indexOf(lagging);
  await lagging.close();
  for (let i = 0; i < 200; i++) {
    await f.put({ key: enc(`/snap/${i % 37}`), value: enc(`v${i}`), lease: i % 5 === 0 ? lease.id : 0 });
  }
  await f.deleteRange({ key: enc('/snap/1') });
  const back = await c.start(idx);
  const before = await f.range({ key: enc('\0'), rangeEnd: enc('\0') });
  for (let tries = 0; tries < 300; tries++) {
    if (back.stateMachine.revision >= before.header.revision) break;
    await sleep(20);
  }
  t.true(
    back.raft.status().snapshotIndex > 0 || back.raft.status().firstIndex > 1,
    'caught up through a snapshot',
  );
  const after = await back.range({ key: enc('\0'), rangeEnd: enc('\0'), serializable: true });
  t.deepEqual(after.kvs, before.kvs);
  t.deepEqual(back.stateMachine.dump(), f.stateMachine.dump());
});
