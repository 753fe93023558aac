// `rollout`: the zero-downtime test as a benchmark. A local 3-node cluster with the agent
// runs a 4-replica Deployment of busybox web pods behind a NodePort Service and an Ingress;
// a steady HTTP load goes through the NodePort of two nodes and the Ingress router of the
// third while the Deployment
//   1. rolls to a new image (maxSurge 1, maxUnavailable 0, no preStop sleep),
//   2. scales 4 → 8 → 2,
//   3. has one pod's container killed (the agent restarts it),
// and then (4) a worker machine dies (SIGKILL of its berth-node, its containers removed)
// while the load goes through the two surviving nodes only.
// Reported: requests sent and failed, p99 latency during phases 1-3 (failed must be 0), and
// for phase 4 the failed requests, the failure window (first to last failure after the
// kill) and when the Endpoints dropped the dead node's pods. Until then the proxies still
// pick those pods, and only moving on to the next endpoint (the dead pods' ports refuse
// connections) keeps requests from failing.
//
// Ownership: the bench starts one cluster and removes only what it made: its nodes (by pid)
// and the containers labelled with this cluster's id.
import { execFile } from 'node:child_process';
import { parseArgs, promisify } from 'node:util';
import type { ApiObject } from '../pkg/api/types.js';
import { type ApiClient, createApiClient } from '../pkg/client/api-client.js';
import { BerthCluster } from '../test/support/berth-cluster.js';
import { HttpLoad, type LoadReport, type LoadTarget } from '../test/support/http-load.js';
import { clusterIdOf, poll as pollFor, removeContainers } from './agent-cluster.js';
import { cleanUpOnInterrupt } from './interrupt.js';
import { hostLoad, round, sleep } from './stats.js';
import { clusterView, createAdminClient } from './systems.js';

const run = promisify(execFile);

const NAMESPACE = 'default';
const NAME = 'rollout';
const V1 = 'berth/busybox:test';
const V2 = 'berth/busybox:v2';

type Json = Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: objects are read field by field
type Any = any;

function manifests(replicas: number): Json[] {
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: NAME, namespace: NAMESPACE, labels: { app: NAME } },
      spec: {
        replicas,
        selector: { matchLabels: { app: NAME } },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        template: {
          metadata: { labels: { app: NAME } },
          spec: {
            terminationGracePeriodSeconds: 5,
            containers: [
              {
                name: 'web',
                image: V1,
                imagePullPolicy: 'Never',
                command: ['sh', '-c', 'echo ok > /tmp/index.html && exec httpd -f -p 8080 -h /tmp'],
                ports: [{ name: 'http', containerPort: 8080 }],
                readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
              },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: NAME, namespace: NAMESPACE },
      spec: { type: 'NodePort', selector: { app: NAME }, ports: [{ port: 80, targetPort: 'http' }] },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: NAME, namespace: NAMESPACE },
      spec: { defaultBackend: { service: { name: NAME, port: { number: 80 } } } },
    },
  ];
}

const isReady = (p: Any) =>
  (p.status?.conditions ?? []).some((c: Any) => c.type === 'Ready' && c.status === 'True');

async function pods(api: ApiClient): Promise<Any[]> {
  return (await api.list('pods', { namespace: NAMESPACE, labelSelector: `app=${NAME}` })).items;
}

/** Poll every 200 ms, for up to 3 minutes by default. */
const poll = <T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 180_000) =>
  pollFor(what, check, timeoutMs, 200);

async function waitReplicas(api: ApiClient, n: number, image?: string): Promise<Any[]> {
  return poll(`${n} ready pods${image ? ` of ${image}` : ''}`, async () => {
    const list = await pods(api);
    const ok =
      list.length === n &&
      list.every(
        (p) =>
          !p.metadata.deletionTimestamp && isReady(p) && (!image || p.spec.containers[0].image === image),
      );
    return ok ? list : undefined;
  });
}

async function update(api: ApiClient, change: (d: Any) => void): Promise<void> {
  for (let i = 0; ; i++) {
    const d: Any = await api.get('deployments', NAMESPACE, NAME);
    change(d);
    try {
      await api.update(d as ApiObject);
      return;
    } catch (err) {
      if (i >= 5) throw err;
    }
  }
}

export interface RolloutBenchResult {
  bench: 'rollout';
  host: { cpus: number; loadavg_1m_start: number; loadavg_1m_end?: number };
  phases: string[];
  requests: number;
  failed: number;
  p99_ms: number;
  targets: LoadReport['targets'];
  worker_kill: {
    requests: number;
    failed: number;
    failure_window_ms: number;
    /** Kill → the Endpoints no longer list the dead node's pods (detection + eviction). */
    endpoints_updated_ms: number;
    p99_ms: number;
    max_ms: number;
  };
}

export async function runRolloutBench(log: (line: string) => void): Promise<RolloutBenchResult> {
  const host: RolloutBenchResult['host'] = { cpus: hostLoad().cpus, loadavg_1m_start: hostLoad().loadavg_1m };
  log('starting a 3-node cluster with the agent');
  const cluster = await BerthCluster.start({ size: 3, agent: true, extraArgs: ['--log-level', 'info'] });
  let clusterId: string | undefined;
  const stopCleanUp = cleanUpOnInterrupt(cluster, () => clusterId);
  const api = createApiClient({ endpoints: cluster.endpoints(true) });
  const admin = createAdminClient(cluster.endpoints(true));
  try {
    clusterId = await clusterIdOf(cluster);
    await poll('3 nodes', async () => (await api.list('nodes')).items.filter(isReady).length === 3);
    for (const m of manifests(4)) await api.create(m as ApiObject);
    await waitReplicas(api, 4);
    const svc: Any = await api.get('services', NAMESPACE, NAME);
    const nodePort = svc.spec.ports[0].nodePort as number;
    const address = (i: number) => cluster.node(i).address;
    const targets: LoadTarget[] = [
      { name: `nodeport@${address(0)}`, host: address(0), port: nodePort },
      { name: `nodeport@${address(1)}`, host: address(1), port: nodePort },
      { name: `ingress@${address(2)}`, host: address(2), port: 80 },
    ];
    const warm = new HttpLoad({ targets, concurrency: 1 }).start();
    await poll(
      'every route answering',
      async () => Object.values(warm.report().targets).every((t) => t.ok > 0),
      30_000,
    );
    await warm.stop();

    log('load on; 1. rolling to a new image');
    const phases: string[] = [];
    const load = new HttpLoad({ targets, concurrency: 2, pauseMs: 5 }).start();
    const mark = (what: string) => {
      phases.push(`${what}: ${load.sent} sent, ${load.failed} failed`);
      log(phases[phases.length - 1] as string);
    };
    let report: LoadReport;
    try {
      await update(api, (d) => {
        d.spec.template.spec.containers[0].image = V2;
      });
      await waitReplicas(api, 4, V2);
      mark('rolled to a new image');
      await update(api, (d) => {
        d.spec.replicas = 8;
      });
      await waitReplicas(api, 8);
      mark('scaled 4 -> 8');
      await update(api, (d) => {
        d.spec.replicas = 2;
      });
      await waitReplicas(api, 2);
      mark('scaled 8 -> 2');
      const [victim] = await pods(api);
      const { stdout } = await run('docker', [
        'ps',
        '-q',
        '--no-trunc',
        '--filter',
        `label=berth.io/pod-uid=${victim.metadata.uid}`,
        '--filter',
        'label=berth.io/role=container',
      ]);
      await run('docker', ['kill', stdout.trim().split('\n')[0] as string]);
      await poll('the killed container restarted and ready', async () =>
        (await pods(api)).some(
          (p) =>
            p.metadata.uid === victim.metadata.uid &&
            isReady(p) &&
            (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1,
        ),
      );
      await sleep(2000);
      mark('container killed and restarted');
    } finally {
      report = await load.stop();
    }

    // 4. A worker dies: load through the two surviving nodes.
    await update(api, (d) => {
      d.spec.replicas = 4;
    });
    await waitReplicas(api, 4);
    const view = await poll('a Raft leader', async () => {
      const v = await clusterView(admin);
      return v.leader >= 0 ? v : undefined;
    });
    const withPods = new Set((await pods(api)).map((p) => p.spec.nodeName as string));
    const victim =
      [0, 1, 2].find((i) => i !== view.leader && withPods.has(cluster.node(i).name)) ?? (view.leader + 1) % 3;
    const survivors = [0, 1, 2].filter((i) => i !== victim);
    const killTargets: LoadTarget[] = survivors.flatMap((i) => [
      { name: `nodeport@${address(i)}`, host: address(i), port: nodePort },
      { name: `ingress@${address(i)}`, host: address(i), port: 80 },
    ]);
    const killLoad = new HttpLoad({ targets: killTargets, concurrency: 2, pauseMs: 5 }).start();
    await sleep(2000);
    log(`4. killing worker ${cluster.node(victim).name} under load`);
    const killedAt = Date.now();
    await cluster.kill(victim);
    await removeContainers(clusterId, cluster.node(victim).name);
    const victimName = cluster.node(victim).name;
    await poll(`endpoints without ${victimName}'s pods`, async () => {
      const ep: Any = await api.get('endpoints', NAMESPACE, NAME);
      const addrs = (ep.subsets ?? []).flatMap((x: Any) => x.addresses ?? []);
      return !addrs.some((a: Any) => a.nodeName === victimName);
    });
    const endpointsUpdatedMs = Date.now() - killedAt;
    await poll('4 ready pods on the survivors', async () => {
      const list = await pods(api);
      const live = list.filter(
        (p) => !p.metadata.deletionTimestamp && p.spec.nodeName !== cluster.node(victim).name,
      );
      return live.length === 4 && live.every(isReady);
    });
    await sleep(2000);
    const killReport = await killLoad.stop();
    const after = killReport.failures.filter((f) => f.at >= killedAt);
    const window =
      after.length > 0 ? (after[after.length - 1]?.at ?? killedAt) - (after[0]?.at ?? killedAt) : 0;
    host.loadavg_1m_end = hostLoad().loadavg_1m;
    return {
      bench: 'rollout',
      host,
      phases,
      requests: report.sent,
      failed: report.failed,
      p99_ms: report.p99_ms,
      targets: report.targets,
      worker_kill: {
        requests: killReport.sent,
        failed: killReport.failed,
        failure_window_ms: round(window, 0),
        endpoints_updated_ms: endpointsUpdatedMs,
        p99_ms: killReport.p99_ms,
        max_ms: Math.max(...Object.values(killReport.targets).map((x) => x.max_ms)),
      },
    };
  } finally {
    stopCleanUp();
    api.close();
    await admin.close();
    await cluster.destroy();
    if (clusterId) await removeContainers(clusterId).catch(() => undefined);
  }
}

const USAGE = `usage: npm run bench -- rollout [--json]

  A 3-node cluster with the agent; HTTP load through two nodes' NodePort and the third's
  Ingress while a 4-replica Deployment rolls to a new image, scales 4 -> 8 -> 2 and has a
  container killed; then a worker dies under load through the survivors. Prints requests,
  failures (must be 0) and p99; the last line is one JSON object.`;

export async function rolloutBenchMain(argv: string[]): Promise<number> {
  let values: { json: boolean; help: boolean };
  try {
    values = parseArgs({
      args: argv,
      options: {
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values as { json: boolean; help: boolean };
  } catch (err) {
    process.stderr.write(`bench rollout: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const log = (line: string) => process.stderr.write(`[bench rollout] ${line}\n`);
  const r = await runRolloutBench(log);
  if (!values.json) {
    process.stdout.write(
      `rollout: ${r.requests} requests, ${r.failed} failed, p99 ${r.p99_ms} ms\n` +
        `${r.phases.map((p) => `  ${p}`).join('\n')}\n` +
        `worker kill: ${r.worker_kill.requests} requests, ${r.worker_kill.failed} failed, ` +
        `failure window ${r.worker_kill.failure_window_ms} ms, endpoints updated after ` +
        `${r.worker_kill.endpoints_updated_ms} ms, p99 ${r.worker_kill.p99_ms} ms, max ${r.worker_kill.max_ms} ms\n`,
    );
  }
  process.stdout.write(`${JSON.stringify(r)}\n`);
  return r.failed === 0 ? 0 : 1;
}
