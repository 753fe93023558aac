// A pod's status from what the agent observed, computed the way the kubelet does
// (getPhase, generateAPIPodStatus, GetPodQOS). Pure: the clock is an argument, and a
// condition keeps its lastTransitionTime while its status does not change.

import { tryParseQuantity } from '../api/schema/quantity.js';
import { rfc3339 } from '../api/types.js';
import type { Container, Pod } from './container-spec.js';
import type { ContainerInfo, PortBinding } from './runtime.js';

export const Waiting = {
  ContainerCreating: 'ContainerCreating',
  ErrImagePull: 'ErrImagePull',
  ImagePullBackOff: 'ImagePullBackOff',
  CrashLoopBackOff: 'CrashLoopBackOff',
  CreateContainerConfigError: 'CreateContainerConfigError',
  CreateContainerError: 'CreateContainerError',
  PodInitializing: 'PodInitializing',
} as const;

/** What the agent knows of one spec container. */
export interface ObservedContainer {
  /** The current (newest) engine container, if one exists. */
  info?: ContainerInfo;
  /** Why it is not running; wins over `info` (a crashed container waiting for its back-off). */
  waiting?: { reason: string; message: string };
  restartCount: number;
  /** The container before the current one, for lastState. */
  lastTerminated?: ContainerInfo;
}

export interface ObservedPod {
  /** By spec container name (init containers too). */
  containers: Record<string, ObservedContainer>;
  /** The node's address. */
  hostIP: string;
  /** The sandbox's bridge address (recorded, never sent traffic). */
  podIP?: string;
  /** Where the pod's ports are published. */
  ports: PortBinding[];
}

export interface ProbeStatus {
  ready: boolean;
  started: boolean;
}

export type JsonMap = Record<string, unknown>;

interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime: string;
}

// Docker writes nanoseconds and the zero time '0001-01-01T00:00:00Z' for "never".
function time(s: string | undefined): string | undefined {
  if (!s || s.startsWith('0001-')) return undefined;
  const ms = Date.parse(s);
  return Number.isFinite(ms) ? rfc3339(ms) : undefined;
}

const prune = (o: JsonMap): JsonMap => {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
};

function terminated(info: ContainerInfo): JsonMap {
  const exitCode = info.exitCode ?? 0;
  return {
    terminated: prune({
      exitCode,
      reason: info.reason || (exitCode === 0 ? 'Completed' : 'Error'),
      startedAt: time(info.startedAt),
      finishedAt: time(info.finishedAt),
      containerID: `docker://${info.id}`,
    }),
  };
}

const isExited = (i: ContainerInfo | undefined) => i?.state === 'exited' || i?.state === 'dead';

function containerStatus(
  c: Container,
  o: ObservedContainer | undefined,
  p: ProbeStatus | undefined,
): JsonMap {
  const info = o?.info;
  let state: JsonMap;
  let last = o?.lastTerminated;
  if (o?.waiting) {
    state = { waiting: { reason: o.waiting.reason, message: o.waiting.message } };
    if (!last && isExited(info)) last = info;
  } else if (!info || info.state === 'created') state = { waiting: { reason: Waiting.ContainerCreating } };
  else if (isExited(info) || info.state === 'removing') state = terminated(info);
  else state = { running: prune({ startedAt: time(info.startedAt) }) };
  const running = 'running' in state;
  const hasStartup = c.startupProbe !== undefined;
  const started = running && (p ? p.started : !hasStartup);
  const ready = started && (p ? p.ready : c.readinessProbe === undefined);
  return prune({
    name: c.name,
    state,
    lastState: last ? terminated(last) : {},
    ready,
    restartCount: o?.restartCount ?? 0,
    image: c.image,
    imageID: info?.imageId ?? '',
    containerID: info ? `docker://${info.id}` : undefined,
    started,
  });
}

const stateOf = (s: JsonMap) =>
  s.state as { waiting?: unknown; running?: unknown; terminated?: { exitCode: number } };
const hadRun = (s: JsonMap) => Object.keys(s.lastState as JsonMap).length > 0;

/** Kubernetes' getPhase, for app containers once init containers are done. */
function phaseOf(statuses: JsonMap[], restartPolicy: string): string {
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const s of statuses) {
    const st = stateOf(s);
    if (st.running) running++;
    else if (st.terminated) {
      stopped++;
      if (st.terminated.exitCode === 0) succeeded++;
    } else if (hadRun(s))
      stopped++; // Waiting to restart: it has run, the pod has started.
    else waiting++;
  }
  if (waiting > 0) return 'Pending';
  if (running > 0) return 'Running';
  if (stopped > 0) {
    if (restartPolicy === 'Always') return 'Running';
    if (stopped === succeeded) return 'Succeeded';
    if (restartPolicy === 'Never') return 'Failed';
    return 'Running'; // OnFailure: the failed ones are restarting.
  }
  return 'Pending';
}

const SUPPORTED = ['cpu', 'memory'];

/** Kubernetes' QoS class: BestEffort without requests or limits, Guaranteed when requests equal limits for cpu and memory everywhere. */
export function qosClass(containers: Container[]): 'Guaranteed' | 'Burstable' | 'BestEffort' {
  const requests = new Map<string, number>();
  const limits = new Map<string, number>();
  let guaranteed = true;
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  for (const c of containers) {
    const lim = c.resources?.limits ?? {};
    // The API server defaults a missing request to its limit; do the same here.
    const req = { ...lim, ...(c.resources?.requests ?? {}) };
    for (const name of SUPPORTED) {
      const r = tryParseQuantity(req[name]) ?? 0;
      if (r !== 0) add(requests, name, r);
    }
    const found = new Set<string>();
    for (const name of SUPPORTED) {
      const l = tryParseQuantity(lim[name]) ?? 0;
      if (l !== 0) {
        found.add(name);
        add(limits, name, l);
      }
    }
    if (!SUPPORTED.every((n) => found.has(n))) guaranteed = false;
  }
  if (requests.size === 0 && limits.size === 0) return 'BestEffort';
  if (guaranteed) for (const [k, v] of requests) if (limits.get(k) !== v) guaranteed = false;
  return guaranteed && requests.size === limits.size ? 'Guaranteed' : 'Burstable';
}

/** The pod's endpoints (Berth extension): each container port with its published host address. */
export function podEndpoints(pod: Pod, ports: PortBinding[]): JsonMap[] {
  const out: JsonMap[] = [];
  for (const c of pod.spec.containers)
    for (const p of c.ports ?? []) {
      const protocol = p.protocol ?? 'TCP';
      const b = ports.find((x) => x.containerPort === p.containerPort && x.protocol === protocol);
      if (!b) continue;
      out.push(
        prune({
          name: p.name,
          containerPort: p.containerPort,
          protocol,
          hostIP: b.hostIp,
          hostPort: b.hostPort,
        }),
      );
    }
  return out;
}

export function computePodStatus(
  pod: Pod,
  observed: ObservedPod,
  probeStates: ReadonlyMap<string, ProbeStatus>,
  now: number,
): JsonMap {
  const prev = pod.status ?? {};
  const nowStr = rfc3339(now);
  const init = pod.spec.initContainers ?? [];
  const initStatuses = init.map((c) =>
    containerStatus(c, observed.containers[c.name], probeStates.get(c.name)),
  );
  const statuses = pod.spec.containers.map((c) =>
    containerStatus(c, observed.containers[c.name], probeStates.get(c.name)),
  );
  const initialized = initStatuses.every((s) => stateOf(s).terminated?.exitCode === 0);
  const restartPolicy = pod.spec.restartPolicy ?? 'Always';

  let phase: string;
  const prevPhase = prev.phase;
  if (prevPhase === 'Succeeded' || prevPhase === 'Failed')
    phase = prevPhase; // Terminal phases never change.
  else if (!initialized) {
    const failedInit = initStatuses.some((s) => (stateOf(s).terminated?.exitCode ?? 0) !== 0);
    phase = failedInit && restartPolicy === 'Never' ? 'Failed' : 'Pending';
  } else phase = phaseOf(statuses, restartPolicy);

  const prevConditions = Array.isArray(prev.conditions) ? (prev.conditions as Condition[]) : [];
  const condition = (type: string, ok: boolean, reason?: string, message?: string): Condition => {
    const status = ok ? 'True' : 'False';
    const before = prevConditions.find((c) => c.type === type);
    const c: Condition = {
      type,
      status,
      lastTransitionTime: before?.status === status ? before.lastTransitionTime : nowStr,
    };
    if (!ok && reason) c.reason = reason;
    if (!ok && message) c.message = message;
    return c;
  };
  const unready = pod.spec.containers.filter((_, i) => statuses[i]?.ready !== true).map((c) => c.name);
  const uninit = init
    .filter((_, i) => stateOf(initStatuses[i] ?? {}).terminated?.exitCode !== 0)
    .map((c) => c.name);
  const completed = phase === 'Succeeded';
  const notReady = (kind: string) =>
    completed
      ? condition(kind, false, 'PodCompleted')
      : condition(
          kind,
          unready.length === 0,
          'ContainersNotReady',
          `containers with unready status: [${unready.join(' ')}]`,
        );
  const conditions = [
    condition(
      'Initialized',
      completed || uninit.length === 0,
      'ContainersNotInitialized',
      `containers with incomplete status: [${uninit.join(' ')}]`,
    ),
    notReady('Ready'),
    notReady('ContainersReady'),
    condition('PodScheduled', true),
  ];

  const status: JsonMap = {
    phase,
    conditions,
    hostIP: observed.hostIP,
    hostIPs: [{ ip: observed.hostIP }],
    startTime: typeof prev.startTime === 'string' ? prev.startTime : nowStr,
    containerStatuses: statuses,
    qosClass: qosClass([...init, ...pod.spec.containers]),
    endpoints: podEndpoints(pod, observed.ports),
  };
  if (observed.podIP) {
    status.podIP = observed.podIP;
    status.podIPs = [{ ip: observed.podIP }];
  }
  if (init.length > 0) status.initContainerStatuses = initStatuses;
  return status;
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(o)
        .filter((k) => o[k] !== undefined)
        .sort()
        .map((k) => [k, canonical(o[k])]),
    );
  }
  return v;
}

/** Deep equality that ignores only key order (and undefined members, which JSON drops): skips no-op writes. */
export function statusEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}
