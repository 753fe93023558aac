import test from 'ava';
import type { CommandOf, CommandType } from '../../pkg/store/commands.js';
import { type StoreError, StoreErrorCode } from '../../pkg/store/errors.js';
import { MAX_LEASE_TTL } from '../../pkg/store/lease-table.js';
import { type LeaseChange, StoreStateMachine } from '../../pkg/store/state-machine.js';
import type { WatchResponse } from '../../pkg/store/types.js';
import { StoreLimits } from '../../pkg/store/types.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string) => enc.encode(s);
const str = (u: Uint8Array) => dec.decode(u);
const ALL = new Uint8Array([0]);

function machine() {
  const changes: LeaseChange[] = [];
  const sm = new StoreStateMachine({
    onLeaseChange: (c) => changes.push(c),
    watch: { schedule: (fn) => fn() },
  });
  let n = 0;
  function run<T extends CommandType>(type: T, request: CommandOf<T>['request']) {
    const out = sm.applyCommand({ type, requestId: `r${n++}`, request } as CommandOf<T>);
    if (!out.ok) throw out.error;
    return out.response;
  }
  function fails<T extends CommandType>(type: T, request: CommandOf<T>['request']): string | undefined {
    const out = sm.applyCommand({ type, requestId: `r${n++}`, request } as CommandOf<T>);
    return out.ok ? undefined : (out.error as StoreError).code;
  }
  return { sm, changes, run, fails };
}

test('grant: automatic ids are deterministic and never reused; explicit ids; duplicates', (t) => {
  const { sm, run, fails, changes } = machine();
  t.like(run('leaseGrant', { ttl: 10 }), { id: 1, ttl: 10 });
  t.like(run('leaseGrant', { ttl: 10, id: 3 }), { id: 3, ttl: 10 });
  t.like(run('leaseGrant', { ttl: 10 }), { id: 2 });
  t.like(run('leaseGrant', { ttl: 10 }), { id: 4 }, 'skips the explicitly taken 3');
  run('leaseRevoke', { id: 4 });
  t.like(run('leaseGrant', { ttl: 10 }), { id: 5 }, 'a revoked automatic id is not handed out again');
  t.is(fails('leaseGrant', { ttl: 10, id: 3 }), StoreErrorCode.LeaseExists);
  t.deepEqual(sm.leases.ids(), [1, 2, 3, 5]);
  t.deepEqual(changes[0], { type: 'grant', id: 1, ttl: 10 });
  t.deepEqual(changes[changes.length - 1], { type: 'grant', id: 5, ttl: 10 });
  t.is(sm.revision, 1, 'leases alone do not move the revision');
});

test('grant: TTLs below the minimum are raised; too large ones refused', (t) => {
  const { run, fails } = machine();
  t.is(run('leaseGrant', { ttl: 1 }).ttl, StoreLimits.minLeaseTtl);
  t.is(run('leaseGrant', { ttl: 0 }).ttl, StoreLimits.minLeaseTtl);
  t.is(run('leaseGrant', { ttl: MAX_LEASE_TTL }).ttl, MAX_LEASE_TTL);
  t.is(fails('leaseGrant', { ttl: MAX_LEASE_TTL + 1 }), StoreErrorCode.LeaseTtlTooLarge);
});

test('keys attach on put, move on overwrite, detach on delete', (t) => {
  const { sm, run, fails } = machine();
  const l1 = run('leaseGrant', { ttl: 10 }).id;
  const l2 = run('leaseGrant', { ttl: 10 }).id;
  run('put', { key: b('b'), value: b(''), lease: l1 });
  run('put', { key: b('a'), value: b(''), lease: l1 });
  run('put', { key: b('c'), value: b(''), lease: l1 });
  t.deepEqual(sm.leases.keys(l1).map(str), ['a', 'b', 'c']);
  run('put', { key: b('b'), value: b('') }); // no lease now
  run('put', { key: b('c'), value: b(''), lease: l2 });
  run('put', { key: b('a'), value: b('x'), ignoreLease: true });
  t.deepEqual(sm.leases.keys(l1).map(str), ['a']);
  t.deepEqual(sm.leases.keys(l2).map(str), ['c']);
  run('deleteRange', { key: b('a') });
  t.deepEqual(sm.leases.keys(l1), []);
  run('txn', { compare: [], success: [{ put: { key: b('t'), value: b(''), lease: l1 } }], failure: [] });
  t.deepEqual(sm.leases.keys(l1).map(str), ['t']);
  t.is(fails('put', { key: b('z'), value: b(''), lease: 999 }), StoreErrorCode.LeaseNotFound);
  t.is(
    fails('txn', { compare: [], success: [{ put: { key: b('z'), value: b(''), lease: 999 } }], failure: [] }),
    StoreErrorCode.LeaseNotFound,
  );
});

test('revoke deletes every attached key at one revision, with delete events, then the lease', (t) => {
  const { sm, run, fails, changes } = machine();
  const id = run('leaseGrant', { ttl: 10 }).id;
  const other = run('leaseGrant', { ttl: 10 }).id;
  run('put', { key: b('x/2'), value: b('2'), lease: id }); // 2
  run('put', { key: b('x/1'), value: b('1'), lease: id }); // 3
  run('put', { key: b('y'), value: b('y'), lease: other }); // 4
  run('put', { key: b('free'), value: b('f') }); // 5
  const got: WatchResponse[] = [];
  sm.hub.register({ key: ALL, rangeEnd: ALL, prevKv: true }, (r) => got.push(r));

  const r = run('leaseRevoke', { id });
  t.is(r.header.revision, 6);
  t.is(sm.revision, 6);
  t.deepEqual(got.length, 1, 'one revision, one response');
  t.deepEqual(
    got[0]?.events.map((e) => [e.type, str(e.kv.key), e.kv.modRevision, str(e.prevKv?.value ?? b(''))]),
    [
      ['delete', 'x/1', 6, '1'],
      ['delete', 'x/2', 6, '2'],
    ],
  );
  t.false(sm.leases.has(id));
  t.deepEqual(
    sm.mvcc.range({ key: ALL, rangeEnd: ALL }).kvs.map((kv) => str(kv.key)),
    ['free', 'y'],
  );
  t.deepEqual(changes[changes.length - 1], { type: 'revoke', id });
  t.is(fails('leaseRevoke', { id }), StoreErrorCode.LeaseNotFound);
  t.is(fails('put', { key: b('late'), value: b(''), lease: id }), StoreErrorCode.LeaseNotFound);

  const empty = run('leaseGrant', { ttl: 10 }).id;
  run('leaseRevoke', { id: empty });
  t.is(sm.revision, 6, 'revoking a lease without keys changes no key, so no revision');
});

test('a txn can compare on a key lease', (t) => {
  const { run } = machine();
  const id = run('leaseGrant', { ttl: 10 }).id;
  run('put', { key: b('k'), value: b(''), lease: id });
  const cmp = (lease: number) =>
    run('txn', {
      compare: [{ key: b('k'), target: 'lease', result: 'equal', lease }],
      success: [],
      failure: [],
    }).succeeded;
  t.true(cmp(id));
  t.false(cmp(0));
});

test('time-to-live bookkeeping data: granted TTL, keys, ids', (t) => {
  const { sm, run } = machine();
  const id = run('leaseGrant', { ttl: 30, id: 77 }).id;
  run('put', { key: b('k'), value: b(''), lease: id });
  t.is(sm.leases.grantedTtl(77), 30);
  t.is(sm.leases.grantedTtl(78), undefined);
  t.deepEqual(sm.leases.list(), [{ id: 77, ttl: 30 }]);
  t.deepEqual(sm.leases.keys(77).map(str), ['k']);
});
