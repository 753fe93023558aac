import { type ConfChangeRefusal, confChangeRefusal, decodeConfChange } from './conf-change.js';

export type { RaftLogger, RaftOptions } from './options.js';

import {
  DropReason,
  invariant,
  ProposalDroppedError,
  RaftError,
  RaftErrorCode,
  StepLocalMessageError,
} from './errors.js';
import { RaftLog } from './log.js';
import type { RaftLogger, RaftOptions } from './options.js';
import { resolveOptions } from './options.js';
import { ProgressState, ProgressTracker, VoteResult } from './progress.js';
import { ReadOnly } from './read-only.js';
import type {
  ConfChange,
  Entry,
  HardState,
  Message,
  NodeId,
  ReadState,
  Snapshot,
  SoftState,
} from './types.js';
import {
  ConfChangeType,
  EMPTY,
  EntryType,
  isLocalMessage,
  MessageType,
  message,
  NONE,
  StateRole,
} from './types.js';

/** Marks a campaign started by leadership transfer: it may disrupt a live leader's lease. */
export const CAMPAIGN_TRANSFER = new TextEncoder().encode('CampaignTransfer');

function isTransfer(ctx: Uint8Array): boolean {
  return ctx.length === CAMPAIGN_TRANSFER.length && ctx.every((b, i) => b === CAMPAIGN_TRANSFER[i]);
}

type CampaignType = 'pre-election' | 'election' | 'transfer';

/**
 * The Raft state machine. Synchronous and deterministic: every input is a method call,
 * every output is appended to `msgs`, `readStates` or the log, collected by RawNode.
 */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  state: StateRole = StateRole.Follower;
  readonly log: RaftLog;
  readonly tracker: ProgressTracker;
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  leadTransferee: NodeId = NONE;
  /** Index of the latest conf change in the log; a new one waits until it is applied. */
  pendingConfIndex = 0;
  /** Index of the latest conf change applied to `tracker`. */
  confApplied = 0;
  /** Term of a TimeoutNow that arrived before committed conf changes were applied; 0 if none. */
  private deferredTransferTerm = 0;

  private readOnly = new ReadOnly();
  private pendingReadIndexMessages: Message[] = [];
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private readonly electionTimeout: number;
  private readonly heartbeatTimeout: number;
  private readonly maxMsgSize: number;
  private readonly checkQuorum: boolean;
  private readonly preVote: boolean;
  private readonly learnerMaxLag: number;
  private readonly random: () => number;
  private readonly logger: RaftLogger;

  constructor(options: RaftOptions) {
    const opts = resolveOptions(options);
    this.id = opts.id;
    this.electionTimeout = opts.electionTick;
    this.heartbeatTimeout = opts.heartbeatTick;
    this.maxMsgSize = opts.maxSizePerMsg;
    this.checkQuorum = opts.checkQuorum;
    this.preVote = opts.preVote;
    this.learnerMaxLag = opts.learnerMaxLag;
    this.random = opts.random;
    this.logger = opts.logger;
    this.log = new RaftLog(opts.storage);
    this.tracker = new ProgressTracker(opts.maxInflightMsgs);

    const { hardState, confState } = opts.storage.initialState();
    for (const id of confState.voters) this.tracker.addVoter(id, 1);
    for (const id of confState.learners) this.tracker.addLearner(id, 1);
    this.confApplied = this.log.firstIndex() - 1;
    if (hardState.term !== 0 || hardState.commit !== 0) this.loadHardState(hardState);
    // Committed membership changes after the snapshot take effect now, not after the
    // application re-applies them: a restarted node must count votes with the right quorum.
    this.applyCommittedConfChanges(hardState.commit);
    if (opts.applied !== undefined && opts.applied > 0) this.log.appliedTo(opts.applied);
    this.becomeFollower(this.term, NONE);
  }

  private loadHardState(hs: HardState): void {
    invariant(hs.commit >= this.log.committed && hs.commit <= this.log.lastIndex(), () => {
      return `hard state commit ${hs.commit} is out of range [${this.log.committed}, ${this.log.lastIndex()}]`;
    });
    this.log.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  private applyCommittedConfChanges(upTo: number): void {
    if (upTo <= this.confApplied) return;
    for (const e of this.log.slice(this.confApplied + 1, upTo + 1, Number.MAX_SAFE_INTEGER)) {
      if (e.type === EntryType.ConfChange) this.applyConfChange(decodeConfChange(e.data));
    }
    this.confApplied = upTo;
  }

  softState(): SoftState {
    return { leader: this.lead, role: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  /** A voter that is not waiting for a snapshot may campaign. Learners never do. */
  promotable(): boolean {
    return this.tracker.voters.has(this.id) && this.log.unstable.snapshot === undefined;
  }

  private send(m: Message): void {
    if (m.from === NONE) m.from = this.id;
    const t = m.type;
    if (
      t === MessageType.Vote ||
      t === MessageType.VoteResp ||
      t === MessageType.PreVote ||
      t === MessageType.PreVoteResp
    ) {
      // Vote messages carry the term they campaign for, which may differ from ours.
      invariant(m.term !== 0, () => `term should be set when sending ${t}`);
    } else {
      invariant(m.term === 0, () => `term should not be set when sending ${t} (was ${m.term})`);
      // Proposals and read requests forwarded to the leader carry no term.
      if (t !== MessageType.Prop && t !== MessageType.ReadIndex) m.term = this.term;
    }
    this.msgs.push(m);
  }

  // --- replication (§5.3) -------------------------------------------------------------

  /** Send an append (or a snapshot) to `to` if flow control allows. Returns whether it sent. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.tracker.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    let prevTerm: number;
    let ents: Entry[];
    try {
      prevTerm = this.log.term(pr.next - 1);
      ents = this.log.entries(pr.next, this.maxMsgSize);
    } catch (e) {
      if (e instanceof RaftError && e.code === RaftErrorCode.Compacted) return this.sendSnapshot(to);
      throw e;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send(
      message({
        type: MessageType.App,
        to,
        index: pr.next - 1,
        logTerm: prevTerm,
        entries: ents,
        commit: this.log.committed,
      }),
    );
    if (pr.state === ProgressState.Replicate && ents.length > 0) {
      const last = (ents[ents.length - 1] as Entry).index;
      pr.optimisticUpdate(last);
      pr.inflights.add(last);
    } else if (pr.state === ProgressState.Probe) {
      pr.probeSent = true;
    }
    return true;
  }

  /** The follower is behind the compacted log: InstallSnapshot (§7). */
  private sendSnapshot(to: NodeId): boolean {
    const pr = this.tracker.progress.get(to);
    if (!pr) return false;
    // An unresponsive follower would only make us ship megabytes into the void.
    if (!pr.recentActive) return false;
    let snapshot: Snapshot;
    try {
      snapshot = this.log.snapshot();
    } catch (e) {
      if (e instanceof RaftError && e.code === RaftErrorCode.SnapshotTemporarilyUnavailable) return false;
      throw e;
    }
    invariant(snapshot.metadata.index > 0, 'need non-empty snapshot');
    this.logger.debug(
      { to, index: snapshot.metadata.index, bytes: snapshot.data.length },
      'sending snapshot',
    );
    pr.becomeSnapshot(snapshot.metadata.index);
    this.send(message({ type: MessageType.Snap, to, snapshot }));
    return true;
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * A member being removed hears nothing more from us: send it, from what it has
   * acknowledged, the entries up to its removal with the commit index, so it applies the
   * removal even if the entry itself was still on its way (a heartbeat alone only commits
   * what it already has).
   */
  private tellRemoved(to: NodeId): void {
    const pr = this.tracker.progress.get(to);
    if (!pr) return;
    try {
      const entries = this.log.entries(pr.match + 1, this.maxMsgSize);
      this.send(
        message({
          type: MessageType.App,
          to,
          index: pr.match,
          logTerm: this.log.term(pr.match),
          entries,
          commit: this.log.committed,
        }),
      );
    } catch {
      // Compacted past what it has: a heartbeat is the best we can do.
      this.sendHeartbeat(to, EMPTY);
    }
  }

  private sendHeartbeat(to: NodeId, ctx: Uint8Array): void {
    const pr = this.tracker.progress.get(to);
    // Never tell a follower to commit past what it is known to have.
    const commit = Math.min(pr?.match ?? 0, this.log.committed);
    this.send(message({ type: MessageType.Heartbeat, to, commit, context: ctx }));
  }

  private forEachPeer(fn: (id: NodeId) => void): void {
    for (const id of [...this.tracker.progress.keys()].sort((a, b) => a - b)) {
      if (id !== this.id) fn(id);
    }
  }

  private bcastAppend(): void {
    this.forEachPeer((id) => this.sendAppend(id));
  }

  private bcastHeartbeat(): void {
    const ctx = this.readOnly.lastPendingRequestCtx() ?? EMPTY;
    this.forEachPeer((id) => this.sendHeartbeat(id, ctx));
  }

  private maybeCommit(): boolean {
    return this.log.maybeCommit(this.tracker.committed(), this.term);
  }

  private appendEntry(ents: Entry[]): void {
    let li = this.log.lastIndex();
    for (const e of ents) {
      li++;
      e.term = this.term;
      e.index = li;
    }
    this.log.append(ents);
    this.tracker.progress.get(this.id)?.maybeUpdate(this.log.lastIndex());
    // A single-voter cluster commits on append.
    this.maybeCommit();
  }

  // --- roles (§5.2) ---------------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(this.random() * this.electionTimeout);
    this.leadTransferee = NONE;
    this.deferredTransferTerm = 0;
    this.tracker.resetVotes();
    const last = this.log.lastIndex();
    for (const [id, pr] of this.tracker.progress) {
      pr.becomeProbe();
      pr.match = id === this.id ? last : 0;
      pr.next = last + 1;
      // Peers must prove themselves active again (check-quorum, snapshots); we always are.
      pr.recentActive = id === this.id;
    }
    this.pendingConfIndex = 0;
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateRole.Follower;
  }

  private becomeCandidate(): void {
    invariant(this.state !== StateRole.Leader, 'invalid transition [leader -> candidate]');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateRole.Candidate;
    this.logger.info({ term: this.term }, 'became candidate');
  }

  private becomePreCandidate(): void {
    invariant(this.state !== StateRole.Leader, 'invalid transition [leader -> pre-candidate]');
    // Pre-vote changes neither term nor vote: a node that cannot win disturbs nobody.
    this.tracker.resetVotes();
    this.lead = NONE;
    this.state = StateRole.PreCandidate;
  }

  private becomeLeader(): void {
    invariant(this.state !== StateRole.Follower, 'invalid transition [follower -> leader]');
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateRole.Leader;
    this.tracker.progress.get(this.id)?.becomeReplicate();
    // Conservatively treat the whole uncommitted tail as a possible conf change (§4.1).
    this.pendingConfIndex = this.log.lastIndex();
    // An empty entry of our term lets us commit what earlier leaders left (§5.4.2, §8).
    this.appendEntry([{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY }]);
    this.logger.info({ term: this.term }, 'became leader');
  }

  /** Start an election now (§5.2), through pre-vote when enabled. */
  hup(type: CampaignType): void {
    if (this.state === StateRole.Leader) return;
    if (!this.promotable()) {
      this.logger.debug({}, 'not promotable, not campaigning');
      return;
    }
    // Unapplied conf changes could change who we may ask for votes.
    if (this.log.committed > this.confApplied && this.hasUnappliedConfChanges()) {
      this.logger.debug({}, 'pending conf changes not yet applied, not campaigning');
      // A handover must not be lost: the old leader may be gone (it removed itself).
      if (type === 'transfer') this.deferredTransferTerm = this.term;
      return;
    }
    this.campaign(type);
  }

  private hasUnappliedConfChanges(): boolean {
    const ents = this.log.slice(this.confApplied + 1, this.log.committed + 1, Number.MAX_SAFE_INTEGER);
    return ents.some((e) => e.type === EntryType.ConfChange);
  }

  private campaign(type: CampaignType): void {
    let term: number;
    let voteMsg: MessageType;
    if (type === 'pre-election') {
      this.becomePreCandidate();
      voteMsg = MessageType.PreVote;
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.Vote;
      term = this.term;
    }
    this.tracker.recordVote(this.id, true);
    if (this.tracker.tallyVotes().result === VoteResult.Won) {
      // Single voter: won already.
      if (type === 'pre-election') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const ctx = type === 'transfer' ? CAMPAIGN_TRANSFER : EMPTY;
    for (const id of [...this.tracker.voters].sort((a, b) => a - b)) {
      if (id === this.id) continue;
      this.send(
        message({
          type: voteMsg,
          to: id,
          term,
          index: this.log.lastIndex(),
          logTerm: this.log.lastTerm(),
          context: ctx,
        }),
      );
    }
  }

  // --- the step function ------------------------------------------------------------------

  /**
   * Process one message. Local messages (from === this.id or NONE) report a refused
   * proposal by returning an error; messages from peers never do: Raft tolerates loss.
   */
  step(m: Message): RaftError | undefined {
    if (m.term === 0) {
      // local message or a forwarded proposal / read request
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = isTransfer(m.context);
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // We heard from a leader within the minimum election timeout: ignore (§4.2.3, §9.6).
          return undefined;
        }
      }
      if (m.type === MessageType.PreVote) {
        // Never change our term in response to a PreVote.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A granted pre-vote is for a term we will only take if we win a quorum.
      } else if (
        m.type === MessageType.App ||
        m.type === MessageType.Heartbeat ||
        m.type === MessageType.Snap
      ) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if (
        (this.checkQuorum || this.preVote) &&
        (m.type === MessageType.Heartbeat || m.type === MessageType.App)
      ) {
        // A node partitioned away may have a stale leader; tell it our term so it steps
        // down, since with pre-vote/check-quorum it would never learn it from a vote.
        this.send(message({ type: MessageType.AppResp, to: m.from }));
      } else if (m.type === MessageType.PreVote) {
        this.send(message({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true }));
      }
      return undefined;
    }

    switch (m.type) {
      case MessageType.Hup:
        this.hup(this.preVote ? 'pre-election' : 'election');
        return undefined;
      case MessageType.Vote:
      case MessageType.PreVote: {
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === MessageType.PreVote && m.term > this.term);
        const respType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
        if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
          // §5.4.1: grant only to candidates whose log is at least as up to date as ours.
          this.send(message({ type: respType, to: m.from, term: m.term }));
          if (m.type === MessageType.Vote) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(message({ type: respType, to: m.from, term: this.term, reject: true }));
        }
        return undefined;
      }
      default:
        switch (this.state) {
          case StateRole.Leader:
            return this.stepLeader(m);
          case StateRole.Follower:
            return this.stepFollower(m);
          default:
            return this.stepCandidate(m);
        }
    }
  }

  private isLocal(m: Message): boolean {
    return m.from === NONE || m.from === this.id;
  }

  private drop(m: Message, reason: DropReason, detail?: string): RaftError | undefined {
    this.logger.debug({ from: m.from, reason }, 'dropping proposal');
    return this.isLocal(m) ? new ProposalDroppedError(reason, detail) : undefined;
  }

  private stepLeader(m: Message): RaftError | undefined {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat();
        return undefined;
      case MessageType.CheckQuorum:
        if (!this.tracker.quorumActive(this.id)) {
          this.logger.warn(
            { term: this.term },
            'stepped down: no quorum heard from within an election timeout',
          );
          this.becomeFollower(this.term, NONE);
        }
        for (const [id, pr] of this.tracker.progress) pr.recentActive = id === this.id;
        return undefined;
      case MessageType.Prop:
        return this.leaderPropose(m);
      case MessageType.ReadIndex:
        return this.leaderReadIndex(m);
      case MessageType.TransferLeader:
        this.leaderTransfer(m.from);
        return undefined;
    }

    const pr = this.tracker.progress.get(m.from);
    if (!pr) return undefined; // a response from a removed peer
    switch (m.type) {
      case MessageType.AppResp:
        this.handleAppendResponse(m);
        break;
      case MessageType.HeartbeatResp:
        pr.recentActive = true;
        pr.probeSent = false;
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
        if (m.context.length > 0) this.handleReadIndexAck(m);
        break;
      case MessageType.SnapStatus:
        if (pr.state !== ProgressState.Snapshot) break;
        if (m.reject) pr.pendingSnapshot = 0;
        // Either way, wait for the follower's answer (or the next heartbeat) before probing.
        pr.becomeProbe();
        pr.probeSent = true;
        break;
      case MessageType.Unreachable:
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        break;
    }
    return undefined;
  }

  private leaderPropose(m: Message): RaftError | undefined {
    invariant(m.entries.length > 0, 'stepped empty proposal');
    if (!this.tracker.progress.has(this.id)) return this.drop(m, DropReason.NotVoter);
    if (this.leadTransferee !== NONE) return this.drop(m, DropReason.Transferring);
    for (let i = 0; i < m.entries.length; i++) {
      const e = m.entries[i] as Entry;
      if (e.type !== EntryType.ConfChange) continue;
      // Refused changes stop the whole proposal, forwarded ones included: a forwarded
      // proposal is dropped silently, but it must still be dropped.
      const refusal = this.confChangeRefusal(e);
      if (refusal) return this.drop(m, refusal.reason, refusal.detail);
      this.pendingConfIndex = this.log.lastIndex() + i + 1;
    }
    // Copy: the entries get this term and their indexes, and the caller keeps its message.
    this.appendEntry(m.entries.map((e) => ({ term: 0, index: 0, type: e.type, data: e.data })));
    this.bcastAppend();
    return undefined;
  }

  /** One membership change at a time (§4.1); promotion only once the learner caught up (§4.2.1). */
  private confChangeRefusal(e: Entry): ConfChangeRefusal | undefined {
    if (this.pendingConfIndex > this.log.applied) {
      return {
        reason: DropReason.ConfChangePending,
        detail: `pending at index ${this.pendingConfIndex}, applied ${this.log.applied}`,
      };
    }
    let cc: ConfChange;
    try {
      cc = decodeConfChange(e.data);
    } catch (err) {
      return { reason: DropReason.InvalidConfChange, detail: (err as Error).message };
    }
    return confChangeRefusal(cc, this.tracker, this.log.committed, this.learnerMaxLag);
  }

  private handleAppendResponse(m: Message): void {
    const pr = this.tracker.progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    if (m.reject) {
      let nextProbeIdx = m.rejectHint;
      if (m.rejectTerm > 0) {
        // Skip every entry of ours whose term is above the follower's term at its hint.
        nextProbeIdx = this.log.findConflictByTerm(m.rejectHint, m.rejectTerm).index;
      }
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) {
      return;
    }
    if (pr.state === ProgressState.Probe) {
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= this.log.firstIndex()) {
      // The follower caught up through the snapshot (or otherwise): the log can serve it now.
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Replicate) {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    } else if (oldPaused) {
      this.sendAppend(m.from);
    }
    // Pipeline: keep the follower's window full.
    while (this.maybeSendAppend(m.from, false)) {
      // sent one more
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.sendTimeoutNow(m.from);
    }
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  /** ReadIndex (thesis §6.4): remember the commit index, confirm leadership with a heartbeat round. */
  private leaderReadIndex(m: Message): RaftError | undefined {
    if (!this.tracker.progress.has(this.id)) return this.drop(m, DropReason.NotVoter);
    if (this.tracker.isSingleton()) {
      if (this.committedEntryInCurrentTerm()) this.respondToReadIndex(m, this.log.committed);
      else this.pendingReadIndexMessages.push(m);
      return undefined;
    }
    // Until an entry of this term commits, our commit index may lag the true one (§6.4 step 1).
    if (!this.committedEntryInCurrentTerm()) {
      this.pendingReadIndexMessages.push(m);
      return undefined;
    }
    this.readOnly.addRequest(this.log.committed, m);
    this.readOnly.recvAck(this.id, m.context);
    this.forEachPeer((id) => this.sendHeartbeat(id, m.context));
    return undefined;
  }

  private releasePendingReadIndexMessages(): void {
    if (!this.committedEntryInCurrentTerm()) return;
    const pending = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of pending) this.leaderReadIndex(m);
  }

  private handleReadIndexAck(m: Message): void {
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (!acks) return;
    let voterAcks = 0;
    for (const id of acks) if (this.tracker.voters.has(id)) voterAcks++;
    if (voterAcks < this.tracker.quorum()) return;
    for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
  }

  private respondToReadIndex(req: Message, index: number): void {
    if (this.isLocal(req)) {
      this.readStates.push({ index, requestCtx: req.context });
    } else {
      this.send(message({ type: MessageType.ReadIndexResp, to: req.from, index, context: req.context }));
    }
  }

  /** Leadership transfer (thesis §3.10): bring the transferee up to date, then TimeoutNow. */
  private leaderTransfer(transferee: NodeId): void {
    if (!this.tracker.voters.has(transferee)) {
      this.logger.debug({ transferee }, 'ignored leadership transfer to a non-voter');
      return;
    }
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return;
      this.leadTransferee = NONE;
    }
    if (transferee === this.id) return;
    // The transfer must finish within an election timeout, or it is abandoned.
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    const pr = this.tracker.progress.get(transferee);
    if (pr && pr.match === this.log.lastIndex()) this.sendTimeoutNow(transferee);
    else this.sendAppend(transferee);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(message({ type: MessageType.TimeoutNow, to }));
  }

  private stepCandidate(m: Message): RaftError | undefined {
    const myVoteResp = this.state === StateRole.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Prop:
        return this.drop(m, DropReason.NoLeader);
      case MessageType.ReadIndex:
        return this.drop(m, DropReason.NoLeader);
      case MessageType.TransferLeader:
        return undefined;
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return undefined;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return undefined;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return undefined;
      case myVoteResp: {
        this.tracker.recordVote(m.from, !m.reject);
        const { result } = this.tracker.tallyVotes();
        if (result === VoteResult.Won) {
          if (this.state === StateRole.PreCandidate) {
            this.campaign('election');
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === VoteResult.Lost) {
          // Pre-candidates return to followers at the same term.
          this.becomeFollower(this.term, NONE);
        }
        return undefined;
      }
      default:
        return undefined;
    }
  }

  private stepFollower(m: Message): RaftError | undefined {
    switch (m.type) {
      case MessageType.Prop:
        if (this.lead === NONE) return this.drop(m, DropReason.NoLeader);
        // Forward to the leader; the caller learns the outcome by applying (or timing out).
        this.send({ ...m, from: m.from === NONE ? this.id : m.from, to: this.lead, term: 0 });
        return undefined;
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return undefined;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return undefined;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return undefined;
      case MessageType.TransferLeader:
        if (this.lead === NONE) return undefined;
        this.send({ ...m, to: this.lead, term: 0 });
        return undefined;
      case MessageType.TimeoutNow:
        // The leader asked us to take over: skip pre-vote, break the lease (thesis §3.10).
        this.hup('transfer');
        return undefined;
      case MessageType.ReadIndex:
        if (this.lead === NONE) return this.drop(m, DropReason.NoLeader);
        this.send({ ...m, from: m.from === NONE ? this.id : m.from, to: this.lead, term: 0 });
        return undefined;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, requestCtx: m.context });
        return undefined;
      default:
        return undefined;
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      this.send(message({ type: MessageType.AppResp, to: m.from, index: this.log.committed }));
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send(message({ type: MessageType.AppResp, to: m.from, index: lastNew }));
      return;
    }
    // Tell the leader where our logs may match, and the term there, so it can skip a whole
    // term of entries per round trip.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send(
      message({
        type: MessageType.AppResp,
        to: m.from,
        index: m.index,
        reject: true,
        rejectHint: hint.index,
        rejectTerm: hint.term,
      }),
    );
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send(message({ type: MessageType.HeartbeatResp, to: m.from, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const snap = m.snapshot;
    if (!snap) return;
    if (this.restore(snap)) {
      this.send(message({ type: MessageType.AppResp, to: m.from, index: this.log.lastIndex() }));
    } else {
      this.send(message({ type: MessageType.AppResp, to: m.from, index: this.log.committed }));
    }
  }

  /** Install a leader's snapshot (§7). Returns false if it is not newer than what we have. */
  private restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.log.committed) return false;
    if (this.state !== StateRole.Follower) {
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    if (this.log.matchTerm(s.metadata.index, s.metadata.term)) {
      // We already have this prefix: just move the commit index.
      this.log.commitTo(s.metadata.index);
      return false;
    }
    this.log.restore(s);
    // The snapshot's membership replaces ours; changes after it arrive through the log.
    for (const id of [...this.tracker.progress.keys()]) this.tracker.remove(id);
    const next = this.log.lastIndex() + 1;
    for (const id of s.metadata.confState.voters) this.tracker.addVoter(id, next);
    for (const id of s.metadata.confState.learners) this.tracker.addLearner(id, next);
    this.confApplied = s.metadata.index;
    this.pendingConfIndex = 0;
    this.logger.info({ index: s.metadata.index, term: s.metadata.term }, 'restored snapshot');
    return true;
  }

  // --- membership (§4) ----------------------------------------------------------------------

  /** Apply committed conf change entries up to `index` (called once they are applied). */
  applyConfChangesThrough(ents: Entry[]): void {
    for (const e of ents) {
      if (e.index <= this.confApplied) continue;
      if (e.type === EntryType.ConfChange) this.applyConfChange(decodeConfChange(e.data));
      this.confApplied = e.index;
    }
    if (this.deferredTransferTerm !== 0 && this.deferredTransferTerm === this.term) {
      if (this.state === StateRole.Follower && !this.hasUnappliedConfChanges()) {
        this.deferredTransferTerm = 0;
        this.hup('transfer');
      }
    } else {
      this.deferredTransferTerm = 0;
    }
  }

  private applyConfChange(cc: ConfChange): void {
    const next = this.log.lastIndex() + 1;
    switch (cc.type) {
      case ConfChangeType.AddNode:
        this.tracker.addVoter(cc.nodeId, next);
        break;
      case ConfChangeType.AddLearnerNode:
        this.tracker.addLearner(cc.nodeId, next);
        break;
      case ConfChangeType.RemoveNode:
        // Nobody sends to a removed member afterwards: tell it now that its removal is
        // committed (within what it has acknowledged), so it applies it and can answer.
        if (this.state === StateRole.Leader && cc.nodeId !== this.id) this.tellRemoved(cc.nodeId);
        this.tracker.remove(cc.nodeId);
        break;
    }
    if (this.state !== StateRole.Leader) return;
    if (!this.tracker.voters.has(this.id)) {
      this.stepDownAfterRemoval();
      return;
    }
    if (this.leadTransferee !== NONE && !this.tracker.voters.has(this.leadTransferee))
      this.leadTransferee = NONE;
    // A smaller quorum may commit more now; either way the new configuration hears from us.
    this.maybeCommit();
    this.bcastAppend();
  }

  /** A leader removed from the cluster hands over to the most up-to-date voter and steps down. */
  private stepDownAfterRemoval(): void {
    let best: NodeId = NONE;
    let bestMatch = -1;
    for (const id of [...this.tracker.voters].sort((a, b) => a - b)) {
      const m = this.tracker.progress.get(id)?.match ?? 0;
      if (m > bestMatch) {
        best = id;
        bestMatch = m;
      }
    }
    // Unlike an ordinary transfer, do not wait for a voter with every entry: a busy leader
    // always has some in flight, and it is leaving anyway. Votes still require an up-to-date
    // log, so a successor holding everything committed is all the handover needs.
    if (best !== NONE && bestMatch >= this.log.committed) this.sendTimeoutNow(best);
    this.logger.info({ handedTo: best }, 'removed from the cluster: stepping down');
    this.becomeFollower(this.term, NONE);
  }

  // --- time -----------------------------------------------------------------------------------

  tick(): void {
    if (this.state === StateRole.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(message({ type: MessageType.Hup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(message({ type: MessageType.CheckQuorum, from: this.id }));
      if (this.state === StateRole.Leader && this.leadTransferee !== NONE) {
        this.logger.info({ transferee: this.leadTransferee }, 'leadership transfer timed out');
        this.leadTransferee = NONE;
      }
    }
    if (this.state !== StateRole.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(message({ type: MessageType.Beat, from: this.id }));
    }
  }

  /** Refuse local-only message types arriving from the network. */
  static checkRemote(m: Message): void {
    if (isLocalMessage(m.type)) throw new StepLocalMessageError(m.type);
  }
}
