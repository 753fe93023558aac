// `failover`: how long a client's writes stop when the leader dies. One client (pkg/client,
// every endpoint) writes back to back; the leader is SIGKILLed; the gap is the longest time
// between two consecutive acknowledged writes around the kill. The member is then restarted
// and allowed to catch up before the next round. Same procedure for Berth and for etcd.
//
// A failed write is retried by the writer after a 10 ms pause (an application would retry
// too): what the client library does on failure (fail over, back off, wait out a deadline)
// is part of what is measured.
import { randomBytes } from 'node:crypto';
import { createClient } from '../pkg/client/client.js';
import { keyOf } from './load.js';
import { hostLoad, percentile, round, sleep } from './stats.js';
import {
  type BenchSystem,
  type BerthSystemOptions,
  clusterView,
  createAdminClient,
  type SystemName,
  startSystem,
  waitConverged,
} from './systems.js';

export interface FailoverBenchOptions {
  systems: readonly SystemName[];
  kills: number;
  /** Steady writing before each kill (ms). */
  settleMs: number;
  valueBytes: number;
  keySpace: number;
  berth: BerthSystemOptions;
  log: (line: string) => void;
}

export interface KillRecord {
  member: number;
  /** Longest time between consecutive acknowledged writes around the kill. */
  gap_ms: number;
  /** From the kill until the surviving members agreed on a new leader (status polled every 20 ms). */
  leader_ms: number | null;
  /** The writer's current endpoint was the leader's when it was killed. */
  writer_on_leader: boolean;
  /** Longest gap while the killed member restarted and caught up. */
  restart_gap_ms: number;
  errors: number;
  error_kinds?: Record<string, number>;
}

export interface FailoverSummary {
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  leader_p50_ms: number | null;
  leader_max_ms: number | null;
  restart_gap_max_ms: number;
  writes: number;
  errors: number;
  kills: KillRecord[];
}

export interface FailoverBenchResult {
  bench: 'failover';
  kills: number;
  systems: Partial<Record<SystemName, string>>;
  host: { cpus: number; loadavg_1m_start: number; loadavg_1m_end?: number };
  berth?: FailoverSummary;
  etcd?: FailoverSummary;
}

/** Longest interval between consecutive entries of sorted `acks` that ends after `from`, up to `to`. */
function longestGap(acks: readonly number[], from: number, to: number): number {
  let gap = 0;
  let prev: number | undefined;
  for (const t of acks) {
    if (t > to) break;
    if (t <= from) {
      prev = t;
      continue;
    }
    gap = Math.max(gap, t - (prev ?? from));
    prev = t;
  }
  return gap;
}

/** Resolves once `acks` has `count` entries after `after`, the first of them at least `holdMs` ago. */
async function waitForAcks(
  acks: readonly number[],
  after: number,
  count: number,
  holdMs: number,
  timeoutMs: number,
) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const firstIdx = acks.findIndex((t) => t > after);
    if (
      firstIdx >= 0 &&
      acks.length - firstIdx >= count &&
      performance.now() - (acks[firstIdx] as number) >= holdMs
    )
      return true;
    if (performance.now() > deadline) return false;
    await sleep(20);
  }
}

async function runOne(system: BenchSystem, o: FailoverBenchOptions): Promise<FailoverSummary> {
  const admin = createAdminClient(system.endpoints);
  const client = createClient({ endpoints: [...system.endpoints] });
  const acks: number[] = [];
  const errs: { t: number; msg: string }[] = [];
  let running = true;
  const writer = (async () => {
    const value = randomBytes(o.valueBytes);
    while (running) {
      try {
        await client.put({ key: keyOf(Math.floor(Math.random() * o.keySpace)), value });
        acks.push(performance.now());
      } catch (err) {
        errs.push({ t: performance.now(), msg: err instanceof Error ? err.message : String(err) });
        await sleep(10);
      }
    }
  })();

  const kills: KillRecord[] = [];
  try {
    await waitConverged(admin, [0, 1, 2]);
    for (let k = 0; k < o.kills; k++) {
      await waitConverged(admin, [0, 1, 2]);
      await sleep(o.settleMs);
      if (!(await waitForAcks(acks, performance.now() - o.settleMs, 5, 0, 30_000))) {
        throw new Error(`${system.name}: the writer made no progress before kill ${k + 1}`);
      }
      // Converged means every member names the same leader, one of them.
      const view = await waitConverged(admin, [0, 1, 2]);
      const leader = view.leader;
      const writerOnLeader = client.currentEndpoint() === admin.endpoints[leader];

      const tKill = performance.now();
      await system.kill(leader);
      let leaderMs: number | null = null;
      const others = new Set([leader]);
      while (performance.now() - tKill < 30_000) {
        const v = await clusterView(admin, others).catch(() => undefined);
        if (v && v.leader >= 0 && v.leaders.every((l, i) => i === leader || l !== undefined)) {
          leaderMs = performance.now() - tKill;
          break;
        }
        await sleep(20);
      }
      const resumed = await waitForAcks(acks, tKill, 20, 500, 60_000);
      const tEnd = performance.now();
      const gap = resumed ? longestGap(acks, tKill, tEnd) : tEnd - tKill;
      const during = errs.filter((e) => e.t >= tKill && e.t <= tEnd);
      const kinds = new Map<string, number>();
      for (const e of during) kinds.set(e.msg, (kinds.get(e.msg) ?? 0) + 1);

      const tRestart = performance.now();
      await system.restart(leader);
      await waitConverged(admin, [0, 1, 2]);
      await sleep(500);
      const restartGap = longestGap(acks, tRestart, performance.now());

      const rec: KillRecord = {
        member: leader,
        gap_ms: round(gap, 1),
        leader_ms: leaderMs === null ? null : round(leaderMs, 1),
        writer_on_leader: writerOnLeader,
        restart_gap_ms: round(restartGap, 1),
        errors: during.length,
      };
      if (kinds.size > 0) rec.error_kinds = Object.fromEntries(kinds);
      kills.push(rec);
      o.log(
        `${system.name} kill ${k + 1}/${o.kills}: member ${leader} (term ${view.term}), gap ${rec.gap_ms} ms, ` +
          `new leader after ${rec.leader_ms} ms, writer on leader: ${writerOnLeader}, errors ${rec.errors}` +
          `${rec.error_kinds ? ` ${JSON.stringify(rec.error_kinds)}` : ''}; restart gap ${rec.restart_gap_ms} ms`,
      );
    }
  } finally {
    running = false;
    await client.close();
    await writer;
    await admin.close();
  }
  const gaps = kills.map((r) => r.gap_ms);
  const leaderTimes = kills.flatMap((r) => (r.leader_ms === null ? [] : [r.leader_ms]));
  return {
    p50_ms: round(percentile(gaps, 50), 1),
    p99_ms: round(percentile(gaps, 99), 1),
    max_ms: round(percentile(gaps, 100), 1),
    leader_p50_ms: leaderTimes.length ? round(percentile(leaderTimes, 50), 1) : null,
    leader_max_ms: leaderTimes.length ? round(percentile(leaderTimes, 100), 1) : null,
    restart_gap_max_ms: round(Math.max(0, ...kills.map((r) => r.restart_gap_ms)), 1),
    writes: acks.length,
    errors: errs.length,
    kills,
  };
}

export async function runFailoverBench(o: FailoverBenchOptions): Promise<FailoverBenchResult> {
  const result: FailoverBenchResult = {
    bench: 'failover',
    kills: o.kills,
    systems: {},
    host: { cpus: hostLoad().cpus, loadavg_1m_start: hostLoad().loadavg_1m },
  };
  for (const name of o.systems) {
    o.log(`${name}: starting a 3-member cluster`);
    const system = await startSystem(name, o.berth);
    try {
      result.systems[name] = system.description;
      const s = await runOne(system, o);
      result[name] = s;
      o.log(`${name}: gap p50 ${s.p50_ms} ms, p99 ${s.p99_ms} ms, max ${s.max_ms} ms`);
    } finally {
      await system.stop();
      o.log(`${name}: stopped`);
    }
  }
  result.host.loadavg_1m_end = hostLoad().loadavg_1m;
  return result;
}
