// One pod on this node, made real: `sync(pod)` compares the pod's spec with the containers
// the engine has (found by label) and does the difference, then writes the pod's status if
// it changed. Level-triggered and idempotent: it is called on every change of the pod and
// on a periodic resync, and after a restart of the agent it adopts what it finds.
//
//   sandbox (ports published on the node's address) ─► per spec container:
//     same spec and running → probe it │ exited → restart per policy, with back-off
//     spec changed → replace it        │ none → image (pull per policy) → env, volumes → create, start
//   terminating pod → Ready=False first (leaves endpoints), SIGTERM, SIGKILL after the grace
//   period, remove the containers, then delete the Pod object for good.

import type { Logger } from 'pino';
import { ApiError, ApiErrorCode } from '../api/errors.js';
import type { ApiServer } from '../api/server/api-server.js';
import type { EventRecorder } from '../api/server/events.js';
import type { ApiObject } from '../api/types.js';
import { type Backoff, formatDelay } from './backoff.js';
import { asPod, type Container, type Pod, sandboxSpec, specHash, toContainerSpec } from './container-spec.js';
import type { EndpointsDrain } from './drain.js';
import { type ConfigLookups, resolveEnv } from './env.js';
import type { HostPortAllocator } from './host-ports.js';
import {
  type ObservedContainer,
  type ObservedPod,
  computePodStatus,
  statusEqual,
  Waiting,
} from './pod-status.js';
import { probe, ProbeWorker, realProbeClock } from './probes.js';
import {
  type ContainerInfo,
  type ContainerRuntime,
  ImagePullError,
  Labels,
  type PortBinding,
} from './runtime.js';
import { mountFailure } from './persistent-volumes.js';
import { type ClaimStorage, mountsFor, prepareVolumes, removePodDir, updateVolumes } from './volumes.js';

/** The sandbox label that remembers the pod's port bindings (adopted after a restart). */
export const PORTS_LABEL = 'berth.io/ports';

export interface PodSyncDeps {
  api: ApiServer;
  runtime: ContainerRuntime;
  nodeName: string;
  nodeAddress: string;
  /** Labels on every container of this node (cluster and node). */
  nodeLabels: Record<string, string>;
  dataDir: string;
  ports: HostPortAllocator;
  crashBackoff: Backoff;
  pullBackoff: Backoff;
  lookups: ConfigLookups;
  /** Claims and volumes for persistentVolumeClaim volumes; without it they never mount. */
  storage?: ClaimStorage;
  drain?: EndpointsDrain;
  events: EventRecorder;
  logger: Logger;
  /** Ask for another sync of this pod soon (a probe changed, a back-off ends). */
  requeue(uid: string, afterMs?: number): void;
  /** Runs engine work that makes containers, a few pods at a time (status work never waits). */
  engineSlot<T>(fn: () => Promise<T>): Promise<T>;
  now(): number;
}

/** The probes of one running engine container. */
interface Probed {
  containerId: string;
  worker: ProbeWorker;
  /** Liveness or startup gave up: the container is to be restarted. */
  failed?: string;
}

const DEFAULT_GRACE_SECONDS = 30;
/** An unmountable claim volume is tried again this soon (ms). */
const MOUNT_RETRY_MS = 2000;
/** The same FailedMount event is recorded at most this often (ms); the kubelet's is ~2 min. */
const MOUNT_EVENT_EVERY_MS = 30_000;

/** Why the pod's containers cannot be made yet: config errors, or volumes not mountable yet. */
interface VolumeState {
  errors: string[];
  /** The FailedMount message, while some claim volume cannot be mounted. */
  unmounted?: string;
}

export class PodSync {
  private readonly probes = new Map<string, Probed>();
  /** Exited engine containers whose back-off was already counted. */
  private readonly countedExits = new Set<string>();
  /** The pod's volumes on the host (name → path), once they were all prepared. */
  private volumes: Map<string, string> | undefined;
  private lastStatus: unknown;
  /** The engine's message of the last failed pull per image, for ImagePullBackOff. */
  private readonly lastPullError = new Map<string, string>();
  private lastMountEvent: { message: string; at: number } | undefined;

  constructor(
    private readonly d: PodSyncDeps,
    readonly uid: string,
  ) {}

  private key(container: string): string {
    return `${this.uid}/${container}`;
  }

  private async containers(): Promise<ContainerInfo[]> {
    return this.d.runtime.list({ ...this.d.nodeLabels, [Labels.podUid]: this.uid });
  }

  /** Bring the engine in line with `pod` (or remove everything when the pod is gone). */
  async sync(obj: ApiObject | undefined): Promise<'done' | 'gone'> {
    const existing = await this.containers();
    if (!obj) {
      await this.teardown(existing, 0);
      return 'gone';
    }
    const pod = asPod(obj);
    if (pod.metadata.deletionTimestamp) {
      await this.terminate(obj, existing);
      return 'gone';
    }
    const sandbox = await this.ensureSandbox(pod, existing);
    const observed: ObservedPod = {
      containers: {},
      hostIP: this.d.nodeAddress,
      ports: sandbox.ports,
      ...(sandbox.info.ip ? { podIP: sandbox.info.ip } : {}),
    };
    const withIps: Pod = {
      ...pod,
      status: {
        ...pod.status,
        hostIP: this.d.nodeAddress,
        ...(sandbox.info.ip ? { podIP: sandbox.info.ip } : {}),
      },
    };
    const volumeErrors = await this.ensureVolumes(withIps);
    if (volumeErrors.unmounted) this.reportUnmounted(withIps, volumeErrors.unmounted);
    for (const c of pod.spec.containers) {
      observed.containers[c.name] = await this.syncContainer(withIps, c, existing, sandbox, volumeErrors);
    }
    await this.writeStatus(obj, pod, observed);
    return 'done';
  }

  // ---- sandbox and volumes ----

  private async ensureSandbox(
    pod: Pod,
    existing: ContainerInfo[],
  ): Promise<{ info: ContainerInfo; ports: PortBinding[] }> {
    const found = existing.find((c) => c.labels[Labels.role] === 'sandbox');
    if (found && found.state === 'running') {
      const ports = parsePorts(found.labels[PORTS_LABEL]);
      this.d.ports.adopt(this.uid, ports);
      return { info: found, ports };
    }
    if (found) {
      // The sandbox died (its network namespace with it): start the pod over, as the kubelet does.
      this.d.logger.warn({ pod: pod.metadata.name }, 'pod sandbox is not running; recreating the pod');
      await this.teardown(existing, 0, false);
    }
    const ports = await this.allocatePorts(pod);
    const spec = sandboxSpec(pod, this.d.nodeName, this.d.nodeAddress, ports);
    spec.labels = { ...spec.labels, ...this.d.nodeLabels, [PORTS_LABEL]: JSON.stringify(ports) };
    const info = await this.d.engineSlot(async () => {
      await this.d.runtime.ensureSandboxImage();
      const id = await this.d.runtime.createSandbox(spec);
      await this.d.runtime.start(id);
      return (await this.d.runtime.inspect(id)) as ContainerInfo;
    });
    return { info, ports };
  }

  /** Host ports for every container port, and for probe ports that are not container ports. */
  private async allocatePorts(pod: Pod): Promise<PortBinding[]> {
    const out: PortBinding[] = [];
    const seen = new Set<string>();
    for (const c of pod.spec.containers) {
      for (const p of c.ports ?? []) {
        const protocol = p.protocol ?? 'TCP';
        const key = `${p.containerPort}/${protocol}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push(
          await this.d.ports.allocate(
            this.uid,
            p.containerPort,
            protocol,
            p.hostIP || this.d.nodeAddress,
            p.hostPort,
          ),
        );
      }
      for (const pr of [c.livenessProbe, c.readinessProbe, c.startupProbe]) {
        const port = pr?.httpGet?.port ?? pr?.tcpSocket?.port;
        if (typeof port !== 'number' || seen.has(`${port}/TCP`)) continue;
        seen.add(`${port}/TCP`);
        out.push(await this.d.ports.allocate(this.uid, port, 'TCP', this.d.nodeAddress));
      }
    }
    return out;
  }

  private async ensureVolumes(pod: Pod): Promise<VolumeState> {
    if (!this.volumes) {
      const r = await prepareVolumes(pod, this.d.dataDir, this.d.lookups, this.d.storage);
      if (r.errors.length === 0 && r.unmounted.length === 0) this.volumes = r.mounts;
      return r.unmounted.length > 0
        ? { errors: r.errors, unmounted: mountFailure(r.unmounted) }
        : { errors: r.errors };
    }
    return { errors: (await updateVolumes(pod, this.d.dataDir, this.d.lookups)).errors };
  }

  /** A FailedMount event (not repeated too often) and another try soon, as the kubelet retries. */
  private reportUnmounted(pod: Pod, message: string): void {
    const now = this.d.now();
    const last = this.lastMountEvent;
    if (!last || last.message !== message || now - last.at >= MOUNT_EVENT_EVERY_MS) {
      this.lastMountEvent = { message, at: now };
      this.d.events.recordQuietly(pod as unknown as ApiObject, 'Warning', 'FailedMount', message);
    }
    this.d.requeue(this.uid, MOUNT_RETRY_MS);
  }

  // ---- containers ----

  private async syncContainer(
    pod: Pod,
    c: Container,
    existing: ContainerInfo[],
    sandbox: { info: ContainerInfo; ports: PortBinding[] },
    volumeErrors: VolumeState,
  ): Promise<ObservedContainer> {
    const instances = existing
      .filter((x) => x.labels[Labels.container] === c.name && x.labels[Labels.role] === 'container')
      .sort((a, b) => Number(b.labels[Labels.attempt]) - Number(a.labels[Labels.attempt]));
    let current = instances[0];
    const previous = instances.find((x) => x !== current && x.state === 'exited');
    // Keep the newest and the one before it (logs --previous); older ones go.
    for (const old of instances.slice(2)) await this.d.runtime.remove(old.id);
    const attempt = current ? Number(current.labels[Labels.attempt]) : -1;
    const base = { restartCount: Math.max(0, attempt), ...(previous ? { lastTerminated: previous } : {}) };
    const ref = `container ${c.name} in pod ${pod.metadata.namespace}/${pod.metadata.name}`;

    if (current && current.labels[Labels.specHash] !== specHash(c)) {
      this.d.events.recordQuietly(
        pod as unknown as ApiObject,
        'Normal',
        'Killing',
        `Container ${c.name} definition changed, will be restarted`,
      );
      await this.stopProbes(current.id);
      await this.d.runtime.stop(current.id, graceOf(pod));
      current = { ...current, state: 'exited' };
    }
    if (current?.state === 'running') {
      const probed = this.probes.get(current.id);
      if (probed?.failed) {
        this.d.events.recordQuietly(
          pod as unknown as ApiObject,
          'Normal',
          'Killing',
          `Container ${c.name} failed ${probed.failed}, will be restarted`,
        );
        await this.stopProbes(current.id);
        await this.d.runtime.stop(current.id, graceOf(pod));
        this.d.requeue(this.uid, 0);
        return { ...base, info: (await this.d.runtime.inspect(current.id)) ?? current };
      }
      if (!probed) this.startProbes(pod, c, current, sandbox.ports);
      return { ...base, info: current };
    }
    if (current && current.state !== 'created') {
      await this.stopProbes(current.id);
      const policy = pod.spec.restartPolicy ?? 'Always';
      const failed = (current.exitCode ?? 0) !== 0;
      const restart =
        policy === 'Always' ||
        (policy === 'OnFailure' && failed) ||
        current.labels[Labels.specHash] !== specHash(c);
      if (!restart) return { ...base, info: current };
      // The kubelet's rule: the first crash restarts at once; each later one waits out the
      // back-off window, counted from when the container exited.
      const key = this.key(c.name);
      const finished = Date.parse(current.finishedAt ?? '') || this.d.now();
      if (!this.countedExits.has(current.id)) {
        this.countedExits.add(current.id);
        this.d.crashBackoff.noteExited(key, finished);
      }
      const wait = this.d.crashBackoff.inBackoff(key);
      if (wait === 0) this.d.crashBackoff.next(key, finished);
      else {
        const message = `back-off ${formatDelay(this.d.crashBackoff.delay(key))} restarting failed ${ref}`;
        this.d.events.recordQuietly(
          pod as unknown as ApiObject,
          'Warning',
          'BackOff',
          `Back-off restarting failed container ${c.name}`,
        );
        this.d.requeue(this.uid, wait + 50);
        return { ...base, info: current, waiting: { reason: Waiting.CrashLoopBackOff, message } };
      }
    }
    if (current?.state === 'created') await this.d.runtime.remove(current.id);
    return this.createContainer(pod, c, attempt + 1, sandbox, volumeErrors, base);
  }

  private async createContainer(
    pod: Pod,
    c: Container,
    attempt: number,
    sandbox: { info: ContainerInfo; ports: PortBinding[] },
    volumeErrors: VolumeState,
    base: ObservedContainer,
  ): Promise<ObservedContainer> {
    const obj = pod as unknown as ApiObject;
    const waiting = (reason: string, message: string): ObservedContainer => ({
      ...base,
      waiting: { reason, message },
    });
    // Volumes first, as the kubelet mounts them before it pulls: no pull for a pod that cannot start.
    if (volumeErrors.unmounted) return waiting(Waiting.ContainerCreating, volumeErrors.unmounted);
    const image = await this.ensureImage(pod, c);
    if (image) return waiting(image.reason, image.message);
    if (volumeErrors.errors.length > 0)
      return waiting(Waiting.CreateContainerConfigError, volumeErrors.errors.join('; '));
    const env = await resolveEnv(c, pod, this.d.lookups);
    const mounts = await mountsFor(c, this.volumes ?? new Map(), pod.spec.volumes);
    const errors = [...env.errors, ...mounts.errors];
    if (errors.length > 0) {
      this.d.events.recordQuietly(obj, 'Warning', 'Failed', `Error: ${errors.join('; ')}`);
      return waiting(Waiting.CreateContainerConfigError, errors.join('; '));
    }
    const spec = toContainerSpec(pod, c, {
      env: env.env,
      mounts: mounts.mounts,
      sandboxId: sandbox.info.id,
      nodeName: this.d.nodeName,
      attempt,
    });
    spec.labels = { ...spec.labels, ...this.d.nodeLabels };
    try {
      const info = await this.d.engineSlot(async () => {
        const id = await this.d.runtime.createContainer(spec);
        this.d.events.recordQuietly(obj, 'Normal', 'Created', `Created container ${c.name}`);
        await this.d.runtime.start(id);
        this.d.events.recordQuietly(obj, 'Normal', 'Started', `Started container ${c.name}`);
        return (await this.d.runtime.inspect(id)) as ContainerInfo;
      });
      this.d.crashBackoff.noteStarted(this.key(c.name), this.d.now());
      if (info.state === 'running') this.startProbes(pod, c, info, sandbox.ports);
      else this.d.requeue(this.uid, 0);
      return { ...base, restartCount: attempt, info };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.d.events.recordQuietly(obj, 'Warning', 'Failed', `Error: ${message}`);
      this.d.requeue(this.uid, 2000);
      return waiting(Waiting.CreateContainerError, message);
    }
  }

  /** Undefined when the image is here; else why the container waits. */
  private async ensureImage(
    pod: Pod,
    c: Container,
  ): Promise<{ reason: string; message: string } | undefined> {
    const obj = pod as unknown as ApiObject;
    const policy = c.imagePullPolicy ?? 'IfNotPresent';
    const present = await this.d.runtime.findImage(c.image);
    if (present && policy !== 'Always') return undefined;
    if (!present && policy === 'Never') {
      const message = `Container image "${c.image}" is not present with pull policy of Never`;
      this.d.events.recordQuietly(obj, 'Warning', 'ErrImageNeverPull', message);
      return { reason: 'ErrImageNeverPull', message };
    }
    // Per pod and image, as the kubelet keys it: another pod's failures do not hold this one back.
    const key = `${this.uid}/image/${c.image}`;
    const wait = this.d.pullBackoff.inBackoff(key);
    if (wait > 0) {
      this.d.requeue(this.uid, wait + 50);
      const last = this.lastPullError.get(c.image);
      const message = `Back-off pulling image "${c.image}"${last ? `: ErrImagePull: ${last}` : ''}`;
      return { reason: Waiting.ImagePullBackOff, message };
    }
    try {
      this.d.events.recordQuietly(obj, 'Normal', 'Pulling', `Pulling image "${c.image}"`);
      const started = this.d.now();
      await this.d.runtime.pullImage(c.image);
      this.d.pullBackoff.reset(key);
      this.lastPullError.delete(c.image);
      this.d.events.recordQuietly(
        obj,
        'Normal',
        'Pulled',
        `Successfully pulled image "${c.image}" in ${this.d.now() - started}ms`,
      );
      return undefined;
    } catch (err) {
      const message = err instanceof ImagePullError ? err.message : String(err);
      this.lastPullError.set(c.image, message);
      const delay = this.d.pullBackoff.next(key);
      this.d.requeue(this.uid, delay + 50);
      this.d.events.recordQuietly(obj, 'Warning', 'Failed', `Failed to pull image "${c.image}": ${message}`);
      return { reason: Waiting.ErrImagePull, message };
    }
  }

  // ---- probes ----

  private startProbes(pod: Pod, c: Container, info: ContainerInfo, ports: PortBinding[]): void {
    const portFor = (port: number | string) => {
      const containerPort =
        typeof port === 'number' ? port : (c.ports ?? []).find((p) => p.name === port)?.containerPort;
      return ports.find((b) => b.containerPort === containerPort)?.hostPort;
    };
    const target = { containerId: info.id, hostIp: this.d.nodeAddress, portFor };
    const probed: Probed = {
      containerId: info.id,
      worker: new ProbeWorker({
        ...(c.startupProbe ? { startupProbe: c.startupProbe } : {}),
        ...(c.livenessProbe ? { livenessProbe: c.livenessProbe } : {}),
        ...(c.readinessProbe ? { readinessProbe: c.readinessProbe } : {}),
        run: (_kind, spec) => probe(spec, target, this.d.runtime),
        clock: realProbeClock,
        onResult: (state, detail) => {
          if (state === 'failed') {
            probed.failed = `${detail.probe} probe`;
            this.d.events.recordQuietly(
              pod as unknown as ApiObject,
              'Warning',
              'Unhealthy',
              `${cap(detail.probe)} probe failed: ${detail.message}`,
            );
          } else if (state === 'notReady' && detail.message) {
            this.d.events.recordQuietly(
              pod as unknown as ApiObject,
              'Warning',
              'Unhealthy',
              `Readiness probe failed: ${detail.message}`,
            );
          }
          this.d.requeue(this.uid, 0);
        },
        onStarted: () => this.d.requeue(this.uid, 0),
      }),
    };
    this.probes.set(info.id, probed);
    probed.worker.start(Date.parse(info.startedAt ?? '') || this.d.now());
  }

  private async stopProbes(containerId: string): Promise<void> {
    this.probes.get(containerId)?.worker.stop();
    this.probes.delete(containerId);
  }

  // ---- status ----

  private async writeStatus(obj: ApiObject, pod: Pod, observed: ObservedPod): Promise<void> {
    const states = new Map<string, { ready: boolean; started: boolean }>();
    for (const [name, o] of Object.entries(observed.containers)) {
      const p = o.info ? this.probes.get(o.info.id) : undefined;
      states.set(name, { ready: p?.worker.ready ?? false, started: p?.worker.started ?? false });
    }
    const status = computePodStatus(pod, observed, states, this.d.now());
    if (statusEqual(status, obj.status) || statusEqual(status, this.lastStatus)) return;
    try {
      await this.d.api.update({ ...obj, metadata: unguarded(obj), status }, {}, true);
      this.lastStatus = status;
    } catch (err) {
      if (err instanceof ApiError && err.code === ApiErrorCode.NotFound) return;
      throw err;
    }
  }

  // ---- termination ----

  /** The pod is being deleted: leave endpoints, stop with grace, remove, delete the object. */
  private async terminate(obj: ApiObject, existing: ContainerInfo[]): Promise<void> {
    const pod = asPod(obj);
    const running = existing.filter((c) => c.state === 'running' && c.labels[Labels.role] === 'container');
    if (running.length > 0) {
      // Not ready first, so endpoints drop the pod before its containers get SIGTERM.
      const status = markNotReady(obj.status, this.d.now());
      if (!statusEqual(status, obj.status)) {
        await this.d.api.update({ ...obj, metadata: unguarded(obj), status }, {}, true).catch(() => {});
      }
      // No preStop sleep needed: SIGTERM waits until the proxies stopped sending it traffic.
      await this.d.drain?.waitRemoved(obj);
      for (const c of running) {
        this.d.events.recordQuietly(
          obj,
          'Normal',
          'Killing',
          `Stopping container ${c.labels[Labels.container]}`,
        );
      }
    }
    const grace = pod.metadata.deletionGracePeriodSeconds ?? graceOf(pod);
    await this.teardown(existing, grace);
    try {
      await this.d.api.delete('pods', pod.metadata.namespace, pod.metadata.name as string, {
        gracePeriodSeconds: 0,
        preconditions: { uid: this.uid },
      });
    } catch (err) {
      const gone =
        err instanceof ApiError && (err.code === ApiErrorCode.NotFound || err.code === ApiErrorCode.Conflict);
      if (!gone) throw err;
    }
  }

  /** Stop (with `graceSeconds`) and remove every container of the pod; free what it held. */
  async teardown(existing: ContainerInfo[], graceSeconds: number, forget = true): Promise<void> {
    for (const id of [...this.probes.keys()]) await this.stopProbes(id);
    const containers = existing.filter((c) => c.labels[Labels.role] !== 'sandbox');
    await Promise.all(
      containers.map((c) => (c.state === 'running' ? this.d.runtime.stop(c.id, graceSeconds) : undefined)),
    );
    for (const c of existing) await this.d.runtime.remove(c.id);
    this.d.ports.release(this.uid);
    if (forget) {
      this.d.crashBackoff.forgetPrefix(`${this.uid}/`);
      await removePodDir(this.d.dataDir, this.uid).catch(() => {});
    }
    this.volumes = undefined;
  }
}

/** The object's metadata without resourceVersion: the agent owns pod status, last writer wins. */
function unguarded(obj: ApiObject): ApiObject['metadata'] {
  const { resourceVersion: _, ...meta } = obj.metadata;
  return meta;
}

function graceOf(pod: Pod): number {
  return pod.spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS;
}

function parsePorts(text: string | undefined): PortBinding[] {
  try {
    const v = JSON.parse(text ?? '[]') as PortBinding[];
    return Array.isArray(v) ? v : [];
  } catch {
    return [];
  }
}

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** The status with Ready and ContainersReady False (a terminating pod). */
function markNotReady(status: ApiObject['status'], now: number): Record<string, unknown> {
  const at = new Date(Math.floor(now / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  const conditions = ((status?.conditions as { type: string; status: string }[] | undefined) ?? []).map(
    (c) =>
      (c.type === 'Ready' || c.type === 'ContainersReady') && c.status !== 'False'
        ? { ...c, status: 'False', reason: 'PodTerminating', lastTransitionTime: at }
        : c,
  );
  return { ...status, conditions };
}
