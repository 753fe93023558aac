// The log (§5.3 log matching, §7 compaction), after etcd's log_test.go, log_unstable_test.go
// and storage_test.go: RaftLog over MemoryStorage, Unstable, and MemoryStorage itself.

import test from 'ava';
import {
  CompactedError,
  RaftInvariantError,
  SnapshotOutOfDateError,
  UnavailableError,
} from '../../pkg/raft/errors.js';
import { RaftLog } from '../../pkg/raft/log.js';
import { limitSize, MemoryStorage } from '../../pkg/raft/storage.js';
import type { Entry, Snapshot } from '../../pkg/raft/types.js';
import { Unstable } from '../../pkg/raft/unstable.js';
import { entry, shape } from './raft-test-network.js';

const CS = { voters: [1, 2, 3], learners: [] };
const NO_LIMIT = Number.MAX_SAFE_INTEGER;

function ents(...pairs: [number, number][]): Entry[] {
  return pairs.map(([i, term]) => entry(i, term));
}

/** A RaftLog whose storage holds `stored`, then `unstable` appended on top. */
function newLog(stored: Entry[], unstable: Entry[] = []): RaftLog {
  const s = new MemoryStorage();
  s.append(stored);
  const log = new RaftLog(s);
  if (unstable.length > 0) log.append(unstable);
  return log;
}

function snapshot(index: number, term: number): Snapshot {
  return { metadata: { index, term, confState: CS }, data: new Uint8Array() };
}

test('findConflict: the first entry that is new or has another term (§5.3)', (t) => {
  const log = newLog(ents([1, 1], [2, 2], [3, 3]));
  const cases: [Entry[], number][] = [
    [[], 0],
    [ents([1, 1], [2, 2], [3, 3]), 0],
    [ents([2, 2], [3, 3]), 0],
    [ents([3, 3]), 0],
    [ents([1, 1], [2, 2], [3, 3], [4, 4], [5, 4]), 4],
    [ents([2, 2], [3, 3], [4, 4], [5, 4]), 4],
    [ents([3, 3], [4, 4], [5, 4]), 4],
    [ents([4, 4], [5, 4]), 4],
    [ents([1, 4], [2, 4]), 1],
    [ents([2, 1], [3, 4], [4, 4]), 2],
    [ents([3, 1], [4, 2], [5, 4], [6, 4]), 3],
  ];
  for (const [input, want] of cases) t.is(log.findConflict(input), want, JSON.stringify(shape(input)));
});

test('findConflictByTerm: the last index at or below a given index whose term is at most the given term', (t) => {
  // Terms by index: 1:1 2:1 3:1 4:3 5:3 6:5
  const log = newLog(ents([1, 1], [2, 1], [3, 1], [4, 3], [5, 3], [6, 5]));
  const cases: [number, number, number, number][] = [
    [6, 5, 6, 5],
    [6, 4, 5, 3],
    [6, 2, 3, 1],
    [5, 3, 5, 3],
    [6, 0, 0, 0],
    [9, 4, 9, 0], // past the end: nothing to say about it
  ];
  for (const [index, term, wantIndex, wantTerm] of cases) {
    t.deepEqual(
      log.findConflictByTerm(index, term),
      { index: wantIndex, term: wantTerm },
      `${index}/${term}`,
    );
  }
});

test('maybeAppend: match the previous entry, truncate a conflicting suffix, commit up to the last new entry (§5.3)', (t) => {
  const prev = ents([1, 1], [2, 2], [3, 3]);
  type Case = {
    logTerm: number;
    index: number;
    commit: number;
    add: Entry[];
    lastNew: number | undefined;
    wantCommit: number;
    wantLog?: [number, number][];
  };
  const cases: Case[] = [
    // The previous entry does not match: refuse, change nothing.
    { logTerm: 2, index: 3, commit: 3, add: ents([4, 4]), lastNew: undefined, wantCommit: 1 },
    { logTerm: 3, index: 4, commit: 3, add: ents([5, 4]), lastNew: undefined, wantCommit: 1 },
    // Matches, nothing new: the commit index follows the leader but never passes the last new entry.
    { logTerm: 3, index: 3, commit: 3, add: [], lastNew: 3, wantCommit: 3 },
    { logTerm: 3, index: 3, commit: 4, add: [], lastNew: 3, wantCommit: 3 },
    { logTerm: 3, index: 3, commit: 2, add: [], lastNew: 3, wantCommit: 2 },
    { logTerm: 3, index: 3, commit: 0, add: [], lastNew: 3, wantCommit: 1 },
    // New entries.
    { logTerm: 3, index: 3, commit: 5, add: ents([4, 4]), lastNew: 4, wantCommit: 4 },
    { logTerm: 3, index: 3, commit: 4, add: ents([4, 4], [5, 4]), lastNew: 5, wantCommit: 4 },
    // A conflicting suffix is truncated.
    {
      logTerm: 2,
      index: 2,
      commit: 3,
      add: ents([3, 4]),
      lastNew: 3,
      wantCommit: 3,
      wantLog: [
        [1, 1],
        [2, 2],
        [3, 4],
      ],
    },
    {
      logTerm: 1,
      index: 1,
      commit: 4,
      add: ents([2, 4]),
      lastNew: 2,
      wantCommit: 2,
      wantLog: [
        [1, 1],
        [2, 4],
      ],
    },
    // An App that is only a prefix of what we have truncates nothing (it may be reordered).
    {
      logTerm: 1,
      index: 1,
      commit: 1,
      add: ents([2, 2]),
      lastNew: 2,
      wantCommit: 1,
      wantLog: [
        [1, 1],
        [2, 2],
        [3, 3],
      ],
    },
  ];
  for (const c of cases) {
    const log = newLog(prev);
    log.commitTo(1);
    t.is(log.maybeAppend(c.index, c.logTerm, c.commit, c.add), c.lastNew, JSON.stringify(c));
    t.is(log.committed, c.wantCommit, JSON.stringify(c));
    if (c.wantLog) t.deepEqual(shape(log.allEntries()), c.wantLog);
  }
});

test('maybeAppend refuses to overwrite a committed entry (Leader Completeness)', (t) => {
  const log = newLog(ents([1, 1], [2, 2], [3, 3]));
  log.commitTo(2);
  t.throws(() => log.maybeAppend(1, 1, 3, ents([2, 4])), { instanceOf: RaftInvariantError });
});

test('commitTo never decreases the commit index and never passes the last index', (t) => {
  const log = newLog(ents([1, 1], [2, 2], [3, 3]));
  log.commitTo(3);
  log.commitTo(1);
  t.is(log.committed, 3);
  t.throws(() => log.commitTo(4), { instanceOf: RaftInvariantError });
});

test('a leader commits by counting only at an index of its own term (§5.4.2)', (t) => {
  const log = newLog(ents([1, 1], [2, 2], [3, 3]));
  t.false(log.maybeCommit(2, 3));
  t.is(log.committed, 0);
  t.true(log.maybeCommit(3, 3));
  t.is(log.committed, 3);
  t.false(log.maybeCommit(2, 2), 'never backwards');
});

test('term(): compacted indexes throw CompactedError, the snapshot index is known, past the end is 0 (§7)', (t) => {
  const s = new MemoryStorage();
  s.append(ents([1, 1], [2, 1], [3, 2], [4, 2], [5, 3]));
  s.createSnapshot(3, CS, new Uint8Array([7]));
  s.compact(3);
  const log = new RaftLog(s);
  t.is(log.firstIndex(), 4);
  t.is(log.committed, 3, 'what is in a snapshot is committed');
  t.throws(() => log.term(2), { instanceOf: CompactedError });
  t.is(log.term(3), 2);
  t.is(log.term(5), 3);
  t.is(log.term(6), 0);
  t.is(log.termOrZero(1), 0);
  t.false(log.matchTerm(2, 1));
  t.throws(() => log.slice(2, 4, NO_LIMIT), { instanceOf: CompactedError });
  t.deepEqual(shape(log.entries(4, NO_LIMIT)), [
    [4, 2],
    [5, 3],
  ]);
});

test('isUpToDate compares the last term first, then the length (§5.4.1)', (t) => {
  const log = newLog(ents([1, 1], [2, 2], [3, 3]));
  const cases: [number, number, boolean][] = [
    [2, 4, true],
    [3, 4, true],
    [4, 4, true],
    [2, 2, false],
    [3, 2, false],
    [4, 2, false],
    [2, 3, false],
    [3, 3, true],
    [4, 3, true],
  ];
  for (const [lastIndex, term, want] of cases)
    t.is(log.isUpToDate(lastIndex, term), want, `${lastIndex}/${term}`);
});

test('entries spanning storage and unstable come back in order, cut to maxBytes but never empty', (t) => {
  const big = (i: number, term: number): Entry => entry(i, term, new Uint8Array(100));
  const log = newLog([big(1, 1), big(2, 1), big(3, 1)], [big(4, 2), big(5, 2)]);
  t.deepEqual(shape(log.slice(2, 6, NO_LIMIT)), [
    [2, 1],
    [3, 1],
    [4, 2],
    [5, 2],
  ]);
  t.deepEqual(
    shape(log.slice(2, 6, 124 * 3)),
    [
      [2, 1],
      [3, 1],
      [4, 2],
    ],
    'three 124-byte entries fit',
  );
  t.deepEqual(shape(log.slice(2, 6, 1)), [[2, 1]], 'at least one');
  t.deepEqual(shape(limitSize([big(9, 1)], 0)), [[9, 1]]);
});

test('nextEnts hands out committed entries past applied, once each', (t) => {
  const log = newLog(ents([1, 1], [2, 1], [3, 1]), ents([4, 2]));
  t.false(log.hasNextEnts());
  log.commitTo(4);
  t.true(log.hasNextEnts());
  t.deepEqual(
    shape(log.nextEnts()),
    [
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 2],
    ],
    'including a committed entry that is not yet stable',
  );
  log.appliedTo(2);
  t.deepEqual(shape(log.nextEnts()), [
    [3, 1],
    [4, 2],
  ]);
  log.appliedTo(4);
  t.false(log.hasNextEnts());
  t.throws(() => log.appliedTo(3), { instanceOf: RaftInvariantError }, 'applied never goes back');
});

test('restoring a snapshot resets the log to it (§7)', (t) => {
  const log = newLog(ents([1, 1], [2, 1], [3, 1]));
  log.restore(snapshot(10, 4));
  t.is(log.firstIndex(), 11);
  t.is(log.lastIndex(), 10);
  t.is(log.committed, 10);
  t.is(log.term(10), 4);
  t.throws(() => log.term(3), { instanceOf: CompactedError });
  log.append(ents([11, 4]));
  t.deepEqual(shape(log.allEntries()), [[11, 4]]);
});

test('unstable: appends, truncations and stableTo', (t) => {
  const u = new Unstable(5);
  u.truncateAndAppend(ents([5, 1], [6, 1], [7, 1]));
  t.is(u.maybeLastIndex(), 7);
  u.truncateAndAppend(ents([8, 2]));
  t.deepEqual(shape(u.entries), [
    [5, 1],
    [6, 1],
    [7, 1],
    [8, 2],
  ]);
  u.truncateAndAppend(ents([7, 3]));
  t.deepEqual(
    shape(u.entries),
    [
      [5, 1],
      [6, 1],
      [7, 3],
    ],
    'truncated in the middle',
  );
  u.stableTo(6, 2);
  t.is(u.offset, 5, 'a stableTo with the wrong term is stale: ignored');
  u.stableTo(6, 1);
  t.is(u.offset, 7);
  t.deepEqual(shape(u.entries), [[7, 3]]);
  u.truncateAndAppend(ents([4, 4]));
  t.is(u.offset, 4, 'replacing from before the offset');
  t.deepEqual(shape(u.entries), [[4, 4]]);
  t.is(u.maybeTerm(3), undefined);
  u.stableTo(9, 4);
  t.is(u.offset, 4, 'stableTo past the end is ignored');
});

test('unstable: a pending snapshot answers for its own index only', (t) => {
  const u = new Unstable(1);
  u.restore(snapshot(10, 3));
  t.is(u.maybeFirstIndex(), 11);
  t.is(u.maybeLastIndex(), 10);
  t.is(u.maybeTerm(10), 3);
  t.is(u.maybeTerm(9), undefined);
  u.stableSnapTo(9);
  t.truthy(u.snapshot, 'another index: kept');
  u.stableSnapTo(10);
  t.is(u.snapshot, undefined);
});

test('MemoryStorage: entries, term and compaction report Compacted/Unavailable precisely', (t) => {
  const s = new MemoryStorage();
  s.append(ents([1, 1], [2, 1], [3, 2], [4, 2], [5, 3]));
  t.deepEqual(shape(s.entries(2, 4, NO_LIMIT)), [
    [2, 1],
    [3, 2],
  ]);
  t.throws(() => s.entries(2, 7, NO_LIMIT), { instanceOf: UnavailableError });
  t.throws(() => s.term(6), { instanceOf: UnavailableError });

  s.createSnapshot(3, CS, new Uint8Array([1]));
  s.compact(3);
  t.is(s.firstIndex(), 4);
  t.is(s.lastIndex(), 5);
  t.is(s.term(3), 2, 'the compaction point keeps its term');
  t.throws(() => s.term(2), { instanceOf: CompactedError });
  t.throws(() => s.entries(3, 5, NO_LIMIT), { instanceOf: CompactedError });
  t.throws(() => s.compact(2), { instanceOf: CompactedError });
  t.throws(() => s.createSnapshot(2, CS, new Uint8Array()), { instanceOf: SnapshotOutOfDateError });
  t.throws(() => s.applySnapshot(snapshot(3, 2)), { instanceOf: SnapshotOutOfDateError });
});

test('MemoryStorage.append truncates a conflicting suffix and ignores compacted entries', (t) => {
  const s = new MemoryStorage();
  s.append(ents([1, 1], [2, 1], [3, 1], [4, 1]));
  s.append(ents([3, 2]));
  t.deepEqual(shape(s.entries(1, s.lastIndex() + 1, NO_LIMIT)), [
    [1, 1],
    [2, 1],
    [3, 2],
  ]);
  s.createSnapshot(2, CS, new Uint8Array());
  s.compact(2);
  s.append(ents([1, 1], [2, 1], [3, 2], [4, 2]));
  t.deepEqual(shape(s.entries(3, s.lastIndex() + 1, NO_LIMIT)), [
    [3, 2],
    [4, 2],
  ]);
  t.throws(() => s.append(ents([7, 2])), { instanceOf: RaftInvariantError }, 'a gap');
});
