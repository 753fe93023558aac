import test from 'ava';
import { type StoreError, StoreErrorCode } from '../../pkg/store/errors.js';
import { MvccStore } from '../../pkg/store/mvcc.js';
import type { Compare, RequestOp, TxnRequest, WatchEvent } from '../../pkg/store/types.js';
import { prefixEnd, StoreLimits } from '../../pkg/store/types.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string) => enc.encode(s);
const str = (u: Uint8Array) => dec.decode(u);

const put = (k: string, v: string): RequestOp => ({ put: { key: b(k), value: b(v) } });
const get = (k: string): RequestOp => ({ range: { key: b(k) } });
const del = (k: string, end?: Uint8Array): RequestOp => ({ deleteRange: { key: b(k), rangeEnd: end } });
const txn = (compare: Compare[], success: RequestOp[], failure: RequestOp[] = []): TxnRequest => ({
  compare,
  success,
  failure,
});

function errCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as StoreError).code;
  }
  return undefined;
}

function store() {
  const commits: { rev: number; events: WatchEvent[] }[] = [];
  const m = new MvccStore({ onCommit: (rev, events) => commits.push({ rev, events }) });
  return { m, commits };
}

test('compares on a missing key: version, create, mod and lease are 0; a value compare always fails', (t) => {
  const { m } = store();
  const on = (c: Omit<Compare, 'key'>) => m.txn(txn([{ key: b('missing'), ...c }], [])).succeeded;
  t.true(on({ target: 'version', result: 'equal', version: 0 }));
  t.true(on({ target: 'create', result: 'equal', createRevision: 0 }));
  t.true(on({ target: 'mod', result: 'equal', modRevision: 0 }));
  t.true(on({ target: 'lease', result: 'equal', lease: 0 }));
  t.false(on({ target: 'version', result: 'greater', version: 0 }));
  t.false(on({ target: 'value', result: 'equal', value: new Uint8Array(0) }), 'etcd: no value to compare');
  t.false(on({ target: 'value', result: 'not_equal', value: b('x') }));
});

test('compares on existing keys, every key of a range must pass', (t) => {
  const { m } = store();
  m.put({ key: b('p/a'), value: b('1') }); // 2
  m.put({ key: b('p/b'), value: b('2') }); // 3
  const ok = (c: Omit<Compare, 'key'>, key = 'p/a', rangeEnd?: Uint8Array) =>
    m.txn(txn([{ key: b(key), rangeEnd, ...c }], [])).succeeded;
  t.true(ok({ target: 'value', result: 'equal', value: b('1') }));
  t.true(ok({ target: 'value', result: 'less', value: b('2') }));
  t.true(ok({ target: 'value', result: 'greater', value: b('') }));
  t.true(ok({ target: 'mod', result: 'equal', modRevision: 2 }));
  t.true(ok({ target: 'create', result: 'less', createRevision: 3 }));
  t.true(ok({ target: 'version', result: 'not_equal', version: 2 }));
  const prefix = prefixEnd(b('p/'));
  t.true(ok({ target: 'version', result: 'equal', version: 1 }, 'p/', prefix));
  t.true(ok({ target: 'mod', result: 'greater', modRevision: 1 }, 'p/', prefix));
  t.false(ok({ target: 'mod', result: 'less', modRevision: 3 }, 'p/', prefix), 'p/b has mod 3');
  t.false(ok({ target: 'value', result: 'equal', value: b('1') }, 'p/', prefix));
});

test('success and failure branches; all writes of a txn share one revision', (t) => {
  const { m, commits } = store();
  m.put({ key: b('x'), value: b('1') }); // 2
  m.put({ key: b('gone'), value: b('1') }); // 3
  const r = m.txn(
    txn(
      [{ key: b('x'), target: 'value', result: 'equal', value: b('1') }],
      [put('x', '2'), put('y', '1'), del('gone'), get('x')],
      [put('failed', '1')],
    ),
  );
  t.true(r.succeeded);
  t.is(r.header.revision, 4);
  t.is(m.revision, 4);
  t.is(r.responses.length, 4);
  for (const k of ['x', 'y']) t.is(m.range({ key: b(k) }).kvs[0]?.modRevision, 4);
  t.is(m.range({ key: b('gone') }).count, 0);
  t.is(m.range({ key: b('failed') }).count, 0);
  const last = commits[commits.length - 1];
  t.is(last?.rev, 4);
  t.deepEqual(
    last?.events.map((e) => [e.type, str(e.kv.key)]),
    [
      ['put', 'x'],
      ['put', 'y'],
      ['delete', 'gone'],
    ],
  );

  const f = m.txn(
    txn([{ key: b('x'), target: 'value', result: 'equal', value: b('1') }], [], [put('failed', '1')]),
  );
  t.false(f.succeeded);
  t.is(f.header.revision, 5);
  t.is(m.range({ key: b('failed') }).kvs[0]?.createRevision, 5);
});

test('each op sees the earlier ops of its txn; the header revisions follow', (t) => {
  const { m } = store();
  m.put({ key: b('a'), value: b('old') }); // 2
  m.put({ key: b('b'), value: b('1') }); // 3
  const r = m.txn(txn([], [get('a'), put('a', 'new'), get('a'), del('b'), get('b')]));
  const [r0, r1, r2, r3, r4] = r.responses;
  if (!r0 || !('range' in r0) || !r2 || !('range' in r2) || !r4 || !('range' in r4)) return t.fail();
  t.is(str(r0.range.kvs[0]?.value ?? b('')), 'old');
  t.is(r0.range.header.revision, 3, 'before any write the txn reads the current revision');
  t.is(str(r2.range.kvs[0]?.value ?? b('')), 'new');
  t.like(r2.range.kvs[0], { modRevision: 4, version: 2 });
  t.is(r2.range.header.revision, 4);
  t.is(r4.range.count, 0);
  if (!r1 || !('put' in r1) || !r3 || !('deleteRange' in r3)) return t.fail();
  t.is(r1.put.header.revision, 4);
  t.is(r3.deleteRange.deleted, 1);
  t.is(r3.deleteRange.header.revision, 4);
  t.is(m.revision, 4);
  t.is(m.range({ key: b('b'), revision: 3 }).count, 1);
  t.is(m.range({ key: b('b') }).count, 0);
  t.is(str(m.range({ key: b('a'), revision: 3 }).kvs[0]?.value ?? b('')), 'old');
});

test('a txn that writes nothing leaves the revision alone', (t) => {
  const { m, commits } = store();
  m.put({ key: b('a'), value: b('1') });
  const n = commits.length;
  const r = m.txn(txn([], [get('a'), del('nothing-here')]));
  t.is(r.header.revision, 2);
  t.is(m.revision, 2);
  t.is(commits.length, n);
  t.is(m.txn(txn([], [])).header.revision, 2);
});

test('nested txns: their compares see the store as it was before the outer txn (as etcd)', (t) => {
  const { m } = store();
  m.put({ key: b('a'), value: b('1') }); // 2
  const r = m.txn(
    txn(
      [],
      [
        put('a', '2'),
        {
          txn: txn(
            [{ key: b('a'), target: 'value', result: 'equal', value: b('1') }],
            [put('seen-old', 'yes'), get('a')],
            [put('seen-new', 'yes')],
          ),
        },
      ],
    ),
  );
  t.is(r.header.revision, 3);
  t.is(m.range({ key: b('seen-old') }).count, 1);
  t.is(m.range({ key: b('seen-new') }).count, 0);
  const nested = r.responses[1];
  if (!nested || !('txn' in nested)) return t.fail();
  t.true(nested.txn.succeeded);
  const inner = nested.txn.responses[1];
  if (!inner || !('range' in inner)) return t.fail();
  t.is(str(inner.range.kvs[0]?.value ?? b('')), '2', 'but its ops see the writes before them');
});

test('duplicate keys in one txn are refused (etcd checkIntervals)', (t) => {
  const { m } = store();
  const dup = (r: TxnRequest) => errCode(() => m.txn(r));
  t.is(dup(txn([], [put('a', '1'), put('a', '2')])), StoreErrorCode.DuplicateKey);
  t.is(dup(txn([], [put('a/1', '1'), del('a/', prefixEnd(b('a/')))])), StoreErrorCode.DuplicateKey);
  t.is(dup(txn([], [del('a'), put('a', '1')])), StoreErrorCode.DuplicateKey);
  t.is(dup(txn([], [put('a', '1'), { txn: txn([], [put('a', '2')]) }])), StoreErrorCode.DuplicateKey);
  t.is(dup(txn([], [del('a'), { txn: txn([], [], [put('a', '2')]) }])), StoreErrorCode.DuplicateKey);
  t.is(
    dup(txn([], [], [put('b', '1'), put('b', '1')])),
    StoreErrorCode.DuplicateKey,
    'the failure branch too',
  );
  t.is(m.revision, 1);

  // Allowed: the same key in both branches (only one runs), in then/else of a nested txn,
  // overlapping deletes, reads of written keys.
  t.notThrows(() => m.txn(txn([], [put('a', '1')], [put('a', '2')])));
  t.notThrows(() => m.txn(txn([], [{ txn: txn([], [put('n', '1')], [put('n', '2')]) }])));
  t.notThrows(() => m.txn(txn([], [del('a'), del('a', prefixEnd(b('a')))])));
  t.notThrows(() => m.txn(txn([], [put('a', '3'), get('a')])));
});

test('too many ops, and the budget shared with nested txns', (t) => {
  const { m } = store();
  const many = (n: number) => Array.from({ length: n }, (_v, i) => put(`k${i}`, 'v'));
  t.is(
    errCode(() => m.txn(txn([], many(StoreLimits.maxTxnOps + 1)))),
    StoreErrorCode.TooManyOps,
  );
  t.notThrows(() => m.txn(txn([], many(StoreLimits.maxTxnOps))));
  const half = StoreLimits.maxTxnOps / 2;
  const nested = txn(
    [],
    [
      ...many(half).slice(1),
      {
        txn: txn(
          [],
          many(half + 1).map((_op, i) => put(`n${i}`, 'v')),
        ),
      },
    ],
  );
  t.is(
    errCode(() => m.txn(nested)),
    StoreErrorCode.TooManyOps,
  );
  t.is(
    errCode(() => m.txn(txn([{ key: new Uint8Array(0), target: 'version', result: 'equal' }], []))),
    StoreErrorCode.EmptyKey,
  );
});

test('a txn that fails part-way changes nothing', (t) => {
  const { m, commits } = store();
  m.put({ key: b('a'), value: b('1') });
  const n = commits.length;
  const code = errCode(() =>
    m.txn(txn([], [put('a', '2'), put('b', '1'), { put: { key: b('c'), value: b('1'), lease: 42 } }])),
  );
  t.is(code, StoreErrorCode.LeaseNotFound);
  t.is(m.revision, 2);
  t.is(commits.length, n);
  t.is(str(m.range({ key: b('a') }).kvs[0]?.value ?? b('')), '1');
  t.is(m.range({ key: b('b') }).count, 0);
  t.deepEqual(
    m.dump().keys.map((k) => str(k.key)),
    ['a'],
    'keys created by the failed txn are gone from the index',
  );
  t.is(
    errCode(() =>
      m.txn(txn([], [put('x', '1'), { put: { key: b('y'), value: new Uint8Array(0), ignoreValue: true } }])),
    ),
    StoreErrorCode.KeyNotFound,
  );
  t.is(m.revision, 2);
});

test('reads inside a txn at an explicit revision: up to the revision the txn started from', (t) => {
  const { m } = store();
  m.put({ key: b('a'), value: b('1') }); // 2
  m.put({ key: b('a'), value: b('2') }); // 3
  const r = m.txn(txn([], [put('b', '1'), { range: { key: b('a'), revision: 2 } }]));
  const rr = r.responses[1];
  if (!rr || !('range' in rr)) return t.fail();
  t.is(str(rr.range.kvs[0]?.value ?? b('')), '1');
  t.is(
    errCode(() => m.txn(txn([], [put('c', '1'), { range: { key: b('c'), revision: 5 } }]))),
    StoreErrorCode.FutureRevision,
    'the revision the txn is writing is still the future (etcd checkRange)',
  );
  t.is(m.revision, 4);
  m.compact(3);
  t.is(
    errCode(() => m.txn(txn([], [{ range: { key: b('a'), revision: 2 } }]))),
    StoreErrorCode.Compacted,
  );
});
