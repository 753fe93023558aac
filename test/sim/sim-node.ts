import { createRandom } from '../../pkg/raft/rand.js';
import { RawNode } from '../../pkg/raft/raw-node.js';
import { MemoryStorage } from '../../pkg/raft/storage.js';
import type { Entry, HardState, NodeId, Snapshot } from '../../pkg/raft/types.js';
import { emptyHardState, emptySnapshot } from '../../pkg/raft/types.js';
import { KvStateMachine } from './kv.js';

/** What survives a crash: only what was fsynced. */
export interface Disk {
  hardState: HardState;
  snapshot: Snapshot;
  entries: Entry[];
}

export function emptyDisk(): Disk {
  return { hardState: emptyHardState(), snapshot: emptySnapshot(), entries: [] };
}

/**
 * One simulated machine: a real RawNode over a MemoryStorage that plays the OS page cache,
 * and a Disk that holds only what was synced. A crash throws away everything but the Disk.
 */
export class SimNode {
  readonly raw: RawNode;
  readonly storage = new MemoryStorage();
  kv: KvStateMachine;
  applied: number;
  /** ReadIndex requests waiting for their read state, then for apply to catch up. */
  readonly pendingReads = new Map<string, { op: number; index?: number }>();

  constructor(
    readonly id: NodeId,
    public disk: Disk,
    seed: number,
    incarnation: number,
    electionTick: number,
  ) {
    const snap = disk.snapshot;
    if (snap.metadata.index > 0) this.storage.applySnapshot(snap);
    this.storage.append(disk.entries);
    this.storage.setHardState(disk.hardState);
    this.kv = KvStateMachine.restore(snap.data);
    this.applied = snap.metadata.index;
    this.raw = new RawNode({
      id,
      storage: this.storage,
      applied: this.applied,
      electionTick,
      heartbeatTick: 1,
      maxSizePerMsg: 4096,
      maxInflightMsgs: 8,
      learnerMaxLag: 10,
      random: createRandom((seed * 7919 + id * 104729 + incarnation * 1299709) >>> 0),
    });
  }

  /** fsync: the disk now holds exactly what the page cache holds. */
  sync(): void {
    const s = this.storage;
    const first = s.firstIndex();
    const last = s.lastIndex();
    this.disk = {
      hardState: s.hardStateNow(),
      snapshot: s.snapshot(),
      entries: last >= first ? s.entries(first, last + 1, Number.MAX_SAFE_INTEGER) : [],
    };
  }
}
