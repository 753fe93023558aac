// The two systems the benchmarks compare, behind one shape: a 3-member Berth cluster
// (test/support/berth-cluster.ts, real berth-node processes) and a 3-member etcd 3.4 cluster
// (test/support/etcd-cluster.ts). Both serve etcd's v3 gRPC protocol, so the same client
// (pkg/client) drives both, and leaders are found the same way: Maintenance.Status.
//
// Ownership: a BenchSystem kills and removes only what it started (the harnesses track their
// processes by pid); stop() is safe to call twice.
import { type Client, createClient } from '../pkg/client/client.js';
import { BerthCluster } from '../test/support/berth-cluster.js';
import { etcdVersion, startEtcdCluster } from '../test/support/etcd-cluster.js';
import { sleep } from './stats.js';

export type SystemName = 'berth' | 'etcd';
export const SYSTEM_NAMES: readonly SystemName[] = ['berth', 'etcd'];

export interface BenchSystem {
  readonly name: SystemName;
  /** What runs, for the report ('berth-node x3, tick 100 ms', 'etcd 3.4.23 x3'). */
  readonly description: string;
  /** Client endpoints of every member, in member order (down or not). */
  readonly endpoints: readonly string[];
  /** Each member's pid, undefined while it is down. */
  pids(): (number | undefined)[];
  /** SIGKILL member i and wait until it has exited. */
  kill(i: number): Promise<void>;
  /** Start member i again on its data; resolves once it serves clients. */
  restart(i: number): Promise<void>;
  /** Stop everything and remove the data. Idempotent. */
  stop(): Promise<void>;
}

export interface BerthSystemOptions {
  /** Raft tick (berth-node --tick-ms). Production default 100. */
  tickMs: number;
  /** berth-node --election-ticks (default 10, as berth-node's own default). */
  electionTicks?: number;
  /** berth-node --log-level; 'info' is berth-node's default (the test harness uses debug). */
  logLevel: string;
}

export async function startBerth(o: BerthSystemOptions): Promise<BenchSystem> {
  const electionTicks = o.electionTicks ?? 10;
  const cluster = await BerthCluster.start({
    size: 3,
    tickMs: o.tickMs,
    electionTicks,
    // Later flags win: run at the production log level, not the harness' debug.
    extraArgs: ['--log-level', o.logLevel],
  });
  let stopped = false;
  return {
    name: 'berth',
    description: `berth-node x3 (tick ${o.tickMs} ms, election ${electionTicks} ticks, log ${o.logLevel})`,
    endpoints: cluster.endpoints(true),
    pids: () => cluster.nodes.map((n) => n.proc?.pid),
    kill: (i) => cluster.kill(i),
    restart: (i) => cluster.start(i),
    async stop() {
      if (stopped) return;
      stopped = true;
      await cluster.destroy();
    },
  };
}

export async function startEtcd(): Promise<BenchSystem> {
  const cluster = await startEtcdCluster({ size: 3 });
  let stopped = false;
  return {
    name: 'etcd',
    description: `${etcdVersion() ?? 'etcd'} x3 (default flags: heartbeat 100 ms, election 1000 ms)`,
    endpoints: cluster.endpoints,
    pids: () => cluster.pids,
    kill: (i) => cluster.kill(i),
    restart: (i) => cluster.restart(i),
    async stop() {
      if (stopped) return;
      stopped = true;
      await cluster.stop();
    },
  };
}

const running = new Set<BenchSystem>();

/** Start a system; it is tracked until stopped, so stopAllSystems() (on SIGINT) can end it. */
export async function startSystem(name: SystemName, berth: BerthSystemOptions): Promise<BenchSystem> {
  const system = name === 'berth' ? await startBerth(berth) : await startEtcd();
  running.add(system);
  const stop = system.stop;
  return {
    ...system,
    stop: async () => {
      running.delete(system);
      await stop();
    },
  };
}

/** Stop every system startSystem() started and nobody stopped yet (interrupted runs). */
export async function stopAllSystems(): Promise<void> {
  const all = [...running];
  running.clear();
  await Promise.all(all.map((s) => s.stop().catch(() => undefined)));
}

/** A client for status calls only: one quick attempt per call, so a dead member answers fast. */
export function createAdminClient(endpoints: readonly string[]): Client {
  return createClient({ endpoints: [...endpoints], requestTimeoutMs: 1000, dialTimeoutMs: 500, retries: 0 });
}

export interface ClusterView {
  /** Index (in endpoint order) of the member every answering member names as leader, or -1. */
  leader: number;
  term: number;
  /** raftIndex of the leader, raftAppliedIndex of each member (-1: no answer). */
  leaderIndex: number;
  applied: number[];
  /** Each member's idea of the leader's member id ('0': none; undefined: no answer). */
  leaders: (string | undefined)[];
}

/** Ask every member for its status and work out who leads, if they agree. */
export async function clusterView(
  admin: Client,
  skip: ReadonlySet<number> = new Set(),
): Promise<ClusterView> {
  const all = await admin.cluster.statusAll();
  const ids = all.map((s) => s.status?.header.memberId);
  const leaders = all.map((s, i) => (skip.has(i) ? undefined : s.status?.leader));
  const named = leaders.filter((l): l is string => l !== undefined);
  const agreed = named.length > 0 && named.every((l) => l === named[0]) && named[0] !== '0';
  const leader = agreed ? ids.indexOf(named[0]) : -1;
  const ls = leader >= 0 ? all[leader]?.status : undefined;
  return {
    leader: leader >= 0 && !skip.has(leader) ? leader : -1,
    term: ls?.raftTerm ?? 0,
    leaderIndex: ls?.raftIndex ?? 0,
    applied: all.map((s, i) => (skip.has(i) ? -1 : (s.status?.raftAppliedIndex ?? -1))),
    leaders,
  };
}

/**
 * Wait until every member in `members` answers, all name the same leader (one of them), and
 * each has applied what the leader had in its log when first asked. Returns the view.
 */
export async function waitConverged(
  admin: Client,
  members: readonly number[],
  timeoutMs = 60_000,
): Promise<ClusterView> {
  const deadline = Date.now() + timeoutMs;
  let target = -1;
  let last: ClusterView | undefined;
  while (Date.now() < deadline) {
    const v = await clusterView(admin).catch(() => undefined);
    last = v;
    if (v && v.leader >= 0 && members.every((i) => v.leaders[i] !== undefined)) {
      if (target < 0) target = v.leaderIndex;
      if (members.every((i) => (v.applied[i] ?? -1) >= target)) return v;
    }
    await sleep(50);
  }
  throw new Error(`cluster did not converge within ${timeoutMs} ms; last view ${JSON.stringify(last)}`);
}
