// `schedule`: the scheduler's core alone (pkg/scheduler, no API server, no I/O) placing
// 10,000 pods on 1,000 simulated nodes, one schedule() + assume() after another, as the
// leader's loop would. Cluster and workload come from a seeded PRNG, so runs are comparable.
import {
  createScheduler,
  mulberry32,
  type SchedulingNode,
  type SchedulingPod,
  Snapshot,
} from '../pkg/scheduler/index.js';
import { hostLoad, percentile, round } from './stats.js';

export interface ScheduleBenchOptions {
  nodes: number;
  pods: number;
  seed: number;
  log: (line: string) => void;
}

export interface ScheduleBenchResult {
  bench: 'schedule';
  nodes: number;
  pods: number;
  seed: number;
  scheduled: number;
  unschedulable: number;
  /** The most common unschedulable messages, with their counts. */
  unschedulable_top: Record<string, number>;
  overcommitted_nodes: number;
  wall_ms: number;
  /** CPU time of this process over the same calls (includes GC). */
  cpu_ms: number;
  pods_per_cpu_s: number;
  pods_per_s: number;
  p50_us: number;
  p99_us: number;
  max_us: number;
  /** kube-scheduler's throughput on comparable clusters (its own scheduler_perf figures). */
  kube_scheduler_pods_per_s: [number, number];
  target_pods_per_s: number;
  meets_target: boolean;
  host: { cpus: number; loadavg_1m: number };
}

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const ZONES = ['zone-a', 'zone-b', 'zone-c'];
const TEAMS = ['db', 'gpu', 'batch'];

function makeNodes(n: number, rand: () => number): SchedulingNode[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const nodes: SchedulingNode[] = [];
  for (let i = 0; i < n; i++) {
    const name = `node-${String(i).padStart(4, '0')}`;
    const cores = pick([2, 4, 8, 16, 32, 64]);
    // 2-4 GiB per core, within 4-256 GiB.
    const gib = Math.min(256, Math.max(4, cores * pick([2, 4])));
    const tainted = rand() < 0.1;
    nodes.push({
      metadata: {
        name,
        labels: {
          'kubernetes.io/hostname': name,
          'topology.kubernetes.io/zone': pick(ZONES),
          disk: rand() < 0.3 ? 'ssd' : 'hdd',
        },
      },
      spec: tainted ? { taints: [{ key: 'dedicated', value: pick(TEAMS), effect: 'NoSchedule' }] } : {},
      status: {
        allocatable: { cpu: String(cores), memory: `${gib}Gi`, pods: '110' },
        conditions: [{ type: 'Ready', status: 'True' }],
      },
    });
  }
  return nodes;
}

function makePods(n: number, rand: () => number): SchedulingPod[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const pods: SchedulingPod[] = [];
  for (let rs = 0; pods.length < n; rs++) {
    const replicas = Math.min(n - pods.length, 3 + Math.floor(rand() * 48));
    const app = `app-${rs}`;
    const cpu = `${50 + Math.floor(rand() * 1951)}m`;
    const memory = `${Math.floor((64 * MiB + rand() * (4 * GiB - 64 * MiB)) / MiB)}Mi`;
    const spec: SchedulingPod['spec'] = {
      containers: [{ name: 'main', image: `${app}:1`, resources: { requests: { cpu, memory } } }],
    };
    const r = rand();
    if (r < 0.1) spec.nodeSelector = { 'topology.kubernetes.io/zone': pick(ZONES) };
    else if (r < 0.2) spec.nodeSelector = { disk: 'ssd' };
    if (rand() < 0.1) {
      spec.affinity = {
        podAntiAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: [
            { labelSelector: { matchLabels: { app } }, topologyKey: 'kubernetes.io/hostname' },
          ],
        },
      };
    }
    if (rand() < 0.1) {
      spec.tolerations = [{ key: 'dedicated', operator: 'Equal', value: pick(TEAMS), effect: 'NoSchedule' }];
    }
    const uid = `rs-uid-${rs}`;
    for (let i = 0; i < replicas; i++) {
      pods.push({
        metadata: {
          name: `${app}-${i}`,
          namespace: 'default',
          uid: `${uid}-${i}`,
          labels: { app },
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: app, uid, controller: true }],
        },
        spec,
      });
    }
  }
  return pods;
}

export function runScheduleBench(o: ScheduleBenchOptions): ScheduleBenchResult {
  const next = mulberry32(o.seed);
  const rand = () => next() / 2 ** 32;
  const snapshot = new Snapshot();
  for (const node of makeNodes(o.nodes, rand)) snapshot.addNode(node);
  const pods = makePods(o.pods, rand);
  const scheduler = createScheduler({ seed: o.seed });
  o.log(`${o.nodes} nodes, ${pods.length} pods; scheduling`);

  const latencies = new Float64Array(pods.length);
  const messages = new Map<string, number>();
  let scheduled = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < pods.length; i++) {
    const pod = pods[i] as SchedulingPod;
    const t0 = performance.now();
    const r = scheduler.schedule(pod, snapshot);
    if (r.node !== undefined) {
      snapshot.assume(pod, r.node);
      scheduled++;
    } else {
      messages.set(r.unschedulable, (messages.get(r.unschedulable) ?? 0) + 1);
    }
    latencies[i] = (performance.now() - t0) * 1000;
  }
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  // CPU time as well: on a busy host the wall clock also counts time spent waiting for a core.
  const cpuMs = (cpu.user + cpu.system) / 1000;

  let overcommitted = 0;
  for (const n of snapshot.nodes()) {
    if (n.reqCpu > n.allocCpu || n.reqMemory > n.allocMemory || n.pods.size > n.allocPods) overcommitted++;
  }
  const top = [...messages].sort((a, b) => b[1] - a[1]).slice(0, 3);
  const lat = [...latencies];
  const podsPerS = round((pods.length / wallMs) * 1000, 0);
  return {
    bench: 'schedule',
    nodes: o.nodes,
    pods: pods.length,
    seed: o.seed,
    scheduled,
    unschedulable: pods.length - scheduled,
    unschedulable_top: Object.fromEntries(top),
    overcommitted_nodes: overcommitted,
    wall_ms: round(wallMs, 1),
    cpu_ms: round(cpuMs, 1),
    pods_per_cpu_s: round((pods.length / cpuMs) * 1000, 0),
    pods_per_s: podsPerS,
    p50_us: round(percentile(lat, 50), 1),
    p99_us: round(percentile(lat, 99), 1),
    max_us: round(percentile(lat, 100), 1),
    kube_scheduler_pods_per_s: [100, 300],
    target_pods_per_s: 2000,
    meets_target: podsPerS >= 2000,
    host: hostLoad(),
  };
}

/** The readable lines printed before the JSON line. */
export function formatScheduleBench(r: ScheduleBenchResult): string {
  const [lo, hi] = r.kube_scheduler_pods_per_s;
  const lines = [
    `schedule: ${r.pods} pods on ${r.nodes} nodes (seed ${r.seed}), scheduler core only, no warm-up`,
    `  ${r.pods_per_s} pods/s (${r.wall_ms} ms for all schedule() + assume() calls; ` +
      `${r.pods_per_cpu_s} pods per CPU-second, ${r.cpu_ms} ms CPU)`,
    `  per pod: p50 ${r.p50_us} µs, p99 ${r.p99_us} µs, max ${r.max_us} µs`,
    `  scheduled ${r.scheduled}, unschedulable ${r.unschedulable}, overcommitted nodes ${r.overcommitted_nodes}`,
    ...Object.entries(r.unschedulable_top).map(([m, n]) => `    ${n}x ${m}`),
    `  kube-scheduler: ~${lo}-${hi} pods/s -> ${round(r.pods_per_s / hi, 1)}-${round(r.pods_per_s / lo, 1)}x; ` +
      `aim ${r.target_pods_per_s}+ pods/s: ${r.meets_target ? 'met' : 'NOT met'}`,
  ];
  return `${lines.join('\n')}\n`;
}
