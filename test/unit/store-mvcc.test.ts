import test from 'ava';
import { CompactedError, type StoreError, StoreErrorCode } from '../../pkg/store/errors.js';
import { MvccStore } from '../../pkg/store/mvcc.js';
import { prefixEnd } from '../../pkg/store/types.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string) => enc.encode(s);
const str = (u: Uint8Array) => dec.decode(u);
const ALL = new Uint8Array([0]);

function code(t: { throws: (fn: () => unknown) => unknown }, fn: () => unknown): string | undefined {
  const err = t.throws(fn) as StoreError | undefined;
  return err?.code;
}

function keysOf(m: MvccStore, key: Uint8Array, rangeEnd?: Uint8Array): string[] {
  return m.range({ key, rangeEnd }).kvs.map((kv) => str(kv.key));
}

test('an empty store is at revision 1; revisions and versions move exactly as in etcd', (t) => {
  const m = new MvccStore();
  t.is(m.revision, 1);
  t.is(m.put({ key: b('a'), value: b('1') }).header.revision, 2);
  t.like(m.range({ key: b('a') }).kvs[0], { createRevision: 2, modRevision: 2, version: 1, lease: 0 });

  t.is(m.put({ key: b('a'), value: b('2') }).header.revision, 3);
  t.like(m.range({ key: b('a') }).kvs[0], { createRevision: 2, modRevision: 3, version: 2 });

  const del = m.deleteRange({ key: b('a') });
  t.is(del.header.revision, 4);
  t.is(del.deleted, 1);
  t.deepEqual(m.range({ key: b('a') }), {
    header: { clusterId: '', memberId: '', revision: 4, raftTerm: 0 },
    kvs: [],
    more: false,
    count: 0,
  });

  t.is(m.put({ key: b('a'), value: b('3') }).header.revision, 5);
  const kv = m.range({ key: b('a') }).kvs[0];
  t.like(kv, { createRevision: 5, modRevision: 5, version: 1 });
  t.is(str(kv?.value ?? b('')), '3');

  // History: every past revision reads as it was.
  t.is(str(m.range({ key: b('a'), revision: 2 }).kvs[0]?.value ?? b('')), '1');
  t.like(m.range({ key: b('a'), revision: 3 }).kvs[0], { version: 2, modRevision: 3 });
  t.is(m.range({ key: b('a'), revision: 4 }).count, 0);
  t.is(m.range({ key: b('a'), revision: 1 }).count, 0);
  t.is(m.range({ key: b('a'), revision: 3 }).header.revision, 5, 'the header carries the current revision');
});

test('a put of the same value still makes a new revision', (t) => {
  const m = new MvccStore();
  m.put({ key: b('k'), value: b('v') });
  m.put({ key: b('k'), value: b('v') });
  t.is(m.revision, 3);
  t.like(m.range({ key: b('k') }).kvs[0], { version: 2, modRevision: 3 });
});

function seeded(): MvccStore {
  const m = new MvccStore();
  for (const k of ['a', 'ab', 'abc', 'b', 'c']) m.put({ key: b(k), value: b(`v-${k}`) });
  return m;
}

test('ranges: single key, [key, end), prefix, every key from key, every key', (t) => {
  const m = seeded();
  t.deepEqual(keysOf(m, b('ab')), ['ab']);
  t.deepEqual(keysOf(m, b('zz')), []);
  t.deepEqual(keysOf(m, b('ab'), b('b')), ['ab', 'abc']);
  t.deepEqual(keysOf(m, b('a'), prefixEnd(b('a'))), ['a', 'ab', 'abc']);
  t.deepEqual(keysOf(m, b('b'), ALL), ['b', 'c']);
  t.deepEqual(keysOf(m, ALL, ALL), ['a', 'ab', 'abc', 'b', 'c']);
  t.deepEqual(keysOf(m, b('c'), b('a')), [], 'an end before the key selects nothing');
});

test('keys sort as unsigned bytes', (t) => {
  const m = new MvccStore();
  const keys = [[0x61, 0xff], [0x61, 0x7f], [0x61], [0x61, 0x80, 0x00], [0x00, 0x01]].map(
    (k) => new Uint8Array(k),
  );
  for (const k of keys) m.put({ key: k, value: b('') });
  const got = m.range({ key: ALL, rangeEnd: ALL }).kvs.map((kv) => [...kv.key]);
  t.deepEqual(got, [[0x00, 0x01], [0x61], [0x61, 0x7f], [0x61, 0x80, 0x00], [0x61, 0xff]]);
  t.deepEqual(
    m.range({ key: new Uint8Array([0x61, 0xff]), rangeEnd: prefixEnd(new Uint8Array([0x61, 0xff])) }).count,
    1,
  );
});

test('limit, more and count; keysOnly; countOnly', (t) => {
  const m = seeded();
  const limited = m.range({ key: b('a'), rangeEnd: prefixEnd(b('a')), limit: 2 });
  t.deepEqual(
    limited.kvs.map((kv) => str(kv.key)),
    ['a', 'ab'],
  );
  t.true(limited.more);
  t.is(limited.count, 3);

  const exact = m.range({ key: b('a'), rangeEnd: prefixEnd(b('a')), limit: 3 });
  t.false(exact.more);
  t.is(exact.kvs.length, 3);

  const keysOnly = m.range({ key: b('a'), rangeEnd: b('b'), keysOnly: true });
  t.is(keysOnly.kvs.length, 3);
  for (const kv of keysOnly.kvs) {
    t.is(kv.value.length, 0);
    t.is(kv.version, 1);
  }

  const countOnly = m.range({ key: ALL, rangeEnd: ALL, countOnly: true, limit: 1 });
  t.deepEqual(countOnly.kvs, []);
  t.is(countOnly.count, 5);
  t.false(countOnly.more);
});

test('reads at past, compacted and future revisions', (t) => {
  const m = new MvccStore();
  m.put({ key: b('x'), value: b('1') }); // 2
  m.put({ key: b('y'), value: b('1') }); // 3
  m.put({ key: b('x'), value: b('2') }); // 4
  m.deleteRange({ key: b('y') }); // 5
  t.deepEqual(keysOf(m, ALL, ALL), ['x']);
  t.deepEqual(
    m.range({ key: ALL, rangeEnd: ALL, revision: 3 }).kvs.map((kv) => str(kv.value)),
    ['1', '1'],
  );

  t.is(
    code(t, () => m.range({ key: b('x'), revision: 6 })),
    StoreErrorCode.FutureRevision,
  );
  m.compact(4);
  const err = t.throws(() => m.range({ key: b('x'), revision: 3 }), { instanceOf: CompactedError });
  t.is(err?.compactRevision, 4);
  t.is(
    str(m.range({ key: b('x'), revision: 4 }).kvs[0]?.value ?? b('')),
    '2',
    'the compaction revision stays readable',
  );
  t.is(m.range({ key: b('y'), revision: 4 }).count, 1);
});

test('compaction keeps the newest version at or below the revision and drops deleted keys', (t) => {
  const m = new MvccStore();
  m.put({ key: b('a'), value: b('1') }); // 2
  m.put({ key: b('a'), value: b('2') }); // 3
  m.put({ key: b('b'), value: b('1') }); // 4
  m.deleteRange({ key: b('b') }); // 5
  m.put({ key: b('c'), value: b('1') }); // 6
  m.deleteRange({ key: b('d') }); // nothing: no revision
  t.is(m.revision, 6);

  t.is(
    code(t, () => m.compact(7)),
    StoreErrorCode.FutureRevision,
  );
  t.is(m.compact(5).header.revision, 6);
  t.is(m.compactRevision, 5);
  const dump = m.dump();
  t.deepEqual(
    dump.keys.map((k) => [str(k.key), k.records.map((r) => r.main)]),
    [
      ['a', [3]],
      ['b', [5]], // the tombstone at the compaction revision itself stays until the next one
      ['c', [6]],
    ],
  );
  t.deepEqual(keysOf(m, ALL, ALL), ['a', 'c']);
  t.is(m.range({ key: b('a') }).kvs[0]?.version, 2, 'versions survive compaction');

  const again = t.throws(() => m.compact(5), { instanceOf: CompactedError });
  t.is(again?.compactRevision, 5);
  t.throws(() => m.compact(4), { instanceOf: CompactedError });
  m.compact(6);
  t.deepEqual(
    m.dump().keys.map((k) => str(k.key)),
    ['a', 'c'],
  );
  // Writes after compaction carry on from the same revision.
  t.is(m.put({ key: b('b'), value: b('2') }).header.revision, 7);
  t.like(m.range({ key: b('b') }).kvs[0], { createRevision: 7, version: 1 });
});

test('put: prevKv, ignoreValue, ignoreLease and their errors', (t) => {
  const m = new MvccStore({ leaseExists: (id) => id === 7 });
  t.is(m.put({ key: b('k'), value: b('v1'), prevKv: true }).prevKv, undefined);
  const r = m.put({ key: b('k'), value: b('v2'), prevKv: true, lease: 7 });
  t.like(r.prevKv, { modRevision: 2, version: 1 });
  t.is(str(r.prevKv?.value ?? b('')), 'v1');

  m.put({ key: b('k'), value: new Uint8Array(0), ignoreValue: true });
  t.like(m.range({ key: b('k') }).kvs[0], { version: 3, lease: 0 });
  t.is(str(m.range({ key: b('k') }).kvs[0]?.value ?? b('')), 'v2');

  m.put({ key: b('k'), value: b('v4'), lease: 7 });
  m.put({ key: b('k'), value: b('v5'), ignoreLease: true });
  t.like(m.range({ key: b('k') }).kvs[0], { version: 5, lease: 7 });

  const rev = m.revision;
  t.is(
    code(t, () => m.put({ key: b('nope'), value: new Uint8Array(0), ignoreValue: true })),
    StoreErrorCode.KeyNotFound,
  );
  t.is(
    code(t, () => m.put({ key: b('nope'), value: b('x'), ignoreLease: true })),
    StoreErrorCode.KeyNotFound,
  );
  t.is(
    code(t, () => m.put({ key: b('k'), value: b('x'), ignoreValue: true })),
    StoreErrorCode.ValueProvided,
  );
  t.is(
    code(t, () => m.put({ key: b('k'), value: b('x'), lease: 7, ignoreLease: true })),
    StoreErrorCode.LeaseProvided,
  );
  t.is(
    code(t, () => m.put({ key: b('k'), value: b('x'), lease: 8 })),
    StoreErrorCode.LeaseNotFound,
  );
  t.is(
    code(t, () => m.put({ key: new Uint8Array(0), value: b('x') })),
    StoreErrorCode.EmptyKey,
  );
  t.is(m.revision, rev, 'failed puts change nothing');
});

test('deleteRange: counts, prevKvs, and no revision when nothing is deleted', (t) => {
  const m = seeded();
  const before = m.revision;
  const none = m.deleteRange({ key: b('zz'), rangeEnd: ALL });
  t.is(none.deleted, 0);
  t.is(none.header.revision, before);
  t.is(m.revision, before);

  const r = m.deleteRange({ key: b('a'), rangeEnd: prefixEnd(b('a')), prevKv: true });
  t.is(r.deleted, 3);
  t.is(r.header.revision, before + 1);
  t.deepEqual(
    r.prevKvs.map((kv) => str(kv.value)),
    ['v-a', 'v-ab', 'v-abc'],
  );
  t.deepEqual(m.deleteRange({ key: b('b') }).prevKvs, [], 'prevKvs only when asked');
  t.deepEqual(keysOf(m, ALL, ALL), ['c']);
  t.is(
    code(t, () => m.deleteRange({ key: new Uint8Array(0) })),
    StoreErrorCode.EmptyKey,
  );
  t.is(
    code(t, () => m.range({ key: new Uint8Array(0) })),
    StoreErrorCode.EmptyKey,
  );
});

test('returned bytes are copies: mutating them does not change the store', (t) => {
  const m = new MvccStore();
  const value = b('abc');
  m.put({ key: b('k'), value });
  value[0] = 0x7a;
  const kv = m.range({ key: b('k') }).kvs[0];
  t.is(str(kv?.value ?? b('')), 'abc');
  if (kv) kv.value[0] = 0x7a;
  t.is(str(m.range({ key: b('k') }).kvs[0]?.value ?? b('')), 'abc');
});

test('history lists changes in revision order with prevKv', (t) => {
  const m = new MvccStore();
  m.put({ key: b('a'), value: b('1') }); // 2
  m.put({ key: b('b'), value: b('1') }); // 3
  m.put({ key: b('a'), value: b('2') }); // 4
  m.deleteRange({ key: b('b') }); // 5
  const h = m.history(3, ALL, ALL);
  t.deepEqual(
    h.map((e) => [e.type, str(e.kv.key), e.kv.modRevision, e.prevKv ? str(e.prevKv.value) : null]),
    [
      ['put', 'b', 3, null],
      ['put', 'a', 4, '1'],
      ['delete', 'b', 5, '1'],
    ],
  );
  t.like(h[2]?.kv, { createRevision: 0, version: 0, lease: 0 });
  t.is(h[2]?.kv.value.length, 0);
});
