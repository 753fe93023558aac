import { encodeConfChange } from './conf-change.js';
import { invariant } from './errors.js';
import type { ProgressState } from './progress.js';
import type { RaftOptions } from './raft.js';
import { Raft } from './raft.js';
import type {
  ConfChange,
  ConfState,
  HardState,
  Message,
  NodeId,
  Ready,
  SoftState,
  StateRole,
} from './types.js';
import { EntryType, MessageType, message, NONE, StateRole as Role } from './types.js';

export { bootstrapState, decodeConfChange, encodeConfChange } from './conf-change.js';
export type { RaftLogger, RaftOptions } from './raft.js';

export interface PeerStatus {
  match: number;
  next: number;
  state: ProgressState;
  learner: boolean;
  recentActive: boolean;
}

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId;
  commit: number;
  applied: number;
  lastIndex: number;
  leader: NodeId;
  role: StateRole;
  leadTransferee: NodeId;
  confState: ConfState;
  /** Only on the leader: its view of every member's log. */
  progress?: Map<NodeId, PeerStatus>;
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/**
 * The public, synchronous face of the core (after etcd's RawNode). Nothing here does I/O:
 * inputs are method calls, outputs come out of ready(). Handle each Ready in the order its
 * doc comment gives, then call advance() before the next ready().
 */
export class RawNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private awaitingAdvance = false;

  constructor(opts: RaftOptions) {
    this.raft = new Raft(opts);
    this.prevSoft = this.raft.softState();
    this.prevHard = opts.storage.initialState().hardState;
  }

  /** Advance logical time by one tick (election and heartbeat timers). */
  tick(): void {
    this.raft.tick();
  }

  /** Campaign now instead of waiting for the election timeout. */
  campaign(): void {
    this.raft.step(message({ type: MessageType.Hup, from: this.raft.id }));
  }

  /** Feed a message from a peer. Local-only message types are refused. */
  step(m: Message): void {
    Raft.checkRemote(m);
    this.raft.step(m);
  }

  /**
   * Propose data for the log. Throws ProposalDroppedError when this node knows it cannot
   * (no leader, transfer in progress). Success means only "accepted for now": the entry is
   * committed when it comes back in committedEntries, and may still be lost with a leader.
   */
  propose(data: Uint8Array): void {
    this.stepLocal(MessageType.Prop, [{ term: 0, index: 0, type: EntryType.Normal, data }]);
  }

  /** Propose several entries at once: one append and one broadcast for all of them. */
  proposeBatch(datas: Uint8Array[]): void {
    if (datas.length === 0) return;
    this.stepLocal(
      MessageType.Prop,
      datas.map((data) => ({ term: 0, index: 0, type: EntryType.Normal, data })),
    );
  }

  /** The current term (cheaper than status()). */
  term(): number {
    return this.raft.term;
  }

  proposeConfChange(cc: ConfChange): void {
    this.stepLocal(MessageType.Prop, [
      { term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) },
    ]);
  }

  /** Ask for a linearizable read point; the answer is a ReadState with the same ctx. */
  readIndex(ctx: Uint8Array): void {
    const err = this.raft.step(message({ type: MessageType.ReadIndex, from: this.raft.id, context: ctx }));
    if (err) throw err;
  }

  transferLeadership(to: NodeId): void {
    this.raft.step(message({ type: MessageType.TransferLeader, from: to }));
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(message({ type: MessageType.Unreachable, from: id }));
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(message({ type: MessageType.SnapStatus, from: id, reject: !ok }));
  }

  private stepLocal(type: MessageType, entries: Message['entries']): void {
    const err = this.raft.step(message({ type, from: this.raft.id, entries }));
    if (err) throw err;
  }

  hasReady(): boolean {
    const r = this.raft;
    if (!sameSoft(r.softState(), this.prevSoft)) return true;
    const hs = r.hardState();
    if (hs.term !== 0 && !sameHardState(hs, this.prevHard)) return true;
    if (r.log.unstable.snapshot) return true;
    if (r.msgs.length > 0 || r.log.unstableEntries().length > 0 || r.log.hasNextEnts()) return true;
    return r.readStates.length > 0;
  }

  ready(): Ready {
    invariant(!this.awaitingAdvance, 'ready() called again before advance()');
    const r = this.raft;
    const rd: Ready = {
      entries: r.log.unstableEntries().slice(),
      committedEntries: r.log.nextEnts(),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: false,
    };
    r.msgs = [];
    r.readStates = [];
    const soft = r.softState();
    if (!sameSoft(soft, this.prevSoft)) rd.softState = soft;
    const hs = r.hardState();
    if (!sameHardState(hs, this.prevHard)) rd.hardState = hs;
    if (r.log.unstable.snapshot) rd.snapshot = r.log.unstable.snapshot;
    // Term and vote must be durable before we answer as a voter; a commit index can be
    // recomputed, so a Ready that only moves it need not fsync (etcd's MustSync).
    rd.mustSync =
      rd.entries.length > 0 ||
      rd.snapshot !== undefined ||
      hs.term !== this.prevHard.term ||
      hs.vote !== this.prevHard.vote;
    this.awaitingAdvance = true;
    return rd;
  }

  /**
   * May `rd.messages` go out before `rd` is persisted? Only a leader's, and only when the
   * Ready changes neither term nor vote and installs no snapshot (thesis §10.2.1: the
   * leader writes to its disk in parallel with its followers). Safe because term and vote
   * are already durable, followers persist before they acknowledge, and a commit that
   * counts the leader's unpersisted entries is exposed only by a later Ready, handled after
   * this one's write completed.
   */
  leaderMaySendEarly(rd: Ready): boolean {
    if (this.raft.state !== Role.Leader || rd.snapshot) return false;
    const hs = rd.hardState;
    return !hs || (hs.term === this.prevHard.term && hs.vote === this.prevHard.vote);
  }

  /** The caller handled `rd` as documented: persisted, sent, applied. */
  advance(rd: Ready): void {
    invariant(this.awaitingAdvance, 'advance() without a pending ready()');
    this.awaitingAdvance = false;
    const r = this.raft;
    if (rd.softState) this.prevSoft = rd.softState;
    if (rd.hardState) this.prevHard = rd.hardState;
    if (rd.snapshot) {
      r.log.stableSnapTo(rd.snapshot.metadata.index);
      if (r.log.applied < rd.snapshot.metadata.index) r.log.applied = rd.snapshot.metadata.index;
    }
    const last = rd.entries[rd.entries.length - 1];
    if (last) r.log.stableTo(last.index, last.term);
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied) {
      // Membership changes take effect once applied, as the application saw them.
      r.applyConfChangesThrough(rd.committedEntries);
      r.log.appliedTo(lastApplied.index);
    }
  }

  confState(): ConfState {
    return this.raft.tracker.confState();
  }

  status(): RaftStatus {
    const r = this.raft;
    const st: RaftStatus = {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      leader: r.lead,
      role: r.state,
      leadTransferee: r.leadTransferee,
      confState: r.tracker.confState(),
    };
    if (r.lead === r.id && r.lead !== NONE) {
      st.progress = new Map();
      for (const [id, pr] of r.tracker.progress) {
        st.progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          learner: pr.isLearner,
          recentActive: pr.recentActive,
        });
      }
    }
    return st;
  }

  /** For tests and the simulation's checks: the whole log this node currently holds. */
  debugLog(): { firstIndex: number; entries: Message['entries']; committed: number } {
    const log = this.raft.log;
    return { firstIndex: log.firstIndex(), entries: log.allEntries(), committed: log.committed };
  }
}

function sameSoft(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}
