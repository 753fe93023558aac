import test from 'ava';
import { CodecError } from '../../pkg/raft/codec.js';
import {
  CompactedError,
  ConfigError,
  DataDirMismatchError,
  DropReason,
  ProposalDroppedError,
  RaftError,
  RaftErrorCode,
  RaftInvariantError,
  SnapshotOutOfDateError,
  SnapshotTemporarilyUnavailableError,
  StepLocalMessageError,
  StepPeerNotFoundError,
  StoppedError,
  UnavailableError,
} from '../../pkg/raft/errors.js';
import { RequestTimeoutError } from '../../pkg/raft/runner.js';
import { SnapshotChunkError, SnapshotChunkErrorReason } from '../../pkg/raft/snapshot-chunks.js';

// One instance of every error class; together they must cover the whole catalogue.
const catalogue: RaftError[] = [
  new CompactedError(5),
  new UnavailableError(9),
  new SnapshotOutOfDateError(3, 7),
  new SnapshotTemporarilyUnavailableError(),
  new ProposalDroppedError(DropReason.NoLeader),
  new ConfigError('electionTick must be greater than heartbeatTick'),
  new StepLocalMessageError(0),
  new StepPeerNotFoundError(4),
  new DataDirMismatchError('/var/lib/berth', 'node', 'n2', 'n1'),
  new StoppedError(),
  new RequestTimeoutError('propose', 10000),
  new CodecError('entry', 'truncated'),
  new SnapshotChunkError(SnapshotChunkErrorReason.Gap, 'expected offset 0'),
];

test('every error code in the catalogue is produced by an error class', (t) => {
  const produced = new Set(catalogue.map((e) => e.code));
  for (const code of Object.values(RaftErrorCode))
    t.true(produced.has(code), `no error class produces ${code}`);
});

test('codes are unique and stable strings, errors carry a readable message', (t) => {
  const codes = Object.values(RaftErrorCode);
  t.is(new Set(codes).size, codes.length);
  for (const code of codes) t.regex(code, /^RAFT_[A-Z_]+$/);
  for (const e of catalogue) {
    t.true(e instanceof RaftError && e instanceof Error);
    t.true(e.message.startsWith('raft'), e.message);
    t.true(e.message.length > 20, e.message);
  }
});

test('errors a person meets say what to do about them', (t) => {
  const mismatch = new DataDirMismatchError('/var/lib/berth', 'cluster', 'c-old', 'c-new');
  t.regex(mismatch.message, /\/var\/lib\/berth/);
  t.regex(mismatch.message, /c-old/);
  t.regex(mismatch.message, /c-new/);
  t.regex(mismatch.message, /empty directory/);
  t.regex(new RequestTimeoutError('read', 500).message, /retry/);
  t.regex(
    new ProposalDroppedError(DropReason.LearnerNotReady, 'learner 4 has 10 of 90').message,
    /caught up.*10 of 90/,
  );
});

test('a broken invariant is not a RaftError: nobody may catch it as an expected failure', (t) => {
  const e = new RaftInvariantError('two leaders');
  t.false(e instanceof RaftError);
  t.is(e.name, 'RaftInvariantError');
});
