import { createHash } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Level } from 'level';
import { encodeEntry } from '../../pkg/raft/codec.js';
import {
  CompactedError,
  DataDirMismatchError,
  RaftErrorCode,
  SnapshotOutOfDateError,
} from '../../pkg/raft/errors.js';
import { entryKey, type LevelDBStorage, openLevelDBStorage } from '../../pkg/raft/leveldb-storage.js';
import { type Entry, EntryType, type Snapshot } from '../../pkg/raft/types.js';

const ID = { clusterId: 'c1', nodeId: 1 };

async function tempDir(t: import('ava').ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-raft-storage-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function ents(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) {
    out.push({ term, index: i, type: EntryType.Normal, data: new TextEncoder().encode(`e${i}t${term}`) });
  }
  return out;
}

/** Everything observable through the Storage interface. */
function dump(s: LevelDBStorage) {
  const first = s.firstIndex();
  const last = s.lastIndex();
  return {
    initial: s.initialState(),
    first,
    last,
    entries: last >= first ? s.entries(first, last + 1, Number.MAX_SAFE_INTEGER) : [],
    // A digest, not the bytes: ava's deepEqual is slow on megabytes.
    snapshot: {
      metadata: s.snapshot().metadata,
      data: createHash('sha256').update(s.snapshot().data).digest('hex'),
    },
    compactionTerm: s.term(first - 1),
  };
}

test('a new directory is empty; entries and hard state survive a reopen', async (t) => {
  const dir = await tempDir(t);
  let s = await openLevelDBStorage(dir, ID);
  t.true(s.isEmpty());
  t.is(s.firstIndex(), 1);
  t.is(s.lastIndex(), 0);
  await s.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: ents(1, 5, 1) });
  await s.save({ hardState: { term: 1, vote: 1, commit: 3 }, entries: [] });
  t.false(s.isEmpty());
  const before = dump(s);
  t.is(before.last, 5);
  t.deepEqual(before.initial.hardState, { term: 1, vote: 1, commit: 3 });
  await s.close();
  await s.close(); // idempotent
  s = await openLevelDBStorage(dir, ID);
  t.deepEqual(dump(s), before);
  t.is(s.term(3), 1);
  t.deepEqual(s.entries(2, 4, Number.MAX_SAFE_INTEGER), ents(2, 3, 1));
  await s.close();
});

test('a conflicting suffix is replaced, on disk as in memory', async (t) => {
  const dir = await tempDir(t);
  let s = await openLevelDBStorage(dir, ID);
  await s.save({ hardState: { term: 1, vote: 1, commit: 2 }, entries: ents(1, 10, 1) });
  // A new leader overwrites from index 4 with a shorter log of term 2.
  await s.save({ hardState: { term: 2, vote: 2, commit: 2 }, entries: ents(4, 6, 2) });
  const expected = [...ents(1, 3, 1), ...ents(4, 6, 2)];
  t.is(s.lastIndex(), 6);
  t.deepEqual(s.entries(1, 7, Number.MAX_SAFE_INTEGER), expected);
  await s.close();
  s = await openLevelDBStorage(dir, ID);
  t.is(s.lastIndex(), 6, 'entries 7..10 are gone from disk too');
  t.deepEqual(s.entries(1, 7, Number.MAX_SAFE_INTEGER), expected);
  t.deepEqual(s.initialState().hardState, { term: 2, vote: 2, commit: 2 });
  await s.close();
});

test('a gap in the log is refused before anything is written', async (t) => {
  const dir = await tempDir(t);
  const s = await openLevelDBStorage(dir, ID);
  await s.save({ entries: ents(1, 3, 1) });
  await t.throwsAsync(s.save({ entries: ents(5, 6, 1), hardState: { term: 9, vote: 0, commit: 0 } }), {
    message: /missing log entries/,
  });
  t.is(s.lastIndex(), 3);
  t.is(s.initialState().hardState.term, 0);
  await s.close();
});

test('snapshot and compaction survive a reopen, keeping entries behind the snapshot', async (t) => {
  const dir = await tempDir(t);
  let s = await openLevelDBStorage(dir, ID);
  await s.save({
    hardState: { term: 2, vote: 1, commit: 20 },
    entries: [...ents(1, 10, 1), ...ents(11, 20, 2)],
  });
  const cs = { voters: [1, 2, 3], learners: [4] };
  const data = new TextEncoder().encode('state at 15');
  const snap = await s.createSnapshot(15, cs, data);
  t.deepEqual(snap.metadata, { index: 15, term: 2, confState: cs });
  await t.throwsAsync(s.createSnapshot(15, cs, data), { instanceOf: SnapshotOutOfDateError });
  // Keep entries 11..20 for slow followers.
  await s.compact(10);
  t.is(s.firstIndex(), 11);
  t.is(s.term(10), 1);
  t.throws(() => s.term(9), { instanceOf: CompactedError });
  await t.throwsAsync(s.compact(10), { instanceOf: CompactedError });
  await t.throwsAsync(s.compact(16), { message: /past the snapshot/ });
  const before = dump(s);
  await s.close();
  s = await openLevelDBStorage(dir, ID);
  t.deepEqual(dump(s), before);
  t.deepEqual(s.snapshot().data, data);
  // Compacting up to the snapshot leaves only the snapshot's index behind.
  await s.compact(15);
  t.is(s.firstIndex(), 16);
  const after = dump(s);
  await s.close();
  s = await openLevelDBStorage(dir, ID);
  t.deepEqual(dump(s), after);
  t.is(s.term(15), 2);
  await s.close();
});

test('a snapshot from the leader replaces the log and survives a reopen', async (t) => {
  const dir = await tempDir(t);
  let s = await openLevelDBStorage(dir, ID);
  await s.save({ hardState: { term: 1, vote: 1, commit: 5 }, entries: ents(1, 8, 1) });
  const snap: Snapshot = {
    metadata: { index: 100, term: 3, confState: { voters: [1, 2, 3], learners: [] } },
    data: new Uint8Array(3 * 1024 * 1024).fill(7),
  };
  await s.save({ hardState: { term: 3, vote: 0, commit: 100 }, entries: ents(101, 102, 3), snapshot: snap });
  t.is(s.firstIndex(), 101);
  t.is(s.lastIndex(), 102);
  t.is(s.term(100), 3);
  t.deepEqual(s.initialState().confState, snap.metadata.confState);
  await t.throwsAsync(s.save({ entries: [], snapshot: snap }), { instanceOf: SnapshotOutOfDateError });
  const before = dump(s);
  await s.close();
  s = await openLevelDBStorage(dir, ID);
  t.deepEqual(dump(s), before);
  t.is(s.snapshot().data.length, 3 * 1024 * 1024);
  t.is(s.snapshot().data[12345], 7);
  await s.close();
});

test('a directory of another cluster or node is refused', async (t) => {
  const dir = await tempDir(t);
  const s = await openLevelDBStorage(dir, ID);
  await s.save({ entries: ents(1, 1, 1) });
  await s.close();
  const cluster = await t.throwsAsync(openLevelDBStorage(dir, { clusterId: 'other', nodeId: 1 }), {
    instanceOf: DataDirMismatchError,
  });
  t.is(cluster?.code, RaftErrorCode.DataDirMismatch);
  t.is(cluster?.field, 'cluster');
  t.is(cluster?.found, 'c1');
  t.is(cluster?.expected, 'other');
  t.is(cluster?.dir, dir);
  const node = await t.throwsAsync(openLevelDBStorage(dir, { clusterId: 'c1', nodeId: 2 }), {
    instanceOf: DataDirMismatchError,
  });
  t.is(node?.field, 'node');
  t.is(node?.found, '1');
  t.is(node?.expected, '2');
  // The refused opens released the directory: the right identity still opens it.
  const again = await openLevelDBStorage(dir, ID);
  t.is(again.lastIndex(), 1);
  await again.close();
});

test('synced writes are on disk without a clean close (copy of a live directory)', async (t) => {
  const dir = await tempDir(t);
  const copy = await tempDir(t);
  const s = await openLevelDBStorage(dir, ID);
  await s.save({ hardState: { term: 4, vote: 2, commit: 30 }, entries: ents(1, 40, 4) });
  await s.createSnapshot(30, { voters: [1, 2], learners: [] }, new Uint8Array([1, 2, 3]));
  await s.compact(25);
  await s.save({ hardState: { term: 4, vote: 2, commit: 31 }, entries: ents(41, 41, 4) });
  const before = dump(s);
  // The original stays open (its LOCK held), like a process that died without closing.
  await cp(dir, copy, { recursive: true });
  const c = await openLevelDBStorage(copy, ID);
  t.deepEqual(dump(c), before);
  await c.close();
  await s.close();
});

test('operations after close fail with StoppedError', async (t) => {
  const dir = await tempDir(t);
  const s = await openLevelDBStorage(dir, ID);
  await s.close();
  await t.throwsAsync(s.save({ entries: ents(1, 1, 1) }), { code: RaftErrorCode.Stopped } as never);
});

test('entries an unsynced compaction deleted are ignored if they come back after a crash', async (t) => {
  const dir = await tempDir(t);
  let s = await openLevelDBStorage(dir, ID);
  await s.save({ hardState: { term: 1, vote: 1, commit: 20 }, entries: ents(1, 20, 1) });
  await s.createSnapshot(15, { voters: [1], learners: [] }, new Uint8Array([9]));
  await s.compact(12);
  const before = dump(s);
  await s.close();
  // Put back what the compaction deleted, as if its batch had never reached the disk.
  const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.batch(
    ents(1, 12, 1).map((e) => ({ type: 'put' as const, key: entryKey(e.index), value: encodeEntry(e) })),
  );
  await db.close();
  s = await openLevelDBStorage(dir, ID);
  t.deepEqual(dump(s), before);
  await s.close();
});
