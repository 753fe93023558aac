import { CompactedError, invariant, RaftError, RaftErrorCode } from './errors.js';
import type { Storage } from './storage.js';
import { limitSize } from './storage.js';
import type { Entry, Snapshot } from './types.js';
import { Unstable } from './unstable.js';

const NO_LIMIT = Number.MAX_SAFE_INTEGER;

/**
 * The core's view of the log: what Storage holds (persisted) followed by what is unstable.
 * Invariants: applied <= committed <= lastIndex; committed entries are never replaced.
 */
export class RaftLog {
  readonly unstable: Unstable;
  committed: number;
  applied: number;

  constructor(readonly storage: Storage) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term of entry i. Throws CompactedError below the first index; 0 past the end. */
  term(i: number): number {
    const dummy = this.firstIndex() - 1;
    if (i < dummy) throw new CompactedError(i);
    if (i > this.lastIndex()) return 0;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    return this.storage.term(i);
  }

  /** term(i), but 0 where the entry is compacted away (callers compare, so 0 never matches). */
  termOrZero(i: number): number {
    try {
      return this.term(i);
    } catch (e) {
      if (e instanceof RaftError && e.code === RaftErrorCode.Compacted) return 0;
      throw e;
    }
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  matchTerm(i: number, t: number): boolean {
    if (i > this.lastIndex()) return false;
    try {
      return this.term(i) === t;
    } catch {
      return false;
    }
  }

  /** §5.4.1: is a candidate's log (lastIndex, term) at least as up to date as ours? */
  isUpToDate(lasti: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && lasti >= this.lastIndex());
  }

  /** Index of the first entry in `ents` that is new or conflicts with ours; 0 if none. */
  findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast back-off (§5.3's optimization): the largest index <= `index` whose term is <= `term`,
   * so a leader skips a whole conflicting term per round trip instead of one entry.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    if (index > this.lastIndex()) return { index, term: 0 };
    for (;;) {
      let t: number;
      try {
        t = this.term(index);
      } catch {
        return { index, term: 0 };
      }
      if (t <= term) return { index, term: t };
      index--;
    }
  }

  /** Follower side of AppendEntries (§5.3). Returns the last new index, or undefined on mismatch. */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      invariant(
        ci > this.committed,
        () => `entry ${ci} conflicts with committed entry [committed(${this.committed})]`,
      );
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = (ents[0] as Entry).index - 1;
    invariant(
      after >= this.committed,
      () => `after(${after}) is out of range [committed(${this.committed})]`,
    );
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  /** Committed entries not yet handed to the application. */
  nextEnts(maxBytes = NO_LIMIT): Entry[] {
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 <= off) return [];
    return this.slice(off, this.committed + 1, maxBytes);
  }

  hasNextEnts(): boolean {
    return this.committed + 1 > Math.max(this.applied + 1, this.firstIndex());
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  commitTo(tocommit: number): void {
    if (this.committed >= tocommit) return; // never decrease commit
    invariant(
      this.lastIndex() >= tocommit,
      () => `tocommit(${tocommit}) is out of range [lastIndex(${this.lastIndex()})]`,
    );
    this.committed = tocommit;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    invariant(this.committed >= i && i >= this.applied, () => {
      return `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`;
    });
    this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  /** A leader commits only entries of its own term by counting replicas (§5.4.2). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /** Entries from i to the end, at most ~maxBytes. Throws CompactedError if i is compacted. */
  entries(i: number, maxBytes: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }

  /** All entries from firstIndex; used by tests and the simulation's checks. */
  allEntries(): Entry[] {
    return this.entries(this.firstIndex(), NO_LIMIT);
  }

  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    const fi = this.firstIndex();
    if (lo < fi) throw new CompactedError(lo);
    invariant(
      lo <= hi && hi <= this.lastIndex() + 1,
      () => `slice[${lo},${hi}) out of bound [${fi},${this.lastIndex()}]`,
    );
    if (lo === hi) return [];
    let ents: Entry[] = [];
    const off = this.unstable.offset;
    if (lo < off) {
      const stored = this.storage.entries(lo, Math.min(hi, off), maxBytes);
      // Storage cut the result short by size: return what it gave.
      if (stored.length < Math.min(hi, off) - lo) return stored;
      ents = stored;
    }
    if (hi > off) {
      const u = this.unstable.slice(Math.max(lo, off), hi);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return limitSize(ents, maxBytes);
  }
}
