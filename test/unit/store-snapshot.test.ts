import test from 'ava';
import { createRandom } from '../../pkg/raft/rand.js';
import type { Entry } from '../../pkg/raft/types.js';
import { EntryType } from '../../pkg/raft/types.js';
import {
  type Command,
  type CommandOf,
  type CommandType,
  decodeCommand,
  encodeCommand,
  StoreDecodeError,
} from '../../pkg/store/commands.js';
import { StoreError, StoreErrorCode } from '../../pkg/store/errors.js';
import { type CommandOutcome, StoreStateMachine } from '../../pkg/store/state-machine.js';
import type { RequestOp } from '../../pkg/store/types.js';
import { prefixEnd } from '../../pkg/store/types.js';

const enc = new TextEncoder();
const b = (s: string) => enc.encode(s);
const ALL = new Uint8Array([0]);

const cmd = <T extends CommandType>(type: T, requestId: string, request: CommandOf<T>['request']) =>
  ({ type, requestId, request }) as Command;

const samples: Command[] = [
  cmd('put', 'p1', { key: b('k'), value: b('v'), lease: 5, prevKv: true }),
  cmd('put', 'p2', { key: b('k'), value: new Uint8Array(0), ignoreValue: true, ignoreLease: true }),
  cmd('deleteRange', 'd1', { key: b('a'), rangeEnd: prefixEnd(b('a')), prevKv: true }),
  cmd('deleteRange', 'd2', { key: b('a') }),
  cmd('txn', 'ü-ñicode', {
    compare: [
      { key: b('a'), target: 'value', result: 'not_equal', value: b('x') },
      { key: b('a'), rangeEnd: ALL, target: 'mod', result: 'less', modRevision: 9 },
      { key: b('b'), target: 'version', result: 'greater', version: 0 },
      { key: b('c'), target: 'create', result: 'equal', createRevision: 3 },
      { key: b('d'), target: 'lease', result: 'equal' },
    ],
    success: [
      {
        range: {
          key: b('a'),
          rangeEnd: ALL,
          limit: 3,
          revision: 2,
          keysOnly: true,
          countOnly: true,
          serializable: true,
        },
      },
      { put: { key: b('a'), value: b('1') } },
      {
        txn: {
          compare: [],
          success: [{ deleteRange: { key: b('z') } }],
          failure: [{ txn: { compare: [], success: [], failure: [] } }],
        },
      },
    ],
    failure: [{ range: { key: b('q') } }],
  }),
  cmd('compact', 'c', { revision: 12 }),
  cmd('leaseGrant', 'g', { ttl: 30 }),
  cmd('leaseGrant', 'g2', { ttl: 30, id: 2 ** 40 }),
  cmd('leaseRevoke', 'r', { id: 7 }),
];

test('every command type survives encode → decode unchanged', (t) => {
  for (const c of samples) {
    const bytes = encodeCommand(c);
    t.deepEqual(decodeCommand(bytes), c, c.type);
    t.deepEqual(encodeCommand(decodeCommand(bytes)), bytes);
  }
});

test('encoding refuses negative or fractional numbers, naming the field', (t) => {
  const bad = [
    cmd('put', 'x', { key: b('k'), value: b(''), lease: -1 }),
    cmd('compact', 'x', { revision: Number.NaN }),
    cmd('leaseGrant', 'x', { ttl: 1.5 }),
    cmd('txn', 'x', { compare: [], success: [{ range: { key: b('k'), limit: -3 } }], failure: [] }),
  ];
  const fields = ['put.lease', 'compact.revision', 'leaseGrant.ttl', 'txn.success[0].range.limit'];
  bad.forEach((c, i) => {
    const err = t.throws(() => encodeCommand(c), { instanceOf: StoreError });
    t.is(err?.code, StoreErrorCode.InvalidArgument);
    t.true(err?.message.includes(fields[i] as string), err?.message);
  });
});

test('decoding garbage always fails with StoreDecodeError, never anything else', (t) => {
  const rnd = createRandom(7);
  const valid = samples.map(encodeCommand);
  let failures = 0;
  const tryDecode = (data: Uint8Array) => {
    try {
      decodeCommand(data);
    } catch (err) {
      failures++;
      if (!(err instanceof StoreDecodeError)) t.fail(`unexpected ${String(err)}`);
    }
  };
  tryDecode(new Uint8Array(0));
  tryDecode(new Uint8Array([0x53, 2]));
  for (const v of valid) {
    for (let cut = 0; cut < v.length; cut++) tryDecode(v.subarray(0, cut));
    tryDecode(new Uint8Array([...v, 0]));
  }
  for (let i = 0; i < 3000; i++) {
    const base = valid[Math.floor(rnd() * valid.length)] as Uint8Array;
    const m = base.slice();
    const flips = 1 + Math.floor(rnd() * 4);
    for (let f = 0; f < flips; f++) m[Math.floor(rnd() * m.length)] = Math.floor(rnd() * 256);
    tryDecode(m);
    tryDecode(Uint8Array.from({ length: Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256)));
  }
  // Deep nesting is refused before it can exhaust the stack.
  const deep: number[] = [0x53, 1, 1, 0x78, 3, 0, 1];
  for (let i = 0; i < 100_000; i++) deep.push(4, 0, 1);
  tryDecode(new Uint8Array(deep));
  t.true(failures > 3000);
  const e = t.throws(() => decodeCommand(new Uint8Array([0x53, 1, 2, 0x69, 0x64, 99])), {
    instanceOf: StoreDecodeError,
  });
  t.is(e?.requestId, 'id', 'the request id is reported when it could be read');
  t.is(e?.code, StoreErrorCode.InvalidArgument);
});

let entryIndex = 0;
const entry = (data: Uint8Array): Entry => ({ term: 1, index: ++entryIndex, type: EntryType.Normal, data });

test('apply(): the proposer collects its outcome by request id; errors are outcomes', (t) => {
  const seen: [string, number][] = [];
  const sm = new StoreStateMachine({ onResult: (o, index) => seen.push([o.requestId, index]) });
  sm.expect('mine-1');
  sm.expect('mine-2');
  sm.apply(entry(encodeCommand(cmd('put', 'mine-1', { key: b('k'), value: b('v') }))));
  sm.apply(entry(encodeCommand(cmd('put', 'theirs', { key: b('k'), value: b('v') }))));
  sm.apply(entry(encodeCommand(cmd('leaseRevoke', 'mine-2', { id: 9 }))));
  const one = sm.takeResult('mine-1');
  t.true(one?.ok);
  if (one?.ok) t.is((one.response as { header: { revision: number } }).header.revision, 2);
  t.is(sm.takeResult('mine-1'), undefined, 'taken once');
  t.is(sm.takeResult('theirs'), undefined, 'nobody expected it, nothing kept');
  const two = sm.takeResult('mine-2') as CommandOutcome;
  t.false(two.ok);
  if (!two.ok) t.is(two.error.code, StoreErrorCode.LeaseNotFound);
  t.deepEqual(
    seen.map(([id]) => id),
    ['mine-1', 'theirs', 'mine-2'],
  );
  sm.expect('never');
  sm.forget('never');
  t.is(sm.takeResult('never'), undefined);
});

test('apply(): a corrupt entry is recorded as an error and changes nothing', (t) => {
  const sm = new StoreStateMachine();
  sm.applyCommand(cmd('put', 'a', { key: b('k'), value: b('v') }));
  const before = sm.snapshot();
  sm.expect('id');
  t.notThrows(() => sm.apply(entry(new Uint8Array([0x53, 1, 2, 0x69, 0x64, 99]))));
  t.notThrows(() => sm.apply(entry(new Uint8Array([1, 2, 3]))));
  t.notThrows(() => sm.apply(entry(new Uint8Array(0))));
  const o = sm.takeResult('id');
  t.true(o !== undefined && !o.ok && o.error instanceof StoreDecodeError);
  t.deepEqual(sm.snapshot(), before);
});

/** A random but reproducible workload touching every command type, errors included. */
function workload(seed: number, n: number): Command[] {
  const rnd = createRandom(seed);
  const keys = ['a', 'a/1', 'a/2', 'b', 'b/x', 'c', '\u00ff'];
  const pick = () => b(keys[Math.floor(rnd() * keys.length)] as string);
  const out: Command[] = [];
  let rev = 1;
  for (let i = 0; i < n; i++) {
    const x = rnd();
    const id = `w${i}`;
    const lease = rnd() < 0.3 ? 1 + Math.floor(rnd() * 4) : 0;
    if (x < 0.4) out.push(cmd('put', id, { key: pick(), value: b(`v${i}`), lease }));
    else if (x < 0.5)
      out.push(cmd('deleteRange', id, { key: pick(), rangeEnd: rnd() < 0.3 ? ALL : undefined }));
    else if (x < 0.65) {
      const k = pick();
      const ops: RequestOp[] = [
        { put: { key: k, value: b(`t${i}`) } },
        { range: { key: ALL, rangeEnd: ALL } },
      ];
      out.push(
        cmd('txn', id, {
          compare: [{ key: k, target: 'version', result: 'greater', version: Math.floor(rnd() * 3) }],
          success: ops,
          failure: [{ deleteRange: { key: k } }],
        }),
      );
    } else if (x < 0.75)
      out.push(cmd('leaseGrant', id, { ttl: 5, id: rnd() < 0.5 ? 0 : 1 + Math.floor(rnd() * 4) }));
    else if (x < 0.82) out.push(cmd('leaseRevoke', id, { id: 1 + Math.floor(rnd() * 5) }));
    else if (x < 0.87) {
      rev += 3;
      out.push(cmd('compact', id, { revision: Math.floor(rnd() * rev) }));
    } else out.push(cmd('put', id, { key: pick(), value: b(''), ignoreValue: true }));
  }
  return out;
}

test('determinism: replicas fed the same commands produce identical snapshots', (t) => {
  for (const seed of [1, 2, 3]) {
    const commands = workload(seed, 400).map(encodeCommand);
    const r1 = new StoreStateMachine();
    const r2 = new StoreStateMachine();
    const outcomes1: string[] = [];
    const outcomes2: string[] = [];
    const r3 = new StoreStateMachine({
      onResult: (o) => outcomes1.push(JSON.stringify(o.ok ? o.response : o.error.code)),
    });
    const r4 = new StoreStateMachine({
      onResult: (o) => outcomes2.push(JSON.stringify(o.ok ? o.response : o.error.code)),
    });
    for (const c of commands) {
      for (const r of [r1, r2, r3, r4]) r.apply(entry(c));
    }
    t.deepEqual(r1.snapshot(), r2.snapshot(), `seed ${seed}`);
    t.deepEqual(r3.snapshot(), r1.snapshot());
    t.deepEqual(outcomes1, outcomes2, 'same outcomes');
    t.true(r1.revision > 50, `seed ${seed}: the workload did write (${r1.revision})`);
  }
});

test('snapshot → restore rebuilds exactly: keys, history, revisions, leases', (t) => {
  const original = new StoreStateMachine();
  for (const c of workload(11, 300)) original.applyCommand(c);
  original.applyCommand(cmd('leaseGrant', 'l', { ttl: 9, id: 1000 }));
  original.applyCommand(cmd('put', 'lk', { key: b('leased'), value: b('x'), lease: 1000 }));
  const snap = original.snapshot();

  const restored = new StoreStateMachine();
  restored.applyCommand(cmd('put', 'junk', { key: b('junk'), value: b('replaced by the restore') }));
  restored.restore(snap);
  t.deepEqual(restored.dump(), original.dump());
  t.deepEqual(restored.snapshot(), snap, 'restore → snapshot gives the same bytes');
  t.is(restored.revision, original.revision);
  t.is(restored.compactRevision, original.compactRevision);
  t.deepEqual(restored.leases.list(), original.leases.list());
  t.deepEqual(restored.leases.keys(1000), [b('leased')]);

  // Every retained revision reads the same, and the watch history is the same.
  for (let rev = Math.max(1, original.compactRevision); rev <= original.revision; rev++) {
    t.deepEqual(
      restored.mvcc.range({ key: ALL, rangeEnd: ALL, revision: rev }),
      original.mvcc.range({ key: ALL, rangeEnd: ALL, revision: rev }),
    );
  }
  const from = Math.max(1, original.compactRevision);
  t.deepEqual(restored.mvcc.history(from, ALL, ALL), original.mvcc.history(from, ALL, ALL));

  // And both carry on identically.
  for (const c of workload(12, 100)) {
    original.applyCommand(c);
    restored.applyCommand(c);
  }
  t.deepEqual(restored.snapshot(), original.snapshot());
});

test('restore refuses corrupt snapshots and keeps its state', (t) => {
  const sm = new StoreStateMachine();
  sm.applyCommand(cmd('leaseGrant', 'g', { ttl: 5 }));
  sm.applyCommand(cmd('put', 'p', { key: b('k'), value: b('v'), lease: 1 }));
  const good = sm.snapshot();
  const before = sm.dump();
  const target = new StoreStateMachine();
  target.applyCommand(cmd('put', 'p', { key: b('mine'), value: b('v') }));
  const mine = target.dump();
  const rnd = createRandom(3);
  for (let cut = 0; cut < good.length; cut++) {
    t.throws(() => target.restore(good.subarray(0, cut)), { instanceOf: StoreDecodeError });
  }
  t.deepEqual(target.dump(), mine, 'a refused snapshot leaves the state as it was');
  for (let i = 0; i < 500; i++) {
    const m = good.slice();
    const at = Math.floor(rnd() * m.length);
    m[at] = (m[at] as number) ^ (1 + Math.floor(rnd() * 255));
    try {
      target.restore(m);
      target.restore(good); // it decoded as something consistent; put the good state back
    } catch (err) {
      t.true(err instanceof StoreDecodeError, String(err));
    }
  }
  // A key attached to a lease the snapshot does not have is inconsistent.
  const noLeases = good.slice();
  // Layout tail: #leases=1 | id=1 | ttl=5 | lastAutoId=1 → claim zero leases.
  noLeases.set([0, 1], good.length - 4);
  t.throws(() => target.restore(noLeases.subarray(0, good.length - 2)), { instanceOf: StoreDecodeError });
  target.restore(good);
  t.deepEqual(target.dump(), before);
});
