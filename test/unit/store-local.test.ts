import test from 'ava';
import { type StoreError, StoreErrorCode } from '../../pkg/store/errors.js';
import { createLocalStore } from '../../pkg/store/local-store.js';
import type { WatchResponse } from '../../pkg/store/types.js';
import { prefixEnd, StoreLimits } from '../../pkg/store/types.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string) => enc.encode(s);
const str = (u: Uint8Array) => dec.decode(u);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rejection(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (err) {
    return err as StoreError;
  }
  throw new Error('expected a rejection');
}

test('the KV interface over the local state machine', async (t) => {
  const kv = createLocalStore({ clusterId: 'c1', memberId: 'm1' });
  t.teardown(() => kv.close());
  const p = await kv.put({ key: b('/registry/pods/a'), value: b('{}') });
  t.deepEqual(p.header, { clusterId: 'c1', memberId: 'm1', revision: 2, raftTerm: 0 });
  await kv.put({ key: b('/registry/pods/b'), value: b('{}') });
  const r = await kv.range({ key: b('/registry/pods/'), rangeEnd: prefixEnd(b('/registry/pods/')) });
  t.deepEqual(
    r.kvs.map((x) => str(x.key)),
    ['/registry/pods/a', '/registry/pods/b'],
  );
  const guarded = await kv.txn({
    compare: [{ key: b('/registry/pods/a'), target: 'mod', result: 'equal', modRevision: 2 }],
    success: [{ put: { key: b('/registry/pods/a'), value: b('{"v":2}') } }],
    failure: [],
  });
  t.true(guarded.succeeded);
  t.is(guarded.header.revision, 4);
  t.deepEqual(guarded.responses[0], {
    put: { header: { clusterId: 'c1', memberId: 'm1', revision: 4, raftTerm: 0 } },
  });
  const stale = await kv.txn({
    compare: [{ key: b('/registry/pods/a'), target: 'mod', result: 'equal', modRevision: 2 }],
    success: [{ put: { key: b('/registry/pods/a'), value: b('lost update') } }],
    failure: [{ range: { key: b('/registry/pods/a') } }],
  });
  t.false(stale.succeeded);
  const d = await kv.deleteRange({ key: b('/registry/'), rangeEnd: prefixEnd(b('/registry/')) });
  t.is(d.deleted, 2);
  t.is((await kv.compact({ revision: 4 })).header.revision, 5);
  t.is((await rejection(kv.range({ key: b('/x'), revision: 3 }))).code, StoreErrorCode.Compacted);
});

test('validation at the boundary names the field', async (t) => {
  const kv = createLocalStore();
  t.teardown(() => kv.close());
  t.is((await rejection(kv.put({ key: new Uint8Array(0), value: b('') }))).code, StoreErrorCode.EmptyKey);
  t.is((await rejection(kv.range({ key: new Uint8Array(0) }))).code, StoreErrorCode.EmptyKey);
  const neg = await rejection(kv.range({ key: b('k'), limit: -1 }));
  t.is(neg.code, StoreErrorCode.InvalidArgument);
  t.regex(neg.message, /range\.limit/);
  t.regex((await rejection(kv.range({ key: b('k'), revision: Number.NaN }))).message, /range\.revision/);
  t.regex((await rejection(kv.put({ key: b('k'), value: b(''), lease: -5 }))).message, /put\.lease/);
  t.regex((await rejection(kv.leaseGrant({ ttl: -1 }))).message, /leaseGrant\.ttl/);
  t.regex(
    (await rejection(kv.watch({ key: b('k'), startRevision: -2 }, () => {}))).message,
    /watch\.startRevision/,
  );
  const nested = await rejection(
    kv.txn({
      compare: [],
      success: [{ txn: { compare: [], success: [{ range: { key: b('k'), limit: 0.5 } }], failure: [] } }],
      failure: [],
    }),
  );
  t.regex(nested.message, /txn\.success\[0\]\.txn\.success\[0\]\.range\.limit/);
  const big = await rejection(kv.put({ key: b('k'), value: new Uint8Array(StoreLimits.maxRequestBytes) }));
  t.is(big.code, StoreErrorCode.RequestTooLarge);
  t.is((await kv.range({ key: b('k') })).count, 0, 'nothing was written');
});

test('watch through the local store, and cancel', async (t) => {
  const kv = createLocalStore();
  t.teardown(() => kv.close());
  await kv.put({ key: b('w/1'), value: b('a') });
  const got: WatchResponse[] = [];
  const w = await kv.watch({ key: b('w/'), rangeEnd: prefixEnd(b('w/')), startRevision: 1 }, (r) =>
    got.push(r),
  );
  await kv.put({ key: b('w/2'), value: b('b') });
  await sleep(5);
  t.deepEqual(
    got.map((r) => [r.header.revision, r.watchId, str(r.events[0]?.kv.key ?? b(''))]),
    [
      [2, w.id, 'w/1'],
      [3, w.id, 'w/2'],
    ],
  );
  await w.cancel();
  await kv.put({ key: b('w/3'), value: b('c') });
  await sleep(5);
  t.is(got.length, 2);
});

test('a lease without keep-alives expires and takes its keys; keep-alives keep it', async (t) => {
  const kv = createLocalStore({ leaseCheckIntervalMs: 50 });
  t.teardown(() => kv.close());
  const dying = await kv.leaseGrant({ ttl: 1 });
  const kept = await kv.leaseGrant({ ttl: 1 });
  t.is(dying.ttl, StoreLimits.minLeaseTtl, 'raised to the minimum TTL');
  await kv.put({ key: b('dying'), value: b(''), lease: dying.id });
  await kv.put({ key: b('kept'), value: b(''), lease: kept.id });
  const events: WatchResponse[] = [];
  await kv.watch({ key: b('dying') }, (r) => events.push(r));

  const ttl = await kv.leaseTimeToLive(dying.id, true);
  t.is(ttl.grantedTtl, 2);
  t.true(ttl.ttl >= 1 && ttl.ttl <= 2);
  t.deepEqual(ttl.keys.map(str), ['dying']);

  const started = Date.now();
  const keepAlive = setInterval(() => void kv.leaseKeepAlive(kept.id), 400);
  t.teardown(() => clearInterval(keepAlive));
  while ((await kv.range({ key: b('dying') })).count > 0) {
    if (Date.now() - started > 2600) break;
    await sleep(50);
  }
  const elapsed = Date.now() - started;
  t.is((await kv.range({ key: b('dying') })).count, 0, `expired within ${elapsed} ms`);
  t.true(elapsed >= 1500, `not before its TTL (${elapsed} ms)`);
  await sleep(Math.max(0, 2600 - elapsed));
  clearInterval(keepAlive);
  t.is((await kv.range({ key: b('kept') })).count, 1, 'kept alive past its TTL');
  t.deepEqual(
    events.map((r) => r.events[0]?.type),
    ['delete'],
  );
  t.deepEqual(await kv.leaseTimeToLive(dying.id), {
    header: { clusterId: 'local', memberId: 'local', revision: 4, raftTerm: 0 },
    id: dying.id,
    ttl: -1,
    grantedTtl: 0,
    keys: [],
  });
  t.is((await kv.leaseKeepAlive(dying.id)).ttl, 0);
  t.is((await kv.leaseKeepAlive(kept.id)).ttl, 2);
  t.deepEqual((await kv.leaseLeases()).leases, [{ id: kept.id }]);
  await kv.leaseRevoke(kept.id);
  t.is((await kv.range({ key: b('kept') })).count, 0);
  t.is((await rejection(kv.leaseRevoke(kept.id))).code, StoreErrorCode.LeaseNotFound);
});

test('a closed store refuses calls', async (t) => {
  const kv = createLocalStore();
  await kv.close();
  await kv.close();
  t.is((await rejection(kv.range({ key: b('k') }))).code, StoreErrorCode.Stopped);
  t.is((await rejection(kv.put({ key: b('k'), value: b('') }))).code, StoreErrorCode.Stopped);
});
