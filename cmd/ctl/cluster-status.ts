// `cluster status`, the pure part: from the member list and what each member said about
// itself (or why it said nothing) to rows, a summary and JSON. Gathering lives in probe.ts.
import type { MemberInfo, StatusResponse } from '../../pkg/client/cluster.js';
import { clientAddressOf, formatMemberId, memberName, sortMembers } from './members.js';
import { type Quorum, quorumOfMembers } from './quorum.js';

export type MemberRole = 'leader' | 'follower' | 'learner' | 'unknown';

/** One member and its answer to Status, or the reason there is none (health text). */
export interface MemberProbe {
  member: MemberInfo;
  status?: StatusResponse;
  /** Set when status is absent: 'unreachable', 'timeout', 'no client address', the error. */
  error?: string;
}

export interface MemberStatusRow {
  name: string;
  /** Hex, as shown. */
  id: string;
  address: string;
  role: MemberRole;
  term: number | null;
  appliedIndex: number | null;
  commitIndex: number | null;
  healthy: boolean;
  /** 'ok', or what is wrong. */
  health: string;
}

export interface ClusterStatus {
  clusterId: string;
  leader: { name: string; id: string } | null;
  /** The newest term any member reported; null when none answered. */
  term: number | null;
  healthyMembers: number;
  totalMembers: number;
  members: MemberStatusRow[];
  /** Voters, quorum and failures survived, from the membership (not from who answered). */
  quorum: Quorum;
}

export const HEALTH_OK = 'ok';
export const NO_LEADER = 'no leader';

function roleOf(p: MemberProbe): MemberRole {
  if (p.status) {
    if (p.status.isLearner) return 'learner';
    return p.status.leader === p.status.header.memberId ? 'leader' : 'follower';
  }
  return p.member.isLearner ? 'learner' : 'unknown';
}

function healthOf(p: MemberProbe): string {
  if (!p.status) return p.error ?? 'unknown';
  if (p.status.errors && p.status.errors.length > 0) return p.status.errors.join('; ');
  if (p.status.leader === '0') return NO_LEADER;
  return HEALTH_OK;
}

/**
 * The cluster as its members see it. The leader is the one named by the member reporting the
 * newest term (an isolated old leader's stale claim loses to it).
 */
export function summarizeStatus(clusterId: string, probes: readonly MemberProbe[]): ClusterStatus {
  let newest: StatusResponse | undefined;
  for (const p of probes) {
    if (p.status && p.status.leader !== '0' && (!newest || p.status.raftTerm > newest.raftTerm))
      newest = p.status;
  }
  const term = probes.reduce<number | null>(
    (t, p) => (p.status && (t === null || p.status.raftTerm > t) ? p.status.raftTerm : t),
    null,
  );
  const leaderMember = newest ? probes.find((p) => p.member.id === newest.leader)?.member : undefined;
  const leader = newest
    ? {
        name: leaderMember ? memberName(leaderMember) : formatMemberId(newest.leader),
        id: formatMemberId(newest.leader),
      }
    : null;
  const byMember = new Map(probes.map((p) => [p.member.id, p]));
  const rows = sortMembers(probes.map((p) => p.member)).map((m): MemberStatusRow => {
    const p = byMember.get(m.id) as MemberProbe;
    const health = healthOf(p);
    return {
      name: memberName(m),
      id: formatMemberId(m.id),
      address: clientAddressOf(m),
      role: roleOf(p),
      term: p.status?.raftTerm ?? null,
      appliedIndex: p.status?.raftAppliedIndex ?? null,
      commitIndex: p.status?.raftIndex ?? null,
      healthy: health === HEALTH_OK,
      health,
    };
  });
  return {
    clusterId,
    leader,
    term,
    healthyMembers: rows.filter((r) => r.healthy).length,
    totalMembers: rows.length,
    members: rows,
    quorum: quorumOfMembers(probes.map((p) => p.member)),
  };
}

export const STATUS_HEAD = ['NAME', 'ID', 'ADDRESS', 'ROLE', 'TERM', 'APPLIED INDEX', 'HEALTH'];

export function statusRows(s: ClusterStatus): (string | number | null)[][] {
  return s.members.map((r) => [r.name, r.id, r.address, r.role, r.term, r.appliedIndex, r.health]);
}

/** 'leader: n2, term 3, 3/3 members healthy'. */
export function statusSummary(s: ClusterStatus): string {
  const leader = s.leader ? `leader: ${s.leader.name}, term ${s.term}` : 'leader: none';
  return `${leader}, ${s.healthyMembers}/${s.totalMembers} members healthy`;
}
