import { CompactedError, invariant, SnapshotOutOfDateError, UnavailableError } from './errors.js';
import type { ConfState, Entry, HardState, Snapshot } from './types.js';
import { EMPTY, EntryType, emptyHardState, emptySnapshot } from './types.js';

/**
 * The core's read-only view of what has been persisted. The core never writes through it:
 * the caller persists what a Ready says, then updates the Storage, then calls advance().
 * All methods are synchronous; a disk-backed implementation keeps its log in memory too
 * (the log is bounded by compaction), as etcd's WAL + MemoryStorage do.
 */
export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at least one if any exist, at most ~maxBytes of data after the first. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry i; i may be the snapshot index. Throws CompactedError / UnavailableError. */
  term(i: number): number;
  lastIndex(): number;
  /** Index of the first entry still available (snapshot index + 1). */
  firstIndex(): number;
  snapshot(): Snapshot;
}

export function entrySize(e: Entry): number {
  return e.data.length + 24;
}

/** Cut `ents` to at most `maxBytes` of data, but always keep at least the first entry. */
export function limitSize(ents: Entry[], maxBytes: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0] as Entry);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n] as Entry);
    if (size > maxBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

export function cloneConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}

/**
 * In-memory Storage. `ents[0]` is a dummy entry holding the snapshot's index and term, so
 * term() works at the compaction point. Used directly by the simulation and as the read
 * cache of the LevelDB runner.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState();
  private snap: Snapshot = emptySnapshot();
  private ents: Entry[] = [{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY }];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: cloneConfState(this.snap.metadata.confState) };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  hardStateNow(): HardState {
    return { ...this.hardState };
  }

  private get offset(): number {
    return (this.ents[0] as Entry).index;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.ents.length - 1;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo <= this.offset) throw new CompactedError(lo);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1);
    if (this.ents.length === 1) throw new UnavailableError(lo);
    return limitSize(this.ents.slice(lo - this.offset, hi - this.offset), maxBytes);
  }

  term(i: number): number {
    if (i < this.offset) throw new CompactedError(i);
    if (i - this.offset >= this.ents.length) throw new UnavailableError(i);
    return (this.ents[i - this.offset] as Entry).term;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replace everything with a snapshot received from the leader. */
  applySnapshot(snap: Snapshot): void {
    const cur = this.snap.metadata.index;
    if (snap.metadata.index <= cur) throw new SnapshotOutOfDateError(snap.metadata.index, cur);
    this.snap = snap;
    this.ents = [
      { term: snap.metadata.term, index: snap.metadata.index, type: EntryType.Normal, data: EMPTY },
    ];
  }

  /** Record a snapshot of the local state machine at applied index `i` (i <= lastIndex). */
  createSnapshot(i: number, cs: ConfState, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) throw new SnapshotOutOfDateError(i, this.snap.metadata.index);
    invariant(i <= this.lastIndex(), () => `snapshot ${i} is out of bound lastindex(${this.lastIndex()})`);
    this.snap = { metadata: { index: i, term: this.term(i), confState: cloneConfState(cs) }, data };
    return this.snap;
  }

  /** Discard entries before `compactIndex`; the caller must not compact past what it applied. */
  compact(compactIndex: number): void {
    if (compactIndex <= this.offset) throw new CompactedError(compactIndex);
    invariant(
      compactIndex <= this.lastIndex(),
      () => `compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`,
    );
    const i = compactIndex - this.offset;
    const head = this.ents[i] as Entry;
    this.ents = [
      { term: head.term, index: head.index, type: EntryType.Normal, data: EMPTY },
      ...this.ents.slice(i + 1),
    ];
  }

  /** Append entries, truncating any conflicting suffix (entries must be contiguous). */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = (entries[entries.length - 1] as Entry).index;
    if (last < first) return; // all already compacted
    const ents =
      first > (entries[0] as Entry).index ? entries.slice(first - (entries[0] as Entry).index) : entries;
    const offset = (ents[0] as Entry).index - this.offset;
    invariant(
      offset <= this.ents.length,
      () => `missing log entry [last: ${this.lastIndex()}, append at: ${(ents[0] as Entry).index}]`,
    );
    this.ents = [...this.ents.slice(0, offset), ...ents];
  }
}
