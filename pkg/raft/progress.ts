import { invariant } from './errors.js';
import type { ConfState, NodeId } from './types.js';

export const ProgressState = {
  /** Unsure where the follower's log ends: one append per heartbeat until it answers. */
  Probe: 'probe',
  /** The follower is keeping up: appends are pipelined, bounded by inflights. */
  Replicate: 'replicate',
  /** The follower needs a snapshot; nothing else is sent until it reports back. */
  Snapshot: 'snapshot',
} as const;
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState];

/** A ring of the last index of each append in flight, bounding what the leader pipelines. */
export class Inflights {
  private buffer: number[] = [];

  constructor(readonly size: number) {}

  get count(): number {
    return this.buffer.length;
  }

  add(index: number): void {
    invariant(!this.full(), 'cannot add into a full inflights');
    this.buffer.push(index);
  }

  /** Free every append whose last index is <= `to` (the follower acknowledged it). */
  freeLE(to: number): void {
    let i = 0;
    while (i < this.buffer.length && (this.buffer[i] as number) <= to) i++;
    if (i > 0) this.buffer = this.buffer.slice(i);
  }

  freeFirstOne(): void {
    this.buffer = this.buffer.slice(1);
  }

  full(): boolean {
    return this.buffer.length >= this.size;
  }

  reset(): void {
    this.buffer = [];
  }
}

/** The leader's view of one follower (§5.3 nextIndex/matchIndex, plus flow control). */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = ProgressState.Probe;
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = true;
  /** In Probe: an append is outstanding, wait for its answer or the next heartbeat. */
  probeSent = false;
  readonly inflights: Inflights;

  constructor(
    next: number,
    maxInflight: number,
    public isLearner: boolean,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** The follower acknowledged `n`. Returns false if that told us nothing new. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  optimisticUpdate(n: number): void {
    this.next = n + 1;
  }

  /** The follower rejected an append at `rejected`; back off to `matchHint`. False if stale. */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      // A rejection at or below match is a stale, reordered answer.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In Probe the only append in flight is for next-1; anything else is stale.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }
}

export const VoteResult = { Pending: 'pending', Won: 'won', Lost: 'lost' } as const;
export type VoteResult = (typeof VoteResult)[keyof typeof VoteResult];

/** Membership plus per-peer progress and votes. Quorum = a majority of voters. */
export class ProgressTracker {
  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  readonly progress = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();

  constructor(readonly maxInflight: number) {}

  confState(): ConfState {
    return {
      voters: [...this.voters].sort((a, b) => a - b),
      learners: [...this.learners].sort((a, b) => a - b),
    };
  }

  quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  isSingleton(): boolean {
    return this.voters.size === 1;
  }

  addVoter(id: NodeId, next: number): void {
    this.learners.delete(id);
    this.voters.add(id);
    const pr = this.progress.get(id);
    if (pr) pr.isLearner = false;
    else this.progress.set(id, new Progress(next, this.maxInflight, false));
  }

  addLearner(id: NodeId, next: number): void {
    if (this.voters.has(id)) return;
    this.learners.add(id);
    if (!this.progress.has(id)) this.progress.set(id, new Progress(next, this.maxInflight, true));
  }

  remove(id: NodeId): void {
    this.voters.delete(id);
    this.learners.delete(id);
    this.progress.delete(id);
    this.votes.delete(id);
  }

  /** The highest index replicated on a quorum of voters (§5.3, §5.4). */
  committed(): number {
    if (this.voters.size === 0) return 0;
    const matches = [...this.voters].map((id) => this.progress.get(id)?.match ?? 0).sort((a, b) => b - a);
    return matches[this.quorum() - 1] as number;
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    const q = this.quorum();
    if (granted >= q) return { granted, rejected, result: VoteResult.Won };
    if (this.voters.size - rejected < q) return { granted, rejected, result: VoteResult.Lost };
    return { granted, rejected, result: VoteResult.Pending };
  }

  /** Check-quorum (§6.2): did a quorum of voters talk to us since the last check? */
  quorumActive(self: NodeId): boolean {
    let active = 0;
    for (const id of this.voters) {
      if (id === self || this.progress.get(id)?.recentActive) active++;
    }
    return active >= this.quorum();
  }
}
