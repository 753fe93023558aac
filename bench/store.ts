// `store`: write throughput and latency of a 3-member Berth cluster against a 3-member etcd on
// the same machine, driven by the same load generator and the same client (pkg/client; it
// speaks etcd's wire protocol to both). One system at a time: each is started, warmed up,
// measured at every concurrency, and stopped before the next one starts.
import { type LoadResult, runLoad } from './load.js';
import { hostLoad, round, sleep } from './stats.js';
import {
  type BerthSystemOptions,
  clusterView,
  createAdminClient,
  type SystemName,
  startSystem,
  waitConverged,
} from './systems.js';

export interface StoreBenchOptions {
  systems: readonly SystemName[];
  concurrency: readonly number[];
  durationMs: number;
  warmupMs: number;
  valueBytes: number;
  keySpace: number;
  writersPerClient: number;
  berth: BerthSystemOptions;
  log: (line: string) => void;
}

export interface StoreBenchResult {
  bench: 'store';
  duration_s: number;
  value_bytes: number;
  key_space: number;
  writers_per_client: number;
  systems: Partial<Record<SystemName, string>>;
  host: { cpus: number; loadavg_1m_start: number; loadavg_1m_end?: number };
  berth?: Record<string, LoadResult>;
  etcd?: Record<string, LoadResult>;
  [ratio: `ratio_${number}`]: number | null;
}

export async function runStoreBench(o: StoreBenchOptions): Promise<StoreBenchResult> {
  const result: StoreBenchResult = {
    bench: 'store',
    duration_s: o.durationMs / 1000,
    value_bytes: o.valueBytes,
    key_space: o.keySpace,
    writers_per_client: o.writersPerClient,
    systems: {},
    host: { cpus: hostLoad().cpus, loadavg_1m_start: hostLoad().loadavg_1m },
  };
  for (const name of o.systems) {
    o.log(`${name}: starting a 3-member cluster`);
    const system = await startSystem(name, o.berth);
    const admin = createAdminClient(system.endpoints);
    try {
      await waitConverged(admin, [0, 1, 2]);
      const view = await clusterView(admin);
      o.log(`${name}: ${system.description}; leader is member ${view.leader} (term ${view.term})`);
      result.systems[name] = system.description;
      const load = {
        endpoints: system.endpoints,
        valueBytes: o.valueBytes,
        keySpace: o.keySpace,
        writersPerClient: o.writersPerClient,
        pids: () => system.pids(),
      };
      if (o.warmupMs > 0) {
        const w = await runLoad({ ...load, concurrency: 16, durationMs: o.warmupMs });
        o.log(`${name}: warm-up ${w.writes} writes (${w.writes_per_s}/s), not counted`);
      }
      const levels: Record<string, LoadResult> = {};
      for (const c of o.concurrency) {
        const r = await runLoad({ ...load, concurrency: c, durationMs: o.durationMs });
        levels[String(c)] = r;
        o.log(
          `${name} c=${c}: ${r.writes_per_s} writes/s, p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, ` +
            `max ${r.max_ms} ms, errors ${r.errors}; cpu bench ${r.cpu.bench}, members ${r.cpu.members.join('/')}; ` +
            `load ${r.loadavg_1m}`,
        );
        if (r.error_kinds) o.log(`${name} c=${c}: errors ${JSON.stringify(r.error_kinds)}`);
        // Let the previous level's tail drain before the next one starts.
        await sleep(500);
      }
      result[name] = levels;
    } finally {
      await admin.close();
      await system.stop();
      o.log(`${name}: stopped`);
    }
  }
  result.host.loadavg_1m_end = hostLoad().loadavg_1m;
  for (const c of o.concurrency) {
    const b = result.berth?.[String(c)]?.writes_per_s;
    const e = result.etcd?.[String(c)]?.writes_per_s;
    result[`ratio_${c}`] = b !== undefined && e !== undefined && e > 0 ? round(b / e, 3) : null;
  }
  return result;
}
