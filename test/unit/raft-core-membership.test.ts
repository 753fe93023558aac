// Membership changes (§4, one server at a time, thesis §4.1), learners (thesis §4.2.1 catching
// up new servers as non-voting members) and removing the leader (thesis §4.2.2).

import test from 'ava';
import { DropReason, ProposalDroppedError } from '../../pkg/raft/errors.js';
import { ProgressState } from '../../pkg/raft/progress.js';
import type { ConfChange, Message, NodeId } from '../../pkg/raft/types.js';
import { ConfChangeType, EMPTY, MessageType, StateRole } from '../../pkg/raft/types.js';
import { enc, must, Network } from './raft-test-network.js';

const ELECTION = 10;

function cc(type: ConfChange['type'], nodeId: NodeId): ConfChange {
  return { type, nodeId, context: EMPTY };
}

/** Cluster {1,2,3} led by 1, plus an empty machine 4 added as a learner. */
function withLearner(opts: { learnerMaxLag?: number } = {}): Network {
  const net = new Network([1, 2, 3], { electionTick: ELECTION, ...opts });
  net.campaign(1);
  net.addNode(4);
  net.proposeConfChange(1, { type: ConfChangeType.AddLearnerNode, nodeId: 4 });
  return net;
}

test('a learner receives the whole log and applies it (thesis §4.2.1)', (t) => {
  const net = withLearner();
  t.deepEqual(net.raw(1).confState(), { voters: [1, 2, 3], learners: [4] });
  net.propose(1, 'v');
  t.deepEqual(net.logShape(4), net.logShape(1));
  t.deepEqual(net.node(4).appliedData(), ['v']);
  t.deepEqual(
    net.raw(4).confState(),
    { voters: [1, 2, 3], learners: [4] },
    'it learned membership from the log',
  );
  t.true(must(net.raw(1).status().progress?.get(4)).learner);
});

test('a learner never campaigns, not even when its leader is gone', (t) => {
  const net = withLearner();
  net.isolate(4);
  const mark = net.sent.length;
  net.tick(10 * ELECTION);
  const campaigns = net
    .since(mark, { from: 4 }, true)
    .filter((m) => m.type === MessageType.PreVote || m.type === MessageType.Vote);
  t.deepEqual(campaigns, []);
  t.is(net.role(4), StateRole.Follower);
  t.is(net.term(4), 2);
});

test('a learner does not count towards the commit quorum', (t) => {
  const net = withLearner();
  net.cut(1, 2);
  net.cut(1, 3);
  const commit = net.raw(1).status().commit;
  net.propose(1, 'x');
  t.is(net.raw(4).status().lastIndex, net.raw(1).status().lastIndex, 'the learner has it');
  t.is(net.raw(1).status().commit, commit, 'leader + learner are not a majority of {1,2,3}');
  t.deepEqual(net.node(1).appliedData(), []);
});

test('promoting a learner that has not caught up is refused (LearnerNotReady), and allowed once it has', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION, learnerMaxLag: 2 });
  net.campaign(1);
  net.addNode(4);
  net.cut(1, 4);
  net.proposeConfChange(1, { type: ConfChangeType.AddLearnerNode, nodeId: 4 });
  for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);

  const err = t.throws(() => net.raw(1).proposeConfChange(cc(ConfChangeType.AddNode, 4)), {
    instanceOf: ProposalDroppedError,
  });
  t.is(err?.reason, DropReason.LearnerNotReady);

  net.recover();
  net.tick(1);
  const pr = must(net.raw(1).status().progress?.get(4));
  t.is(pr.state, ProgressState.Replicate);
  t.is(pr.match, net.raw(1).status().lastIndex);

  net.proposeConfChange(1, { type: ConfChangeType.AddNode, nodeId: 4 });
  t.deepEqual(net.raw(1).confState(), { voters: [1, 2, 3, 4], learners: [] });
  t.deepEqual(net.raw(4).confState(), { voters: [1, 2, 3, 4], learners: [] });
  // Now a voter, it counts: with 2 and 3 cut off, {1,4} is not a majority of four...
  net.cut(1, 2);
  net.cut(1, 3);
  const commit = net.raw(1).status().commit;
  net.propose(1, 'needs three');
  t.is(net.raw(1).status().commit, commit);
  // ...but {1,2,4} is.
  net.recover();
  net.cut(1, 3);
  net.tick(1);
  t.true(net.raw(1).status().commit > commit);
});

test('a second membership change while one is pending is refused (§4.1)', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  net.tick(2);
  net.addNode(4);
  net.addNode(5);
  net.cut(1, 2);
  net.cut(1, 3);
  net.proposeConfChange(1, { type: ConfChangeType.AddLearnerNode, nodeId: 4 });
  const err = t.throws(() => net.raw(1).proposeConfChange(cc(ConfChangeType.AddLearnerNode, 5)), {
    instanceOf: ProposalDroppedError,
  });
  t.is(err?.reason, DropReason.ConfChangePending);
  t.deepEqual(net.raw(1).confState(), { voters: [1, 2, 3], learners: [] }, 'not in effect before it applies');

  net.recover();
  net.tick(1);
  t.deepEqual(net.raw(1).confState(), { voters: [1, 2, 3], learners: [4] });
  net.proposeConfChange(1, { type: ConfChangeType.AddLearnerNode, nodeId: 5 });
  t.deepEqual(net.raw(1).confState(), { voters: [1, 2, 3], learners: [4, 5] });
});

test('invalid membership changes are refused with a reason', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  for (const change of [cc(ConfChangeType.AddNode, 2), cc(ConfChangeType.RemoveNode, 9)]) {
    const err = t.throws(() => net.raw(1).proposeConfChange(change), { instanceOf: ProposalDroppedError });
    t.is(err?.reason, DropReason.InvalidConfChange);
  }
});

test('removing followers shrinks the quorum; a two-voter remainder needs both (§4)', (t) => {
  const net = new Network([1, 2, 3, 4], { electionTick: ELECTION });
  net.campaign(1);
  net.isolate(4);
  net.proposeConfChange(1, { type: ConfChangeType.RemoveNode, nodeId: 4 });
  t.deepEqual(net.raw(1).confState(), { voters: [1, 2, 3], learners: [] }, 'committed by 1,2,3 of four');

  // With 3 down too, {1,2} was not a majority of four but is one of three.
  net.isolate(3);
  net.propose(1, 'two of three');
  t.deepEqual(net.node(1).appliedData(), ['two of three']);

  net.proposeConfChange(1, { type: ConfChangeType.RemoveNode, nodeId: 3 });
  t.deepEqual(net.raw(1).confState(), { voters: [1, 2], learners: [] });
  net.propose(1, 'both');
  t.deepEqual(net.node(2).appliedData(), ['two of three', 'both']);

  net.cut(1, 2);
  const commit = net.raw(1).status().commit;
  net.propose(1, 'alone');
  t.is(net.raw(1).status().commit, commit, 'one of two is not a majority');
  t.is(net.raw(1).status().progress?.has(3), false, 'no progress kept for removed members');
});

test('a removed leader hands over with TimeoutNow and steps down; the rest elect a leader (thesis §4.2.2)', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  net.propose(1, 'a');
  const mark = net.delivered.length;
  net.proposeConfChange(1, { type: ConfChangeType.RemoveNode, nodeId: 1 });

  const [handover] = net.since(mark, { type: MessageType.TimeoutNow, from: 1 });
  t.truthy(handover, 'TimeoutNow sent');
  const next = must(handover).to;
  t.is(net.leader(), next, 'the most up-to-date voter took over at once');
  t.is(net.term(next), 3);
  t.is(net.role(1), StateRole.Follower);
  t.deepEqual(net.raw(next).confState(), { voters: [2, 3], learners: [] });
  t.deepEqual(
    net.since(mark, { type: MessageType.Vote, from: next }).map((m) => m.to),
    [next === 2 ? 3 : 2],
    'asks only the remaining voters',
  );

  const mark2 = net.sent.length;
  net.tick(10 * ELECTION);
  t.is(net.leader(), next);
  t.deepEqual(
    net
      .since(mark2, { from: 1 }, true)
      .filter((m) => m.type === MessageType.PreVote || m.type === MessageType.Vote),
    [],
    'the removed node does not campaign',
  );
  net.propose(next, 'b');
  for (const id of [2, 3]) t.deepEqual(net.node(id).appliedData(), ['a', 'b']);
});

// Fails until fixed (core bug): Raft.hup() silently drops a TimeoutNow while a committed conf
// change is not yet applied. A runner steps messages that arrive during a Ready, so the
// commit of the removal and the TimeoutNow often reach the transferee together; the handover
// is then lost and the cluster has no leader for about an election timeout (thesis §4.2.2).
test('the handover survives a transferee that steps the commit and the TimeoutNow before its next Ready', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  // Node 2 gets the removal entry, but the leader's next messages to it (the new commit
  // index, then TimeoutNow) arrive together, while it is busy with a previous Ready.
  const held: Message[] = [];
  net.filter = (m) => {
    if (m.from !== 1 || m.to !== 2 || m.entries.length > 0) return true;
    held.push(m);
    return false;
  };
  net.proposeConfChange(1, { type: ConfChangeType.RemoveNode, nodeId: 1 });
  net.filter = undefined;
  t.deepEqual(
    held.map((m) => m.type),
    [MessageType.App, MessageType.TimeoutNow],
  );
  net.deliverBatch(held);
  t.is(net.leader(), 2, 'node 2 should take over at once, as it would one Ready later');
});

test('a removed leader whose TimeoutNow is lost: the rest still elect a leader once its lease ran out', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  net.ignore(MessageType.TimeoutNow);
  net.proposeConfChange(1, { type: ConfChangeType.RemoveNode, nodeId: 1 });
  t.is(net.role(1), StateRole.Follower);
  t.is(net.leader(), undefined);
  const ticks = net.tickUntil(() => net.leader() !== undefined, 10 * ELECTION);
  t.true(ticks >= ELECTION, `a leader after ${ticks} ticks: followers honoured the lease first`);
  t.true(net.leader() === 2 || net.leader() === 3);
});

test('a restarted node recovers membership from its log before applying anything (§4)', (t) => {
  const net = withLearner();
  net.proposeConfChange(1, { type: ConfChangeType.RemoveNode, nodeId: 3 });
  t.deepEqual(net.raw(1).confState(), { voters: [1, 2], learners: [4] });

  for (const keepApplied of [true, false]) {
    net.stop(2);
    const n2 = net.restart(2, {}, keepApplied);
    t.deepEqual(n2.raw.confState(), { voters: [1, 2], learners: [4] }, `keepApplied=${keepApplied}`);
    net.settle();
  }
  // It counts votes with that membership: with 1 down it cannot win, and it does not ask the
  // removed node 3 (whose vote would have made a majority of the old {1,2,3}).
  net.stop(1);
  const mark = net.sent.length;
  net.campaign(2);
  net.tick(3 * ELECTION);
  t.not(net.role(2), StateRole.Leader);
  t.deepEqual(
    net.since(mark, { from: 2, to: 3 }, true).filter((m) => m.type === MessageType.PreVote),
    [],
  );
  net.restart(1);
  net.tickUntil(() => net.leader() !== undefined);
  net.propose(must(net.leader()), 'after restart');
  t.deepEqual(net.node(4).appliedData(), ['after restart']);
});

test('a transfer to a learner is ignored: it could not win', (t) => {
  const net = withLearner();
  const mark = net.sent.length;
  net.raw(1).transferLeadership(4);
  net.settle();
  t.is(net.raw(1).status().leadTransferee, 0);
  t.deepEqual(net.since(mark, { type: MessageType.TimeoutNow }, true), []);
  t.notThrows(() => net.raw(1).propose(enc('fine')));
});

test('a promotion forwarded by a follower is refused like a local one while the learner lags (§4.2.1)', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  net.addNode(4);
  net.isolate(4); // the learner never receives anything: it cannot catch up
  net.proposeConfChange(1, { type: ConfChangeType.AddLearnerNode, nodeId: 4 });
  t.deepEqual(net.raw(1).confState(), { voters: [1, 2, 3], learners: [4] });
  // Follower 2 forwards the promotion to the leader, which must drop it.
  net.proposeConfChange(2, { type: ConfChangeType.AddNode, nodeId: 4 });
  net.tick(2 * ELECTION);
  t.deepEqual(net.raw(1).confState(), { voters: [1, 2, 3], learners: [4] }, 'still a learner');
  t.deepEqual(net.raw(2).confState(), { voters: [1, 2, 3], learners: [4] });
});

test('a conf change forwarded while another is pending is dropped (§4.1, one at a time)', (t) => {
  const net = new Network([1, 2, 3, 4, 5], { electionTick: ELECTION });
  net.campaign(1);
  // Hold the leader's appends so its first change stays unapplied while the second arrives.
  net.cut(1, 2);
  net.cut(1, 3);
  net.cut(1, 4);
  net.cut(1, 5);
  net.proposeConfChange(1, { type: ConfChangeType.RemoveNode, nodeId: 5 });
  net.recover();
  net.cut(1, 3);
  net.cut(1, 4);
  net.cut(1, 5);
  // 2 forwards a second change before the first is applied anywhere.
  net.raw(2).proposeConfChange(cc(ConfChangeType.RemoveNode, 4));
  net.settle();
  net.recover();
  net.tick(3 * ELECTION);
  t.deepEqual(
    net.raw(1).confState(),
    { voters: [1, 2, 3, 4], learners: [] },
    'only the first change happened',
  );
});

test('the leader tells a removed follower its removal is committed, even when appends to it are paused', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  const mark = net.sent.length;
  net.proposeConfChange(1, { type: ConfChangeType.RemoveNode, nodeId: 3 });
  net.settle();
  const removalIndex = net.raw(1).status().commit;
  t.deepEqual(net.raw(1).confState(), { voters: [1, 2], learners: [] });
  // Nobody sends to a removed member later, and an append to it may be held back by flow
  // control: the leader sends it, regardless, the entries from what it acknowledged up to
  // its removal, with the commit index.
  const told = net
    .since(mark, { from: 1, to: 3 }, true)
    .filter((m) => m.type === MessageType.App && m.commit >= removalIndex && m.index <= removalIndex);
  t.true(told.length > 0, 'an append with the removal committed went to node 3');
  t.deepEqual(net.raw(3).confState(), { voters: [1, 2], learners: [] }, 'node 3 applied its own removal');
});
