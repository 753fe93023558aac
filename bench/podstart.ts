// `podstart`: how long a pod takes from its create call to Running and to Ready, on a local
// 3-node cluster with the agent (real berth-node processes, Docker). Pods are already bound
// to a node (spec.nodeName, round-robin over n1..n3) and their image is present
// (imagePullPolicy Never), so what is measured is the API write, the agent's watch, the
// engine (sandbox + container) and the readiness probe: Kubernetes' pod start-up SLI for
// stateless pods, whose SLO is p99 <= 5 s.
//
// Two phases: `sequential` creates a pod and waits until it is Ready before the next one;
// `burst` then creates as many at once. Times come from one watch on the pods (started, and
// seen to be live through a bookmark, before the first create): t0 is taken just before the
// create call; Running is the first event with phase Running and the container running;
// Ready the first event with condition Ready=True.
//
// Ownership: the bench starts one cluster and removes only what it made: its pods (by name),
// its nodes (by pid) and, last, any container left with this cluster's label.
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cleanUpOnInterrupt } from './interrupt.js';
import { type ApiError, ApiErrorCode } from '../pkg/api/errors.js';
import type { ApiObject } from '../pkg/api/types.js';
import { type ApiClient, type ApiWatchEvent, createApiClient } from '../pkg/client/api-client.js';
import { BerthCluster } from '../test/support/berth-cluster.js';
import { hostLoad, percentile, round, sleep } from './stats.js';
import type { BerthSystemOptions } from './systems.js';

const run = promisify(execFile);

/** Kubernetes' pod start-up SLO (stateless pods, image present): p99 <= 5 s. */
export const K8S_SLO_P99_MS = 5000;
/** The issue's aim for Berth. */
export const TARGET_P99_MS = 1000;

const LABEL_KEY = 'bench';
const LABEL_VALUE = 'podstart';
const NAMESPACE = 'default';
const IMAGE = 'berth/busybox:test';
const CLUSTER_LABEL = 'berth.io/cluster';

export interface PodStartBenchOptions {
  /** Pods per phase (the issue: 30). */
  pods: number;
  /** Everything up to the last pod Ready must fit in this (ms); cleanup has its own bound. */
  timeoutMs: number;
  berth: BerthSystemOptions;
  log: (line: string) => void;
}

export interface LatencySummary {
  p50: number;
  p99: number;
  max: number;
}

export interface PhaseSummary {
  /** Create call to the first event showing the pod Running with its container running (ms). */
  running: LatencySummary;
  /** Create call to the first event with condition Ready=True (ms). */
  ready: LatencySummary;
  /** The create call itself, until the server answered (ms). */
  create: LatencySummary;
}

export interface PodStartBenchResult {
  bench: 'podstart';
  pods: number;
  per_phase: number;
  system: string;
  host: { cpus: number; loadavg_1m_start: number; loadavg_1m_end?: number };
  sequential: PhaseSummary;
  burst: PhaseSummary;
  slo_p99_ms: number;
  target_p99_ms: number;
  /** Worst p99 to Ready over both phases, against Kubernetes' SLO. */
  meets_slo: boolean;
  meets_target: boolean;
  /** Containers with this cluster's label still there after the pods were gone (removed by the bench). */
  leftover_containers: number;
}

interface PodTimes {
  name: string;
  node: string;
  t0: number;
  created?: number;
  running?: number;
  ready?: number;
  /** The last object the watch showed, for the error message when the pod never gets there. */
  last?: ApiObject;
  onReady?: () => void;
}

function podManifest(name: string, node: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NAMESPACE, labels: { [LABEL_KEY]: LABEL_VALUE } },
    spec: {
      nodeName: node,
      containers: [
        {
          name: 'httpd',
          image: IMAGE,
          imagePullPolicy: 'Never',
          // busybox httpd serves its working directory, and / in the image holds no index:
          // a bare `httpd -f -p 8080` answers 404 to the probe's GET / and is never Ready.
          command: ['sh', '-c', 'echo ok > /tmp/index.html && exec httpd -f -p 8080 -h /tmp'],
          ports: [{ name: 'http', containerPort: 8080 }],
          readinessProbe: {
            httpGet: { path: '/', port: 8080 },
            initialDelaySeconds: 0,
            periodSeconds: 1,
          },
        },
      ],
    },
  };
}

type Json = Record<string, unknown>;
const asMap = (v: unknown): Json => (v && typeof v === 'object' ? (v as Json) : {});
const conditionsOf = (pod: ApiObject) => {
  const c = asMap(pod.status).conditions;
  return Array.isArray(c) ? (c as { type: string; status: string }[]) : [];
};
const containerStatusesOf = (pod: ApiObject) => {
  const c = asMap(pod.status).containerStatuses;
  return Array.isArray(c) ? (c as Json[]) : [];
};

function isRunning(pod: ApiObject): boolean {
  if (asMap(pod.status).phase !== 'Running') return false;
  const statuses = containerStatusesOf(pod);
  return statuses.length > 0 && statuses.every((s) => asMap(s.state).running !== undefined);
}

function isReady(pod: ApiObject): boolean {
  return conditionsOf(pod).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** One line on where a pod is stuck: phase, each container's state with reason, Ready's reason. */
function describeStuck(p: PodTimes): string {
  if (!p.last)
    return `${p.name} (${p.node}): ${p.created ? 'created, no status from the agent' : 'not created'}`;
  const st = asMap(p.last.status);
  const containers = containerStatusesOf(p.last).map((s) => {
    const state = asMap(s.state);
    const [kind, detail] = Object.entries(state)[0] ?? ['unknown', {}];
    const d = asMap(detail);
    const why = [d.reason, d.message].filter((x) => typeof x === 'string' && x !== '').join(': ');
    return `${String(s.name)}=${kind}${why ? ` (${why})` : ''} ready=${String(s.ready)}`;
  });
  const ready = conditionsOf(p.last).find((c) => c.type === 'Ready') as Json | undefined;
  return (
    `${p.name} (${p.node}): phase ${String(st.phase ?? 'none')}, ${containers.join(', ') || 'no container status'}` +
    `${ready ? `, Ready=${String(ready.status)}${ready.reason ? ` ${String(ready.reason)}` : ''}` : ''}`
  );
}

/** Per node, the first and last pod to Running and to Ready (s): serial or all-at-once shows here. */
function spreadByNode(pods: readonly PodTimes[]): string {
  const s = (ms: number) => round(ms / 1000, 2);
  const nodes = [...new Set(pods.map((p) => p.node))].sort();
  return nodes
    .map((n) => {
      const mine = pods.filter((p) => p.node === n);
      const run = mine.map((p) => (p.running as number) - p.t0);
      const ready = mine.map((p) => (p.ready as number) - p.t0);
      return (
        `${n} Running ${s(Math.min(...run))}..${s(Math.max(...run))} s, ` +
        `Ready ${s(Math.min(...ready))}..${s(Math.max(...ready))} s`
      );
    })
    .join('; ');
}

function summarize(values: readonly number[]): LatencySummary {
  return {
    p50: round(percentile(values, 50), 1),
    p99: round(percentile(values, 99), 1),
    max: round(percentile(values, 100), 1),
  };
}

function summarizePhase(pods: readonly PodTimes[]): PhaseSummary {
  const since = (f: (p: PodTimes) => number | undefined) => pods.map((p) => (f(p) as number) - p.t0);
  return {
    running: summarize(since((p) => p.running)),
    ready: summarize(since((p) => p.ready)),
    create: summarize(since((p) => p.created)),
  };
}

/** Rejects with `what` once `deadline` (performance.now()) passes. */
async function withDeadline<T>(p: Promise<T>, deadline: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(what())), Math.max(0, deadline - performance.now()));
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitNodesReady(api: ApiClient, names: readonly string[], deadline: number): Promise<void> {
  let seen = '';
  while (performance.now() < deadline) {
    try {
      const list = await api.list('nodes');
      const ready = list.items
        .filter((n) => conditionsOf(n).some((c) => c.type === 'Ready' && c.status === 'True'))
        .map((n) => n.metadata.name);
      seen = `Ready: [${ready.join(' ')}] of [${list.items.map((n) => n.metadata.name).join(' ')}]`;
      if (names.every((n) => ready.includes(n))) return;
    } catch (err) {
      seen = (err as Error).message;
    }
    await sleep(200);
  }
  throw new Error(`the nodes did not all become Ready in time (${seen})`);
}

/** The failure, with the last events (the agent's reasons: probe failures, back-off) of the pods not Ready. */
async function withEvents(api: ApiClient, err: unknown, pods: readonly PodTimes[]): Promise<unknown> {
  if (!(err instanceof Error)) return err;
  const stuck = new Set(pods.filter((p) => p.t0 > 0 && p.ready === undefined).map((p) => p.name));
  if (stuck.size === 0) return err;
  try {
    const events = (await api.list('events', { namespace: NAMESPACE })).items as unknown as Json[];
    const lines = events
      .filter((e) => stuck.has(String(asMap(e.involvedObject).name)))
      .slice(-10)
      .map(
        (e) =>
          `${String(asMap(e.involvedObject).name)}: ${String(e.type)} ${String(e.reason)}: ${String(e.message)}` +
          ` (x${String(e.count ?? 1)})`,
      );
    if (lines.length > 0) err.message += `\nlast events of those pods:\n  ${lines.join('\n  ')}`;
  } catch {
    // The events only explain; the failure stands without them.
  }
  return err;
}

/** The containers on this engine labelled with the cluster id (ours; nobody else's). */
async function clusterContainers(clusterId: string): Promise<string[]> {
  const { stdout } = await run('docker', ['ps', '-aq', '--filter', `label=${CLUSTER_LABEL}=${clusterId}`]);
  return stdout.split('\n').filter((s) => s !== '');
}

export async function runPodStartBench(o: PodStartBenchOptions): Promise<PodStartBenchResult> {
  const start = performance.now();
  const deadline = start + o.timeoutMs;
  const host: PodStartBenchResult['host'] = {
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
  const nodeNames = cluster.nodes.map((n) => n.name);
  const system =
    `berth-node x3 with the agent (tick ${o.berth.tickMs} ms, election ${o.berth.electionTicks ?? 10} ticks, ` +
    `log ${o.berth.logLevel})`;
  let clusterId: string | undefined;
  const stopCleanUp = cleanUpOnInterrupt(cluster, () => clusterId);

  const api = createApiClient({ endpoints: cluster.endpoints(true) });
  const pods: PodTimes[] = [];
  const byName = new Map<string, PodTimes>();
  let watch: { cancel(): void } | undefined;
  let leftover = 0;
  let failure: unknown;
  let result: PodStartBenchResult | undefined;
  try {
    const identity = JSON.parse(await readFile(join(cluster.node(0).dataDir, 'member.json'), 'utf8')) as {
      clusterId: string;
    };
    clusterId = identity.clusterId;
    await waitNodesReady(api, nodeNames, Math.min(deadline, performance.now() + 60_000));
    o.log(
      `cluster ${clusterId}: nodes ${nodeNames.join(', ')} Ready after ${round((performance.now() - start) / 1000, 1)} s`,
    );

    // The watch is live once a bookmark arrived: no event of a create can be missed or late.
    let watchError: ApiError | Error | undefined;
    let live: () => void = () => {};
    const isLive = new Promise<void>((resolve) => {
      live = resolve;
    });
    const from = (await api.list('pods', { namespace: NAMESPACE })).metadata.resourceVersion;
    watch = api.watch(
      'pods',
      {
        namespace: NAMESPACE,
        labelSelector: `${LABEL_KEY}=${LABEL_VALUE}`,
        resourceVersion: from,
        allowBookmarks: true,
        bookmarkIntervalMs: 200,
      },
      (e: ApiWatchEvent) => {
        const now = performance.now();
        if (e.type === 'BOOKMARK') {
          live();
          return;
        }
        const p = byName.get(e.object.metadata.name ?? '');
        if (!p || e.type === 'DELETED') return;
        p.last = e.object;
        if (p.running === undefined && isRunning(e.object)) p.running = now;
        if (p.ready === undefined && isReady(e.object)) {
          p.ready = now;
          p.running ??= now;
          p.onReady?.();
        }
      },
      (err) => {
        watchError = err ?? new Error('the watch ended');
      },
    );
    await withDeadline(
      isLive,
      Math.min(deadline, performance.now() + 10_000),
      () => 'no bookmark on the pod watch',
    );

    const stuck = (phase: PodTimes[]) => () => {
      const pending = phase.filter((p) => p.t0 > 0 && p.ready === undefined);
      const notCreated = phase.filter((p) => p.t0 === 0).length;
      return (
        `${pending.length} of ${phase.length} pods created but not Ready within ${o.timeoutMs / 1000} s ` +
        `of the bench's start${notCreated ? ` (${notCreated} not created yet)` : ''}` +
        `${watchError ? `; the watch ended: ${watchError.message}` : ''}:\n  ` +
        pending.slice(0, 10).map(describeStuck).join('\n  ')
      );
    };
    const createPod = async (p: PodTimes) => {
      const ready = new Promise<void>((resolve) => {
        p.onReady = resolve;
      });
      p.t0 = performance.now();
      await api.create(podManifest(p.name, p.node));
      p.created = performance.now();
      await ready;
    };
    const makePods = (prefix: string, offset: number) =>
      Array.from({ length: o.pods }, (_, i): PodTimes => {
        const p = {
          name: `podstart-${prefix}-${String(i).padStart(2, '0')}`,
          node: nodeNames[(offset + i) % nodeNames.length] as string,
          t0: 0,
        };
        byName.set(p.name, p);
        pods.push(p);
        return p;
      });

    const sequential = makePods('seq', 0);
    o.log(`sequential: ${o.pods} pods, each Ready before the next`);
    for (const p of sequential) {
      await withDeadline(createPod(p), deadline, stuck(sequential));
      if (watchError) throw new Error(`the pod watch ended: ${watchError.message}`);
    }
    const seq = summarizePhase(sequential);
    o.log(`sequential by node: ${spreadByNode(sequential)}`);
    o.log(
      `sequential: Running p50 ${seq.running.p50} ms p99 ${seq.running.p99} ms; Ready p50 ${seq.ready.p50} ms p99 ${seq.ready.p99} ms`,
    );

    const burstPods = makePods('burst', 0);
    o.log(`burst: ${o.pods} pods created at once`);
    await withDeadline(Promise.all(burstPods.map(createPod)), deadline, stuck(burstPods));
    if (watchError) throw new Error(`the pod watch ended: ${watchError.message}`);
    const burst = summarizePhase(burstPods);
    o.log(`burst by node: ${spreadByNode(burstPods)}`);
    o.log(
      `burst: Running p50 ${burst.running.p50} ms p99 ${burst.running.p99} ms; Ready p50 ${burst.ready.p50} ms p99 ${burst.ready.p99} ms`,
    );

    const worst = Math.max(seq.ready.p99, burst.ready.p99);
    o.log(
      `worst p99 to Ready ${worst} ms: Kubernetes' SLO (p99 <= ${K8S_SLO_P99_MS} ms) ` +
        `${worst <= K8S_SLO_P99_MS ? 'met' : 'NOT met'}, aim (< ${TARGET_P99_MS} ms) ${worst < TARGET_P99_MS ? 'met' : 'not met'}`,
    );
    result = {
      bench: 'podstart',
      pods: pods.length,
      per_phase: o.pods,
      system,
      host,
      sequential: seq,
      burst,
      slo_p99_ms: K8S_SLO_P99_MS,
      target_p99_ms: TARGET_P99_MS,
      meets_slo: worst <= K8S_SLO_P99_MS,
      meets_target: worst < TARGET_P99_MS,
      leftover_containers: 0,
    };
  } catch (err) {
    failure = await withEvents(api, err, pods);
  } finally {
    watch?.cancel();
    const errors: string[] = [];
    if (failure !== undefined) {
      // The harness removes its root dir (and the node logs in it) on destroy: keep the logs.
      try {
        const keep = await mkdtemp(join(tmpdir(), 'berth-podstart-logs-'));
        for (const n of cluster.nodes) await copyFile(n.logFile, join(keep, `${n.name}.log`)).catch(() => {});
        o.log(`node logs kept in ${keep}`);
      } catch (err) {
        errors.push(`keeping the logs: ${(err as Error).message}`);
      }
    }
    try {
      leftover = await cleanup(api, pods, clusterId, o.log);
    } catch (err) {
      errors.push((err as Error).message);
    }
    api.close();
    await cluster.destroy();
    // The nodes are gone: whatever still carries the cluster's label is ours and orphaned.
    if (clusterId) {
      const ids = await clusterContainers(clusterId).catch(() => []);
      if (ids.length > 0) {
        leftover = Math.max(leftover, ids.length);
        await run('docker', ['rm', '-f', ...ids]).catch((err: Error) =>
          errors.push(`docker rm: ${err.message}`),
        );
      }
    }
    stopCleanUp();
    host.loadavg_1m_end = hostLoad().loadavg_1m;
    o.log(`cluster destroyed${leftover ? `; ${leftover} containers were left behind and removed` : ''}`);
    if (errors.length > 0) {
      const msg = `cleanup: ${errors.join('; ')}`;
      if (failure === undefined) failure = new Error(msg);
      else o.log(msg);
    }
  }
  if (failure !== undefined || result === undefined) throw failure ?? new Error('no result');
  result.leftover_containers = leftover;
  result.host = host;
  return result;
}

/**
 * Delete the bench's pods at once (grace 0), wait until the API has none left, then give the
 * agents a moment to remove their containers. Returns how many containers were still there.
 */
async function cleanup(
  api: ApiClient,
  pods: readonly PodTimes[],
  clusterId: string | undefined,
  log: (line: string) => void,
): Promise<number> {
  const selector = { namespace: NAMESPACE, labelSelector: `${LABEL_KEY}=${LABEL_VALUE}` };
  const names = new Set(pods.filter((p) => p.t0 > 0).map((p) => p.name));
  for (const p of (await api.list('pods', selector)).items) if (p.metadata.name) names.add(p.metadata.name);
  if (names.size === 0) return 0;
  log(`cleanup: deleting ${names.size} pods`);
  await Promise.all(
    [...names].map((n) =>
      api.delete('pods', NAMESPACE, n, { gracePeriodSeconds: 0 }).catch((err: ApiError) => {
        if (err.code !== ApiErrorCode.NotFound) throw err;
      }),
    ),
  );
  const t = performance.now();
  let left = names.size;
  while (performance.now() - t < 30_000) {
    left = (await api.list('pods', selector)).items.length;
    if (left === 0) break;
    await sleep(250);
  }
  if (left > 0) throw new Error(`${left} pods still listed 30 s after their deletion`);
  if (!clusterId) return 0;
  let containers = (await clusterContainers(clusterId)).length;
  while (containers > 0 && performance.now() - t < 45_000) {
    await sleep(250);
    containers = (await clusterContainers(clusterId)).length;
  }
  log(
    `cleanup: pods gone after ${round((performance.now() - t) / 1000, 1)} s` +
      `${containers > 0 ? `, ${containers} containers still there` : ', their containers removed'}`,
  );
  return containers;
}
