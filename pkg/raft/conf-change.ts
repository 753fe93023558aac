import { ConfigError, DropReason } from './errors.js';
import type { ProgressTracker } from './progress.js';
import { ProgressState } from './progress.js';
import type { ConfChange, Entry, HardState, NodeId } from './types.js';
import { ConfChangeType, EntryType, NONE } from './types.js';

// ConfChange entries carry a fixed little binary layout: type (1 byte), node id (8 bytes,
// float64 so any safe integer id fits), then the context bytes.
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const out = new Uint8Array(9 + cc.context.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, cc.type);
  view.setFloat64(1, cc.nodeId);
  out.set(cc.context, 9);
  return out;
}

export function decodeConfChange(b: Uint8Array): ConfChange {
  if (b.length < 9) throw new ConfigError(`conf change entry is ${b.length} bytes, expected at least 9`);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const type = view.getUint8(0);
  if (
    type !== ConfChangeType.AddNode &&
    type !== ConfChangeType.RemoveNode &&
    type !== ConfChangeType.AddLearnerNode
  ) {
    throw new ConfigError(`unknown conf change type ${type}`);
  }
  return { type, nodeId: view.getFloat64(1), context: b.slice(9) };
}

/**
 * The first entries of a brand-new cluster: one AddNode per voter, committed at term 1,
 * so members that join later learn the initial membership by replaying the log. The caller
 * persists `entries` and `hardState` before constructing the first RawNode.
 */
export function bootstrapState(
  voters: NodeId[],
  contexts: Map<NodeId, Uint8Array> = new Map(),
): { entries: Entry[]; hardState: HardState } {
  if (voters.length === 0) throw new ConfigError('a new cluster needs at least one voter');
  const seen = new Set<NodeId>();
  for (const id of voters) {
    if (!Number.isSafeInteger(id) || id <= 0)
      throw new ConfigError(`node id ${id} must be a positive integer`);
    if (seen.has(id)) throw new ConfigError(`node id ${id} appears twice`);
    seen.add(id);
  }
  const entries = voters.map((nodeId, i) => ({
    term: 1,
    index: i + 1,
    type: EntryType.ConfChange,
    data: encodeConfChange({
      type: ConfChangeType.AddNode,
      nodeId,
      context: contexts.get(nodeId) ?? new Uint8Array(0),
    }),
  }));
  return { entries, hardState: { term: 1, vote: NONE, commit: entries.length } };
}

export interface ConfChangeRefusal {
  reason: DropReason;
  detail: string;
}

/**
 * Why the leader must refuse this single membership change (§4.1), or undefined if it may
 * go ahead. A learner is promoted only once it has caught up (§4.2.1): a voter that is far
 * behind would add nothing to availability and could stall commits.
 */
export function confChangeRefusal(
  cc: ConfChange,
  tracker: ProgressTracker,
  committed: number,
  learnerMaxLag: number,
): ConfChangeRefusal | undefined {
  const { voters, learners } = tracker;
  const invalid = (detail: string) => ({ reason: DropReason.InvalidConfChange, detail });
  switch (cc.type) {
    case ConfChangeType.AddLearnerNode:
      if (voters.has(cc.nodeId)) return invalid(`${cc.nodeId} is already a voter`);
      return undefined;
    case ConfChangeType.AddNode: {
      if (voters.has(cc.nodeId)) return invalid(`${cc.nodeId} is already a voter`);
      const pr = tracker.progress.get(cc.nodeId);
      if (
        learners.has(cc.nodeId) &&
        (!pr || pr.state !== ProgressState.Replicate || pr.match + learnerMaxLag < committed)
      ) {
        return {
          reason: DropReason.LearnerNotReady,
          detail: `learner ${cc.nodeId} has ${pr?.match ?? 0} of ${committed}`,
        };
      }
      return undefined;
    }
    case ConfChangeType.RemoveNode:
      if (!voters.has(cc.nodeId) && !learners.has(cc.nodeId)) return invalid(`${cc.nodeId} is not a member`);
      if (voters.size === 1 && voters.has(cc.nodeId)) return invalid('cannot remove the last voter');
      return undefined;
  }
}
