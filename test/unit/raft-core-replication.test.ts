// Log replication (§5.3), the commitment rule (§5.4.2), fast back-off, batching and flow
// control (etcd's raft_flow_control_test.go).

import test from 'ava';
import { DropReason, ProposalDroppedError } from '../../pkg/raft/errors.js';
import { ProgressState } from '../../pkg/raft/progress.js';
import type { Raft } from '../../pkg/raft/raft.js';
import type { Entry, Message, NodeId } from '../../pkg/raft/types.js';
import { EntryType, MessageType } from '../../pkg/raft/types.js';
import {
  ackAll,
  bootstrappedStorage,
  electRaft,
  enc,
  entry,
  msg,
  must,
  Network,
  newRaft,
  shape,
  takeMsgs,
} from './raft-test-network.js';

function propose(r: Raft, data: string | Uint8Array): void {
  const err = r.step(
    msg({
      type: MessageType.Prop,
      from: r.id,
      to: r.id,
      entries: [
        { term: 0, index: 0, type: EntryType.Normal, data: typeof data === 'string' ? enc(data) : data },
      ],
    }),
  );
  if (err) throw err;
}

function appsTo(msgs: Message[], to: NodeId): Message[] {
  return msgs.filter((m) => m.type === MessageType.App && m.to === to);
}

function progress(r: Raft, id: NodeId) {
  return must(r.tracker.progress.get(id), `progress of ${id}`);
}

test('the leader replicates a proposal and commits it once a majority has it (§5.3)', (t) => {
  const r = newRaft(1, bootstrappedStorage([1, 2, 3]));
  electRaft(r);
  ackAll(r);
  t.is(r.log.committed, 4);

  propose(r, 'x');
  const msgs = takeMsgs(r);
  for (const to of [2, 3]) {
    const [app] = appsTo(msgs, to);
    t.like(app, { index: 4, logTerm: 2, commit: 4 });
    t.deepEqual(shape(must(app).entries), [[5, 2]]);
  }
  t.is(r.log.committed, 4, 'not before anyone acknowledged it');

  r.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 2, index: 5 }));
  t.is(r.log.committed, 5, 'leader + node 2 are a majority of 3');
  // The new commit index goes out at once, also to the follower that has not answered.
  const [toThree] = appsTo(takeMsgs(r), 3);
  t.is(must(toThree).commit, 5);
});

test('in a network an entry commits with a majority while one follower is cut off, which catches up later', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(3);
  net.propose(1, 'a');
  t.deepEqual(net.node(1).appliedData(), ['a']);
  t.deepEqual(net.node(2).appliedData(), ['a']);
  t.deepEqual(net.node(3).appliedData(), []);
  net.recover();
  net.tick(2);
  t.deepEqual(net.node(3).appliedData(), ['a']);
  t.deepEqual(net.logShape(3), net.logShape(1));
});

test('a leader counts replicas only for entries of its own term (§5.4.2, figure 8)', (t) => {
  // Leader 1 holds entry 4 from term 2 that never committed; its followers do not have it.
  // One entry per App, so the old entry travels alone.
  const r = newRaft(1, bootstrappedStorage([1, 2, 3], [2], { commit: 3 }), { maxSizePerMsg: 1 });
  electRaft(r);
  t.is(r.term, 3);
  t.deepEqual(shape(r.log.allEntries()).slice(3), [
    [4, 2],
    [5, 3],
  ]);

  // Node 2 lacks entry 4: the leader backs up and sends it.
  r.step(
    msg({
      type: MessageType.AppResp,
      from: 2,
      to: 1,
      term: 3,
      index: 4,
      reject: true,
      rejectHint: 3,
      rejectTerm: 1,
    }),
  );
  const [retry] = appsTo(takeMsgs(r), 2);
  t.deepEqual(shape(must(retry).entries), [[4, 2]]);

  r.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 3, index: 4 }));
  t.is(progress(r, 2).match, 4);
  t.is(r.log.committed, 3, 'entry 4 is on a majority but is from term 2: not committed by counting');

  r.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 3, index: 5 }));
  t.is(r.log.committed, 5, 'committing entry 5 of term 3 commits entry 4 with it');
});

test('a follower refuses an App whose previous entry does not match, with a hint for the leader (§5.3)', (t) => {
  // Follower log: 1..3 at term 1, 4..5 at term 2.
  const cases = [
    { index: 5, logTerm: 3, hint: 5, hintTerm: 2 }, // same index, other term
    { index: 5, logTerm: 1, hint: 3, hintTerm: 1 }, // skip back over all of term 2
    { index: 8, logTerm: 3, hint: 5, hintTerm: 2 }, // past our end: hint at our last entry
  ];
  for (const c of cases) {
    const r = newRaft(2, bootstrappedStorage([1, 2, 3], [2, 2]));
    r.step(msg({ type: MessageType.App, from: 1, to: 2, term: 4, index: c.index, logTerm: c.logTerm }));
    t.like(
      takeMsgs(r),
      [
        {
          type: MessageType.AppResp,
          to: 1,
          reject: true,
          index: c.index,
          rejectHint: c.hint,
          rejectTerm: c.hintTerm,
        },
      ],
      JSON.stringify(c),
    );
    t.is(r.log.lastIndex(), 5, 'a refused App changes nothing');
  }
  const r = newRaft(2, bootstrappedStorage([1, 2, 3], [2, 2]));
  r.step(
    msg({ type: MessageType.App, from: 1, to: 2, term: 4, index: 5, logTerm: 2, entries: [entry(6, 4)] }),
  );
  t.like(takeMsgs(r), [{ type: MessageType.AppResp, reject: false, index: 6 }]);
});

test('fast back-off: a long divergent tail is repaired in one rejected round trip', (t) => {
  // Indexes 1..10 agree. Node 2 then holds 50 entries an old term-2 leader never committed;
  // nodes 1 and 3 hold 10 entries of term 3. Entry-by-entry back-off would take 10 rejections.
  const majority = [...Array(7).fill(2), ...Array(10).fill(3)];
  const divergent = [...Array(7).fill(2), ...Array(50).fill(2)];
  const net = new Network([1, 2, 3], {
    storages: new Map([
      [1, bootstrappedStorage([1, 2, 3], majority, { commit: 10 })],
      [2, bootstrappedStorage([1, 2, 3], divergent, { commit: 10 })],
      [3, bootstrappedStorage([1, 2, 3], majority, { commit: 10 })],
    ]),
  });
  t.is(net.raw(2).status().lastIndex, 60);
  const mark = net.delivered.length;
  net.campaign(1);
  t.is(net.leader(), 1);
  const rejections = net.since(mark, { type: MessageType.AppResp, from: 2 }).filter((m) => m.reject);
  const apps = net.since(mark, { type: MessageType.App, from: 1, to: 2 }).filter((m) => m.entries.length > 0);
  t.is(rejections.length, 1, 'one rejection');
  t.deepEqual(
    apps.map((m) => [m.index, m.entries.length]),
    [
      [20, 1],
      [10, 11],
    ],
    'the probe, then the repair from the last agreeing index',
  );
  t.deepEqual(net.logShape(2), net.logShape(1));
  t.is(net.raw(2).status().commit, 21);
});

test('fast back-off: a follower with a short log is caught up after one rejection', (t) => {
  const net = new Network([1, 2, 3], {
    storages: new Map([
      [1, bootstrappedStorage([1, 2, 3], Array(40).fill(2), { commit: 3 })],
      [3, bootstrappedStorage([1, 2, 3], Array(40).fill(2), { commit: 3 })],
    ]),
  });
  const mark = net.delivered.length;
  net.campaign(1);
  const rejections = net.since(mark, { type: MessageType.AppResp, from: 2 }).filter((m) => m.reject);
  t.is(rejections.length, 1);
  t.deepEqual(net.logShape(2), net.logShape(1));
});

test('batching: proposals queued behind a probe leave in Apps of at most maxSizePerMsg bytes', (t) => {
  // Each 100-byte entry counts 124 bytes, so three fit in 400.
  const r = newRaft(1, bootstrappedStorage([1, 2]), { maxSizePerMsg: 400 });
  electRaft(r);
  for (let i = 0; i < 9; i++) propose(r, new Uint8Array(100).fill(i));
  t.deepEqual(appsTo(takeMsgs(r), 2), [], 'node 2 is still answering the election probe');

  r.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 2, index: 3 }));
  const apps = appsTo(takeMsgs(r), 2);
  t.is(apps.length, 3);
  t.deepEqual(
    apps.map((m) => shape(m.entries).map(([i]) => i)),
    [
      [4, 5, 6],
      [7, 8, 9],
      [10, 11, 12],
    ],
  );
  for (const m of apps) t.true(m.entries.reduce((n, e) => n + e.data.length + 24, 0) <= 400);
});

test('pipelining: in Replicate, up to maxInflightMsgs Apps are in flight before any ack, then it pauses (flow control)', (t) => {
  const r = newRaft(1, bootstrappedStorage([1, 2]), { maxInflightMsgs: 3 });
  electRaft(r);
  ackAll(r);
  const pr = progress(r, 2);
  t.is(pr.state, ProgressState.Replicate);

  for (let i = 0; i < 5; i++) propose(r, `p${i}`);
  const apps = appsTo(takeMsgs(r), 2);
  t.deepEqual(
    apps.map((m) => shape(m.entries)),
    [[[4, 2]], [[5, 2]], [[6, 2]]],
    'three in flight, the rest wait',
  );
  t.is(pr.inflights.count, 3);
  t.true(pr.isPaused());

  // One ack frees one slot: what waited goes out, batched into that slot.
  r.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 2, index: 4 }));
  const more = appsTo(takeMsgs(r), 2).filter((m) => m.entries.length > 0);
  t.deepEqual(
    more.map((m) => shape(m.entries)),
    [
      [
        [7, 2],
        [8, 2],
      ],
    ],
  );
  t.is(pr.inflights.count, 3);

  r.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 2, index: 8 }));
  t.is(pr.inflights.count, 0, 'an ack frees every App up to its index');
  t.false(pr.isPaused());
  t.is(r.log.committed, 8);
});

test('flow control: a heartbeat answer frees one slot of a full window', (t) => {
  const r = newRaft(1, bootstrappedStorage([1, 2]), { maxInflightMsgs: 2 });
  electRaft(r);
  ackAll(r);
  for (let i = 0; i < 3; i++) propose(r, `p${i}`);
  takeMsgs(r);
  const pr = progress(r, 2);
  t.true(pr.isPaused());
  r.step(msg({ type: MessageType.HeartbeatResp, from: 2, to: 1, term: 2 }));
  t.is(pr.inflights.count, 2, 'one freed, one more sent');
  t.true(appsTo(takeMsgs(r), 2).length >= 1);
});

test('probing: a follower in Probe gets one App until it answers or a heartbeat answer arrives (§5.3)', (t) => {
  const r = newRaft(1, bootstrappedStorage([1, 2, 3]));
  electRaft(r); // the election's App is the outstanding probe
  const pr = progress(r, 2);
  t.is(pr.state, ProgressState.Probe);

  for (let i = 0; i < 3; i++) propose(r, `p${i}`);
  t.deepEqual(appsTo(takeMsgs(r), 2), [], 'paused while the probe is unanswered');

  r.tick(); // heartbeat
  const beats = takeMsgs(r);
  t.deepEqual(appsTo(beats, 2), []);
  t.is(beats.filter((m) => m.type === MessageType.Heartbeat && m.to === 2).length, 1);

  r.step(msg({ type: MessageType.HeartbeatResp, from: 2, to: 1, term: 2 }));
  const apps = appsTo(takeMsgs(r), 2);
  t.is(apps.length, 1, 'exactly one new probe');
  t.deepEqual(shape(must(apps[0]).entries), [
    [4, 2],
    [5, 2],
    [6, 2],
    [7, 2],
  ]);

  propose(r, 'p3');
  t.deepEqual(appsTo(takeMsgs(r), 2), [], 'paused again');

  r.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 2, index: 7 }));
  t.is(pr.state, ProgressState.Replicate);
  t.deepEqual(
    appsTo(takeMsgs(r), 2).flatMap((m) => shape(m.entries)),
    [[8, 2]],
  );
});

test('a heartbeat never tells a follower to commit past what it is known to hold', (t) => {
  const r = newRaft(1, bootstrappedStorage([1, 2, 3]));
  electRaft(r);
  r.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 2, index: 4 }));
  t.is(r.log.committed, 4);
  takeMsgs(r);
  r.tick();
  const beats = takeMsgs(r).filter((m) => m.type === MessageType.Heartbeat);
  // Node 3 has not answered this leader: its log may hold a divergent tail at those indexes.
  t.deepEqual(
    beats.map((m) => [m.to, m.commit]),
    [
      [2, 4],
      [3, 0],
    ],
  );
});

test('an unreachable follower in Replicate falls back to Probe', (t) => {
  const r = newRaft(1, bootstrappedStorage([1, 2, 3]));
  electRaft(r);
  ackAll(r);
  r.step(msg({ type: MessageType.Unreachable, from: 2, to: 1 }));
  t.is(progress(r, 2).state, ProgressState.Probe);
});

test('a proposal at a follower is forwarded to the leader and committed everywhere', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  const mark = net.delivered.length;
  net.propose(2, 'via follower');
  const [fwd] = net.since(mark, { type: MessageType.Prop, from: 2, to: 1 });
  t.deepEqual(
    must(fwd).entries.map((e: Entry) => new TextDecoder().decode(e.data)),
    ['via follower'],
  );
  for (const id of [1, 2, 3]) t.deepEqual(net.node(id).appliedData(), ['via follower']);
});

test('a proposal where no leader is known is refused with ProposalDroppedError', (t) => {
  const net = new Network([1, 2, 3]);
  const err = t.throws(() => net.propose(2, 'x'), { instanceOf: ProposalDroppedError });
  t.is(err?.reason, DropReason.NoLeader);
});

test("a deposed leader's uncommitted entries are overwritten by the new leader's log (§5.3 log matching)", (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(1);
  net.propose(1, 'lost');
  t.is(net.raw(1).status().lastIndex, 5);
  net.tickUntil(() => net.leader() !== undefined && net.leader() !== 1);
  const leader = must(net.leader());
  net.propose(leader, 'kept');
  net.recover();
  net.tick(2);
  t.deepEqual(net.logShape(1), net.logShape(leader));
  for (const id of [1, 2, 3]) t.deepEqual(net.node(id).appliedData(), ['kept'], `node ${id}`);
});
