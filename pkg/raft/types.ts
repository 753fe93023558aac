// Data types shared by the Raft core, its storage and its transports. Plain objects only,
// so they can be copied, compared and serialized without surprises.

/** A node's identity inside a cluster. 0 means "none" (no leader, no vote). */
export type NodeId = number;
export const NONE: NodeId = 0;

export const EntryType = {
  Normal: 0,
  ConfChange: 1,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  /** Opaque to Raft. Empty for the no-op a new leader appends. */
  data: Uint8Array;
}

/** What must survive a crash besides the log: written with sync before messages go out. */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

/** Cluster membership. Voters count towards quorums; learners only receive the log. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface SnapshotMetadata {
  index: number;
  term: number;
  confState: ConfState;
}

export interface Snapshot {
  metadata: SnapshotMetadata;
  /** The state machine's bytes at `metadata.index`; may be many megabytes. */
  data: Uint8Array;
}

export const ConfChangeType = {
  /** Add a voter, or promote an existing learner to voter. */
  AddNode: 0,
  RemoveNode: 1,
  AddLearnerNode: 2,
} as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

/** One membership change. Berth allows a single change in flight at a time (no joint consensus). */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  /** Opaque to Raft; the runner stores the peer's address here. */
  context: Uint8Array;
}

export const MessageType = {
  /** Local: the election timer fired. Never sent on the wire. */
  Hup: 0,
  /** Local: the heartbeat timer fired on the leader. Never sent on the wire. */
  Beat: 1,
  /** A proposal; followers forward it to the leader. */
  Prop: 2,
  App: 3,
  AppResp: 4,
  Vote: 5,
  VoteResp: 6,
  PreVote: 7,
  PreVoteResp: 8,
  Snap: 9,
  Heartbeat: 10,
  HeartbeatResp: 11,
  /** Local: the transport could not deliver to `from`. */
  Unreachable: 12,
  /** Local: the transport finished (or failed) streaming a snapshot to `from`. */
  SnapStatus: 13,
  TransferLeader: 14,
  TimeoutNow: 15,
  ReadIndex: 16,
  ReadIndexResp: 17,
  /** Local: check-quorum timer fired on the leader. */
  CheckQuorum: 18,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  /** 0 for local messages and proposals, which carry no term. */
  term: number;
  /** App: term of the entry before `entries`; Vote: candidate's last log term. */
  logTerm: number;
  /** App: index of the entry before `entries`; AppResp: the matched or rejected index. */
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** AppResp rejection: the follower's hint for where the logs may match. */
  rejectHint: number;
  /** AppResp rejection: the follower's term at rejectHint, for fast back-off. */
  rejectTerm: number;
  snapshot?: Snapshot;
  /** ReadIndex request id, heartbeat read context, or a campaign's transfer marker. */
  context: Uint8Array;
}

/** Result of a ReadIndex: reads at `index` or later are linearizable once it is applied. */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

export const StateRole = {
  Follower: 'follower',
  PreCandidate: 'pre-candidate',
  Candidate: 'candidate',
  Leader: 'leader',
} as const;
export type StateRole = (typeof StateRole)[keyof typeof StateRole];

/** Volatile state worth telling the application about; never persisted. */
export interface SoftState {
  leader: NodeId;
  role: StateRole;
}

/**
 * Everything the core wants done, handed out by `RawNode.ready()`. The caller must, in order:
 *  1. persist `snapshot` (if any), then `entries`, then `hardState` — durably (fsync), in one batch;
 *  2. only then send `messages` (some of them promise the persisted state to peers; a leader
 *     may send before step 1 when RawNode.leaderMaySendEarly(ready) allows it);
 *  3. apply `snapshot` then `committedEntries` to the state machine, in order;
 *  4. hand `readStates` to waiting readers once the applied index reaches their index;
 *  5. call `RawNode.advance(ready)`.
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
  /** False when nothing in this Ready needs an fsync (only commit index or messages moved). */
  mustSync: boolean;
}

export const EMPTY: Uint8Array = new Uint8Array(0);

export function emptyHardState(): HardState {
  return { term: 0, vote: NONE, commit: 0 };
}

export function emptySnapshot(): Snapshot {
  return { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: EMPTY };
}

/** A message with every field defaulted; callers set what they use. */
export function message(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    from: NONE,
    to: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    rejectTerm: 0,
    context: EMPTY,
    ...fields,
  };
}

export function isLocalMessage(type: MessageType): boolean {
  return (
    type === MessageType.Hup ||
    type === MessageType.Beat ||
    type === MessageType.Unreachable ||
    type === MessageType.SnapStatus ||
    type === MessageType.CheckQuorum
  );
}

export function isResponseMessage(type: MessageType): boolean {
  return (
    type === MessageType.AppResp ||
    type === MessageType.VoteResp ||
    type === MessageType.HeartbeatResp ||
    type === MessageType.Unreachable ||
    type === MessageType.PreVoteResp
  );
}
