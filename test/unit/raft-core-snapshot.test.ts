// Log compaction and InstallSnapshot (§7), after etcd's raft_snap_test.go: a follower behind
// the leader's compacted log gets the state machine's snapshot instead of entries.

import test from 'ava';
import { ProgressState } from '../../pkg/raft/progress.js';
import type { Message, NodeId } from '../../pkg/raft/types.js';
import { ConfChangeType, MessageType } from '../../pkg/raft/types.js';
import {
  bootstrappedStorage,
  enc,
  entry,
  msg,
  must,
  Network,
  newRaft,
  shape,
  takeMsgs,
} from './raft-test-network.js';

/** The application snapshots node `id` at its applied index and compacts the log there. */
function compact(net: Network, id: NodeId, data: Uint8Array): number {
  const n = net.node(id);
  const index = n.appliedIndex;
  n.storage.createSnapshot(index, n.raw.confState(), data);
  n.storage.compact(index);
  return index;
}

function progressState(net: Network, leader: NodeId, id: NodeId): string | undefined {
  return net.raw(leader).status().progress?.get(id)?.state;
}

/** Leader 1 with ten more entries than node 3, compacted past what node 3 has. */
function laggingFollower(data = enc('state machine')): { net: Network; snapIndex: number } {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(3);
  for (let i = 0; i < 10; i++) net.propose(1, `v${i}`);
  const snapIndex = compact(net, 1, data);
  assertSetup(net.node(1).storage.firstIndex() === snapIndex + 1);
  net.recover();
  return { net, snapIndex };
}

function assertSetup(cond: boolean): void {
  if (!cond) throw new Error('setup failed');
}

/** Keep Snap messages out of the network, to look at the leader while one is in flight. */
function holdSnapshots(net: Network): Message[] {
  const held: Message[] = [];
  net.filter = (m) => {
    if (m.type !== MessageType.Snap) return true;
    held.push(m);
    return false;
  };
  return held;
}

test('a follower behind the compacted log gets a Snap, and nothing else until it is reported (§7)', (t) => {
  const { net, snapIndex } = laggingFollower();
  const held = holdSnapshots(net);
  net.tick(1); // the heartbeat answer tells the leader where node 3 is
  t.is(held.length, 1);
  const snap = must(must(held[0]).snapshot);
  t.like(held[0], { from: 1, to: 3 });
  t.like(snap.metadata, { index: snapIndex, term: 2, confState: { voters: [1, 2, 3], learners: [] } });
  t.is(progressState(net, 1, 3), ProgressState.Snapshot);

  const mark = net.sent.length;
  net.propose(1, 'later');
  net.tick(3);
  const toThree = net.since(mark, { from: 1, to: 3 }, true);
  t.true(toThree.length > 0, 'heartbeats still go out');
  t.deepEqual(
    toThree.filter((m) => m.type === MessageType.App || m.type === MessageType.Snap),
    [],
    'no appends and no second snapshot while one is in flight',
  );

  net.raw(1).reportSnapshot(3, true);
  t.is(progressState(net, 1, 3), ProgressState.Probe, 'reported: wait for the follower to answer');

  net.filter = undefined;
  net.send(held);
  const n3 = net.node(3);
  t.is(n3.snapshots.length, 1, 'restored from ready().snapshot');
  t.is(n3.storage.firstIndex(), snapIndex + 1);
  t.deepEqual(net.raw(3).confState(), { voters: [1, 2, 3], learners: [] });
  t.is(progressState(net, 1, 3), ProgressState.Replicate);
  t.deepEqual(net.logShape(3), net.logShape(1));
  t.deepEqual(n3.appliedData(), ['later'], 'entries after the snapshot are applied normally');
  t.is(net.raw(3).status().commit, net.raw(1).status().commit);
});

test("the follower's answer to the snapshot ends the Snapshot state even before it is reported", (t) => {
  const { net } = laggingFollower();
  net.tick(1);
  t.is(net.node(3).snapshots.length, 1);
  t.is(progressState(net, 1, 3), ProgressState.Replicate);
  net.propose(1, 'after');
  t.deepEqual(net.node(3).appliedData(), ['after']);
});

test('reportSnapshot(false) returns the follower to probing and the leader sends a new snapshot (§7)', (t) => {
  const { net } = laggingFollower();
  const held = holdSnapshots(net);
  net.tick(1);
  t.is(held.length, 1);
  held.length = 0; // the transport failed to stream it

  net.raw(1).reportSnapshot(3, false);
  t.is(progressState(net, 1, 3), ProgressState.Probe);
  net.tick(1);
  t.is(held.length, 1, 'probing found the log still compacted: another snapshot');
  t.is(progressState(net, 1, 3), ProgressState.Snapshot);

  net.filter = undefined;
  net.send(held);
  t.deepEqual(net.logShape(3), net.logShape(1));
});

test('a 5 MiB snapshot goes through intact', (t) => {
  const data = new Uint8Array(5 * 1024 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >>> 13)) & 0xff;
  const { net, snapIndex } = laggingFollower(data);
  net.tick(1);
  const n3 = net.node(3);
  const got = must(n3.snapshots[0]).data;
  t.is(got.length, data.length);
  t.true(Buffer.from(got).equals(Buffer.from(data)));
  t.is(n3.storage.snapshot().metadata.index, snapIndex);
  t.deepEqual(net.logShape(3), net.logShape(1));
});

test('a new member joins through a snapshot and learns the membership from it (§7, §4)', (t) => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
  compact(net, 1, enc('kv'));
  net.addNode(4);
  net.proposeConfChange(1, { type: ConfChangeType.AddLearnerNode, nodeId: 4 });
  const n4 = net.node(4);
  t.is(n4.snapshots.length, 1);
  t.deepEqual(net.raw(4).confState(), { voters: [1, 2, 3], learners: [4] });
  t.deepEqual(net.logShape(4), net.logShape(1));
});

test('a follower ignores a snapshot older than its commit index and says how far it is (§7)', (t) => {
  const r = newRaft(2, bootstrappedStorage([1, 2, 3], [2, 2], { term: 2, commit: 5 }));
  r.step(
    msg({
      type: MessageType.Snap,
      from: 1,
      to: 2,
      term: 2,
      snapshot: {
        metadata: { index: 4, term: 2, confState: { voters: [1, 2, 3], learners: [] } },
        data: enc('old'),
      },
    }),
  );
  t.like(takeMsgs(r), [{ type: MessageType.AppResp, to: 1, index: 5, reject: false }]);
  t.is(r.log.firstIndex(), 1, 'log untouched');
  t.is(r.log.unstable.snapshot, undefined);
});

test('a snapshot the follower already holds the entries of only moves its commit index (§7)', (t) => {
  const r = newRaft(2, bootstrappedStorage([1, 2, 3], [2, 2], { term: 2, commit: 3 }));
  r.step(
    msg({
      type: MessageType.Snap,
      from: 1,
      to: 2,
      term: 2,
      snapshot: {
        metadata: { index: 5, term: 2, confState: { voters: [1, 2, 3], learners: [] } },
        data: enc(''),
      },
    }),
  );
  t.is(r.log.committed, 5);
  t.is(r.log.firstIndex(), 1, 'entries retained');
  t.like(takeMsgs(r), [{ type: MessageType.AppResp, index: 5 }]);
});

test('a follower whose log conflicts with the snapshot replaces it, and its membership, with the snapshot (§7)', (t) => {
  const r = newRaft(2, bootstrappedStorage([1, 2, 3], [2, 2], { term: 2, commit: 3 }));
  r.step(
    msg({
      type: MessageType.Snap,
      from: 1,
      to: 2,
      term: 3,
      snapshot: {
        metadata: { index: 7, term: 3, confState: { voters: [1, 2], learners: [3] } },
        data: enc(''),
      },
    }),
  );
  t.is(r.log.committed, 7);
  t.is(r.log.firstIndex(), 8);
  t.is(r.log.lastIndex(), 7);
  t.deepEqual(r.tracker.confState(), { voters: [1, 2], learners: [3] });
  t.like(takeMsgs(r), [{ type: MessageType.AppResp, index: 7 }]);
  // Entries after the snapshot are accepted on top of it.
  r.step(
    msg({ type: MessageType.App, from: 1, to: 2, term: 3, index: 7, logTerm: 3, entries: [entry(8, 3)] }),
  );
  t.deepEqual(shape(r.log.allEntries()), [[8, 3]]);
});
