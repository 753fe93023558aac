// ReadIndex (thesis §6.4): linearizable reads without writing to the log. The leader records
// its commit index, proves it is still leader with a heartbeat round a quorum acknowledges,
// and only then answers.

import test from 'ava';
import { DropReason, ProposalDroppedError } from '../../pkg/raft/errors.js';
import type { Raft } from '../../pkg/raft/raft.js';
import { MessageType, StateRole } from '../../pkg/raft/types.js';
import {
  ackAll,
  bootstrappedStorage,
  dec,
  electRaft,
  enc,
  msg,
  must,
  Network,
  newRaft,
  TestNode,
  takeMsgs,
} from './raft-test-network.js';

function readIndex(r: Raft, ctx: string): void {
  const err = r.step(msg({ type: MessageType.ReadIndex, from: r.id, to: r.id, context: enc(ctx) }));
  if (err) throw err;
}

function heartbeatResp(r: Raft, from: number, ctx: string): void {
  r.step(msg({ type: MessageType.HeartbeatResp, from, to: r.id, term: r.term, context: enc(ctx) }));
}

function answered(r: Raft): [string, number][] {
  const out = r.readStates.map((rs): [string, number] => [dec(rs.requestCtx), rs.index]);
  r.readStates = [];
  return out;
}

test('the leader answers a read only after a quorum acknowledged the heartbeat carrying it (§6.4)', (t) => {
  const r = newRaft(1, bootstrappedStorage([1, 2, 3, 4, 5]));
  electRaft(r);
  ackAll(r);
  t.is(r.log.committed, 6);

  readIndex(r, 'r1');
  const beats = takeMsgs(r).filter((m) => m.type === MessageType.Heartbeat);
  t.deepEqual(
    beats.map((m) => [m.to, dec(m.context)]),
    [
      [2, 'r1'],
      [3, 'r1'],
      [4, 'r1'],
      [5, 'r1'],
    ],
  );
  t.deepEqual(answered(r), []);

  heartbeatResp(r, 2, 'r1');
  heartbeatResp(r, 3, 'other');
  heartbeatResp(r, 3, '');
  t.deepEqual(answered(r), [], 'leader + 1 of 5, and acks for other contexts, prove nothing');
  heartbeatResp(r, 2, 'r1');
  t.deepEqual(answered(r), [], 'the same peer twice is still one ack');
  heartbeatResp(r, 4, 'r1');
  t.deepEqual(answered(r), [['r1', 6]], 'leader + 2 of 5');
  heartbeatResp(r, 5, 'r1');
  t.deepEqual(answered(r), [], 'answered once');
});

test('pending reads are confirmed in order by an ack for a later one (§6.4)', (t) => {
  const r = newRaft(1, bootstrappedStorage([1, 2, 3]));
  electRaft(r);
  ackAll(r);
  readIndex(r, 'a');
  readIndex(r, 'b');
  takeMsgs(r);
  heartbeatResp(r, 2, 'b');
  t.deepEqual(answered(r), [
    ['a', 4],
    ['b', 4],
  ]);
});

test('the regular heartbeat carries the latest pending read context', (t) => {
  const r = newRaft(1, bootstrappedStorage([1, 2, 3]));
  electRaft(r);
  ackAll(r);
  readIndex(r, 'x');
  takeMsgs(r); // lost
  r.tick();
  const beats = takeMsgs(r).filter((m) => m.type === MessageType.Heartbeat);
  t.true(beats.length === 2 && beats.every((m) => dec(m.context) === 'x'));
  heartbeatResp(r, 3, 'x');
  t.deepEqual(answered(r), [['x', 4]]);
});

test('a freshly elected leader defers reads until the empty entry of its term commits (§6.4 step 1)', (t) => {
  const r = newRaft(1, bootstrappedStorage([1, 2, 3]));
  electRaft(r);
  t.is(r.log.committed, 3, 'only entries of term 1 are known committed');

  readIndex(r, 'early');
  t.deepEqual(
    takeMsgs(r).filter((m) => m.type === MessageType.Heartbeat),
    [],
    'no heartbeat round yet: the commit index may be stale',
  );
  heartbeatResp(r, 2, 'early');
  t.deepEqual(answered(r), []);

  r.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 2, index: 4 }));
  t.is(r.log.committed, 4);
  const beats = takeMsgs(r).filter((m) => m.type === MessageType.Heartbeat);
  t.true(beats.length > 0 && beats.every((m) => dec(m.context) === 'early'));
  heartbeatResp(r, 2, 'early');
  t.deepEqual(answered(r), [['early', 4]], 'never the stale index 3');
});

test("a follower's read is forwarded to the leader and answered with the leader's commit index", (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  for (const v of ['a', 'b', 'c']) net.propose(1, v);
  const commit = net.raw(1).status().commit;
  const mark = net.delivered.length;

  net.raw(3).readIndex(enc('f'));
  net.settle();
  t.is(net.since(mark, { type: MessageType.ReadIndex, from: 3, to: 1 }).length, 1);
  t.is(net.since(mark, { type: MessageType.ReadIndexResp, from: 1, to: 3 }).length, 1);
  const rs = net.node(3).readStates.map((s) => [dec(s.requestCtx), s.index]);
  t.deepEqual(rs, [['f', commit]]);
  t.true(net.node(3).appliedIndex >= commit, 'the follower can serve the read once it applied that far');
});

test('a read at a partitioned, stale leader is never answered', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(1);
  net.raw(1).readIndex(enc('stale'));
  net.tick(3);
  t.is(net.role(1), StateRole.Leader, 'it still believes it leads');
  t.deepEqual(net.node(1).readStates, []);

  // Meanwhile the majority moves on.
  net.tickUntil(() => net.leader() !== undefined && net.leader() !== 1);
  const leader = must(net.leader());
  net.propose(leader, 'new');
  const newCommit = net.raw(leader).status().commit;
  net.recover();
  net.tick(3);
  t.deepEqual(net.node(1).readStates, [], 'not even after healing');

  net.raw(leader).readIndex(enc('fresh'));
  net.settle();
  const [rs] = net.node(leader).readStates;
  t.is(dec(must(rs).requestCtx), 'fresh');
  t.true(must(rs).index >= newCommit);
});

test('a read without a known leader is refused with ProposalDroppedError', (t) => {
  const n = new TestNode(1, bootstrappedStorage([1, 2, 3]));
  n.processReady();
  const err = t.throws(() => n.raw.readIndex(enc('x')), { instanceOf: ProposalDroppedError });
  t.is(err?.reason, DropReason.NoLeader);
});

test('a single-voter leader answers a read at once', (t) => {
  const n = new TestNode(1, bootstrappedStorage([1]));
  n.processReady();
  n.raw.campaign();
  n.processReady();
  n.raw.readIndex(enc('solo'));
  const rd = n.processReady();
  t.deepEqual(
    rd.readStates.map((s) => [dec(s.requestCtx), s.index]),
    [['solo', 2]],
  );
});
