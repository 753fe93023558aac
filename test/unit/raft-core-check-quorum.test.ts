// Pre-vote (thesis §9.6), check-quorum (thesis §6.2) and the leader lease that keeps a
// rejoining node from disrupting a healthy cluster (thesis §4.2.3).

import test from 'ava';
import { DropReason, ProposalDroppedError } from '../../pkg/raft/errors.js';
import { CAMPAIGN_TRANSFER } from '../../pkg/raft/raft.js';
import { MessageType, StateRole } from '../../pkg/raft/types.js';
import { bootstrappedStorage, enc, msg, must, Network, TestNode } from './raft-test-network.js';

const ELECTION = 10;

test('an isolated node that rejoins does not depose the healthy leader (thesis §9.6 pre-vote)', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  t.is(net.leader(), 1);
  t.is(net.term(1), 2);

  net.isolate(3);
  const mark = net.sent.length;
  net.tick(10 * ELECTION);
  const preVotes = net.since(mark, { type: MessageType.PreVote, from: 3 }, true);
  t.true(preVotes.length >= 4, 'the isolated node kept trying');
  t.true(
    preVotes.every((m) => m.term === 3),
    'always for term+1',
  );
  t.is(net.term(3), 2, 'pre-vote never bumps the term of a node that cannot win');
  t.is(net.leader(), 1);

  // Worst case: its timer fires the moment it can reach the others again. Its log is as
  // up to date as theirs, so only the leader lease keeps them from granting.
  net.recover();
  const rejoin = net.delivered.length;
  net.campaign(3);
  t.true(net.since(rejoin, { type: MessageType.PreVote, from: 3 }).length === 2, 'the pre-votes arrived');
  t.deepEqual(net.since(rejoin, { type: MessageType.PreVoteResp }), [], 'and were ignored');
  net.tick(3 * ELECTION);
  t.is(net.leader(), 1);
  for (const id of [1, 2, 3]) {
    t.is(net.term(id), 2, `node ${id}'s term`);
    t.is(net.raw(id).status().leader, 1);
  }
});

test('without pre-vote the same isolated node inflates its term (what pre-vote prevents)', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION, preVote: false });
  net.campaign(1);
  net.isolate(3);
  net.tick(10 * ELECTION);
  t.true(net.term(3) > 4, `term ${net.term(3)}`);
  t.is(net.term(1), 2);
});

test('check-quorum: a leader cut off from its quorum steps down within an election timeout (thesis §6.2)', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  net.tick(ELECTION + 3); // at least one check-quorum round with everyone answering
  t.is(net.leader(), 1);

  net.isolate(1);
  const ticks = net.tickUntil(() => net.role(1) !== StateRole.Leader, 10 * ELECTION);
  // The round in progress when the cut happened may still count the old answers.
  t.true(ticks <= 2 * ELECTION, `stepped down after ${ticks} ticks`);
  t.is(net.role(1), StateRole.Follower);
  const err = t.throws(() => net.raw(1).propose(enc('x')), { instanceOf: ProposalDroppedError });
  t.is(err?.reason, DropReason.NoLeader);

  // The majority side elects a new leader and the old one follows it once healed.
  net.tickUntil(() => net.leader() !== undefined && net.leader() !== 1, 10 * ELECTION);
  const newLeader = must(net.leader());
  t.true(newLeader === 2 || newLeader === 3);
  net.recover();
  net.tick(2);
  t.is(net.raw(1).status().leader, newLeader);
  t.is(net.term(1), net.term(newLeader));
});

test('check-quorum: a leader that still hears from a quorum stays leader', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION });
  net.campaign(1);
  net.isolate(3);
  net.tick(10 * ELECTION);
  t.is(net.leader(), 1);
  t.is(net.term(1), 2);
  t.is(net.term(2), 2);
});

/** Node 2 following leader 1 at term 2, having just heard from it. */
function followerInLease(): TestNode {
  const n = new TestNode(2, bootstrappedStorage([1, 2, 3]), { electionTick: ELECTION });
  n.processReady();
  n.raw.step(msg({ type: MessageType.Heartbeat, from: 1, to: 2, term: 2, commit: 3 }));
  n.processReady();
  return n;
}

test('a follower in its leader lease ignores a Vote of a higher term (thesis §4.2.3)', (t) => {
  const n = followerInLease();
  n.raw.step(msg({ type: MessageType.Vote, from: 3, to: 2, term: 3, index: 3, logTerm: 1 }));
  n.raw.step(msg({ type: MessageType.PreVote, from: 3, to: 2, term: 3, index: 3, logTerm: 1 }));
  t.false(n.raw.hasReady(), 'no answer, no state change');
  t.like(n.raw.status(), { term: 2, leader: 1 });
});

test('a Vote carrying the transfer context breaks the lease (thesis §3.10)', (t) => {
  const n = followerInLease();
  n.raw.step(
    msg({
      type: MessageType.Vote,
      from: 3,
      to: 2,
      term: 3,
      index: 3,
      logTerm: 1,
      context: CAMPAIGN_TRANSFER,
    }),
  );
  const rd = n.processReady();
  t.like(rd.messages, [{ type: MessageType.VoteResp, to: 3, term: 3, reject: false }]);
  t.like(rd.hardState, { term: 3, vote: 3 });
});

test('once the lease has run out (an election timeout without the leader) a Vote is answered', (t) => {
  const n = followerInLease();
  for (let i = 0; i < ELECTION; i++) n.raw.tick();
  if (n.raw.hasReady()) n.processReady(); // it may have started a pre-vote of its own
  n.raw.step(msg({ type: MessageType.Vote, from: 3, to: 2, term: 3, index: 3, logTerm: 1 }));
  t.like(n.processReady().messages, [{ type: MessageType.VoteResp, to: 3, term: 3, reject: false }]);
});

test('a stale leader learns the new term from the answer to its heartbeat and steps down (§5.1)', (t) => {
  const net = new Network([1, 2, 3], { electionTick: ELECTION, checkQuorum: false });
  net.campaign(1);
  net.isolate(1);
  // Without check-quorum the old leader keeps believing it leads.
  net.tickUntil(() => net.leader() !== 1 && net.leader() !== undefined, 10 * ELECTION);
  t.is(net.role(1), StateRole.Leader);
  t.is(net.term(1), 2);
  net.recover();
  net.tick(1);
  t.is(net.role(1), StateRole.Follower);
  t.true(net.term(1) >= 3);
});
