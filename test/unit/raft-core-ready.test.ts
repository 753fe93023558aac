// The Ready/advance contract of RawNode: what a caller may rely on when it persists, sends and
// applies. A message may promise persisted state (a vote, an acknowledged entry), so the state
// it depends on must be in the same Ready, flagged mustSync, and written before it leaves.

import test from 'ava';
import { ProposalDroppedError, RaftInvariantError, StepLocalMessageError } from '../../pkg/raft/errors.js';
import type { HardState, NodeId, Ready } from '../../pkg/raft/types.js';
import { MessageType, StateRole } from '../../pkg/raft/types.js';
import { bootstrappedStorage, enc, entry, msg, must, Network, shape, TestNode } from './raft-test-network.js';

test('ready() again before advance() throws, and so does advance() without ready()', (t) => {
  const n = new TestNode(1, bootstrappedStorage([1, 2, 3]));
  const rd = n.raw.ready();
  t.throws(() => n.raw.ready(), { instanceOf: RaftInvariantError });
  n.raw.advance(rd);
  t.throws(() => n.raw.advance(rd), { instanceOf: RaftInvariantError });
});

test('a VoteResp comes in the Ready whose hard state records that vote, with mustSync (§5.2 persistent state)', (t) => {
  const n = new TestNode(2, bootstrappedStorage([1, 2, 3]));
  n.processReady();
  n.raw.step(msg({ type: MessageType.Vote, from: 1, to: 2, term: 2, index: 3, logTerm: 1 }));
  const rd = n.processReady();
  t.like(rd.messages, [{ type: MessageType.VoteResp, to: 1, term: 2, reject: false }]);
  t.deepEqual(rd.hardState, { term: 2, vote: 1, commit: 3 });
  t.true(rd.mustSync);
  t.deepEqual(n.storage.hardStateNow(), { term: 2, vote: 1, commit: 3 });
});

/** Node 2 following leader 1 at term 2, so later Readys change neither term nor vote. */
function follower(): TestNode {
  const n = new TestNode(2, bootstrappedStorage([1, 2, 3]));
  n.processReady();
  n.raw.step(msg({ type: MessageType.Heartbeat, from: 1, to: 2, term: 2, commit: 3 }));
  n.processReady();
  return n;
}

test('an AppResp comes in the Ready that carries the acknowledged entries, with mustSync', (t) => {
  const n = follower();
  n.raw.step(
    msg({
      type: MessageType.App,
      from: 1,
      to: 2,
      term: 2,
      index: 3,
      logTerm: 1,
      entries: [entry(4, 2)],
      commit: 3,
    }),
  );
  const rd = n.processReady();
  t.like(rd.messages, [{ type: MessageType.AppResp, index: 4 }]);
  t.deepEqual(shape(rd.entries), [[4, 2]]);
  t.is(rd.hardState, undefined, 'term and vote unchanged: only the entries need the fsync');
  t.true(rd.mustSync);
  t.is(n.storage.lastIndex(), 4);
});

test('a Ready that only moves the commit index needs no fsync', (t) => {
  const n = new TestNode(2, bootstrappedStorage([1, 2, 3], [2, 2], { commit: 3 }));
  n.processReady();
  n.raw.step(msg({ type: MessageType.Heartbeat, from: 1, to: 2, term: 2, commit: 5 }));
  const rd = n.processReady();
  t.deepEqual(rd.hardState, { term: 2, vote: 0, commit: 5 });
  t.deepEqual(shape(rd.committedEntries), [
    [4, 2],
    [5, 2],
  ]);
  t.false(rd.mustSync);
});

test('committed entries are handed out exactly once, in order, across Readys', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  for (let i = 0; i < 20; i++) net.propose(1 + (i % 3), `v${i}`);
  for (const id of [1, 2, 3]) {
    const idx = net.node(id).applied.map((e) => e.index);
    t.deepEqual(
      idx,
      Array.from({ length: idx.length }, (_, i) => i + 1),
      `node ${id}`,
    );
    t.is(net.node(id).appliedData().length, 20);
  }
});

test('softState appears only when leader or role changes; an idle node has no Ready', (t) => {
  const n = new TestNode(1, bootstrappedStorage([1]));
  t.is(n.processReady().softState, undefined);
  t.false(n.raw.hasReady());
  n.raw.campaign();
  const rd = n.processReady();
  t.deepEqual(rd.softState, { leader: 1, role: StateRole.Leader });
  n.raw.propose(enc('x'));
  t.is(n.processReady().softState, undefined);
  t.false(n.raw.hasReady());
});

test('a snapshot in a Ready comes with mustSync and before the answer that acknowledges it', (t) => {
  const n = follower();
  n.raw.step(
    msg({
      type: MessageType.Snap,
      from: 1,
      to: 2,
      term: 2,
      snapshot: {
        metadata: { index: 9, term: 2, confState: { voters: [1, 2, 3], learners: [] } },
        data: enc('s'),
      },
    }),
  );
  const rd = n.processReady();
  t.is(rd.snapshot?.metadata.index, 9);
  t.true(rd.mustSync);
  t.like(rd.messages, [{ type: MessageType.AppResp, index: 9 }]);
  t.deepEqual(rd.committedEntries, [], 'the snapshot itself is the applied state');
  t.is(n.storage.firstIndex(), 10);
  t.is(n.raw.status().applied, 9);
});

test('local-only message types are refused from the network', (t) => {
  const n = new TestNode(1, bootstrappedStorage([1, 2, 3]));
  for (const type of [MessageType.Hup, MessageType.Beat, MessageType.CheckQuorum, MessageType.SnapStatus]) {
    t.throws(() => n.raw.step(msg({ type, from: 2, to: 1, term: 1 })), { instanceOf: StepLocalMessageError });
  }
  t.is(n.raw.status().role, StateRole.Follower);
});

test('across a faulty run, no message leaves before the state it promises is persisted', (t) => {
  const net = new Network([1, 2, 3, 4, 5], { seed: 11 });
  const problems: string[] = [];
  const counts = { votes: 0, appResps: 0, apps: 0, readys: 0 };
  const prevHard = new Map<NodeId, HardState>();
  net.onReady = (node: TestNode, rd: Ready) => {
    counts.readys++;
    const hs = node.storage.hardStateNow();
    const last = node.storage.lastIndex();
    const prev = prevHard.get(node.id);
    prevHard.set(node.id, hs);
    const where = `node ${node.id} ready ${node.readys.length}`;
    if (
      (rd.entries.length > 0 || (prev && (prev.term !== hs.term || prev.vote !== hs.vote))) &&
      !rd.mustSync
    ) {
      problems.push(`${where}: entries or term/vote changed without mustSync`);
    }
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted && lastCommitted.index > last) problems.push(`${where}: applies an unpersisted entry`);
    for (const m of rd.messages) {
      const future = m.type === MessageType.PreVote || m.type === MessageType.PreVoteResp;
      if (!future && m.term > hs.term)
        problems.push(`${where}: ${m.type} at term ${m.term} > persisted ${hs.term}`);
      if (m.type === MessageType.VoteResp && !m.reject) {
        counts.votes++;
        if (hs.term !== m.term || hs.vote !== m.to) problems.push(`${where}: vote for ${m.to} not persisted`);
      }
      if (m.type === MessageType.AppResp && !m.reject) {
        counts.appResps++;
        if (m.index > last) problems.push(`${where}: acks ${m.index} but persisted up to ${last}`);
      }
      if (m.type === MessageType.App) {
        counts.apps++;
        for (const e of m.entries) {
          if (e.index > last || node.storage.term(e.index) !== e.term) {
            problems.push(`${where}: sends entry ${e.index} it has not persisted`);
          }
        }
      }
    }
  };
  const ids = [1, 2, 3, 4, 5];
  const lossy = (): void => {
    for (const a of ids) for (const b of ids) if (a !== b) net.drop(a, b, 0.1);
  };
  lossy();
  for (let round = 0; round < 400; round++) {
    net.tick(1);
    const leader = net.leader();
    if (round % 3 === 0 && leader !== undefined) {
      try {
        net.propose(leader, `v${round}`);
      } catch (e) {
        if (!(e instanceof ProposalDroppedError)) throw e;
      }
    }
    if (round === 120 && leader !== undefined) net.isolate(leader);
    if (round === 220) {
      net.recover();
      lossy();
    }
  }
  net.recover();
  net.tick(30);
  t.deepEqual(problems, []);
  t.true(counts.votes >= 4, JSON.stringify(counts));
  t.true(counts.appResps >= 100, JSON.stringify(counts));
  t.true(counts.apps >= 100, JSON.stringify(counts));
  // And the point of it all: every node applied the same sequence.
  const reference = net.node(must(net.leader())).applied.map((e) => `${e.index}/${e.term}`);
  t.true(reference.length > 20);
  for (const id of ids) {
    const mine = net.node(id).applied.map((e) => `${e.index}/${e.term}`);
    t.deepEqual(mine, reference.slice(0, mine.length), `node ${id} applied a prefix of the same log`);
  }
});
