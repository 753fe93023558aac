// Leader election (§5.2, §5.4.1) and pre-vote (thesis §9.6), after etcd's raft_test.go and
// raft_paper_test.go: step messages in, assert on what comes out.

import test from 'ava';
import { ProposalDroppedError } from '../../pkg/raft/errors.js';
import { createRandom } from '../../pkg/raft/rand.js';
import type { Message } from '../../pkg/raft/types.js';
import { MessageType, NONE, StateRole } from '../../pkg/raft/types.js';
import {
  bootstrappedStorage,
  msg,
  must,
  Network,
  newRaft,
  shape,
  TestNode,
  takeMsgs,
} from './raft-test-network.js';

const ELECTION = 10;

/** Tick a lone node until it emits messages; returns how many ticks it took and the Ready. */
function tickUntilMessages(n: TestNode, max = 100): { ticks: number; messages: Message[] } {
  for (let ticks = 1; ticks <= max; ticks++) {
    n.raw.tick();
    if (n.raw.hasReady()) {
      const rd = n.processReady();
      if (rd.messages.length > 0) return { ticks, messages: rd.messages };
    }
  }
  throw new Error('node never campaigned');
}

test('a follower times out within [electionTick, 2*electionTick) and pre-votes at term+1 without bumping its term (§5.2, thesis §9.6)', (t) => {
  const timeouts = new Set<number>();
  for (let seed = 1; seed <= 30; seed++) {
    const n = new TestNode(1, bootstrappedStorage([1, 2, 3]), {
      electionTick: ELECTION,
      random: createRandom(seed),
    });
    n.processReady(); // the bootstrap entries
    const { ticks, messages } = tickUntilMessages(n);
    t.true(ticks >= ELECTION && ticks < 2 * ELECTION, `seed ${seed}: timed out after ${ticks} ticks`);
    timeouts.add(ticks);
    // To every other voter, for the next term, describing our last entry (§5.4.1).
    t.deepEqual(
      messages.map((m) => [m.type, m.to, m.term, m.index, m.logTerm]),
      [
        [MessageType.PreVote, 2, 2, 3, 1],
        [MessageType.PreVote, 3, 2, 3, 1],
      ],
    );
    const rd = must(n.readys[n.readys.length - 1]);
    t.is(rd.hardState, undefined, 'pre-vote persists nothing');
    t.false(rd.mustSync);
    const st = n.raw.status();
    t.is(st.term, 1, 'term unchanged until the pre-vote is won');
    t.is(st.vote, NONE);
    t.is(st.role, StateRole.PreCandidate);
  }
  // Randomized timeouts are what make split votes rare (§5.2).
  t.true(timeouts.size >= 4, `only saw timeouts ${[...timeouts].join(',')}`);
});

test('with pre-vote off a timeout goes straight to Vote at term+1, voting for itself durably (§5.2)', (t) => {
  const n = new TestNode(1, bootstrappedStorage([1, 2, 3]), { preVote: false, electionTick: ELECTION });
  n.processReady();
  const { messages } = tickUntilMessages(n);
  t.deepEqual(
    messages.map((m) => [m.type, m.to, m.term]),
    [
      [MessageType.Vote, 2, 2],
      [MessageType.Vote, 3, 2],
    ],
  );
  const rd = must(n.readys[n.readys.length - 1]);
  t.like(rd.hardState, { term: 2, vote: 1 });
  t.true(rd.mustSync);
  t.is(n.raw.status().role, StateRole.Candidate);
});

test('a candidate with a majority of votes becomes leader and appends an empty entry of its term (§5.2, §8)', (t) => {
  const n = new TestNode(1, bootstrappedStorage([1, 2, 3, 4, 5]), { preVote: false });
  n.processReady();
  n.raw.campaign();
  t.is(n.processReady().messages.length, 4);

  n.raw.step(msg({ type: MessageType.VoteResp, from: 2, to: 1, term: 2 }));
  n.raw.step(msg({ type: MessageType.VoteResp, from: 3, to: 1, term: 2, reject: true }));
  t.is(n.raw.status().role, StateRole.Candidate, '2 of 5 is not a majority');
  n.raw.step(msg({ type: MessageType.VoteResp, from: 4, to: 1, term: 2 }));
  t.is(n.raw.status().role, StateRole.Leader, '3 of 5 is');

  const rd = n.processReady();
  t.deepEqual(rd.softState, { leader: 1, role: StateRole.Leader });
  t.deepEqual(shape(rd.entries), [[6, 2]]);
  t.is(must(rd.entries[0]).data.length, 0);
  const apps = rd.messages.filter((m) => m.type === MessageType.App);
  t.deepEqual(
    apps.map((m) => m.to),
    [2, 3, 4, 5],
  );
  for (const m of apps) {
    t.is(m.index, 5);
    t.is(m.logTerm, 1);
    t.deepEqual(shape(m.entries), [[6, 2]]);
  }
});

test('an election in a network: everyone follows the winner and commits its empty entry', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  t.is(net.leader(), 1);
  for (const id of [1, 2, 3]) {
    const st = net.raw(id).status();
    t.is(st.leader, 1);
    t.is(st.term, 2);
    t.is(st.commit, 4);
    t.deepEqual(shape(net.node(id).applied.slice(-1)), [[4, 2]]);
  }
});

test('a vote is refused to a candidate whose log is less up to date (§5.4.1)', (t) => {
  // Voter's log: 1..3 at term 1, 4..5 at term 2.
  const cases: { index: number; logTerm: number; grant: boolean }[] = [
    { index: 5, logTerm: 2, grant: true }, // same
    { index: 6, logTerm: 2, grant: true }, // longer, same last term
    { index: 3, logTerm: 3, grant: true }, // shorter but a later last term
    { index: 4, logTerm: 2, grant: false }, // shorter, same last term
    { index: 9, logTerm: 1, grant: false }, // longer, but an older last term
  ];
  for (const c of cases) {
    const r = newRaft(1, bootstrappedStorage([1, 2, 3], [2, 2]));
    r.step(msg({ type: MessageType.Vote, from: 2, to: 1, term: 3, index: c.index, logTerm: c.logTerm }));
    const [resp] = takeMsgs(r);
    t.is(resp?.type, MessageType.VoteResp);
    t.is(resp?.reject, !c.grant, JSON.stringify(c));
    t.is(r.term, 3, 'a higher term is adopted either way (§5.1)');
    t.is(r.vote, c.grant ? 2 : NONE);
  }
});

test('one vote per term: a second candidate of the same term is refused, the first may ask again (§5.2)', (t) => {
  const r = newRaft(1, bootstrappedStorage([1, 2, 3]));
  const vote = (from: number, term: number): boolean => {
    r.step(msg({ type: MessageType.Vote, from, to: 1, term, index: 3, logTerm: 1 }));
    const [resp] = takeMsgs(r);
    return !must(resp).reject;
  };
  t.true(vote(2, 2));
  t.false(vote(3, 2), 'already voted for 2 in term 2');
  t.true(vote(2, 2), 'a retransmitted request from the same candidate');
  t.is(r.vote, 2);
  t.true(vote(3, 3), 'a new term, a new vote');
  t.is(r.vote, 3);
});

test('a candidate refuses other candidates of its term: it voted for itself (§5.2)', (t) => {
  const r = newRaft(1, bootstrappedStorage([1, 2, 3]), { preVote: false });
  r.step(msg({ type: MessageType.Hup, from: 1, to: 1 }));
  takeMsgs(r);
  r.step(msg({ type: MessageType.Vote, from: 2, to: 1, term: 2, index: 3, logTerm: 1 }));
  const [resp] = takeMsgs(r);
  t.true(must(resp).reject);
  t.is(r.state, StateRole.Candidate);
});

test('a candidate steps down on an App from a leader of its own term, not of an older one (§5.2)', (t) => {
  const n = new TestNode(1, bootstrappedStorage([1, 2, 3]), { preVote: false });
  n.processReady();
  n.raw.campaign();
  n.processReady();
  t.is(n.raw.status().term, 2);

  // A stale leader of term 1 is told about term 2 and does not unseat the candidate (§5.1).
  n.raw.step(msg({ type: MessageType.App, from: 3, to: 1, term: 1, index: 3, logTerm: 1, commit: 3 }));
  t.is(n.raw.status().role, StateRole.Candidate);
  t.like(n.processReady().messages, [{ type: MessageType.AppResp, to: 3, term: 2 }]);

  n.raw.step(msg({ type: MessageType.App, from: 2, to: 1, term: 2, index: 3, logTerm: 1, commit: 3 }));
  const st = n.raw.status();
  t.is(st.role, StateRole.Follower);
  t.is(st.leader, 2);
  t.is(st.term, 2);
  t.like(n.processReady().messages, [{ type: MessageType.AppResp, to: 2, term: 2, reject: false, index: 3 }]);
});

test('a pre-candidate follows a leader it hears from at its own term (thesis §9.6)', (t) => {
  const n = new TestNode(1, bootstrappedStorage([1, 2, 3]));
  n.processReady();
  n.raw.campaign();
  n.processReady();
  t.is(n.raw.status().role, StateRole.PreCandidate);
  n.raw.step(msg({ type: MessageType.Heartbeat, from: 2, to: 1, term: 1, commit: 3 }));
  t.like(n.raw.status(), { role: StateRole.Follower, leader: 2, term: 1 });
});

test('a pre-candidate refused by a majority returns to follower at the same term (thesis §9.6)', (t) => {
  const r = newRaft(1, bootstrappedStorage([1, 2, 3]));
  r.step(msg({ type: MessageType.Hup, from: 1, to: 1 }));
  takeMsgs(r);
  r.step(msg({ type: MessageType.PreVoteResp, from: 2, to: 1, term: 1, reject: true }));
  t.is(r.state, StateRole.PreCandidate);
  r.step(msg({ type: MessageType.PreVoteResp, from: 3, to: 1, term: 1, reject: true }));
  t.is(r.state, StateRole.Follower);
  t.is(r.term, 1);
  t.is(r.vote, NONE);
});

test('a pre-candidate granted a majority campaigns for real at term+1 (thesis §9.6)', (t) => {
  const r = newRaft(1, bootstrappedStorage([1, 2, 3]));
  r.step(msg({ type: MessageType.Hup, from: 1, to: 1 }));
  takeMsgs(r);
  r.step(msg({ type: MessageType.PreVoteResp, from: 2, to: 1, term: 2 }));
  t.is(r.state, StateRole.Candidate);
  t.is(r.term, 2);
  t.is(r.vote, 1);
  t.deepEqual(
    takeMsgs(r).map((m) => [m.type, m.to, m.term]),
    [
      [MessageType.Vote, 2, 2],
      [MessageType.Vote, 3, 2],
    ],
  );
});

test('a node grants a PreVote without changing its term or vote (thesis §9.6)', (t) => {
  const r = newRaft(1, bootstrappedStorage([1, 2, 3]));
  r.step(msg({ type: MessageType.PreVote, from: 2, to: 1, term: 5, index: 3, logTerm: 1 }));
  t.like(takeMsgs(r), [{ type: MessageType.PreVoteResp, to: 2, term: 5, reject: false }]);
  t.is(r.term, 1);
  t.is(r.vote, NONE);
});

test('a split vote is retried at a higher term after another timeout (§5.2)', (t) => {
  const n = new TestNode(1, bootstrappedStorage([1, 2, 3]), { preVote: false });
  n.processReady();
  n.raw.campaign();
  n.processReady();
  n.raw.step(msg({ type: MessageType.VoteResp, from: 2, to: 1, term: 2, reject: true }));
  n.raw.step(msg({ type: MessageType.VoteResp, from: 3, to: 1, term: 2, reject: true }));
  t.is(n.raw.status().role, StateRole.Follower, 'lost');
  n.processReady();
  const { messages } = tickUntilMessages(n);
  t.true(messages.every((m) => m.type === MessageType.Vote && m.term === 3));
});

test('a single voter elects itself and commits its empty entry at once', (t) => {
  const n = new TestNode(1, bootstrappedStorage([1]));
  n.processReady();
  n.raw.campaign();
  const st = n.raw.status();
  t.is(st.role, StateRole.Leader);
  t.is(st.term, 2);
  t.is(st.commit, 2);
});

test('a node without a leader refuses proposals with ProposalDroppedError (no leader)', (t) => {
  const n = new TestNode(1, bootstrappedStorage([1, 2, 3]));
  n.processReady();
  const err = t.throws(() => n.raw.propose(new Uint8Array([1])), { instanceOf: ProposalDroppedError });
  t.is(err?.reason, 'no leader');
  t.is(err?.code, 'RAFT_PROPOSAL_DROPPED');
  n.raw.campaign();
  t.throws(
    () => n.raw.propose(new Uint8Array([1])),
    { instanceOf: ProposalDroppedError },
    'nor as pre-candidate',
  );
});

test('a vote survives a restart: the node does not vote twice in one term (§5.2 persistent state)', (t) => {
  const n = new TestNode(2, bootstrappedStorage([1, 2, 3]));
  n.processReady();
  n.raw.step(msg({ type: MessageType.Vote, from: 1, to: 2, term: 2, index: 3, logTerm: 1 }));
  n.processReady();
  n.restart();
  t.like(n.raw.status(), { term: 2, vote: 1 });
  n.raw.step(msg({ type: MessageType.Vote, from: 3, to: 2, term: 2, index: 3, logTerm: 1 }));
  t.like(n.processReady().messages, [{ type: MessageType.VoteResp, to: 3, reject: true }]);
});

test('a restarted leader comes back as a follower of its old term and rejoins', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'a');
  net.stop(1);
  net.tickUntil(() => net.leader() !== undefined);
  const leader = must(net.leader());
  net.propose(leader, 'b');
  const n1 = net.restart(1);
  t.like(n1.raw.status(), { role: StateRole.Follower, term: 2 });
  net.tick(2);
  t.is(net.raw(1).status().leader, leader);
  t.deepEqual(net.node(1).appliedData(), ['a', 'b']);
});
