// npm run bench -- <name> [options]: benchmarks, run on purpose (never by npm test). Progress
// goes to stderr; a readable summary to stdout unless --json; the last line on stdout is
// always one JSON object with the figures.
import { parseArgs } from 'node:util';
import { runFailoverBench } from './failover.js';
import { formatNodeFailBench, runNodeFailBench } from './nodefail.js';
import { runPodStartBench } from './podstart.js';
import { formatScheduleBench, runScheduleBench } from './schedule.js';
import { parseDuration } from './stats.js';
import { runStoreBench } from './store.js';
import { SYSTEM_NAMES, type SystemName, stopAllSystems } from './systems.js';

const USAGE = `usage: npm run bench -- <name> [options]

benchmarks:
  store      write throughput and latency: 3-member Berth vs 3-member etcd 3.4, same client
             and load (100-byte values, 10k random keys), at 1, 64 and 256 writers
  failover   SIGKILL the leader N times while one client writes; longest gap between
             acknowledged writes, Berth vs etcd
  podstart   3 nodes with the agent: pods bound to nodes (image present) created one after
             another, then all at once; create -> Running and -> Ready, p50/p99 vs Kubernetes'
             SLO (p99 <= 5 s)
  nodefail   3 nodes with the agent, a 6-replica Deployment: SIGKILL a worker and remove its
             containers, N times; kill -> node not Ready (detect) and -> 6 replicas Ready
             again (recover), p50/max, vs Kubernetes, Nomad and Swarm defaults
  proxy      an HTTP backend on loopback reached directly, through Berth's TCP proxy and
             through HAProxy (TCP mode), same wrk load; req/s, p99 and ratio_haproxy
             (options: npm run bench -- proxy --help)
  rollout    3 nodes with the agent, load through NodePort and Ingress while a Deployment
             rolls to a new image, scales 4 -> 8 -> 2 and loses a container, then a worker
             dies: requests sent, failed (must be 0), p99
  schedule   the scheduler core alone: 10,000 pods on 1,000 simulated nodes (seeded mix of
             sizes, taints, selectors, anti-affinity); pods/s and per-pod p50/p99

options:
  --json                only the JSON line on stdout
  --systems LIST        berth,etcd (default both)
  --tick-ms MS          Berth's Raft tick (default 100, as berth-node)
  --election-ticks N    Berth's election timeout in ticks (default 10, as berth-node)
  --log-level LEVEL     berth-node's log level (default info, as berth-node)
store:
  --duration T          time per concurrency level (default 10s; 500ms, 2m also work)
  --concurrency LIST    writer counts (default 1,64,256)
  --warmup T            unmeasured load before the first level (default 1s)
  --writers-per-client N  writers sharing one client and its connections (default 16)
failover:
  --kills N             leader kills per system (default 10)
  --settle T            steady writing before each kill (default 1s)
podstart:
  --pods N              pods per phase (default 30)
  --timeout T           give up after this long (default 3m)
nodefail:
  --runs N              worker kills (default 5)`;

function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${v}"`);
  return n;
}

function parseSystems(v: string): SystemName[] {
  const names = v.split(',').map((s) => s.trim());
  for (const n of names) {
    if (!SYSTEM_NAMES.includes(n as SystemName)) {
      throw new Error(`--systems: unknown system "${n}" (${SYSTEM_NAMES.join(', ')})`);
    }
  }
  return names as SystemName[];
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'proxy') return (await import('./proxy.js')).proxyBenchMain(argv.slice(1));
  if (argv[0] === 'rollout') return (await import('./rollout.js')).rolloutBenchMain(argv.slice(1));
  let parsed: ReturnType<typeof parse>;
  const parse = () =>
    parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        systems: { type: 'string', default: 'berth,etcd' },
        'tick-ms': { type: 'string', default: '100' },
        'election-ticks': { type: 'string', default: '10' },
        'log-level': { type: 'string', default: 'info' },
        duration: { type: 'string', default: '10s' },
        concurrency: { type: 'string', default: '1,64,256' },
        warmup: { type: 'string', default: '1s' },
        'writers-per-client': { type: 'string', default: '16' },
        kills: { type: 'string', default: '10' },
        settle: { type: 'string', default: '1s' },
        pods: { type: 'string', default: '30' },
        timeout: { type: 'string', default: '3m' },
        runs: { type: 'string', default: '5' },
      },
    });
  try {
    parsed = parse();
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  const name = positionals[0];
  if (
    v.help ||
    name === undefined ||
    positionals.length > 1 ||
    !['store', 'failover', 'podstart', 'schedule', 'nodefail'].includes(name)
  ) {
    if (name !== undefined && !v.help)
      process.stderr.write(`bench: unknown benchmark "${positionals.join(' ')}"\n\n`);
    process.stderr.write(`${USAGE}\n`);
    return v.help ? 0 : 2;
  }

  const log = (line: string) => process.stderr.write(`[bench ${name}] ${line}\n`);
  let common: {
    systems: SystemName[];
    berth: { tickMs: number; electionTicks: number; logLevel: string };
    log: typeof log;
  };
  try {
    common = {
      systems: parseSystems(v.systems),
      berth: {
        tickMs: positiveInt('--tick-ms', v['tick-ms']),
        electionTicks: positiveInt('--election-ticks', v['election-ticks']),
        logLevel: v['log-level'],
      },
      log,
    };
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    return 2;
  }

  let result: object;
  if (name === 'store') {
    let opts: Parameters<typeof runStoreBench>[0];
    try {
      opts = {
        ...common,
        durationMs: parseDuration(v.duration),
        warmupMs: parseDuration(v.warmup),
        concurrency: v.concurrency.split(',').map((c) => positiveInt('--concurrency', c.trim())),
        writersPerClient: positiveInt('--writers-per-client', v['writers-per-client']),
        valueBytes: 100,
        keySpace: 10_000,
      };
    } catch (err) {
      process.stderr.write(`bench: ${(err as Error).message}\n`);
      return 2;
    }
    const r = await runStoreBench(opts);
    if (!v.json) {
      for (const sys of opts.systems) {
        for (const [c, x] of Object.entries(r[sys] ?? {})) {
          process.stdout.write(
            `${sys.padEnd(6)} c=${c.padEnd(4)} ${String(x.writes_per_s).padStart(9)} writes/s  ` +
              `p50 ${x.p50_ms} ms  p99 ${x.p99_ms} ms  errors ${x.errors}\n`,
          );
        }
      }
      for (const c of opts.concurrency) process.stdout.write(`ratio_${c} (berth/etcd) ${r[`ratio_${c}`]}\n`);
    }
    result = r;
  } else if (name === 'schedule') {
    const r = runScheduleBench({ nodes: 1000, pods: 10_000, seed: 1, log });
    if (!v.json) process.stdout.write(formatScheduleBench(r));
    result = r;
  } else if (name === 'nodefail') {
    let opts: Parameters<typeof runNodeFailBench>[0];
    try {
      opts = {
        berth: common.berth,
        log,
        runs: positiveInt('--runs', v.runs),
        replicas: 6,
        timeoutMs: 120_000,
      };
    } catch (err) {
      process.stderr.write(`bench: ${(err as Error).message}\n`);
      return 2;
    }
    const r = await runNodeFailBench(opts);
    if (!v.json) process.stdout.write(formatNodeFailBench(r));
    result = r;
  } else if (name === 'podstart') {
    let opts: Parameters<typeof runPodStartBench>[0];
    try {
      opts = {
        berth: common.berth,
        log,
        pods: positiveInt('--pods', v.pods),
        timeoutMs: parseDuration(v.timeout),
      };
    } catch (err) {
      process.stderr.write(`bench: ${(err as Error).message}\n`);
      return 2;
    }
    const r = await runPodStartBench(opts);
    if (!v.json) {
      process.stdout.write(`podstart: ${r.system}, ${r.per_phase} pods per phase\n`);
      process.stdout.write('phase        to Running p50 / p99 / max (ms)   to Ready p50 / p99 / max (ms)\n');
      for (const phase of ['sequential', 'burst'] as const) {
        const x = r[phase];
        const f = (s: { p50: number; p99: number; max: number }) =>
          `${s.p50} / ${s.p99} / ${s.max}`.padEnd(33);
        process.stdout.write(`${`${phase.padEnd(12)} ${f(x.running)} ${f(x.ready)}`.trimEnd()}\n`);
      }
      const worst = Math.max(r.sequential.ready.p99, r.burst.ready.p99);
      process.stdout.write(
        `Kubernetes SLO p99 <= ${r.slo_p99_ms} ms: worst p99 to Ready ${worst} ms, ` +
          `${r.meets_slo ? 'met' : 'NOT met'}; aim p99 < ${r.target_p99_ms} ms: ${r.meets_target ? 'met' : 'not met'}\n`,
      );
    }
    result = r;
  } else {
    let opts: Parameters<typeof runFailoverBench>[0];
    try {
      opts = {
        ...common,
        kills: positiveInt('--kills', v.kills),
        settleMs: parseDuration(v.settle),
        valueBytes: 100,
        keySpace: 10_000,
      };
    } catch (err) {
      process.stderr.write(`bench: ${(err as Error).message}\n`);
      return 2;
    }
    const r = await runFailoverBench(opts);
    if (!v.json) {
      for (const sys of opts.systems) {
        const s = r[sys];
        if (s) {
          process.stdout.write(
            `${sys.padEnd(6)} failover gap p50 ${s.p50_ms} ms  p99 ${s.p99_ms} ms  max ${s.max_ms} ms  ` +
              `(new leader p50 ${s.leader_p50_ms} ms, max ${s.leader_max_ms} ms)\n`,
          );
        }
      }
    }
    result = r;
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}

// An interrupted run must not leave clusters behind: stop what was started, by pid.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`bench: ${sig}, stopping the clusters started\n`);
    void stopAllSystems().finally(() => process.exit(130));
  });
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  await stopAllSystems();
  process.exitCode = 1;
}
// Channels and timers of closed clients can linger briefly; do not wait for them.
process.exit();
