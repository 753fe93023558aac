// The quorum arithmetic berthctl shows (cluster status) and warns with (member add/promote):
// majority of the voters, failures survived, learners apart, and the even-count warning.
import test from 'ava';
import { summarizeStatus } from '../../cmd/ctl/cluster-status.js';
import { evenVotersWarning, quorumLines, quorumOf, quorumOfMembers } from '../../cmd/ctl/quorum.js';
import type { MemberInfo } from '../../pkg/client/cluster.js';

test('quorum and failures survived for 1..6 voters, learners counted apart', (t) => {
  const expected: [number, number, number][] = [
    // voters, quorum, failures survived
    [1, 1, 0],
    [2, 2, 0],
    [3, 2, 1],
    [4, 3, 1],
    [5, 3, 2],
    [6, 4, 2],
  ];
  for (const [voters, quorum, toleratedFailures] of expected) {
    for (const learners of [0, 2]) {
      t.deepEqual(quorumOf(voters, learners), { voters, quorum, toleratedFailures, learners }, `${voters}`);
    }
  }
});

test('the lines after the members table, for 1..6 voters', (t) => {
  t.deepEqual(quorumLines(quorumOf(1, 0)), [
    'voters: 1 (quorum 1); the cluster survives no failure',
    'workers (non-voting): 0',
  ]);
  t.deepEqual(quorumLines(quorumOf(2, 1)), [
    'voters: 2 (quorum 2); the cluster survives no failure',
    'workers (non-voting): 1',
    'warning: 2 voters is an even number: it survives no more failures than 1 voter; add or remove one',
  ]);
  t.deepEqual(quorumLines(quorumOf(3, 1)), [
    'voters: 3 (quorum 2); the cluster survives 1 failure',
    'workers (non-voting): 1',
  ]);
  t.deepEqual(quorumLines(quorumOf(4, 0)), [
    'voters: 4 (quorum 3); the cluster survives 1 failure',
    'workers (non-voting): 0',
    'warning: 4 voters is an even number: it survives no more failures than 3 voters; add or remove one',
  ]);
  t.deepEqual(quorumLines(quorumOf(5, 3)), [
    'voters: 5 (quorum 3); the cluster survives 2 failures',
    'workers (non-voting): 3',
  ]);
  t.deepEqual(quorumLines(quorumOf(6, 0))[2], evenVotersWarning(6));
  t.is(
    evenVotersWarning(6),
    'warning: 6 voters is an even number: it survives no more failures than 5 voters; add or remove one',
  );
  for (const odd of [0, 1, 3, 5]) t.is(evenVotersWarning(odd), undefined);
});

const member = (name: string, id: string, isLearner: boolean): MemberInfo => ({
  id,
  name,
  peerUrls: [`127.0.0.${id}:2380`],
  clientUrls: [`127.0.0.${id}:2379`],
  isLearner,
});

test('cluster status counts voters and learners from the membership, answered or not', (t) => {
  const members = [member('n1', '1', false), member('n2', '2', false), member('w1', '3', true)];
  t.deepEqual(quorumOfMembers(members), { voters: 2, quorum: 2, toleratedFailures: 0, learners: 1 });
  // Unreachable members still count: quorum is about the configuration, not who is up.
  const s = summarizeStatus(
    '7',
    members.map((m) => ({ member: m, error: 'unreachable' })),
  );
  t.deepEqual(s.quorum, { voters: 2, quorum: 2, toleratedFailures: 0, learners: 1 });
});
