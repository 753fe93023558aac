// Berth's client against several servers: fail-over when one stops, the retry rule (reads
// retried, writes only when provably not applied), deadlines, and a watch that resumes on
// another endpoint from the revision after its last event, without gaps or duplicates.

import { createServer, type Server as NetServer, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import test, { type ExecutionContext } from 'ava';
import { createClient } from '../../pkg/client/client.js';
import {
  GrpcCode,
  noLeader,
  requestTimeout,
  type StoreError,
  StoreErrorCode,
} from '../../pkg/store/errors.js';
import { addKvServices, type ClusterInfo, kvServerOptions } from '../../pkg/store/grpc-server.js';
import { createLocalStore } from '../../pkg/store/local-store.js';
import type { KV, WatchEvent, WatchResponse } from '../../pkg/store/types.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

const cluster: ClusterInfo = {
  clusterId: '1',
  memberId: '1',
  raftTerm: () => 1,
  leader: () => '1',
  members: () => [],
  addMember: () => Promise.reject(new Error('not in this test')),
  removeMember: () => Promise.reject(new Error('not in this test')),
  promoteMember: () => Promise.reject(new Error('not in this test')),
  status: () => ({ version: 'test', dbSize: 0, leader: '1', raftIndex: 0, raftTerm: 1, raftAppliedIndex: 0 }),
};

interface TestServer {
  address: string;
  stop(): void;
}

async function startServer(t: ExecutionContext, kv: KV, host = '127.0.0.1'): Promise<TestServer> {
  const server = new grpc.Server(kvServerOptions());
  addKvServices(server, { kv, cluster });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  t.teardown(() => server.forceShutdown());
  return { address: `${host}:${port}`, stop: () => server.forceShutdown() };
}

function localStore(t: ExecutionContext) {
  const kv = createLocalStore();
  t.teardown(() => kv.close());
  return kv;
}

/** A store whose calls are counted, and whose put/range may be replaced (to hang or fail). */
function instrumented(t: ExecutionContext, overrides: Partial<Pick<KV, 'put' | 'range'>> = {}) {
  const kv = localStore(t);
  const calls = { put: 0, range: 0 };
  const wrapped = Object.assign(Object.create(kv) as KV, {
    put: (req: Parameters<KV['put']>[0]) => {
      calls.put++;
      return (overrides.put ?? kv.put.bind(kv))(req);
    },
    range: (req: Parameters<KV['range']>[0]) => {
      // The server's own revision reads (watch creation, status) go to the real store.
      if (req.serializable && req.keysOnly && req.limit === 1) return kv.range(req);
      calls.range++;
      return (overrides.range ?? kv.range.bind(kv))(req);
    },
  });
  return { kv, wrapped, calls };
}

const never = <T>() => new Promise<T>(() => {});

async function eventually(pred: () => boolean, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

const fast = { dialTimeoutMs: 500, backoff: { initialMs: 20, maxMs: 200 } };

test('fails over to the next endpoint when one stops, and stays with the one that works', async (t) => {
  const stores = [localStore(t), localStore(t), localStore(t)];
  const [a, b, c] = await Promise.all(stores.map((kv) => startServer(t, kv)));
  if (!a || !b || !c) throw new Error('servers');
  const client = createClient({ endpoints: [a.address, `http://${b.address}`, c.address], ...fast });
  t.teardown(() => client.close());

  await client.put({ key: enc('k'), value: enc('on a') });
  t.is(client.currentEndpoint(), a.address);

  a.stop();
  const read = await client.range({ key: enc('k') });
  t.is(read.kvs.length, 0, 'answered by b, which has its own (empty) store');
  t.is(client.currentEndpoint(), b.address, 'the client moved to b');
  let started = Date.now();
  await client.put({ key: enc('k'), value: enc('on b') });
  t.true(Date.now() - started < 300, 'later calls go straight to b');
  t.is(dec((await stores[1]?.range({ key: enc('k') }))?.kvs[0]?.value ?? new Uint8Array()), 'on b');

  b.stop();
  // A write may move on too when the connection is refused: it was never sent.
  await new Promise((r) => setTimeout(r, 50));
  started = Date.now();
  await client.put({ key: enc('k'), value: enc('on c') });
  t.is(client.currentEndpoint(), c.address);
  t.is(dec((await stores[2]?.range({ key: enc('k') }))?.kvs[0]?.value ?? new Uint8Array()), 'on c');
  t.true(
    Date.now() - started < 2000,
    'refused connections fail over at once, without waiting for dialTimeoutMs',
  );
});

test('deadlines fire: a write whose outcome is unknown is not retried, a read is', async (t) => {
  const hung = instrumented(t, { put: never, range: never });
  const ok = instrumented(t);
  const a = await startServer(t, hung.wrapped);
  const b = await startServer(t, ok.wrapped);
  const client = createClient({
    endpoints: [a.address, b.address],
    requestTimeoutMs: 300,
    retries: 3,
    ...fast,
  });
  t.teardown(() => client.close());

  let started = Date.now();
  const err = (await t.throwsAsync(client.put({ key: enc('k'), value: enc('v') }))) as StoreError;
  const elapsed = Date.now() - started;
  t.is(err.code, StoreErrorCode.Timeout);
  t.is(err.grpc, GrpcCode.DeadlineExceeded);
  t.true(elapsed >= 250 && elapsed < 1500, `the deadline fired after ${elapsed} ms`);
  t.is(hung.calls.put, 1, 'sent once');
  t.is(ok.calls.put, 0, 'not retried on b: a may have applied it');

  // The endpoint that let a call hit its deadline is left: the next call goes to b at once.
  const next = await client.range({ key: enc('k') });
  t.is(next.kvs.length, 0);
  t.is(hung.calls.range, 0, 'a frozen endpoint is not asked again first');
  t.is(ok.calls.range, 1);

  // A fresh client starts on a: its read times out there and is retried on b.
  const fresh = createClient({
    endpoints: [a.address, b.address],
    requestTimeoutMs: 300,
    retries: 3,
    ...fast,
  });
  t.teardown(() => fresh.close());
  started = Date.now();
  const read = await fresh.range({ key: enc('k') });
  t.is(read.kvs.length, 0);
  t.is(hung.calls.range, 1, 'the read timed out on a...');
  t.is(ok.calls.range, 2, '...and was retried on b');
  t.true(Date.now() - started < 2000);
});

test('a write refused with "no leader" is retried elsewhere; "request timed out" is not', async (t) => {
  let answer: () => StoreError = noLeader;
  const refusing = instrumented(t, { put: () => Promise.reject(answer()) });
  const ok = instrumented(t);
  const a = await startServer(t, refusing.wrapped);
  const b = await startServer(t, ok.wrapped);

  const c1 = createClient({ endpoints: [a.address, b.address], ...fast });
  t.teardown(() => c1.close());
  await c1.put({ key: enc('k'), value: enc('v') });
  t.is(refusing.calls.put, 1);
  t.is(ok.calls.put, 1, 'retried on b: "no leader" means it was never proposed');

  answer = requestTimeout;
  const c2 = createClient({ endpoints: [a.address, b.address], ...fast });
  t.teardown(() => c2.close());
  const err = (await t.throwsAsync(c2.put({ key: enc('k'), value: enc('w') }))) as StoreError;
  t.is(err.message, requestTimeout().message);
  t.is(err.code, StoreErrorCode.Timeout);
  t.is(ok.calls.put, 1, 'not retried: a timed-out proposal may still commit');
});

test('an endpoint that accepts connections but never speaks gRPC is left after dialTimeoutMs', async (t) => {
  const sockets = new Set<Socket>();
  const blackhole: NetServer = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    blackhole.close();
  });
  const port = (blackhole.address() as { port: number }).port;
  const ok = instrumented(t);
  const b = await startServer(t, ok.wrapped);
  const client = createClient({
    endpoints: [`127.0.0.1:${port}`, b.address],
    dialTimeoutMs: 300,
    backoff: fast.backoff,
  });
  t.teardown(() => client.close());
  const started = Date.now();
  await client.put({ key: enc('k'), value: enc('v') });
  const elapsed = Date.now() - started;
  t.is(ok.calls.put, 1, 'the write went to b: it was never sent to the silent endpoint');
  t.true(elapsed >= 250 && elapsed < 2000, `left the silent endpoint after ${elapsed} ms`);
  t.is(client.currentEndpoint(), b.address);
});

test('a watch resumes on another endpoint from its last revision + 1, without gaps or duplicates; a kept-alive lease survives', async (t) => {
  // Two servers over the SAME store, on two loopback addresses: two members of one cluster.
  const store = localStore(t);
  const s1 = await startServer(t, store, '127.0.0.1');
  const s2 = await startServer(t, store, '127.0.0.2');
  const warnings: string[] = [];
  const logger = { debug() {}, info() {}, warn: (_o: object, msg?: string) => warnings.push(msg ?? '') };
  const client = createClient({ endpoints: [s1.address, s2.address], ...fast, logger });
  t.teardown(() => client.close());

  const first = await store.put({ key: enc('/r/0'), value: enc('0') });
  const fromNow: WatchResponse[] = [];
  const fromPast: WatchResponse[] = [];
  const span = { key: enc('/r/'), rangeEnd: enc('/r0') };
  await client.watch(span, (r) => fromNow.push(r));
  await client.watch({ ...span, startRevision: first.header.revision }, (r) => fromPast.push(r));
  const lease = await client.leaseGrant({ ttl: 2 });
  let lost: StoreError | undefined;
  const keeper = client.keepAlive(lease.id, (err) => {
    lost = err;
  });

  const write = async (k: string) => store.put({ key: enc(k), value: enc(k) });
  await write('/r/1');
  await store.txn({
    compare: [],
    success: [
      { put: { key: enc('/r/2a'), value: enc('x') } },
      { put: { key: enc('/r/2b'), value: enc('y') } },
    ],
    failure: [],
  });
  const keys = (rs: WatchResponse[]) => rs.flatMap((r) => r.events.map((e) => dec(e.kv.key)));
  t.true(await eventually(() => keys(fromNow).length === 3 && keys(fromPast).length === 4));
  t.true(await eventually(() => keeper.ttl === 2));

  s1.stop();
  // Writes go on while the client notices and moves to 127.0.0.2.
  for (const k of ['/r/3', '/r/4', '/r/5']) await write(k);
  await store.deleteRange({ key: enc('/r/1') });
  await write('/r/6');

  const expected = ['/r/1', '/r/2a', '/r/2b', '/r/3', '/r/4', '/r/5', '/r/1', '/r/6'];
  t.true(
    await eventually(
      () => keys(fromNow).length >= expected.length && keys(fromPast).length >= expected.length + 1,
    ),
    `events so far: ${keys(fromNow).join(' ')} | ${keys(fromPast).join(' ')}`,
  );
  await new Promise((r) => setTimeout(r, 200)); // anything duplicated would have arrived by now
  t.deepEqual(keys(fromNow), expected);
  t.deepEqual(keys(fromPast), ['/r/0', ...expected]);
  t.is(client.currentEndpoint(), s2.address);
  t.true(
    warnings.includes('watch stream failed; resuming on the next endpoint'),
    'the watch stream did move',
  );

  const revisions = (rs: WatchResponse[]) =>
    rs.flatMap((r) => r.events.map((e: WatchEvent) => e.kv.modRevision));
  for (const rs of [fromNow, fromPast]) {
    const revs = revisions(rs);
    t.true(
      revs.every((rev, i) => i === 0 || rev >= (revs[i - 1] as number)),
      `revisions in order: ${revs.join(' ')}`,
    );
    t.true(
      rs.every((r) => new Set(r.events.map((e) => e.kv.modRevision)).size === 1),
      'one revision per response',
    );
    t.is(rs.find((r) => r.events.length === 2)?.events.length, 2, "the txn's two events arrive together");
    t.is(rs.at(-2)?.events[0]?.type, 'delete');
  }

  // The keep-alive moved to 127.0.0.2 too: the 2 s lease outlives its TTL twice over.
  await new Promise((r) => setTimeout(r, 4000));
  t.is(lost, undefined);
  t.true((await client.leaseTimeToLive(lease.id)).ttl > 0, 'the lease is still alive');
  keeper.stop();
  await client.leaseRevoke(lease.id);
});
