import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import {
  DataDirMismatchError,
  DropReason,
  ProposalDroppedError,
  StoppedError,
} from '../../pkg/raft/errors.js';
import { createLocalNetwork, type LocalNetwork } from '../../pkg/raft/local-transport.js';
import {
  createRaftNode,
  LeaderUnreachableError,
  type RaftNode,
  type RaftNodeOptions,
  RequestTimeoutError,
  type StateMachine,
} from '../../pkg/raft/runner.js';
import type { Entry, NodeId } from '../../pkg/raft/types.js';
import { StateRole } from '../../pkg/raft/types.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Appends every payload to a list; its snapshot optionally carries `ballast` extra bytes. */
class ListMachine implements StateMachine {
  values: string[] = [];
  restores = 0;
  snapshots = 0;
  constructor(private readonly ballast = 0) {}

  apply(entry: Entry): void {
    this.values.push(dec.decode(entry.data));
  }

  snapshot(): Uint8Array {
    this.snapshots++;
    const json = enc.encode(JSON.stringify(this.values));
    const out = new Uint8Array(4 + json.length + this.ballast);
    new DataView(out.buffer).setUint32(0, json.length);
    out.set(json, 4);
    for (let i = 4 + json.length; i < out.length; i++) out[i] = i & 0xff;
    return out;
  }

  async restore(data: Uint8Array): Promise<void> {
    this.restores++;
    const len = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
    this.values = JSON.parse(dec.decode(data.subarray(4, 4 + len))) as string[];
  }
}

interface Member {
  id: NodeId;
  dir: string;
  sm: ListMachine;
  node: RaftNode;
}

const TICK_MS = 10;

class Cluster {
  readonly members = new Map<NodeId, Member>();
  readonly net: LocalNetwork = createLocalNetwork();
  private readonly dirs = new Map<NodeId, string>();

  constructor(
    private readonly t: ExecutionContext,
    private readonly root: string,
    private readonly base: Partial<RaftNodeOptions> = {},
    private readonly ballast = 0,
  ) {}

  dir(id: NodeId): string {
    let d = this.dirs.get(id);
    if (!d) {
      d = join(this.root, `node-${id}`);
      this.dirs.set(id, d);
    }
    return d;
  }

  async start(id: NodeId, extra: Partial<RaftNodeOptions> = {}): Promise<Member> {
    const sm = new ListMachine(this.ballast);
    const node = await createRaftNode({
      id,
      clusterId: 'test',
      dataDir: this.dir(id),
      peers: [1, 2, 3].map((p) => ({ id: p, address: `node-${p}` })),
      transport: this.net.transport(id),
      stateMachine: sm,
      tickMs: TICK_MS,
      requestTimeoutMs: 5000,
      ...this.base,
      ...extra,
    });
    node.onFatal((err) => this.t.fail(`node ${id} failed: ${String(err)}`));
    const m = { id, dir: this.dir(id), sm, node };
    this.members.set(id, m);
    return m;
  }

  get(id: NodeId): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  async stop(id: NodeId): Promise<void> {
    await this.members.get(id)?.node.stop();
    this.members.delete(id);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.members.keys()].map((id) => this.stop(id)));
  }

  /** The single leader all running members agree on. */
  async leader(among: NodeId[] = [...this.members.keys()], timeoutMs = 5000): Promise<Member> {
    let found: Member | undefined;
    await waitFor(
      () => {
        const leaders = among
          .map((id) => this.get(id).node.status())
          .filter((s) => s.role === StateRole.Leader);
        if (leaders.length !== 1) return false;
        const lead = leaders[0]?.id as NodeId;
        if (!among.every((id) => this.get(id).node.status().leader === lead)) return false;
        found = this.get(lead);
        return true;
      },
      timeoutMs,
      'a leader',
    );
    return found as Member;
  }
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function withCluster(
  t: ExecutionContext,
  opts: { base?: Partial<RaftNodeOptions>; ballast?: number },
  fn: (c: Cluster) => Promise<void>,
): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'berth-raft-runner-'));
  const c = new Cluster(t, root, opts.base, opts.ballast);
  try {
    await fn(c);
  } finally {
    await c.stopAll();
    await rm(root, { recursive: true, force: true });
  }
}

async function startThree(c: Cluster): Promise<Member> {
  await Promise.all([1, 2, 3].map((id) => c.start(id)));
  return c.leader();
}

/** Propose, retrying while there is no leader yet (a fresh or re-electing cluster). */
async function proposeRetry(node: RaftNode, value: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await node.propose(enc.encode(value));
    } catch (err) {
      if (!(err instanceof ProposalDroppedError) || attempt > 100) throw err;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

function sameEverywhere(c: Cluster, ids: NodeId[], count: number): boolean {
  const first = c.get(ids[0] as NodeId).sm.values;
  if (first.length !== count) return false;
  return ids.every((id) => {
    const v = c.get(id).sm.values;
    return v.length === count && v.every((x, i) => x === first[i]);
  });
}

test('three nodes elect a leader and apply 100 proposals identically', async (t) => {
  await withCluster(t, {}, async (c) => {
    const leader = await startThree(c);
    const leaders: NodeId[] = [];
    c.get(1).node.onLeaderChange((l) => leaders.push(l));
    // Proposals go in through every node: followers forward them to the leader.
    const indexes: number[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const ids = await Promise.all(
        Array.from({ length: 10 }, (_, i) => proposeRetry(c.get((i % 3) + 1).node, `v${batch * 10 + i}`)),
      );
      indexes.push(...ids);
    }
    t.is(new Set(indexes).size, 100, 'every proposal got its own index');
    await waitFor(() => sameEverywhere(c, [1, 2, 3], 100), 5000, 'all nodes to apply 100 entries');
    t.deepEqual([...c.get(1).sm.values].sort(), Array.from({ length: 100 }, (_, i) => `v${i}`).sort());
    // Each proposer's waiter resolved with the index its entry was applied at.
    const status = leader.node.status();
    t.true(status.commit >= 100 + 3);
    t.deepEqual(status.appliedConfState.voters.sort(), [1, 2, 3]);
    t.deepEqual(leaders, [], 'no leader change in a quiet cluster');
  });
});

test('a linearizable read on any node sees a write acknowledged before it', async (t) => {
  await withCluster(t, {}, async (c) => {
    const leader = await startThree(c);
    const followers = [1, 2, 3].filter((id) => id !== leader.id);
    for (let i = 0; i < 5; i++) {
      await proposeRetry(c.get(followers[0] as NodeId).node, `w${i}`);
      for (const id of [...followers, leader.id]) {
        await c.get(id).node.read();
        t.is(c.get(id).sm.values.at(-1), `w${i}`, `node ${id} after write ${i}`);
      }
    }
  });
});

test('a stopped cluster restarts from its directories with the same state', async (t) => {
  await withCluster(t, {}, async (c) => {
    const leader = await startThree(c);
    for (let i = 0; i < 20; i++) await proposeRetry(leader.node, `a${i}`);
    await waitFor(() => sameEverywhere(c, [1, 2, 3], 20), 5000, 'replication');
    const before = [...c.get(1).sm.values];
    const oldTerm = leader.node.status().term;
    await c.stopAll();
    await t.throwsAsync(leader.node.propose(enc.encode('late')), { instanceOf: StoppedError });
    await leader.node.stop(); // idempotent

    await Promise.all([1, 2, 3].map((id) => c.start(id)));
    // Committed entries are replayed into the fresh state machines.
    await waitFor(() => sameEverywhere(c, [1, 2, 3], 20), 5000, 'replay after restart');
    t.deepEqual(c.get(2).sm.values, before);
    const again = await c.leader();
    t.true(again.node.status().term > oldTerm);
    for (let i = 0; i < 5; i++) await proposeRetry(c.get(2).node, `b${i}`);
    await waitFor(() => sameEverywhere(c, [1, 2, 3], 25), 5000, 'progress after restart');
    t.deepEqual(c.get(3).sm.values.slice(20), ['b0', 'b1', 'b2', 'b3', 'b4']);
  });
});

test("a node refuses another node's or another cluster's data directory", async (t) => {
  await withCluster(t, {}, async (c) => {
    await startThree(c);
    await c.stop(1);
    const err = await t.throwsAsync(c.start(4, { dataDir: c.dir(1) }), { instanceOf: DataDirMismatchError });
    t.is(err?.field, 'node');
    const other = await t.throwsAsync(c.start(1, { clusterId: 'other' }), {
      instanceOf: DataDirMismatchError,
    });
    t.is(other?.field, 'cluster');
    // The directory was released by the refused opens.
    await c.start(1);
    await c.leader();
  });
});

test('a lagging node catches up through a chunked snapshot', async (t) => {
  await withCluster(
    t,
    { base: { snapshotEntries: 50, catchUpEntries: 10 }, ballast: 3 * 1024 * 1024 },
    async (c) => {
      const leader = await startThree(c);
      const lagging = [1, 2, 3].find((id) => id !== leader.id) as NodeId;
      const others = [1, 2, 3].filter((id) => id !== lagging);
      await proposeRetry(leader.node, 'first');
      await waitFor(() => sameEverywhere(c, [1, 2, 3], 1), 5000, 'first entry everywhere');
      c.net.isolate(lagging);
      for (let i = 0; i < 120; i++) await leader.node.propose(enc.encode(`x${i}`));
      await waitFor(() => sameEverywhere(c, others, 121), 5000, 'the majority to apply');
      const st = leader.node.status();
      t.true(st.snapshotIndex >= 100, `leader snapshot at ${st.snapshotIndex}`);
      t.true(st.firstIndex > c.get(lagging).node.status().lastIndex + 1, 'the log the laggard needs is gone');
      const chunksBefore = c.net.stats().snapshotChunksDelivered;
      c.net.heal();
      await waitFor(() => sameEverywhere(c, [1, 2, 3], 121), 10000, 'the laggard to catch up');
      const laggard = c.get(lagging);
      t.true(laggard.sm.restores >= 1, 'restored from a snapshot');
      t.true(c.net.stats().snapshotsDelivered >= 1);
      t.true(
        c.net.stats().snapshotChunksDelivered - chunksBefore >= 3,
        'a ~3 MB snapshot travels in 1 MiB chunks',
      );
      // It keeps up normally afterwards, and its received snapshot survives a restart.
      await leader.node.propose(enc.encode('after'));
      await waitFor(() => sameEverywhere(c, [1, 2, 3], 122), 5000, 'normal replication after catch-up');
      await c.stop(lagging);
      const restarted = await c.start(lagging);
      await waitFor(() => restarted.sm.values.length === 122, 5000, 'restart of the caught-up node');
      t.is(restarted.sm.restores, 1, 'restarted from its stored snapshot');
    },
  );
});

test('a learner joins, is promoted, and a member is removed', async (t) => {
  await withCluster(t, {}, async (c) => {
    const leader = await startThree(c);
    for (let i = 0; i < 10; i++) await proposeRetry(leader.node, `p${i}`);
    const learner = await c.start(4, {
      join: true,
      peers: [1, 2, 3].map((p) => ({ id: p, address: `node-${p}` })),
    });
    await leader.node.addLearner(4, 'node-4');
    t.deepEqual(leader.node.status().appliedConfState.learners, [4]);
    await waitFor(() => sameEverywhere(c, [1, 2, 3, 4], 10), 5000, 'the learner to catch up');
    // Promotion is refused until the leader has seen the learner catch up.
    for (let attempt = 0; ; attempt++) {
      try {
        await leader.node.promote(4);
        break;
      } catch (err) {
        if (
          !(err instanceof ProposalDroppedError) ||
          err.reason !== DropReason.LearnerNotReady ||
          attempt > 100
        ) {
          throw err;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    await waitFor(
      () => learner.node.status().appliedConfState.voters.includes(4),
      5000,
      'promotion on node 4',
    );
    t.deepEqual(leader.node.status().confState.voters.sort(), [1, 2, 3, 4]);
    t.deepEqual(leader.node.status().confState.learners, []);

    const victim = [1, 2, 3].find((id) => id !== leader.id) as NodeId;
    await leader.node.removeMember(victim);
    t.false(leader.node.status().confState.voters.includes(victim));
    await c.stop(victim);
    const rest = [1, 2, 3, 4].filter((id) => id !== victim);
    await proposeRetry(learner.node, 'after removal');
    await waitFor(() => sameEverywhere(c, rest, 11), 5000, 'progress without the removed member');
  });
});

test('removing the leader makes it step down and another leader takes over', async (t) => {
  await withCluster(t, {}, async (c) => {
    const leader = await startThree(c);
    await proposeRetry(leader.node, 'one');
    const others = [1, 2, 3].filter((id) => id !== leader.id);
    await leader.node.removeMember(leader.id);
    const next = await c.leader(others);
    t.not(next.id, leader.id);
    await waitFor(() => leader.node.status().role !== StateRole.Leader, 5000, 'the old leader to step down');
    t.deepEqual(next.node.status().confState.voters.sort(), others);
    await proposeRetry(next.node, 'two');
    await waitFor(() => sameEverywhere(c, others, 2), 5000, 'the remaining pair to commit');
    // The removed node cannot get proposals through any more.
    t.is(leader.node.status().role, StateRole.Follower);
  });
});

test('a proposal without a leader is dropped at once; stop is idempotent', async (t) => {
  await withCluster(t, { base: { electionTick: 1000 } }, async (c) => {
    const m = await c.start(1);
    const err = await t.throwsAsync(m.node.propose(enc.encode('x')), { instanceOf: ProposalDroppedError });
    t.is(err?.reason, DropReason.NoLeader);
    await t.throwsAsync(m.node.read(), { instanceOf: ProposalDroppedError });
    await Promise.all([m.node.stop(), m.node.stop()]);
    t.true(m.node.status().stopped);
  });
});

test('leadership moves on request', async (t) => {
  await withCluster(t, {}, async (c) => {
    const leader = await startThree(c);
    await proposeRetry(leader.node, 'one');
    const target = [1, 2, 3].find((id) => id !== leader.id) as NodeId;
    await waitFor(() => sameEverywhere(c, [1, 2, 3], 1), 5000, 'replication');
    const seen: NodeId[] = [];
    c.get(target).node.onLeaderChange((l) => seen.push(l));
    await leader.node.transferLeadership(target);
    t.is((await c.leader()).id, target);
    t.true(seen.includes(target));
    await proposeRetry(leader.node, 'two');
    await waitFor(() => sameEverywhere(c, [1, 2, 3], 2), 5000, 'replication under the new leader');
  });
});

test('requests that cannot complete time out with a clear error', async (t) => {
  await withCluster(t, { base: { requestTimeoutMs: 300 } }, async (c) => {
    const leader = await startThree(c);
    const follower = c.get([1, 2, 3].find((id) => id !== leader.id) as NodeId);
    await proposeRetry(follower.node, 'one');
    c.net.isolate(follower.id);
    // Still following the old leader, the follower forwards into a cut link.
    const [p, r] = await Promise.allSettled([
      follower.node.propose(enc.encode('lost')),
      follower.node.read(),
    ]);
    for (const result of [p, r]) {
      t.is(result.status, 'rejected');
      const reason = (result as PromiseRejectedResult).reason as Error;
      t.true(
        reason instanceof RequestTimeoutError ||
          reason instanceof ProposalDroppedError ||
          reason instanceof LeaderUnreachableError,
        `unexpected ${String(reason)}`,
      );
      if (reason instanceof RequestTimeoutError) t.regex(reason.message, /timed out after 300 ms/);
      if (reason instanceof LeaderUnreachableError)
        t.regex(reason.message, /may or may not have been applied/);
    }
    c.net.heal();
  });
});
