// When the client may try a failed call again (on the next endpoint), and how long it waits.
//
// The rule: a call is retried only when doing it twice cannot differ from doing it once.
//
// | the attempt failed with                                   | reads | writes |
// |-----------------------------------------------------------|-------|--------|
// | not sent: no connection within dialTimeoutMs, or grpc-js  | retry | retry  |
// |   failed the pick ("No connection established")          |       |        |
// | 'etcdserver: no leader' (refused before it was proposed)  | retry | retry  |
// | any other UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED: the  | retry | fail   |
// |   request may have been applied, the answer was lost      |       |        |
// | any other status: an answer (INVALID_ARGUMENT, NOT_FOUND, | fail  | fail   |
// |   OUT_OF_RANGE, FAILED_PRECONDITION, ...)                 |       |        |
//
// Reads: Range, read-only Txn, LeaseTimeToLive, LeaseLeases, MemberList, Status, and lease
// keep-alives (renewing twice is renewing). Writes: Put, DeleteRange, Txn with a write,
// Compact, LeaseGrant, LeaseRevoke, member changes. A write that fails with an unknown
// outcome reaches the caller, who knows how to check (re-read, compare mod revisions).
// Every retry goes to the next endpoint, after a back-off.

import { GrpcCode, noLeader } from '../store/errors.js';
import { GrpcStatus, type WireStatus } from '../store/grpc-mapping.js';

export type CallKind = 'read' | 'write';

/** One failed attempt: the status, and whether the request certainly never left the client. */
export interface AttemptFailure extends WireStatus {
  notSent: boolean;
  /** The status' trailers (the API service puts its error code there). */
  metadata?: import('@grpc/grpc-js').Metadata;
}

const NO_LEADER = noLeader().message;

/**
 * 'no leader': refused before anything was proposed. etcd's message, or the API service's
 * ("the cluster cannot serve this now (no leader); retry shortly").
 */
export function isNoLeader(f: { code: number; details: string }): boolean {
  return f.details === NO_LEADER || (f.code === GrpcCode.Unavailable && f.details.includes('(no leader)'));
}

export function isRetryable(f: AttemptFailure, kind: CallKind): boolean {
  if (f.notSent) return true;
  if (isNoLeader(f)) return true;
  if (kind === 'write') return false;
  return (
    f.code === GrpcCode.Unavailable || f.code === GrpcCode.DeadlineExceeded || f.code === GrpcStatus.Cancelled
  );
}

/** grpc-js' message when it fails a call because no connection is READY: nothing was sent. */
export function isNotSentStatus(code: number, details: string): boolean {
  return code === GrpcCode.Unavailable && /(^|: )No connection established/.test(details);
}

/**
 * The wait before attempt `attempt` (1 = the first retry): exponential from initialMs,
 * capped at maxMs, then "equal jitter" (half fixed, half random) so clients that failed
 * together do not come back together.
 */
export function backoffMs(
  attempt: number,
  backoff: { initialMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  if (attempt <= 0) return 0;
  const base = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(attempt - 1, 30));
  return base / 2 + random() * (base / 2);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
