// Leadership transfer (thesis §3.10): the leader stops taking proposals, brings the target up
// to date, then tells it to campaign at once (TimeoutNow). The target's Vote carries a marker
// that lets it through the other followers' leases.

import test from 'ava';
import { DropReason, ProposalDroppedError } from '../../pkg/raft/errors.js';
import { CAMPAIGN_TRANSFER } from '../../pkg/raft/raft.js';
import type { Message } from '../../pkg/raft/types.js';
import { ConfChangeType, MessageType, StateRole } from '../../pkg/raft/types.js';
import { enc, must, Network } from './raft-test-network.js';

const ELECTION = 10;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

test('the leader sends TimeoutNow to a caught-up transferee, which wins at once without pre-vote (thesis §3.10)', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  net.propose(1, 'a');
  const mark = net.delivered.length;

  net.raw(1).transferLeadership(2);
  net.settle();

  const after = net.since(mark);
  t.is(after[0]?.type, MessageType.TimeoutNow, 'nothing to catch up: TimeoutNow right away');
  t.like(after[0], { from: 1, to: 2 });
  t.deepEqual(net.since(mark, { type: MessageType.PreVote }), [], 'no pre-vote phase');
  const votes = net.since(mark, { type: MessageType.Vote, from: 2 });
  t.deepEqual(
    votes.map((m) => m.to),
    [1, 3],
  );
  t.true(votes.every((m) => m.term === 3 && sameBytes(m.context, CAMPAIGN_TRANSFER)));
  // Node 3 heard from leader 1 a moment ago, yet grants: the transfer marker breaks the lease.
  t.deepEqual(
    net.since(mark, { type: MessageType.VoteResp, from: 3 }).map((m) => m.reject),
    [false],
  );
  t.is(net.leader(), 2);
  t.is(net.term(2), 3);
  t.is(net.role(1), StateRole.Follower);
  net.propose(2, 'b');
  for (const id of [1, 2, 3]) t.deepEqual(net.node(id).appliedData(), ['a', 'b']);
});

test('proposals are refused while a transfer is in progress', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  net.cut(1, 3);
  net.raw(1).transferLeadership(3);
  net.settle();
  t.is(net.raw(1).status().leadTransferee, 3);
  const err = t.throws(() => net.propose(1, 'x'), { instanceOf: ProposalDroppedError });
  t.is(err?.reason, DropReason.Transferring);
  // Forwarded proposals are dropped too (silently: the follower is not told).
  net.raw(2).propose(enc('y'));
  net.settle();
  t.is(net.raw(1).status().lastIndex, 4);
});

test('a transfer to a lagging follower first catches it up, then sends TimeoutNow (thesis §3.10)', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  net.cut(1, 3);
  for (const v of ['a', 'b', 'c']) net.propose(1, v);
  t.is(net.raw(3).status().lastIndex, 4);

  net.raw(1).transferLeadership(3);
  net.settle();
  t.is(net.leader(), 1, 'no TimeoutNow to a node that lacks entries');
  net.recover();
  const mark = net.delivered.length;
  net.tick(1);

  const fromLeader = net.since(mark, { from: 1, to: 3 });
  const timeoutAt = fromLeader.findIndex((m) => m.type === MessageType.TimeoutNow);
  t.true(timeoutAt > 0, 'TimeoutNow was sent');
  const catchUp = fromLeader.slice(0, timeoutAt).filter((m) => m.type === MessageType.App);
  t.deepEqual(
    catchUp.flatMap((m) => m.entries.map((e) => e.index)),
    [5, 6, 7],
    'the missing entries went first',
  );
  t.is(net.leader(), 3);
  t.deepEqual(net.node(3).appliedData(), ['a', 'b', 'c']);
});

test('a transfer that cannot finish is abandoned after an election timeout and the leader carries on', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  net.tick(3);
  net.isolate(3);
  net.raw(1).transferLeadership(3);
  net.settle();

  net.tick(ELECTION - 1);
  t.is(net.raw(1).status().leadTransferee, 3, 'still trying');
  t.throws(() => net.propose(1, 'x'), { instanceOf: ProposalDroppedError });
  net.tick(1);
  t.is(net.raw(1).status().leadTransferee, 0, 'abandoned after one election timeout');
  t.is(net.leader(), 1);
  net.propose(1, 'resumed');
  t.deepEqual(net.node(2).appliedData(), ['resumed']);
});

test('a follower passes a transfer request on to the leader', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  net.raw(3).transferLeadership(3);
  net.settle();
  t.is(net.leader(), 3);
  t.is(net.term(1), 3);
});

test('a transfer to the leader itself or to a non-member is ignored', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  const mark = net.sent.length;
  net.raw(1).transferLeadership(1);
  net.raw(1).transferLeadership(9);
  net.settle();
  t.is(net.raw(1).status().leadTransferee, 0);
  t.deepEqual(net.since(mark, { type: MessageType.TimeoutNow }, true), []);
  net.propose(1, 'still leading');
  t.deepEqual(net.node(3).appliedData(), ['still leading']);
});

test('a second transfer to another node replaces the first', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  net.cut(1, 3);
  net.raw(1).transferLeadership(3);
  net.settle();
  t.is(net.raw(1).status().leadTransferee, 3);
  net.raw(1).transferLeadership(2);
  net.settle();
  t.is(net.leader(), 2);
});

// Fails until fixed (core bug): same root cause as the removed-leader handover in
// raft-core-membership. The TimeoutNow is dropped by the transferee, and the old leader
// refuses every proposal until the transfer times out an election timeout later (§3.10).
test('a transfer right after a membership change completes although the transferee has not applied it yet', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  net.addNode(4);
  const held: Message[] = [];
  net.filter = (m) => {
    if (m.from !== 1 || m.to !== 2 || m.entries.length > 0) return true;
    held.push(m);
    return false;
  };
  net.proposeConfChange(1, { type: ConfChangeType.AddLearnerNode, nodeId: 4 });
  net.raw(1).transferLeadership(2); // node 2 holds every entry: TimeoutNow at once
  net.settle();
  net.filter = undefined;
  t.deepEqual(held.filter((m) => m.type === MessageType.TimeoutNow).length, 1);
  net.deliverBatch(held);
  t.is(net.leader(), 2);
  // Otherwise the old leader refuses every proposal until the transfer times out.
  t.notThrows(() => net.propose(must(net.leader()), 'after transfer'));
});
