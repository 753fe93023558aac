// Quorum arithmetic for the operator: how many voters must agree, how many may fail, and
// when the voter count is even (which buys no extra failure tolerance, only a larger quorum:
// Raft, section 5; etcd's FAQ "Why an odd number of cluster members?"). Pure.

/** The voting shape of a cluster. */
export interface Quorum {
  /** Members that vote (etcd: not isLearner). */
  voters: number;
  /** Votes needed to elect a leader or commit: a majority of the voters. */
  quorum: number;
  /** Voters that may be lost with the cluster still able to commit. */
  toleratedFailures: number;
  /** Non-voting members (learners: workers, and members still catching up). */
  learners: number;
}

export function quorumOf(voters: number, learners: number): Quorum {
  const quorum = voters === 0 ? 0 : Math.floor(voters / 2) + 1;
  return { voters, quorum, toleratedFailures: Math.max(0, voters - quorum), learners };
}

/** Quorum of a member list (etcd's MemberInfo shape: only isLearner is read). */
export function quorumOfMembers(members: readonly { isLearner: boolean }[]): Quorum {
  const learners = members.filter((m) => m.isLearner).length;
  return quorumOf(members.length - learners, learners);
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/**
 * 'warning: 4 voters is an even number: it survives no more failures than 3 voters; add or
 * remove one', or undefined for an odd count (and for none).
 */
export function evenVotersWarning(voters: number): string | undefined {
  if (voters === 0 || voters % 2 !== 0) return undefined;
  return `warning: ${voters} voters is an even number: it survives no more failures than ${plural(voters - 1, 'voter', 'voters')}; add or remove one`;
}

/**
 * The lines cluster status prints after its table:
 *   voters: 3 (quorum 2); the cluster survives 1 failure
 *   workers (non-voting): 1
 * and the even-count warning when there is one.
 */
export function quorumLines(q: Quorum): string[] {
  const survives =
    q.toleratedFailures === 0 ? 'no failure' : plural(q.toleratedFailures, 'failure', 'failures');
  const lines = [
    `voters: ${q.voters} (quorum ${q.quorum}); the cluster survives ${survives}`,
    `workers (non-voting): ${q.learners}`,
  ];
  const warning = evenVotersWarning(q.voters);
  if (warning) lines.push(warning);
  return lines;
}
