// The Raft package's error catalogue: one base class with a stable `code`, subclasses with
// typed fields. Callers branch on `code` (or instanceof), never on message text.

export const RaftErrorCode = {
  Compacted: 'RAFT_COMPACTED',
  Unavailable: 'RAFT_UNAVAILABLE',
  SnapshotOutOfDate: 'RAFT_SNAPSHOT_OUT_OF_DATE',
  SnapshotTemporarilyUnavailable: 'RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE',
  ProposalDropped: 'RAFT_PROPOSAL_DROPPED',
  Config: 'RAFT_CONFIG',
  StepLocalMessage: 'RAFT_STEP_LOCAL_MESSAGE',
  StepPeerNotFound: 'RAFT_STEP_PEER_NOT_FOUND',
  DataDirMismatch: 'RAFT_DATA_DIR_MISMATCH',
  Stopped: 'RAFT_STOPPED',
  /** A request got no answer in time; it may still take effect. */
  Timeout: 'RAFT_TIMEOUT',
  /** Bytes that do not decode: a corrupt record on disk or a broken message or stream. */
  Corrupt: 'RAFT_CORRUPT',
} as const;
export type RaftErrorCode = (typeof RaftErrorCode)[keyof typeof RaftErrorCode];

export class RaftError extends Error {
  readonly code: RaftErrorCode;
  constructor(code: RaftErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RaftError';
    this.code = code;
  }
}

/** The requested index is at or below the storage's compaction point. */
export class CompactedError extends RaftError {
  constructor(readonly index: number) {
    super(RaftErrorCode.Compacted, `raft: index ${index} is unavailable due to compaction`);
  }
}

/** The requested index is past the end of the storage's log. */
export class UnavailableError extends RaftError {
  constructor(readonly index: number) {
    super(RaftErrorCode.Unavailable, `raft: index ${index} is not yet in the log`);
  }
}

export class SnapshotOutOfDateError extends RaftError {
  constructor(
    readonly index: number,
    readonly current: number,
  ) {
    super(
      RaftErrorCode.SnapshotOutOfDate,
      `raft: snapshot at ${index} is older than the current one at ${current}`,
    );
  }
}

/** Storage cannot produce a snapshot right now; the leader retries later. */
export class SnapshotTemporarilyUnavailableError extends RaftError {
  constructor() {
    super(RaftErrorCode.SnapshotTemporarilyUnavailable, 'raft: snapshot is temporarily unavailable');
  }
}

export const DropReason = {
  NoLeader: 'no leader',
  Transferring: 'leadership transfer in progress',
  NotVoter: 'this node is not a member of the cluster',
  ConfChangePending: 'another membership change is still pending',
  LearnerNotReady: 'the learner has not caught up with the leader yet',
  InvalidConfChange: 'invalid membership change',
  Stopped: 'the node is stopped',
} as const;
export type DropReason = (typeof DropReason)[keyof typeof DropReason];

/** A proposal the core refused; safe to retry once the reason has passed. */
export class ProposalDroppedError extends RaftError {
  constructor(
    readonly reason: DropReason,
    detail?: string,
  ) {
    super(RaftErrorCode.ProposalDropped, `raft: proposal dropped: ${reason}${detail ? ` (${detail})` : ''}`);
  }
}

/** A mistake in options or bootstrap configuration: reported, never crashes a running node. */
export class ConfigError extends RaftError {
  constructor(message: string) {
    super(RaftErrorCode.Config, `raft: invalid configuration: ${message}`);
  }
}

export class StepLocalMessageError extends RaftError {
  constructor(type: number) {
    super(
      RaftErrorCode.StepLocalMessage,
      `raft: cannot step local message type ${type} received from the network`,
    );
  }
}

export class StepPeerNotFoundError extends RaftError {
  constructor(readonly from: number) {
    super(RaftErrorCode.StepPeerNotFound, `raft: response from unknown peer ${from}`);
  }
}

/** The data directory belongs to another cluster or another node. */
export class DataDirMismatchError extends RaftError {
  constructor(
    readonly dir: string,
    readonly field: 'cluster' | 'node',
    readonly found: string,
    readonly expected: string,
  ) {
    super(
      RaftErrorCode.DataDirMismatch,
      `raft: data directory ${dir} belongs to ${field} ${found}, not ${expected}; ` +
        'use an empty directory for a new member, or the matching --name/--cluster',
    );
  }
}

export class StoppedError extends RaftError {
  constructor() {
    super(RaftErrorCode.Stopped, 'raft: node is stopped');
  }
}

/** A broken internal invariant. Never caught: a process that hits one must stop loudly. */
export class RaftInvariantError extends Error {
  constructor(message: string) {
    super(`raft invariant violated: ${message}`);
    this.name = 'RaftInvariantError';
  }
}

export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new RaftInvariantError(typeof message === 'string' ? message : message());
}
