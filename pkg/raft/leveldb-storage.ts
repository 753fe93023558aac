// Durable Raft storage on LevelDB. Every read is served from a MemoryStorage loaded at open;
// every write goes to LevelDB first (one atomic batch) and only then into memory, so the
// memory copy never runs ahead of the disk.
//
// Layout (utf8 keys, binary values from codec.ts):
//   meta                  JSON {clusterId, nodeId}: whose directory this is
//   hardstate             HardState
//   snapshot              Snapshot (metadata + state machine bytes)
//   compacted             the log's compaction point {index, term}; entries at or below it are gone
//   entry/<20-digit index> Entry; zero-padded so key order is index order
// Invariant: compacted.index <= snapshot index, entries are contiguous from compacted.index + 1.

import { Level } from 'level';
import {
  decodeEntry,
  decodeHardState,
  decodeSnapshot,
  encodeEntry,
  encodeHardState,
  encodeSnapshot,
  Reader,
  Writer,
} from './codec.js';
import {
  CompactedError,
  DataDirMismatchError,
  invariant,
  SnapshotOutOfDateError,
  StoppedError,
} from './errors.js';
import type { Storage } from './storage.js';
import { cloneConfState, MemoryStorage } from './storage.js';
import type { ConfState, Entry, HardState, NodeId, Snapshot } from './types.js';
import { EMPTY, emptyHardState, emptySnapshot } from './types.js';

const KEY_META = 'meta';
const KEY_HARD_STATE = 'hardstate';
const KEY_SNAPSHOT = 'snapshot';
const KEY_COMPACTED = 'compacted';
const ENTRY_PREFIX = 'entry/';
// '0' sorts right after '/', so [ENTRY_PREFIX, ENTRY_END) holds exactly the entry keys.
const ENTRY_END = 'entry0';

export function entryKey(index: number): string {
  return ENTRY_PREFIX + index.toString().padStart(20, '0');
}

type Db = Level<string, Uint8Array>;
type BatchOp = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };

export interface LevelDBStorageOptions {
  /** The cluster this directory belongs to; checked on every open after the first. */
  clusterId: string;
  /** This node's id; checked on every open after the first. */
  nodeId: NodeId;
}

/** What one Ready asks to persist; see `Ready` in types.ts. */
export interface SaveRequest {
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  /** fsync before resolving (default true). Only a Ready with `mustSync: false` may pass false. */
  sync?: boolean;
}

interface CompactionPoint {
  index: number;
  term: number;
}

function encodeCompactionPoint(c: CompactionPoint): Uint8Array {
  return new Writer(16).u8(1).uvarint(c.index).uvarint(c.term).finish();
}

function decodeCompactionPoint(b: Uint8Array): CompactionPoint {
  const r = new Reader(b, 'compaction point');
  r.version();
  const c = { index: r.uvarint(), term: r.uvarint() };
  r.end();
  return c;
}

/**
 * A Storage whose state survives restarts. The core reads it synchronously; the runner writes
 * it through `save`, `createSnapshot` and `compact`, which are serialized internally (each
 * starts after the previous one has finished) and resolve once LevelDB has the batch.
 * Values passed in are owned by the storage afterwards: callers must not mutate them.
 */
export class LevelDBStorage implements Storage {
  private readonly mem: MemoryStorage;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** Use openLevelDBStorage(). */
  constructor(
    readonly dir: string,
    private readonly db: Db,
    mem: MemoryStorage,
  ) {
    this.mem = mem;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.mem.initialState();
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.mem.entries(lo, hi, maxBytes);
  }

  term(i: number): number {
    return this.mem.term(i);
  }

  lastIndex(): number {
    return this.mem.lastIndex();
  }

  firstIndex(): number {
    return this.mem.firstIndex();
  }

  snapshot(): Snapshot {
    return this.mem.snapshot();
  }

  hardState(): HardState {
    return this.mem.hardStateNow();
  }

  /** True when nothing but the identity record has ever been written: a brand-new member. */
  isEmpty(): boolean {
    const hs = this.mem.hardStateNow();
    return (
      this.mem.lastIndex() === 0 &&
      this.mem.snapshot().metadata.index === 0 &&
      hs.term === 0 &&
      hs.vote === 0 &&
      hs.commit === 0
    );
  }

  /**
   * Persist what a Ready carries — snapshot, then entries (replacing any conflicting suffix),
   * then hard state — in one LevelDB batch, fsynced unless `sync: false`; then update memory.
   */
  save(rd: SaveRequest): Promise<void> {
    return this.serialize(async () => {
      const ops: BatchOp[] = [];
      let first = this.mem.firstIndex();
      let last = this.mem.lastIndex();
      const snap = rd.snapshot && rd.snapshot.metadata.index > 0 ? rd.snapshot : undefined;
      if (snap) {
        const current = this.mem.snapshot().metadata.index;
        if (snap.metadata.index <= current) throw new SnapshotOutOfDateError(snap.metadata.index, current);
        ops.push({ type: 'put', key: KEY_SNAPSHOT, value: encodeSnapshot(snap) });
        const point = { index: snap.metadata.index, term: snap.metadata.term };
        ops.push({ type: 'put', key: KEY_COMPACTED, value: encodeCompactionPoint(point) });
        // A snapshot replaces the whole log.
        for (let i = first; i <= last; i++) ops.push({ type: 'del', key: entryKey(i) });
        first = point.index + 1;
        last = point.index;
      }
      const ents = rd.entries;
      if (ents.length > 0) {
        const lo = (ents[0] as Entry).index;
        const hi = (ents[ents.length - 1] as Entry).index;
        invariant(
          hi - lo + 1 === ents.length,
          () => `entries to save are not contiguous: [${lo}, ${hi}] x${ents.length}`,
        );
        if (hi >= first) {
          invariant(lo <= last + 1, () => `missing log entries: last stored ${last}, saving from ${lo}`);
          for (const e of ents)
            if (e.index >= first) ops.push({ type: 'put', key: entryKey(e.index), value: encodeEntry(e) });
          // The new entries win: drop what the old log held beyond them.
          for (let i = hi + 1; i <= last; i++) ops.push({ type: 'del', key: entryKey(i) });
        }
      }
      if (rd.hardState) ops.push({ type: 'put', key: KEY_HARD_STATE, value: encodeHardState(rd.hardState) });
      if (ops.length === 0) return;
      await this.db.batch(ops, { sync: rd.sync ?? true });
      if (snap) this.mem.applySnapshot(snap);
      this.mem.append(ents);
      if (rd.hardState) this.mem.setHardState(rd.hardState);
    });
  }

  /**
   * Record a snapshot of the local state machine taken at applied index `index` (which must be
   * in the log and newer than the current snapshot). Written with fsync.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    return this.serialize(async () => {
      const current = this.mem.snapshot().metadata.index;
      if (index <= current) throw new SnapshotOutOfDateError(index, current);
      invariant(
        index <= this.mem.lastIndex(),
        () => `snapshot ${index} is past the last index ${this.mem.lastIndex()}`,
      );
      const snap: Snapshot = {
        metadata: { index, term: this.mem.term(index), confState: cloneConfState(confState) },
        data,
      };
      const offset = this.mem.firstIndex() - 1;
      await this.db.batch(
        [
          { type: 'put', key: KEY_SNAPSHOT, value: encodeSnapshot(snap) },
          // Rewrite the hard state in the same synced batch: a commit index saved without fsync
          // (a commit-only Ready) must not end up behind the snapshot after a crash.
          { type: 'put', key: KEY_HARD_STATE, value: encodeHardState(this.mem.hardStateNow()) },
          {
            type: 'put',
            key: KEY_COMPACTED,
            value: encodeCompactionPoint({ index: offset, term: this.mem.term(offset) }),
          },
        ],
        { sync: true },
      );
      return this.mem.createSnapshot(index, confState, data);
    });
  }

  /**
   * Discard log entries up to and including `index` (which becomes the compaction point).
   * `index` must not be past the current snapshot: the log must always reach back to it.
   */
  compact(index: number): Promise<void> {
    return this.serialize(async () => {
      const offset = this.mem.firstIndex() - 1;
      if (index <= offset) throw new CompactedError(index);
      const snapIndex = this.mem.snapshot().metadata.index;
      invariant(index <= snapIndex, () => `compact ${index} is past the snapshot at ${snapIndex}`);
      const ops: BatchOp[] = [
        {
          type: 'put',
          key: KEY_COMPACTED,
          value: encodeCompactionPoint({ index, term: this.mem.term(index) }),
        },
      ];
      for (let i = offset + 1; i <= index; i++) ops.push({ type: 'del', key: entryKey(i) });
      // No fsync needed: losing this batch in a crash only brings back entries we no longer need.
      await this.db.batch(ops, { sync: false });
      this.mem.compact(index);
    });
  }

  /** Close the database after pending writes finish. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail.catch(() => {});
    await this.db.close();
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new StoppedError());
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => {});
    return run;
  }
}

interface Meta {
  clusterId: string;
  nodeId: NodeId;
}

async function checkIdentity(db: Db, dir: string, opts: LevelDBStorageOptions): Promise<void> {
  const raw = await db.get(KEY_META);
  if (raw === undefined) {
    const meta: Meta = { clusterId: opts.clusterId, nodeId: opts.nodeId };
    await db.put(KEY_META, new TextEncoder().encode(JSON.stringify(meta)), { sync: true });
    return;
  }
  const meta = JSON.parse(new TextDecoder().decode(raw)) as Meta;
  if (meta.clusterId !== opts.clusterId) {
    throw new DataDirMismatchError(dir, 'cluster', meta.clusterId, opts.clusterId);
  }
  if (meta.nodeId !== opts.nodeId) {
    throw new DataDirMismatchError(dir, 'node', String(meta.nodeId), String(opts.nodeId));
  }
}

async function load(db: Db): Promise<MemoryStorage> {
  const rawHs = await db.get(KEY_HARD_STATE);
  const hs = rawHs ? decodeHardState(rawHs) : emptyHardState();
  const rawSnap = await db.get(KEY_SNAPSHOT);
  const snap = rawSnap ? decodeSnapshot(rawSnap) : emptySnapshot();
  const rawPoint = await db.get(KEY_COMPACTED);
  const point = rawPoint ? decodeCompactionPoint(rawPoint) : { index: 0, term: 0 };
  invariant(point.index <= snap.metadata.index, () => `compaction point ${point.index} is past the snapshot`);

  const ents: Entry[] = [];
  // Start past the compaction point: entries an unsynced compaction deleted may come back after
  // a crash, while a later synced batch already recorded the newer compaction point.
  for await (const value of db.values({ gt: entryKey(point.index), lt: ENTRY_END })) {
    const e = decodeEntry(value);
    invariant(
      e.index === point.index + 1 + ents.length,
      () => `log gap on disk: expected entry ${point.index + 1 + ents.length}, found ${e.index}`,
    );
    ents.push(e);
  }

  // Rebuild the memory copy through MemoryStorage's own operations: a placeholder snapshot
  // sets the compaction point, the entries follow, then the real snapshot is recorded on top.
  const mem = new MemoryStorage();
  if (point.index === snap.metadata.index) {
    if (point.index > 0) mem.applySnapshot(snap);
    mem.append(ents);
  } else {
    if (point.index > 0) {
      const confState = cloneConfState(snap.metadata.confState);
      mem.applySnapshot({ metadata: { index: point.index, term: point.term, confState }, data: EMPTY });
    }
    mem.append(ents);
    const rebuilt = mem.createSnapshot(snap.metadata.index, snap.metadata.confState, snap.data);
    invariant(rebuilt.metadata.term === snap.metadata.term, 'snapshot term disagrees with the log on disk');
  }
  mem.setHardState(hs);
  return mem;
}

/**
 * Open (or create) the Raft data directory `dir`. The first open records whose directory it
 * is; later opens by another cluster or node fail with DataDirMismatchError, so a mistyped
 * flag can never make a node join with somebody else's log.
 */
export async function openLevelDBStorage(dir: string, opts: LevelDBStorageOptions): Promise<LevelDBStorage> {
  const db: Db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open();
  try {
    await checkIdentity(db, dir, opts);
    const mem = await load(db);
    return new LevelDBStorage(dir, db, mem);
  } catch (err) {
    await db.close();
    throw err;
  }
}
