// The store's gRPC edge (pkg/store/grpc-server.ts): etcd v3's wire protocol over a local
// store, checked through Berth's client, through a raw gRPC client (exact codes and messages,
// malformed and oversized requests), and through etcdctl itself.

import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import test, { type ExecutionContext } from 'ava';
import { type Client, createClient } from '../../pkg/client/client.js';
import { backoffMs, isRetryable } from '../../pkg/client/retry.js';
import {
  CompactedError,
  emptyKey,
  futureRevision,
  GrpcCode,
  leaseNotFound,
  noLeader,
  requestTimeout,
  StoreError,
  StoreErrorCode,
  tooManyOps,
} from '../../pkg/store/errors.js';
import {
  errorToStatus,
  rangeRequestFromWire,
  statusToError,
  txnRequestFromWire,
  txnRequestToWire,
  type WireWatchResponse,
} from '../../pkg/store/grpc-mapping.js';
import {
  addKvServices,
  type ClusterInfo,
  etcdService,
  kvServerOptions,
  type MemberInfo,
} from '../../pkg/store/grpc-server.js';
import { createLocalStore, type LocalStore } from '../../pkg/store/local-store.js';
import { type KV, StoreLimits, type TxnRequest, type WatchResponse } from '../../pkg/store/types.js';

const run = promisify(execFile);
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

// ---- fixtures ----

/** A fixed three-member cluster, as the node program would describe itself. */
function testCluster(): ClusterInfo {
  const members: MemberInfo[] = [
    {
      id: '11',
      name: 'n1',
      peerUrls: ['http://127.0.0.1:2380'],
      clientUrls: ['http://127.0.0.1:2379'],
      isLearner: false,
    },
    {
      id: '12',
      name: 'n2',
      peerUrls: ['http://127.0.0.2:2380'],
      clientUrls: ['http://127.0.0.2:2379'],
      isLearner: false,
    },
  ];
  let nextId = 100;
  const find = (id: string) => {
    const m = members.find((x) => x.id === id);
    if (!m)
      throw new StoreError(StoreErrorCode.InvalidArgument, GrpcCode.NotFound, 'etcdserver: member not found');
    return m;
  };
  return {
    clusterId: '4242',
    memberId: '11',
    raftTerm: () => 7,
    leader: () => '11',
    members: () => members.map((m) => ({ ...m })),
    async addMember(peerUrls, isLearner) {
      const m = { id: String(nextId++), name: '', peerUrls, clientUrls: [], isLearner };
      members.push(m);
      return { ...m };
    },
    async removeMember(id) {
      members.splice(members.indexOf(find(id)), 1);
    },
    async promoteMember(id) {
      const m = find(id);
      if (!m.isLearner) {
        throw new StoreError(
          StoreErrorCode.InvalidArgument,
          GrpcCode.FailedPrecondition,
          'etcdserver: can only promote a learner member',
        );
      }
      m.isLearner = false;
    },
    status: () => ({
      version: '3.4.0-berth',
      dbSize: 4096,
      leader: '11',
      raftIndex: 40,
      raftTerm: 7,
      raftAppliedIndex: 40,
    }),
  };
}

interface TestServer {
  address: string;
  server: grpc.Server;
  internalErrors: unknown[];
}

async function startServer(t: ExecutionContext, kv: KV, host = '127.0.0.1'): Promise<TestServer> {
  const server = new grpc.Server(kvServerOptions());
  const internalErrors: unknown[] = [];
  addKvServices(server, { kv, cluster: testCluster(), onInternalError: (err) => internalErrors.push(err) });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  t.teardown(() => server.forceShutdown());
  return { address: `${host}:${port}`, server, internalErrors };
}

/** A local store whose range throws a plain TypeError for the key 'boom' (a bug, not a StoreError). */
function buggyStore(): LocalStore {
  const kv = createLocalStore();
  return Object.assign(Object.create(kv) as LocalStore, {
    range: (req: Parameters<KV['range']>[0]) => {
      if (dec(req.key) === 'boom') throw new TypeError('cannot read properties of undefined');
      return kv.range(req);
    },
  });
}

async function setup(t: ExecutionContext): Promise<{ kv: LocalStore; srv: TestServer; client: Client }> {
  const kv = buggyStore();
  t.teardown(() => kv.close());
  const srv = await startServer(t, kv);
  const client = createClient({ endpoints: [srv.address], requestTimeoutMs: 3000 });
  t.teardown(() => client.close());
  return { kv, srv, client };
}

// ---- raw gRPC, to see exactly what goes over the wire ----

interface RawResult<T> {
  err?: grpc.ServiceError;
  res?: T;
}

function rawUnary<T = Record<string, unknown>>(
  address: string,
  service: string,
  name: string,
  req: object | Buffer,
  raw = false,
): Promise<RawResult<T>> {
  const m = etcdService(service)[name];
  if (!m) throw new Error(`no method ${service}.${name}`);
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const serialize = raw ? (b: Buffer) => b : (m.requestSerialize as (v: object) => Buffer);
  return new Promise((resolve) => {
    client.makeUnaryRequest<object | Buffer, T>(
      m.path,
      serialize as (v: object | Buffer) => Buffer,
      m.responseDeserialize as (b: Buffer) => T,
      req,
      new grpc.Metadata(),
      { deadline: Date.now() + 5000 },
      (err, res) => {
        client.close();
        resolve(err ? { err } : { res: res as T });
      },
    );
  });
}

function rawStream<Req, Res>(address: string, service: string, name: string) {
  const m = etcdService(service)[name];
  if (!m) throw new Error(`no method ${service}.${name}`);
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const stream = client.makeBidiStreamRequest<Req, Res>(
    m.path,
    m.requestSerialize as (v: Req) => Buffer,
    m.responseDeserialize as (b: Buffer) => Res,
  );
  const received: Res[] = [];
  const waiters: (() => void)[] = [];
  let status: grpc.ServiceError | 'ok' | undefined;
  stream.on('data', (r: Res) => {
    received.push(r);
    for (const w of waiters.splice(0)) w();
  });
  stream.on('error', (e: grpc.ServiceError) => {
    status = e;
    for (const w of waiters.splice(0)) w();
  });
  stream.on('end', () => {
    status ??= 'ok';
    for (const w of waiters.splice(0)) w();
  });
  return {
    stream,
    received,
    status: () => status,
    /** Wait until `pred` holds over what has arrived (or the stream ended), at most 5 s. */
    async until(pred: () => boolean): Promise<void> {
      const deadline = Date.now() + 5000;
      while (!pred() && status === undefined && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
    close() {
      stream.cancel();
      client.close();
    },
  };
}

async function eventually(pred: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

// ---- round trips through Berth's client ----

test('client: put, get, delete and txn round-trip with etcd semantics', async (t) => {
  const { client } = await setup(t);
  const p1 = await client.put({ key: enc('/rt/a'), value: enc('1') });
  t.is(p1.header.clusterId, '4242', 'the header names the cluster from ClusterInfo');
  t.is(p1.header.memberId, '11');
  t.is(p1.header.raftTerm, 7);
  const p2 = await client.put({ key: enc('/rt/a'), value: enc('2'), prevKv: true });
  t.is(p2.header.revision, p1.header.revision + 1);
  t.is(dec(p2.prevKv?.value ?? new Uint8Array()), '1');
  await client.put({ key: enc('/rt/b'), value: enc('3') });

  const all = await client.range({ key: enc('/rt/'), rangeEnd: enc('/rt0') });
  t.deepEqual(
    all.kvs.map((kv) => [dec(kv.key), dec(kv.value), kv.version]),
    [
      ['/rt/a', '2', 2],
      ['/rt/b', '3', 1],
    ],
  );
  t.true(
    all.kvs[0]?.key instanceof Uint8Array && !Buffer.isBuffer(all.kvs[0]?.key),
    'plain Uint8Array, not Buffer',
  );
  const limited = await client.range({ key: enc('/rt/'), rangeEnd: enc('/rt0'), limit: 1 });
  t.is(limited.kvs.length, 1);
  t.true(limited.more);
  t.is(limited.count, 2);
  const old = await client.range({ key: enc('/rt/a'), revision: p1.header.revision });
  t.is(dec(old.kvs[0]?.value ?? new Uint8Array()), '1', 'a read at a past revision');

  const txn: TxnRequest = {
    compare: [{ target: 'mod', result: 'equal', key: enc('/rt/a'), modRevision: p2.header.revision }],
    success: [
      { put: { key: enc('/rt/c'), value: enc('4') } },
      { range: { key: enc('/rt/'), rangeEnd: enc('/rt0'), countOnly: true } },
      { txn: { compare: [], success: [{ deleteRange: { key: enc('/rt/b'), prevKv: true } }], failure: [] } },
    ],
    failure: [],
  };
  const tr = await client.txn(txn);
  t.true(tr.succeeded);
  const [put, range, nested] = tr.responses;
  t.true(put !== undefined && 'put' in put);
  t.is(range && 'range' in range ? range.range.count : -1, 3);
  const del = nested && 'txn' in nested ? nested.txn.responses[0] : undefined;
  t.is(del && 'deleteRange' in del ? dec(del.deleteRange.prevKvs[0]?.value ?? new Uint8Array()) : '', '3');

  const failed = await client.txn({
    compare: [{ target: 'value', result: 'equal', key: enc('/rt/a'), value: enc('nope') }],
    success: [],
    failure: [{ range: { key: enc('/rt/a') } }],
  });
  t.false(failed.succeeded);
  const d = await client.deleteRange({ key: enc('/rt/'), rangeEnd: enc('/rt0'), prevKv: true });
  t.is(d.deleted, 2);
  t.deepEqual(
    d.prevKvs.map((kv) => dec(kv.key)),
    ['/rt/a', '/rt/c'],
  );
});

test('client: watches share one stream, see puts and deletes in order, and stop on cancel', async (t) => {
  const { client } = await setup(t);
  const start = await client.put({ key: enc('/w/0'), value: enc('x') });
  const a: WatchResponse[] = [];
  const b: WatchResponse[] = [];
  const wa = await client.watch({ key: enc('/w/'), rangeEnd: enc('/w0'), prevKv: true }, (r) => a.push(r));
  const wb = await client.watch(
    { key: enc('/w/'), rangeEnd: enc('/w0'), startRevision: start.header.revision, noDelete: true },
    (r) => b.push(r),
  );
  t.not(wa.id, wb.id);
  await client.put({ key: enc('/w/1'), value: enc('a') });
  await client.txn({
    compare: [],
    success: [{ put: { key: enc('/w/2'), value: enc('b') } }, { deleteRange: { key: enc('/w/1') } }],
    failure: [],
  });
  const show = (rs: WatchResponse[]) =>
    rs.flatMap((r) =>
      r.events.map((e) => `${e.type} ${dec(e.kv.key)}${e.prevKv ? ` (was ${dec(e.prevKv.value)})` : ''}`),
    );
  t.true(await eventually(() => show(a).length === 3 && show(b).length === 3));
  t.deepEqual(show(a), ['put /w/1', 'put /w/2', 'delete /w/1 (was a)']);
  t.deepEqual(show(b), ['put /w/0', 'put /w/1', 'put /w/2'], 'from a past revision, without deletes');
  t.is(a[1]?.events.length, 2, "one txn's events arrive in one response");

  await wa.cancel();
  await client.put({ key: enc('/w/3'), value: enc('c') });
  t.true(await eventually(() => show(b).length === 4));
  t.is(show(a).length, 3, 'nothing after cancel');
  await wb.cancel();
});

test('client: a watch from a compacted revision is told the oldest revision left', async (t) => {
  const { client } = await setup(t);
  const first = await client.put({ key: enc('/c/a'), value: enc('1') });
  await client.put({ key: enc('/c/a'), value: enc('2') });
  const last = await client.put({ key: enc('/c/a'), value: enc('3') });
  await client.compact({ revision: last.header.revision });
  const rs: WatchResponse[] = [];
  await client.watch({ key: enc('/c/a'), startRevision: first.header.revision }, (r) => rs.push(r));
  t.true(await eventually(() => rs.length > 0));
  t.is(rs[0]?.compactRevision, last.header.revision);
  t.true(rs[0]?.canceled);
  const err = await t.throwsAsync(client.range({ key: enc('/c/a'), revision: first.header.revision }));
  t.true(err instanceof CompactedError, 'the error comes back as the catalogue class');
  t.is((err as CompactedError).compactRevision, last.header.revision, 'with the compaction revision');
  t.is((err as StoreError).grpc, GrpcCode.OutOfRange);
});

test('client: leases grant, renew, list, carry keys, and revoke; keepAlive reports a lost lease', async (t) => {
  const { client } = await setup(t);
  const l = await client.leaseGrant({ ttl: 30 });
  t.true(l.id > 0);
  t.is(l.ttl, 30);
  await client.put({ key: enc('/l/a'), value: enc('1'), lease: l.id });
  const ka = await client.leaseKeepAlive(l.id);
  t.is(ka.ttl, 30);
  const ttl = await client.leaseTimeToLive(l.id, true);
  t.is(ttl.grantedTtl, 30);
  t.deepEqual(ttl.keys.map(dec), ['/l/a']);
  t.true((await client.leaseLeases()).leases.some((x) => x.id === l.id));

  await client.leaseRevoke(l.id);
  t.is((await client.range({ key: enc('/l/a') })).kvs.length, 0, 'revoking deletes its keys');
  t.is((await client.leaseKeepAlive(l.id)).ttl, 0, 'a keep-alive for a gone lease answers TTL 0');

  // The helper renews every TTL/3 (1 s here) until the lease is gone, then says so once.
  const short = await client.leaseGrant({ ttl: 3 });
  let lost: StoreError | undefined;
  let lostCalls = 0;
  const handle = client.keepAlive(short.id, (err) => {
    lost = err;
    lostCalls++;
  });
  t.true(await eventually(() => handle.ttl === 3), 'the keep-alive stream renewed the lease');
  await new Promise((r) => setTimeout(r, 4000));
  t.true((await client.leaseTimeToLive(short.id)).ttl > 0, 'still alive after more than its TTL');
  await client.leaseRevoke(short.id);
  t.true(await eventually(() => lost !== undefined, 3000), 'onLost fires on the next renewal');
  t.is(lostCalls, 1);
  t.is(lost?.code, StoreErrorCode.LeaseNotFound);
  handle.stop();
});

test('client: cluster facet lists, adds, promotes and removes members; status per endpoint', async (t) => {
  const { client, srv } = await setup(t);
  const list = await client.cluster.memberList();
  t.deepEqual(
    list.members.map((m) => m.id),
    ['11', '12'],
  );
  t.is(list.header.clusterId, '4242');
  const added = await client.cluster.memberAdd(['http://127.0.0.3:2380'], { isLearner: true });
  t.true(added.member.isLearner);
  t.is(added.members.length, 3);
  const promoted = await client.cluster.memberPromote(added.member.id);
  t.false(promoted.members.find((m) => m.id === added.member.id)?.isLearner);
  const err = await t.throwsAsync(client.cluster.memberPromote(added.member.id));
  t.is((err as StoreError).grpc, GrpcCode.FailedPrecondition);
  t.is((err as StoreError).message, 'etcdserver: can only promote a learner member');
  const removed = await client.cluster.memberRemove(added.member.id);
  t.is(removed.members.length, 2);
  const missing = await t.throwsAsync(client.cluster.memberRemove('999'));
  t.is((missing as StoreError).grpc, GrpcCode.NotFound);
  const update = await t.throwsAsync(client.cluster.memberUpdate('11', ['http://x:1']));
  t.regex((update as StoreError).message, /not supported/);

  const statuses = await client.cluster.statusAll();
  t.is(statuses.length, 1);
  t.is(statuses[0]?.endpoint, srv.address);
  t.is(statuses[0]?.status?.version, '3.4.0-berth');
  t.is(statuses[0]?.status?.leader, '11');
  t.is(statuses[0]?.status?.raftTerm, 7);
});

// ---- errors: exact codes and messages on the wire ----

test('errors: codes and etcd messages on the wire, and the same StoreErrors through the client', async (t) => {
  const { srv, client } = await setup(t);
  const empty = await rawUnary(srv.address, 'KV', 'Put', { key: Buffer.alloc(0), value: Buffer.from('x') });
  t.is(empty.err?.code, grpc.status.INVALID_ARGUMENT);
  t.is(empty.err?.details, 'etcdserver: key is not provided');

  const lease = await rawUnary(srv.address, 'Lease', 'LeaseRevoke', { ID: 123456 });
  t.is(lease.err?.code, grpc.status.NOT_FOUND);
  t.is(lease.err?.details, 'etcdserver: requested lease not found');

  const p = await client.put({ key: enc('/e/a'), value: enc('1') });
  await client.put({ key: enc('/e/a'), value: enc('2') });
  await client.compact({ revision: p.header.revision + 1 });
  const compacted = await rawUnary(srv.address, 'KV', 'Range', {
    key: Buffer.from('/e/a'),
    revision: p.header.revision,
  });
  t.is(compacted.err?.code, grpc.status.OUT_OF_RANGE);
  t.is(compacted.err?.details, 'etcdserver: mvcc: required revision has been compacted');

  const future = await rawUnary(srv.address, 'KV', 'Range', {
    key: Buffer.from('/e/a'),
    revision: 1_000_000,
  });
  t.is(future.err?.code, grpc.status.OUT_OF_RANGE);
  t.is(future.err?.details, futureRevision().message);

  const e1 = await t.throwsAsync(client.put({ key: new Uint8Array(), value: enc('x') }));
  t.is((e1 as StoreError).code, StoreErrorCode.EmptyKey);
  t.is((e1 as StoreError).message, emptyKey().message);
  const e2 = await t.throwsAsync(client.leaseRevoke(123456));
  t.is((e2 as StoreError).code, StoreErrorCode.LeaseNotFound);
  t.is((e2 as StoreError).grpc, GrpcCode.NotFound);

  const tooMany = await t.throwsAsync(
    client.txn({
      compare: [],
      success: Array.from({ length: StoreLimits.maxTxnOps + 1 }, (_, i) => ({
        put: { key: enc(`/e/${i}`), value: enc('') },
      })),
      failure: [],
    }),
  );
  t.is((tooMany as StoreError).message, tooManyOps().message);

  const sorted = await rawUnary(srv.address, 'KV', 'Range', { key: Buffer.from('a'), sort_order: 'DESCEND' });
  t.is(sorted.err, undefined, 'a Range sorts as etcd does (etcdctl-compat compares the results)');
  const sortedInTxn = await rawUnary(srv.address, 'KV', 'Txn', {
    success: [{ request_range: { key: Buffer.from('a'), sort_order: 'DESCEND' } }],
  });
  t.is(sortedInTxn.err?.code, grpc.status.INVALID_ARGUMENT);
  t.regex(sortedInTxn.err?.details ?? '', /sort_order DESCEND .* inside a txn/);
  const asc = await rawUnary(srv.address, 'KV', 'Range', {
    key: Buffer.from('a'),
    sort_order: 'ASCEND',
    sort_target: 'KEY',
  });
  t.is(asc.err, undefined, 'ASCEND by KEY is what Berth does anyway');
  const byMod = await rawUnary(srv.address, 'KV', 'Range', { key: Buffer.from('a'), min_mod_revision: 3 });
  t.regex(byMod.err?.details ?? '', /min_mod_revision is not supported/);

  // A bug in the store (not a StoreError) is UNKNOWN with its message; the server lives on.
  const bug = await rawUnary(srv.address, 'KV', 'Range', { key: Buffer.from('boom') });
  t.is(bug.err?.code, grpc.status.UNKNOWN);
  t.regex(bug.err?.details ?? '', /cannot read properties of undefined/);
  t.is(srv.internalErrors.length, 1, 'reported through onInternalError');
  t.is((await client.range({ key: enc('/e/a') })).kvs.length, 1);
});

test('errors: oversized requests get a clear error and the server keeps serving', async (t) => {
  const { srv, client } = await setup(t);
  // Over the store's limit but inside what gRPC receives: etcd's "request is too large".
  const big = new Uint8Array(StoreLimits.maxRequestBytes + 1024);
  const e1 = await t.throwsAsync(client.put({ key: enc('/big'), value: big }));
  t.is((e1 as StoreError).code, StoreErrorCode.RequestTooLarge);
  t.is((e1 as StoreError).grpc, GrpcCode.InvalidArgument);
  t.regex((e1 as StoreError).message, /^etcdserver: request is too large/);
  // Beyond what gRPC receives at all: grpc-js refuses it before decoding.
  const huge = Buffer.alloc(StoreLimits.maxRequestBytes * 2);
  const e2 = await rawUnary(srv.address, 'KV', 'Put', { key: Buffer.from('/huge'), value: huge });
  t.is(e2.err?.code, grpc.status.RESOURCE_EXHAUSTED);
  t.regex(e2.err?.details ?? '', /larger than max/);
  await client.put({ key: enc('/after'), value: enc('ok') });
  t.is(dec((await client.range({ key: enc('/after') })).kvs[0]?.value ?? new Uint8Array()), 'ok');
});

test('errors: malformed requests are INVALID_ARGUMENT and the server keeps serving', async (t) => {
  const { srv, client } = await setup(t);
  const cases: [string, Buffer][] = [
    ['truncated bytes field', Buffer.from([0x0a, 0x10, 0x61])],
    ['key sent as a varint', Buffer.from([0x08, 0x05])],
    ['limit sent as a string', Buffer.from([0x1a, 0x03, 0x61, 0x62, 0x63])],
    ['sort_order out of its enum', Buffer.from([0x0a, 0x01, 0x61, 0x28, 0x07])],
  ];
  for (const [what, bytes] of cases) {
    const r = await rawUnary(srv.address, 'KV', 'Range', bytes, true);
    t.is(r.err?.code, grpc.status.INVALID_ARGUMENT, what);
    t.regex(r.err?.details ?? '', /^etcdserver: /, what);
  }
  const op = await rawUnary(srv.address, 'KV', 'Txn', { success: [{}] });
  t.is(op.err?.code, grpc.status.INVALID_ARGUMENT);
  t.regex(op.err?.details ?? '', /txn\.success\[0\] has no request set/);
  const cmp = await rawUnary(
    srv.address,
    'KV',
    'Txn',
    Buffer.from([0x0a, 0x05, 0x08, 0x09, 0x1a, 0x01, 0x61]),
    true,
  );
  t.regex(cmp.err?.details ?? '', /compare\[0\]\.result 9 is not a known value/);

  // A watch stream that sends garbage ends with INVALID_ARGUMENT.
  const raw = new grpc.Client(srv.address, grpc.credentials.createInsecure());
  const bad = raw.makeBidiStreamRequest<Buffer, Buffer>(
    '/etcdserverpb.Watch/Watch',
    (b) => b,
    (b) => b,
  );
  const status = await new Promise<grpc.ServiceError>((resolve) => {
    bad.on('data', () => {});
    bad.on('error', resolve);
    bad.write(Buffer.from([0x0a, 0x10, 0x0a])); // create_request, its length past the end
  });
  raw.close();
  t.is(status.code, grpc.status.INVALID_ARGUMENT);
  t.regex(status.details, /malformed Watch request/);
  t.is(srv.internalErrors.length, 0, 'malformed input is a user error, not an internal one');
  await client.put({ key: enc('/still'), value: enc('alive') });
  t.is((await client.range({ key: enc('/still') })).kvs.length, 1);
});

// ---- the Watch stream on the wire ----

test('watch stream: created with ids, events per revision, progress, cancel; ending it cancels its watches', async (t) => {
  const { srv, client, kv } = await setup(t);
  const running = () => kv.stateMachine.hub.size;
  const w = rawStream<object, WireWatchResponse>(srv.address, 'Watch', 'Watch');
  t.teardown(() => w.close());
  w.stream.write({ create_request: { key: Buffer.from('/ws/a') } });
  w.stream.write({
    create_request: { key: Buffer.from('/ws/'), range_end: Buffer.from('/ws0'), watch_id: 77 },
  });
  w.stream.write({ create_request: { key: Buffer.from('/ws/'), watch_id: 77 } });
  await w.until(() => w.received.length >= 3);
  const [c1, c2, dup] = w.received;
  t.true(c1?.created && c2?.created && dup?.created);
  t.is(c1?.watch_id, '0', 'server-chosen ids start at 0, as etcd');
  t.is(c2?.watch_id, '77', 'the client-chosen id');
  t.true(dup?.canceled, 'a duplicate id is refused');
  t.regex(dup?.cancel_reason ?? '', /duplicate watch ID/);

  const put = await client.put({ key: enc('/ws/a'), value: enc('1') });
  w.stream.write({ progress_request: {} });
  const isProgress = (r: WireWatchResponse) => r.watch_id === '-1' && !r.created;
  await w.until(() => w.received.some(isProgress));
  const after = w.received.slice(3);
  const progressAt = after.findIndex(isProgress);
  const eventsBefore = after.slice(0, progressAt).filter((r) => (r.events ?? []).length > 0);
  t.deepEqual(
    eventsBefore.map((r) => r.watch_id).sort(),
    ['0', '77'],
    'both watches got the put before the progress response',
  );
  t.true(Number(after[progressAt]?.header?.revision) >= put.header.revision);

  w.stream.write({ cancel_request: { watch_id: 77 } });
  await w.until(() => w.received.some((r) => r.canceled && r.watch_id === '77'));
  await client.put({ key: enc('/ws/b'), value: enc('2') });
  await client.put({ key: enc('/ws/a'), value: enc('3') });
  await w.until(
    () => w.received.filter((r) => r.watch_id === '0' && (r.events ?? []).length > 0).length === 2,
  );
  const last = w.received[w.received.length - 1];
  t.is(last?.watch_id, '0', 'the canceled watch sent nothing for /ws/b');
  t.is(running(), 1, 'the canceled watch is gone from the store');

  w.stream.end();
  await w.until(() => w.status() !== undefined);
  t.is(w.status(), 'ok', 'a half-close ends the stream cleanly');
  t.true(await eventually(() => running() === 0), 'ending the stream canceled its watches');

  // A stream that is cut (not half-closed) cancels its watches too.
  const cut = rawStream<object, WireWatchResponse>(srv.address, 'Watch', 'Watch');
  cut.stream.write({ create_request: { key: Buffer.from('/ws/x') } });
  await cut.until(() => cut.received.length === 1);
  t.is(running(), 1);
  cut.close();
  t.true(await eventually(() => running() === 0), 'a cut stream canceled its watch');
});

test('lease keep-alive stream: one response per request, TTL 0 for a gone lease', async (t) => {
  const { srv, client } = await setup(t);
  const l = await client.leaseGrant({ ttl: 20 });
  const s = rawStream<object, { ID: string; TTL: string }>(srv.address, 'Lease', 'LeaseKeepAlive');
  t.teardown(() => s.close());
  s.stream.write({ ID: l.id });
  s.stream.write({ ID: 987654 });
  s.stream.write({ ID: l.id });
  await s.until(() => s.received.length === 3);
  t.deepEqual(
    s.received.map((r) => [r.ID, r.TTL]),
    [
      [String(l.id), '20'],
      ['987654', '0'],
      [String(l.id), '20'],
    ],
  );
});

// ---- mapping and retry rules (pure) ----

test('mapping: every catalogue error survives the trip through a gRPC status', (t) => {
  const errors: StoreError[] = [
    emptyKey(),
    leaseNotFound(),
    noLeader(),
    requestTimeout(),
    tooManyOps(),
    futureRevision(),
  ];
  for (const e of errors) {
    const back = statusToError(errorToStatus(e));
    t.is(back.code, e.code, e.message);
    t.is(back.grpc, e.grpc, e.message);
    t.is(back.message, e.message);
  }
  const c = statusToError(errorToStatus(new CompactedError(42)));
  t.true(c instanceof CompactedError);
  t.is((c as CompactedError).compactRevision, 42);
  const unknown = statusToError({ code: grpc.status.UNAVAILABLE, details: 'connect ECONNREFUSED' });
  t.is(unknown.grpc, GrpcCode.Unavailable);
  t.is(unknown.message, 'connect ECONNREFUSED');
  const internal = statusToError({ code: grpc.status.INTERNAL, details: 'boom' });
  t.is(internal.grpc, GrpcCode.InvalidArgument);
  t.is(internal.message, 'boom');
  const rt = txnRequestFromWire(
    JSON.parse(JSON.stringify(txnRequestToWire({ compare: [], success: [], failure: [] }))) as object,
  );
  t.deepEqual(rt, { compare: [], success: [], failure: [] });
  t.throws(() => rangeRequestFromWire({ key: Buffer.from('a'), limit: '9007199254740993' }), {
    message: /limit 9007199254740993 is not an integer/,
  });
});

test('retry rule: reads retry on transient failures, writes only when provably not applied', (t) => {
  const unavailable = { code: GrpcCode.Unavailable, details: 'Connection dropped', notSent: false };
  t.true(isRetryable(unavailable, 'read'));
  t.false(isRetryable(unavailable, 'write'));
  t.true(isRetryable({ ...unavailable, notSent: true }, 'write'));
  t.true(isRetryable({ code: GrpcCode.Unavailable, details: noLeader().message, notSent: false }, 'write'));
  t.false(
    isRetryable({ code: GrpcCode.Unavailable, details: requestTimeout().message, notSent: false }, 'write'),
  );
  t.true(
    isRetryable({ code: GrpcCode.DeadlineExceeded, details: 'Deadline exceeded', notSent: false }, 'read'),
  );
  t.false(
    isRetryable({ code: GrpcCode.DeadlineExceeded, details: 'Deadline exceeded', notSent: false }, 'write'),
  );
  t.false(
    isRetryable({ code: GrpcCode.InvalidArgument, details: emptyKey().message, notSent: false }, 'read'),
  );
  const b = { initialMs: 100, maxMs: 1000 };
  t.is(backoffMs(0, b), 0);
  t.is(
    backoffMs(1, b, () => 0),
    50,
  );
  t.is(
    backoffMs(1, b, () => 1),
    100,
  );
  t.is(
    backoffMs(3, b, () => 1),
    400,
  );
  t.is(
    backoffMs(10, b, () => 1),
    1000,
    'capped',
  );
});

// ---- etcdctl, the reference client ----

function haveEtcdctl(): boolean {
  return spawnSync('sh', ['-c', 'command -v etcdctl'], { encoding: 'utf8' }).status === 0;
}

test('etcdctl (etcd v3 API) works against the server: put, get, del --prefix, txn, watch, lease, member, endpoint', async (t) => {
  if (!haveEtcdctl()) {
    t.fail(
      'etcdctl is not installed: run `apt-get install -y etcd-client` (or bash scripts/ensure-etcd.sh as root)',
    );
    return;
  }
  const { srv, client } = await setup(t);
  const env = { ...process.env, ETCDCTL_API: '3' };
  const ctl = async (...args: string[]) =>
    (
      await run(
        'etcdctl',
        ['--endpoints', srv.address, '--dial-timeout=3s', '--command-timeout=5s', ...args],
        { env, timeout: 15_000 },
      )
    ).stdout;

  t.is(await ctl('put', '/ctl/a', '1'), 'OK\n');
  t.is(await ctl('put', '/ctl/b', '2'), 'OK\n');
  t.is(await ctl('get', '/ctl/', '--prefix'), '/ctl/a\n1\n/ctl/b\n2\n');
  t.is(
    dec((await client.range({ key: enc('/ctl/b') })).kvs[0]?.value ?? new Uint8Array()),
    '2',
    'Berth sees what etcdctl wrote',
  );
  const json = JSON.parse(await ctl('get', '/ctl/a', '-w', 'json')) as {
    header: { cluster_id: number };
    count: number;
  };
  t.is(json.header.cluster_id, 4242);
  t.is(json.count, 1);

  const txn = await new Promise<string>((resolve, reject) => {
    const p = execFile(
      'etcdctl',
      ['--endpoints', srv.address, 'txn'],
      { env, timeout: 15_000 },
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    );
    p.stdin?.end('value("/ctl/a") = "1"\n\nput /ctl/t yes\n\nput /ctl/t no\n\n');
  });
  t.is(txn, 'SUCCESS\n\nOK\n');
  t.is(await ctl('get', '/ctl/t', '--print-value-only'), 'yes\n');

  const start = await client.put({ key: enc('/ctl/w/a'), value: enc('1') });
  let out = '';
  const watcher: ChildProcess = spawn(
    'etcdctl',
    ['--endpoints', srv.address, 'watch', '--prefix', '/ctl/w/', '--rev', String(start.header.revision)],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.teardown(() => {
    if (watcher.exitCode === null && watcher.pid !== undefined) process.kill(watcher.pid, 'SIGKILL');
  });
  watcher.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await ctl('put', '/ctl/w/b', '2');
  await ctl('del', '/ctl/w/a');
  const expected = 'PUT\n/ctl/w/a\n1\nPUT\n/ctl/w/b\n2\nDELETE\n/ctl/w/a\n\n';
  t.true(await eventually(() => out === expected, 8000), `etcdctl watch printed: ${JSON.stringify(out)}`);

  t.is(await ctl('del', '/ctl/', '--prefix'), '4\n', '/ctl/a, /ctl/b, /ctl/t, /ctl/w/b');
  t.is(await ctl('get', '/ctl/', '--prefix'), '');

  const granted = await ctl('lease', 'grant', '60');
  const id = /lease ([0-9a-f]+) granted with TTL\(60s\)/.exec(granted)?.[1];
  t.truthy(id, granted);
  t.regex(await ctl('lease', 'timetolive', id as string), /granted with TTL\(60s\), remaining\(\d+s\)/);
  t.regex(await ctl('lease', 'revoke', id as string), /revoked/);

  // etcdctl prints member ids in hex: 11 and 12.
  t.is(
    await ctl('member', 'list'),
    'b, started, n1, http://127.0.0.1:2380, http://127.0.0.1:2379, false\n' +
      'c, started, n2, http://127.0.0.2:2380, http://127.0.0.2:2379, false\n',
  );
  const status = JSON.parse(await ctl('endpoint', 'status', '-w', 'json')) as {
    Status: { version: string; leader: number };
  }[];
  t.is(status[0]?.Status.version, '3.4.0-berth');
  t.is(status[0]?.Status.leader, 11);
  const health = await run('etcdctl', ['--endpoints', srv.address, 'endpoint', 'health'], {
    env,
    timeout: 15_000,
  });
  t.regex(health.stdout + health.stderr, /is healthy/, 'etcdctl reports health on stderr');
});
