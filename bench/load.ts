// The write load generator: `concurrency` writers in this one process, each putting 100-byte
// values under random keys from a fixed key space, back to back, for a fixed time. Writers are
// spread over several clients (one per `writersPerClient`), each with its own HTTP/2
// connections, so neither system is held back by a single connection; client k lists the
// endpoints rotated by k, so the clients start spread over the members, as etcd's own
// round-robin client would be.
import { randomBytes } from 'node:crypto';
import { type Client, createClient } from '../pkg/client/client.js';
import { hostLoad, percentile, processCpuSeconds, round, selfCpuSeconds, sleep } from './stats.js';

export interface LoadOptions {
  endpoints: readonly string[];
  concurrency: number;
  durationMs: number;
  valueBytes: number;
  keySpace: number;
  writersPerClient: number;
  /** Processes whose CPU use to report (the system's members), by pid. */
  pids?: () => (number | undefined)[];
}

export interface LoadResult {
  concurrency: number;
  clients: number;
  writes: number;
  writes_per_s: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  errors: number;
  /** Up to three distinct error messages seen, with counts. */
  error_kinds?: Record<string, number>;
  /** CPU cores busy on average during the run: this process, and each member. */
  cpu: { bench: number; members: (number | null)[] };
  /** The machine's 1-minute load average at the end (others' work competes for the same CPUs). */
  loadavg_1m: number;
}

export function keyOf(n: number): Uint8Array {
  return Buffer.from(`bench/key-${n.toString().padStart(6, '0')}`);
}

/** Open the clients a load of `concurrency` writers uses. */
export function openClients(
  o: Pick<LoadOptions, 'endpoints' | 'concurrency' | 'writersPerClient'>,
): Client[] {
  const n = Math.max(1, Math.ceil(o.concurrency / o.writersPerClient));
  return Array.from({ length: n }, (_, k) => {
    const eps = o.endpoints.map((_, j) => o.endpoints[(j + k) % o.endpoints.length] as string);
    return createClient({ endpoints: eps });
  });
}

/** Run one load level and measure it. Clients are opened before and closed after the timed part. */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const clients = openClients(o);
  // Connect every client before the clock starts (a read is enough and changes nothing).
  await Promise.all(
    clients.map((c) => c.range({ key: keyOf(0), serializable: true }).catch(() => undefined)),
  );

  const latencies: number[] = [];
  const errorKinds = new Map<string, number>();
  let errors = 0;
  const pidsAtStart = o.pids?.() ?? [];
  const cpuStart = { self: selfCpuSeconds(), members: pidsAtStart.map(processCpuSeconds) };
  const start = performance.now();
  const deadline = start + o.durationMs;

  const writer = async (client: Client): Promise<void> => {
    const value = randomBytes(o.valueBytes);
    while (performance.now() < deadline) {
      const key = keyOf(Math.floor(Math.random() * o.keySpace));
      const t0 = performance.now();
      try {
        await client.put({ key, value });
        latencies.push(performance.now() - t0);
      } catch (err) {
        errors++;
        const msg = err instanceof Error ? err.message : String(err);
        errorKinds.set(msg, (errorKinds.get(msg) ?? 0) + 1);
        // Do not spin on a system that refuses at once.
        await sleep(10);
      }
    }
  };
  await Promise.all(
    Array.from({ length: o.concurrency }, (_, w) =>
      writer(clients[Math.floor(w / o.writersPerClient)] as Client),
    ),
  );
  const elapsedS = (performance.now() - start) / 1000;
  const cpuSelf = selfCpuSeconds() - cpuStart.self;
  const cpuMembers = pidsAtStart.map((pid, i) => {
    const before = cpuStart.members[i];
    const after = processCpuSeconds(pid);
    return before === undefined || after === undefined ? null : round((after - before) / elapsedS);
  });
  await Promise.all(clients.map((c) => c.close()));

  const result: LoadResult = {
    concurrency: o.concurrency,
    clients: clients.length,
    writes: latencies.length,
    writes_per_s: round(latencies.length / elapsedS, 1),
    p50_ms: round(percentile(latencies, 50)),
    p99_ms: round(percentile(latencies, 99)),
    max_ms: round(percentile(latencies, 100)),
    errors,
    cpu: { bench: round(cpuSelf / elapsedS), members: cpuMembers },
    loadavg_1m: hostLoad().loadavg_1m,
  };
  if (errorKinds.size > 0) {
    result.error_kinds = Object.fromEntries([...errorKinds].sort((a, b) => b[1] - a[1]).slice(0, 3));
  }
  return result;
}
