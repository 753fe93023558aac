import test from 'ava';
import { createRandom } from '../../pkg/raft/rand.js';
import { MvccStore } from '../../pkg/store/mvcc.js';
import { StoreStateMachine } from '../../pkg/store/state-machine.js';
import type { WatchEvent, WatchRequest, WatchResponse } from '../../pkg/store/types.js';
import { prefixEnd } from '../../pkg/store/types.js';
import { COMPACTED_REASON, WatchHub } from '../../pkg/store/watch-hub.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string) => enc.encode(s);
const str = (u: Uint8Array) => dec.decode(u);
const ALL = new Uint8Array([0]);

function setup(schedule?: (fn: () => void) => void) {
  let hub: WatchHub | undefined;
  const m = new MvccStore({ onCommit: (rev, events) => hub?.notify(rev, events) });
  hub = new WatchHub(m, { schedule });
  return { m, hub };
}

function collect(hub: WatchHub, req: WatchRequest) {
  const got: WatchResponse[] = [];
  const id = hub.register(req, (r) => got.push(r));
  return { id, got };
}

/** [revision, type, key, value] per event, responses flattened. */
function flat(got: WatchResponse[]): [number, string, string, string][] {
  return got.flatMap((r) =>
    r.events.map((e): [number, string, string, string] => [
      r.header.revision,
      e.type,
      str(e.kv.key),
      str(e.kv.value),
    ]),
  );
}

test('live events, batched per revision, delivered asynchronously in order', async (t) => {
  const { m, hub } = setup();
  const w = collect(hub, { key: b('p/'), rangeEnd: prefixEnd(b('p/')) });
  m.put({ key: b('p/a'), value: b('1') }); // 2
  m.put({ key: b('q'), value: b('1') }); // 3: not watched
  m.txn({
    compare: [],
    success: [{ put: { key: b('p/b'), value: b('1') } }, { put: { key: b('p/c'), value: b('1') } }],
    failure: [],
  }); // 4
  m.deleteRange({ key: b('p/a') }); // 5
  t.is(w.got.length, 0, 'nothing is delivered synchronously');
  await new Promise((r) => setImmediate(r));
  t.deepEqual(
    w.got.map((r) => [r.header.revision, r.watchId, r.events.length]),
    [
      [2, w.id, 1],
      [4, w.id, 2],
      [5, w.id, 1],
    ],
  );
  const delEvent = w.got[2]?.events[0];
  t.is(delEvent?.type, 'delete');
  t.like(delEvent?.kv, { modRevision: 5, createRevision: 0, version: 0, lease: 0 });
  t.is(delEvent?.prevKv, undefined, 'prevKv only when asked');
});

test('a watch from a past revision replays history, then follows live, without gaps or duplicates', (t) => {
  const { m, hub } = setup();
  m.put({ key: b('a'), value: b('1') }); // 2
  m.put({ key: b('a'), value: b('2') }); // 3
  m.deleteRange({ key: b('a') }); // 4
  const w = collect(hub, { key: b('a'), startRevision: 3, prevKv: true });
  m.put({ key: b('a'), value: b('3') }); // 5
  hub.flush();
  t.deepEqual(flat(w.got), [
    [3, 'put', 'a', '2'],
    [4, 'delete', 'a', ''],
    [5, 'put', 'a', '3'],
  ]);
  t.is(str(w.got[0]?.events[0]?.prevKv?.value ?? b('')), '1');
  t.is(str(w.got[1]?.events[0]?.prevKv?.value ?? b('')), '2');
  t.is(w.got[2]?.events[0]?.prevKv, undefined, 'the key did not exist before revision 5');
});

test('a start revision in the future waits for it', (t) => {
  const { m, hub } = setup();
  const w = collect(hub, { key: ALL, rangeEnd: ALL, startRevision: 4 });
  m.put({ key: b('a'), value: b('1') }); // 2
  m.put({ key: b('b'), value: b('1') }); // 3
  m.put({ key: b('c'), value: b('1') }); // 4
  hub.flush();
  t.deepEqual(flat(w.got), [[4, 'put', 'c', '1']]);
});

test('a compacted start revision gets one canceled response with the compact revision', (t) => {
  const { m, hub } = setup();
  for (let i = 0; i < 5; i++) m.put({ key: b('k'), value: b(`${i}`) }); // 2..6
  m.compact(4);
  const w = collect(hub, { key: b('k'), startRevision: 3 });
  m.put({ key: b('k'), value: b('x') });
  hub.flush();
  t.deepEqual(w.got, [
    {
      header: { clusterId: '', memberId: '', revision: 6, raftTerm: 0 },
      watchId: w.id,
      events: [],
      compactRevision: 4,
      canceled: true,
      cancelReason: COMPACTED_REASON,
    },
  ]);
  t.is(hub.size, 0);
  t.false(hub.cancel(w.id));

  // Starting exactly at the compaction revision is allowed (etcd), and complete.
  const from4 = collect(hub, { key: b('k'), startRevision: 4 });
  hub.flush();
  t.deepEqual(
    flat(from4.got).map((e) => e[0]),
    [4, 5, 6, 7],
  );
});

test('a delete at the compaction revision is still replayed to a watch starting there', (t) => {
  const { m, hub } = setup();
  m.put({ key: b('k'), value: b('1') }); // 2
  m.deleteRange({ key: b('k') }); // 3
  m.compact(3);
  const w = collect(hub, { key: b('k'), startRevision: 3 });
  hub.flush();
  t.deepEqual(flat(w.got), [[3, 'delete', 'k', '']]);
});

test('noPut and noDelete filters; prevKv on request', (t) => {
  const { m, hub } = setup();
  const puts = collect(hub, { key: b('k'), noDelete: true });
  const dels = collect(hub, { key: b('k'), noPut: true, prevKv: true });
  m.put({ key: b('k'), value: b('1') });
  m.deleteRange({ key: b('k') });
  hub.flush();
  t.deepEqual(flat(puts.got), [[2, 'put', 'k', '1']]);
  t.deepEqual(flat(dels.got), [[3, 'delete', 'k', '']]);
  t.is(str(dels.got[0]?.events[0]?.prevKv?.value ?? b('')), '1');
});

test('cancel stops delivery, queued responses included', (t) => {
  const { m, hub } = setup();
  const w = collect(hub, { key: b('k') });
  m.put({ key: b('k'), value: b('1') });
  t.true(hub.cancel(w.id));
  m.put({ key: b('k'), value: b('2') });
  hub.flush();
  t.deepEqual(w.got, []);
  t.false(hub.cancel(w.id));
});

test('progress notifications go to idle progress-notify watchers with the current revision', (t) => {
  const { m, hub } = setup();
  const idle = collect(hub, { key: b('idle'), progressNotify: true });
  const busy = collect(hub, { key: b('busy'), progressNotify: true });
  const quiet = collect(hub, { key: b('idle') });
  m.put({ key: b('busy'), value: b('1') });
  hub.progress();
  hub.flush();
  t.deepEqual(idle.got, [
    { header: { clusterId: '', memberId: '', revision: 2, raftTerm: 0 }, watchId: idle.id, events: [] },
  ]);
  t.is(busy.got.length, 1, 'only its event: it was not idle');
  t.is(quiet.got.length, 0);
  hub.progress();
  hub.flush();
  t.is(busy.got.length, 2, 'idle since the last round now');
  t.deepEqual(busy.got[1]?.events, []);
  hub.progress(true);
  hub.flush();
  t.is(quiet.got.length, 1, 'a forced round reaches every watcher');
});

test('callbacks that write keep every watcher in revision order, even with synchronous delivery', (t) => {
  const { m, hub } = setup((fn) => fn());
  let echoes = 0;
  hub.register({ key: b('trigger') }, () => {
    if (echoes < 3) m.put({ key: b(`echo-${echoes++}`), value: b('') });
  });
  const all = collect(hub, { key: ALL, rangeEnd: ALL });
  const triggers: number[] = [];
  hub.register({ key: b('trigger') }, (r) => {
    triggers.push(r.header.revision);
    m.put({ key: b('after'), value: b(`${r.header.revision}`) });
  });
  m.put({ key: b('trigger'), value: b('') });
  m.put({ key: b('trigger'), value: b('') });
  const revs = all.got.map((r) => r.header.revision);
  t.deepEqual(
    revs,
    Array.from({ length: m.revision - 1 }, (_v, i) => i + 2),
    'every revision once, in order',
  );
  t.is(triggers.length, 2);
});

test('random interleavings of writes and watch starts: each watch sees exactly the history', (t) => {
  for (let seed = 1; seed <= 20; seed++) {
    const rnd = createRandom(seed);
    const { m, hub } = setup();
    const keys = ['a', 'a/1', 'a/2', 'b', 'b/1', 'c'];
    const pick = () => keys[Math.floor(rnd() * keys.length)] as string;
    const watches: { req: WatchRequest; from: number; got: WatchResponse[] }[] = [];
    for (let step = 0; step < 150; step++) {
      const x = rnd();
      if (x < 0.45) m.put({ key: b(pick()), value: b(`${step}`) });
      else if (x < 0.6) m.deleteRange({ key: b(pick()) });
      else if (x < 0.7) m.deleteRange({ key: b('a'), rangeEnd: prefixEnd(b('a')) });
      else if (x < 0.8) {
        const [k1, k2] = [pick(), pick()];
        if (k1 !== k2) {
          m.txn({
            compare: [],
            success: [{ put: { key: b(k1), value: b('t') } }, { deleteRange: { key: b(k2) } }],
            failure: [],
          });
        }
      } else if (x < 0.95) {
        const cur = m.revision;
        const start = rnd() < 0.3 ? 0 : 1 + Math.floor(rnd() * (cur + 2));
        const prefix = rnd() < 0.5;
        const k = prefix ? (rnd() < 0.5 ? 'a' : 'b') : pick();
        const req: WatchRequest = {
          key: b(k),
          rangeEnd: prefix ? prefixEnd(b(k)) : undefined,
          startRevision: start,
          prevKv: rnd() < 0.5,
          noPut: rnd() < 0.15,
          noDelete: rnd() < 0.15,
        };
        const got: WatchResponse[] = [];
        hub.register(req, (r) => got.push(r));
        watches.push({ req, from: start === 0 ? cur + 1 : start, got });
      } else {
        hub.flush();
      }
    }
    hub.flush();
    for (const w of watches) {
      const expected = m
        .history(w.from, w.req.key, w.req.rangeEnd)
        .filter((e) => (e.type === 'put' ? !w.req.noPut : !w.req.noDelete))
        .map((e) => describe(e, w.req.prevKv === true));
      const got = w.got.flatMap((r) => r.events.map((e) => describe(e, true)));
      t.deepEqual(got, expected, `seed ${seed}`);
      const revs = w.got.map((r) => r.header.revision);
      t.true(
        revs.every((r, i) => i === 0 || r > (revs[i - 1] as number)),
        `seed ${seed}: one response per revision, ascending`,
      );
      t.true(
        w.got.every(
          (r) => r.events.length > 0 && r.events.every((e) => e.kv.modRevision === r.header.revision),
        ),
        `seed ${seed}: batches are per revision`,
      );
    }
  }
});

function describe(e: WatchEvent, withPrev: boolean): string {
  const prev = withPrev && e.prevKv ? ` prev=${str(e.prevKv.value)}@${e.prevKv.modRevision}` : '';
  return `${e.kv.modRevision} ${e.type} ${str(e.kv.key)}=${str(e.kv.value)} v${e.kv.version}${prev}`;
}

test('after a snapshot restore, watchers catch up from the new state', (t) => {
  const sync = { schedule: (fn: () => void) => fn() };
  const a = new StoreStateMachine({ watch: sync });
  const ahead = new StoreStateMachine();
  let n = 0;
  const put = (sm: StoreStateMachine, k: string) =>
    sm.applyCommand({ type: 'put', requestId: `${n++}`, request: { key: b(k), value: b(`${n}`) } });
  for (const sm of [a, ahead]) {
    put(sm, 'k');
    put(sm, 'other');
  }
  const got: WatchResponse[] = [];
  a.hub.register({ key: b('k'), prevKv: true }, (r) => got.push(r));
  put(ahead, 'k'); // 4
  put(ahead, 'other'); // 5
  put(ahead, 'k'); // 6
  a.restore(ahead.snapshot());
  t.deepEqual(
    got.map((r) => r.header.revision),
    [4, 6],
  );
  put(a, 'k'); // 7
  t.deepEqual(
    got.map((r) => r.header.revision),
    [4, 6, 7],
  );
});
