// The leader's view of each follower (§5.3 nextIndex/matchIndex) and its flow control, after
// etcd's tracker/progress_test.go, inflights_test.go and quorum tests.

import test from 'ava';
import { RaftInvariantError } from '../../pkg/raft/errors.js';
import { Inflights, Progress, ProgressState, ProgressTracker, VoteResult } from '../../pkg/raft/progress.js';
import { must } from './raft-test-network.js';

function progress(state: ProgressState, match: number, next: number): Progress {
  const pr = new Progress(next, 4, false);
  pr.match = match;
  if (state === ProgressState.Replicate) pr.becomeReplicate();
  if (state === ProgressState.Snapshot) pr.becomeSnapshot(20);
  pr.next = next;
  return pr;
}

test('Inflights: add until full, free up to an index, free the oldest one', (t) => {
  const inf = new Inflights(3);
  inf.add(5);
  inf.add(7);
  t.false(inf.full());
  inf.add(9);
  t.true(inf.full());
  t.throws(() => inf.add(10), { instanceOf: RaftInvariantError }, 'never past the window');

  inf.freeLE(4);
  t.is(inf.count, 3, 'an ack below every App frees nothing');
  inf.freeLE(7);
  t.is(inf.count, 1, 'frees 5 and 7');
  t.false(inf.full());
  inf.add(11);
  inf.freeFirstOne();
  t.is(inf.count, 1);
  inf.freeLE(100);
  t.is(inf.count, 0);
  inf.add(12);
  inf.reset();
  t.is(inf.count, 0);
});

test('maybeDecrTo in Replicate: a rejection at or below match is stale; otherwise back to match+1', (t) => {
  const pr = progress(ProgressState.Replicate, 5, 10);
  t.false(pr.maybeDecrTo(5, 5));
  t.false(pr.maybeDecrTo(4, 4));
  t.is(pr.next, 10);
  t.true(pr.maybeDecrTo(9, 2));
  t.is(pr.next, 6, 'the hint is not used below match: match+1');
});

test('maybeDecrTo in Probe: only the outstanding probe counts, and the hint moves next back in one step', (t) => {
  const stale = progress(ProgressState.Probe, 0, 10);
  t.false(stale.maybeDecrTo(8, 3), 'not the probe at next-1');
  t.is(stale.next, 10);

  const pr = progress(ProgressState.Probe, 0, 10);
  pr.probeSent = true;
  t.true(pr.maybeDecrTo(9, 3));
  t.is(pr.next, 4, 'straight to hint+1');
  t.false(pr.probeSent, 'a rejection is an answer: probe again');

  const hintAbove = progress(ProgressState.Probe, 0, 10);
  t.true(hintAbove.maybeDecrTo(9, 50));
  t.is(hintAbove.next, 9, 'never forward: at most the rejected index');

  const withMatch = progress(ProgressState.Probe, 5, 10);
  t.true(withMatch.maybeDecrTo(9, 1));
  t.is(withMatch.next, 6, 'never below match+1');
});

test('maybeUpdate: only a higher match is news; next never goes back', (t) => {
  const pr = progress(ProgressState.Probe, 3, 8);
  pr.probeSent = true;
  t.true(pr.maybeUpdate(5));
  t.is(pr.match, 5);
  t.is(pr.next, 8);
  t.false(pr.probeSent);
  t.false(pr.maybeUpdate(4));
  t.is(pr.match, 5);
  t.true(pr.maybeUpdate(9));
  t.is(pr.next, 10);
});

test('isPaused: Probe while a probe is out, Replicate when the window is full, Snapshot always', (t) => {
  const probe = progress(ProgressState.Probe, 0, 1);
  t.false(probe.isPaused());
  probe.probeSent = true;
  t.true(probe.isPaused());

  const repl = progress(ProgressState.Replicate, 0, 1);
  for (let i = 1; i <= 4; i++) {
    t.false(repl.isPaused());
    repl.inflights.add(i);
  }
  t.true(repl.isPaused());

  t.true(progress(ProgressState.Snapshot, 0, 1).isPaused());
});

test('state transitions reset flow control; leaving Snapshot resumes after the snapshot', (t) => {
  const pr = progress(ProgressState.Replicate, 3, 9);
  pr.inflights.add(8);
  pr.becomeProbe();
  t.is(pr.state, ProgressState.Probe);
  t.is(pr.next, 4);
  t.is(pr.inflights.count, 0);

  pr.becomeSnapshot(20);
  t.is(pr.pendingSnapshot, 20);
  pr.becomeProbe();
  t.is(pr.next, 21, 'the follower will have the snapshot: probe after it');
  t.is(pr.pendingSnapshot, 0);

  pr.becomeSnapshot(20);
  pr.pendingSnapshot = 0; // the snapshot failed
  pr.becomeProbe();
  t.is(pr.next, 4, 'back to what we know it has');

  pr.becomeReplicate();
  t.is(pr.next, 4);
  t.is(pr.state, ProgressState.Replicate);
});

test('the tracker commits the highest index a majority of voters holds; learners do not count (§5.3)', (t) => {
  const tr = new ProgressTracker(8);
  for (const id of [1, 2, 3, 4, 5]) tr.addVoter(id, 1);
  tr.addLearner(6, 1);
  const matches: Record<number, number> = { 1: 9, 2: 8, 3: 3, 4: 2, 5: 1, 6: 100 };
  for (const [id, m] of Object.entries(matches)) {
    const pr = tr.progress.get(Number(id));
    if (pr) pr.match = m;
  }
  t.is(tr.quorum(), 3);
  t.is(tr.committed(), 3);
  tr.remove(5);
  tr.remove(4);
  t.is(tr.quorum(), 2);
  t.is(tr.committed(), 8);
  t.deepEqual(tr.confState(), { voters: [1, 2, 3], learners: [6] });
});

test('tallyVotes: Won with a majority, Lost once a majority is out of reach, learners ignored', (t) => {
  const tr = new ProgressTracker(8);
  for (const id of [1, 2, 3, 4]) tr.addVoter(id, 1);
  tr.addLearner(5, 1);
  tr.recordVote(1, true);
  tr.recordVote(5, true);
  t.is(tr.tallyVotes().result, VoteResult.Pending);
  tr.recordVote(2, true);
  t.is(tr.tallyVotes().result, VoteResult.Pending, '2 of 4 is not a majority');
  tr.recordVote(3, false);
  tr.recordVote(3, true);
  t.deepEqual(
    tr.tallyVotes(),
    { granted: 2, rejected: 1, result: VoteResult.Pending },
    'first answer counts',
  );
  tr.recordVote(4, false);
  t.is(tr.tallyVotes().result, VoteResult.Lost);

  tr.resetVotes();
  for (const id of [1, 2, 3]) tr.recordVote(id, true);
  t.is(tr.tallyVotes().result, VoteResult.Won);
});

test('quorumActive counts the leader and recently active voters only (thesis §6.2)', (t) => {
  const tr = new ProgressTracker(8);
  for (const id of [1, 2, 3]) tr.addVoter(id, 1);
  tr.addLearner(4, 1);
  for (const pr of tr.progress.values()) pr.recentActive = false;
  must(tr.progress.get(4)).recentActive = true;
  t.false(tr.quorumActive(1), 'leader + a learner');
  must(tr.progress.get(2)).recentActive = true;
  t.true(tr.quorumActive(1));
});

test('promoting a learner keeps its progress; adding an existing voter as learner is a no-op', (t) => {
  const tr = new ProgressTracker(8);
  tr.addVoter(1, 1);
  tr.addLearner(2, 1);
  must(tr.progress.get(2)).match = 7;
  tr.addVoter(2, 1);
  t.is(must(tr.progress.get(2)).match, 7);
  t.false(must(tr.progress.get(2)).isLearner);
  tr.addLearner(2, 1);
  t.deepEqual(tr.confState(), { voters: [1, 2], learners: [] });
});
