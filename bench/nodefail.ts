// `nodefail`: how long a Deployment takes to recover when a worker machine dies. A local
// 3-node cluster with the agent runs a 6-replica Deployment of busybox web pods; each run
// SIGKILLs a worker's berth-node (never the Raft leader) and removes its containers, as a
// dead VM would leave nothing running. Two figures per run, both from the kill:
// - detect_ms: until the dead node's Ready condition is no longer True (the node lifecycle
//   controller's grace period on Lease renewals, polled every 100 ms);
// - recover_ms: until 6 pods of the Deployment, none terminating and none on the dead node,
//   are Ready again (eviction, ReplicaSet, scheduler, agent, readiness probe; polled every 100 ms).
// The killed node is then started again and the cluster allowed to settle (3 nodes Ready,
// 6 replicas Ready) before the next run.
//
// The peers, with default settings, for the reader: Kubernetes marks a node NotReady after
// node-monitor-grace-period (40 s) and evicts after the default toleration of 300 s, so ~340 s;
// Nomad replaces allocations after the client's heartbeat TTL misses (~20 s); Docker Swarm
// reschedules tasks of a down node in ~15 s.
//
// Ownership: the bench starts one cluster and removes only what it made: its nodes (by pid)
// and the containers labelled with this cluster's id.
import { clusterIdOf, poll, removeContainers } from './agent-cluster.js';
import { cleanUpOnInterrupt } from './interrupt.js';
import type { ApiObject } from '../pkg/api/types.js';
import { type ApiClient, createApiClient } from '../pkg/client/api-client.js';
import { BerthCluster } from '../test/support/berth-cluster.js';
import { hostLoad, percentile, round, sleep } from './stats.js';
import { type BerthSystemOptions, clusterView, createAdminClient } from './systems.js';

const NAMESPACE = 'default';
const IMAGE = 'berth/busybox:test';
const DEPLOYMENT = 'nodefail';

/** The peers' figures the issue names (default settings), for the readable summary. */
export const PEERS: readonly { system: string; recover_s: number; how: string }[] = [
  { system: 'Kubernetes', recover_s: 340, how: 'NotReady after 40 s, evicted after the 300 s toleration' },
  { system: 'Nomad', recover_s: 20, how: 'client heartbeat TTL missed, allocations replaced' },
  { system: 'Docker Swarm', recover_s: 15, how: 'node down, tasks rescheduled' },
];

export interface NodeFailBenchOptions {
  runs: number;
  replicas: number;
  /** Give up a run (detection or recovery) after this long (ms). */
  timeoutMs: number;
  berth: BerthSystemOptions;
  log: (line: string) => void;
}

export interface NodeFailRun {
  node: string;
  /** Pods of the Deployment on the node when it died. */
  pods_on_node: number;
  detect_ms: number;
  recover_ms: number;
}

export interface NodeFailBenchResult {
  bench: 'nodefail';
  system: string;
  replicas: number;
  host: { cpus: number; loadavg_1m_start: number; loadavg_1m_end?: number };
  runs: NodeFailRun[];
  detect_ms: { p50: number; max: number };
  recover_ms: { p50: number; max: number };
  peers_recover_s: Record<string, number>;
}

type Json = Record<string, unknown>;
const asMap = (v: unknown): Json => (v && typeof v === 'object' ? (v as Json) : {});
const conditionsOf = (o: ApiObject) => {
  const c = asMap(o.status).conditions;
  return Array.isArray(c) ? (c as { type: string; status: string }[]) : [];
};
const readyStatus = (o: ApiObject) => conditionsOf(o).find((c) => c.type === 'Ready')?.status;
const nodeNameOf = (pod: ApiObject) => asMap(pod.spec).nodeName as string | undefined;

function deployment(replicas: number): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: DEPLOYMENT, namespace: NAMESPACE, labels: { app: DEPLOYMENT } },
    spec: {
      replicas,
      selector: { matchLabels: { app: DEPLOYMENT } },
      template: {
        metadata: { labels: { app: DEPLOYMENT } },
        spec: {
          terminationGracePeriodSeconds: 2,
          containers: [
            {
              name: 'web',
              image: IMAGE,
              imagePullPolicy: 'Never',
              command: ['sh', '-c', 'echo ok > /tmp/index.html && exec httpd -f -p 8080 -h /tmp'],
              ports: [{ name: 'http', containerPort: 8080 }],
              readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
            },
          ],
        },
      },
    },
  };
}

async function livePods(api: ApiClient): Promise<ApiObject[]> {
  const list = await api.list('pods', { namespace: NAMESPACE, labelSelector: `app=${DEPLOYMENT}` });
  return list.items.filter((p) => !p.metadata.deletionTimestamp);
}

/** Exactly `replicas` live pods of the Deployment, all Ready, none on `avoid`. */
async function replicasReady(api: ApiClient, replicas: number, avoid?: string): Promise<true | undefined> {
  const pods = await livePods(api);
  const ok =
    pods.length === replicas && pods.every((p) => readyStatus(p) === 'True' && nodeNameOf(p) !== avoid);
  return ok ? true : undefined;
}

async function nodesReady(api: ApiClient, names: readonly string[]): Promise<true | undefined> {
  const list = await api.list('nodes');
  const ready = list.items.filter((n) => readyStatus(n) === 'True').map((n) => n.metadata.name);
  return names.every((n) => ready.includes(n)) ? true : undefined;
}

export async function runNodeFailBench(o: NodeFailBenchOptions): Promise<NodeFailBenchResult> {
  const host: NodeFailBenchResult['host'] = {
    cpus: hostLoad().cpus,
    loadavg_1m_start: hostLoad().loadavg_1m,
  };
  o.log('starting a 3-node cluster with the agent');
  const cluster = await BerthCluster.start({
    size: 3,
    agent: true,
    tickMs: o.berth.tickMs,
    electionTicks: o.berth.electionTicks ?? 10,
    // Later flags win: the production log level, not the harness' debug.
    extraArgs: ['--log-level', o.berth.logLevel],
  });
  const system =
    `berth-node x3 with the agent (tick ${o.berth.tickMs} ms, election ${o.berth.electionTicks ?? 10} ticks, ` +
    `log ${o.berth.logLevel})`;
  const names = cluster.nodes.map((n) => n.name);
  let clusterId: string | undefined;
  const stopCleanUp = cleanUpOnInterrupt(cluster, () => clusterId);

  const api = createApiClient({ endpoints: cluster.endpoints(true) });
  const admin = createAdminClient(cluster.endpoints(true));
  const runs: NodeFailRun[] = [];
  try {
    clusterId = await clusterIdOf(cluster);
    await poll('3 nodes Ready', () => nodesReady(api, names), 60_000, 200);
    await api.create(deployment(o.replicas));
    await poll(`${o.replicas} replicas Ready`, () => replicasReady(api, o.replicas), 90_000, 200);
    o.log(`cluster ${clusterId}: ${o.replicas} replicas Ready`);

    for (let r = 0; r < o.runs; r++) {
      const view = await poll(
        'a Raft leader',
        async () => {
          const v = await clusterView(admin);
          return v.leader >= 0 ? v : undefined;
        },
        30_000,
      );
      const perNode = new Map<string, number>();
      for (const p of await livePods(api)) {
        const n = nodeNameOf(p) ?? '';
        perNode.set(n, (perNode.get(n) ?? 0) + 1);
      }
      // The worker with the most pods: never the leader (that would be the failover bench).
      const victim = [0, 1, 2]
        .filter((i) => i !== view.leader)
        .sort(
          (a, b) => (perNode.get(names[b] as string) ?? 0) - (perNode.get(names[a] as string) ?? 0),
        )[0] as number;
      const victimName = names[victim] as string;
      const podsOnNode = perNode.get(victimName) ?? 0;

      const t0 = performance.now();
      await cluster.kill(victim);
      await removeContainers(clusterId, victimName);
      let detectMs: number | undefined;
      const detect = poll(
        `${victimName} no longer Ready`,
        async () => {
          const node = await api.get('nodes', undefined, victimName);
          if (readyStatus(node) !== 'True') detectMs = performance.now() - t0;
          return detectMs;
        },
        o.timeoutMs,
      );
      await poll(
        `${o.replicas} replicas Ready off ${victimName}`,
        () => replicasReady(api, o.replicas, victimName),
        o.timeoutMs,
      );
      const recoverMs = performance.now() - t0;
      await detect;
      const rec: NodeFailRun = {
        node: victimName,
        pods_on_node: podsOnNode,
        detect_ms: round(detectMs as number, 0),
        recover_ms: round(recoverMs, 0),
      };
      runs.push(rec);
      o.log(
        `run ${r + 1}/${o.runs}: killed ${victimName} (${podsOnNode} pods, leader ${names[view.leader]}): ` +
          `not Ready after ${rec.detect_ms} ms, ${o.replicas} replicas Ready after ${rec.recover_ms} ms`,
      );

      // Back to three healthy nodes and a settled Deployment before the next run.
      await cluster.start(victim);
      await poll('3 nodes Ready again', () => nodesReady(api, names), 60_000, 200);
      await poll(`${o.replicas} replicas settled`, () => replicasReady(api, o.replicas), 60_000, 200);
      await sleep(2000);
    }
  } finally {
    stopCleanUp();
    api.close();
    await admin.close();
    await cluster.destroy();
    if (clusterId) await removeContainers(clusterId).catch(() => undefined);
  }
  const detect = runs.map((r) => r.detect_ms);
  const recover = runs.map((r) => r.recover_ms);
  host.loadavg_1m_end = hostLoad().loadavg_1m;
  return {
    bench: 'nodefail',
    system,
    replicas: o.replicas,
    host,
    runs,
    detect_ms: { p50: round(percentile(detect, 50), 0), max: round(percentile(detect, 100), 0) },
    recover_ms: { p50: round(percentile(recover, 50), 0), max: round(percentile(recover, 100), 0) },
    peers_recover_s: Object.fromEntries(PEERS.map((p) => [p.system, p.recover_s])),
  };
}

/** The readable summary: Berth's figures, then the peers' with their defaults. */
export function formatNodeFailBench(r: NodeFailBenchResult): string {
  const s = (ms: number) => `${round(ms / 1000, 1)} s`;
  const lines = [
    `nodefail: ${r.system}, ${r.replicas} replicas, ${r.runs.length} worker kills`,
    ...r.runs.map(
      (x, i) =>
        `  run ${i + 1}: ${x.node} (${x.pods_on_node} pods)  detect ${s(x.detect_ms)}  recover ${s(x.recover_ms)}`,
    ),
    `berth        detect p50 ${s(r.detect_ms.p50)} max ${s(r.detect_ms.max)}; ` +
      `recover p50 ${s(r.recover_ms.p50)} max ${s(r.recover_ms.max)}`,
    ...PEERS.map(
      (p) =>
        `${p.system.padEnd(12)} recover ~${p.recover_s} s (defaults: ${p.how}); ` +
        `berth p50 is ${round((p.recover_s * 1000) / Math.max(1, r.recover_ms.p50), 1)}x faster`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}
