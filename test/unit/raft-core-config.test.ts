// Configuration mistakes are reported as ConfigError, never as a crash of a running node.

import test from 'ava';
import { ConfigError } from '../../pkg/raft/errors.js';
import { bootstrapState, decodeConfChange, RawNode } from '../../pkg/raft/raw-node.js';
import { MemoryStorage } from '../../pkg/raft/storage.js';
import { ConfChangeType } from '../../pkg/raft/types.js';
import { bootstrappedStorage } from './raft-test-network.js';

test('bad options are refused with ConfigError', (t) => {
  const bad = [
    { id: 0 },
    { id: -1 },
    { id: 1.5 },
    { id: 1, heartbeatTick: 0 },
    { id: 1, electionTick: 3, heartbeatTick: 3 },
    { id: 1, maxInflightMsgs: 0 },
    { id: 1, maxSizePerMsg: 0 },
    { id: 1, learnerMaxLag: -1 },
  ];
  for (const opts of bad) {
    t.throws(
      () => new RawNode({ storage: bootstrappedStorage([1]), ...opts }),
      { instanceOf: ConfigError },
      JSON.stringify(opts),
    );
  }
});

test('bootstrapState refuses an empty, duplicated or invalid voter list', (t) => {
  for (const voters of [[], [1, 1], [0], [2.5]]) {
    t.throws(() => bootstrapState(voters), { instanceOf: ConfigError }, JSON.stringify(voters));
  }
});

test('bootstrapState commits one AddNode per voter at term 1, which a new node applies', (t) => {
  const { entries, hardState } = bootstrapState([3, 1, 2]);
  t.deepEqual(hardState, { term: 1, vote: 0, commit: 3 });
  t.deepEqual(
    entries.map((e) => [e.index, e.term, decodeConfChange(e.data).type, decodeConfChange(e.data).nodeId]),
    [
      [1, 1, ConfChangeType.AddNode, 3],
      [2, 1, ConfChangeType.AddNode, 1],
      [3, 1, ConfChangeType.AddNode, 2],
    ],
  );
  const storage = new MemoryStorage();
  storage.append(entries);
  storage.setHardState(hardState);
  t.deepEqual(new RawNode({ id: 1, storage }).confState(), { voters: [1, 2, 3], learners: [] });
});

test('a corrupt conf change entry is a ConfigError', (t) => {
  t.throws(() => decodeConfChange(new Uint8Array(3)), { instanceOf: ConfigError });
  const b = new Uint8Array(9);
  b[0] = 9;
  t.throws(() => decodeConfChange(b), { instanceOf: ConfigError });
});
