import { decodeConfChange } from '../../pkg/raft/raw-node.js';
import type { Entry, NodeId, SoftState } from '../../pkg/raft/types.js';
import { ConfChangeType, EntryType, StateRole } from '../../pkg/raft/types.js';
import type { SimNode } from './sim-node.js';

/** A broken Raft safety property, found by the simulation's checks. */
export class SimViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimViolation';
  }
}

function entryKey(e: Entry): string {
  return `${e.term}/${e.type}/${Buffer.from(e.data).toString('base64')}`;
}

/**
 * Raft's safety properties (§5.2 Figure 3), checked as the simulation runs:
 *  - Election Safety: at most one leader per term;
 *  - Log Matching: same index and term ⇒ identical logs up to there;
 *  - Leader Completeness / no lost commit: every leader holds every entry ever applied;
 *  - State Machine Safety: every node applies the same entry at each index, in order.
 */
export class ClusterChecker {
  private readonly leaders = new Map<number, NodeId>();
  /** The first entry anybody applied at each index: the ground truth. */
  private readonly truth = new Map<number, string>();
  /**
   * The term of the first node to apply each index. It is at least the term in which the
   * entry was committed, so every leader of a later term must hold it (§5.4). A stale
   * leader of an earlier term need not.
   */
  private readonly truthTerm = new Map<number, number>();
  private readonly lastApplied = new WeakMap<SimNode, number>();
  private maxTruth = 0;
  /** Every (index, term) ever appended anywhere, with its data: one leader per term writes it. */
  private readonly appended = new Map<string, string>();
  private readonly commitSeen = new WeakMap<SimNode, number>();
  elections = 0;

  nodeStarted(node: SimNode): void {
    this.lastApplied.set(node, node.applied);
  }

  softState(node: SimNode, ss: SoftState, now: number): void {
    if (ss.role !== StateRole.Leader) return;
    const term = node.raw.status().term;
    const prev = this.leaders.get(term);
    if (prev !== undefined && prev !== node.id) {
      throw new SimViolation(
        `election safety: ${prev} and ${node.id} are both leader in term ${term} (t=${now})`,
      );
    }
    if (prev === undefined) this.elections++;
    this.leaders.set(term, node.id);
  }

  /** Returns true if this is the first time any node applied this index. */
  applied(node: SimNode, e: Entry): boolean {
    const last = this.lastApplied.get(node) ?? 0;
    if (e.index !== last + 1) {
      throw new SimViolation(`state machine safety: node ${node.id} applied ${e.index} after ${last}`);
    }
    this.lastApplied.set(node, e.index);
    const key = entryKey(e);
    const want = this.truth.get(e.index);
    if (want === undefined) {
      this.truth.set(e.index, key);
      this.truthTerm.set(e.index, node.raw.status().term);
      this.maxTruth = Math.max(this.maxTruth, e.index);
      return true;
    }
    if (want !== key) {
      throw new SimViolation(`state machine safety: node ${node.id} applied a different entry at ${e.index}`);
    }
    return false;
  }

  /**
   * Checked on every Ready: entries a node persists never contradict an entry with the same
   * index and term elsewhere (Log Matching's base case), and every entry the node newly
   * learns is committed agrees with what was applied anywhere (no committed entry changes).
   */
  readyHandled(node: SimNode, entries: Entry[], commit: number | undefined): void {
    for (const e of entries) {
      const k = `${e.index}/${e.term}`;
      const key = entryKey(e);
      const prev = this.appended.get(k);
      if (prev === undefined) this.appended.set(k, key);
      else if (prev !== key) {
        throw new SimViolation(
          `log matching: node ${node.id} holds another entry at index ${e.index}, term ${e.term}`,
        );
      }
    }
    if (commit === undefined) return;
    const from = (this.commitSeen.get(node) ?? 0) + 1;
    this.commitSeen.set(node, Math.max(commit, from - 1));
    if (commit < from) return;
    const log = node.raw.debugLog();
    for (const e of log.entries) {
      if (e.index < from || e.index > commit) continue;
      const want = this.truth.get(e.index);
      if (want !== undefined && want !== entryKey(e)) {
        throw new SimViolation(`committed entry ${e.index} differs on node ${node.id}`);
      }
    }
  }

  /**
   * A leader appends a membership change only when every earlier one in its log is applied
   * (§4.1: one change at a time), and promotes only a learner that has caught up (§4.2.1).
   * Checked when the leader's Ready carries the new entry, before anything else happens.
   */
  leaderAppended(node: SimNode, entries: Entry[], learnerMaxLag: number): void {
    if (!entries.some((e) => e.type === EntryType.ConfChange)) return;
    const st = node.raw.status();
    if (st.role !== StateRole.Leader) return;
    for (const e of entries) {
      if (e.type !== EntryType.ConfChange || e.term !== st.term) continue;
      const log = node.raw.debugLog();
      for (const earlier of log.entries) {
        if (earlier.index < e.index && earlier.type === EntryType.ConfChange && earlier.index > st.applied) {
          throw new SimViolation(
            `membership: leader ${node.id} appended a change at ${e.index} while the one at ${earlier.index} is unapplied`,
          );
        }
      }
      const cc = decodeConfChange(e.data);
      if (cc.type === ConfChangeType.AddNode && st.confState.learners.includes(cc.nodeId)) {
        const pr = st.progress?.get(cc.nodeId);
        // Between the proposal and this Ready the commit index may move and the learner's
        // progress may fall back to probing (an unreachable report): judge by match alone.
        if (!pr || pr.match + 4 * learnerMaxLag < st.commit) {
          throw new SimViolation(
            `membership: leader ${node.id} promoted learner ${cc.nodeId}, which has not caught up ` +
              `(${pr?.state}, match ${pr?.match}, commit ${st.commit})`,
          );
        }
      }
    }
  }

  snapshotInstalled(node: SimNode, index: number): void {
    const last = this.lastApplied.get(node) ?? 0;
    if (index < last)
      throw new SimViolation(`node ${node.id} installed snapshot ${index} behind applied ${last}`);
    this.lastApplied.set(node, index);
  }

  committedCount(): number {
    return this.maxTruth;
  }

  checkLogs(nodes: SimNode[]): void {
    const logs = nodes.map((n) => ({ node: n, log: n.raw.debugLog(), status: n.raw.status() }));
    for (const { node, log, status } of logs) {
      for (const e of log.entries) {
        const want = this.truth.get(e.index);
        // A committed entry never changes: no node may hold another one at that index
        // once it knows it is committed.
        if (want !== undefined && e.index <= log.committed && want !== entryKey(e)) {
          throw new SimViolation(`committed entry ${e.index} differs on node ${node.id}`);
        }
      }
      if (status.role === StateRole.Leader) {
        // Leader Completeness (§5.4): a leader's log holds every committed entry.
        const byIndex = new Map(log.entries.map((e) => [e.index, entryKey(e)]));
        for (let i = log.firstIndex; i <= this.maxTruth; i++) {
          const want = this.truth.get(i);
          const committedBy = this.truthTerm.get(i) ?? Number.POSITIVE_INFINITY;
          if (want !== undefined && committedBy < status.term && byIndex.get(i) !== want) {
            throw new SimViolation(
              `leader completeness: leader ${node.id} (term ${status.term}) lacks committed entry ${i}`,
            );
          }
        }
      }
    }
    // Log Matching (§5.3): walk down from the top; once two logs agree on a term at an
    // index, they must be identical below it.
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const la = (logs[a] as (typeof logs)[number]).log;
        const lb = (logs[b] as (typeof logs)[number]).log;
        const mb = new Map(lb.entries.map((e) => [e.index, e]));
        let matched = false;
        for (let i = la.entries.length - 1; i >= 0; i--) {
          const ea = la.entries[i] as Entry;
          const eb = mb.get(ea.index);
          if (!eb) continue;
          if (!matched && ea.term === eb.term) matched = true;
          if (matched && entryKey(ea) !== entryKey(eb)) {
            const ids = `${(logs[a] as (typeof logs)[number]).node.id} and ${(logs[b] as (typeof logs)[number]).node.id}`;
            throw new SimViolation(`log matching: nodes ${ids} differ at ${ea.index} below a matching term`);
          }
        }
      }
    }
  }
}
