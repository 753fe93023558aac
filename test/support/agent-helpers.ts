// Helpers for the agent's cluster tests: a real BerthCluster with the agent on (pods become
// real Docker containers on the local engine), an object API client, pod builders, polling
// waits, and small wrappers around the `docker` CLI to look at what the agent made.
//
// Traffic goes only to loopback: pods are reached at their published nodeAddress:hostPort
// (status.endpoints), never at a container's bridge address.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { ApiError, ApiErrorCode } from '../../pkg/api/errors.js';
import { type ApiClient, createApiClient } from '../../pkg/client/api-client.js';
import { BerthCluster } from './berth-cluster.js';

/** The test image: a root filesystem holding Debian's busybox-static, built locally. */
export const BUSYBOX = 'berth/busybox:test';
/** An image on a loopback registry nobody listens on: every pull of it fails at once. */
export const UNPULLABLE = '127.0.0.1:1/nothing/here:1';
export const NAMESPACE = 'default';

// biome-ignore lint/suspicious/noExplicitAny: pod status and events are checked field by field
export type Json = any;

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the docker CLI; never rejects (the exit code is in the result). */
export function docker(...args: string[]): Promise<DockerResult> {
  return new Promise((resolve) => {
    execFile('docker', args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** docker exec <id> <cmd...>: the command's exit code and output. */
export function dockerExec(id: string, command: string[]): Promise<DockerResult> {
  return docker('exec', id, ...command);
}

/** docker inspect of one container, parsed; undefined when it does not exist. */
export async function inspectContainer(id: string): Promise<Json | undefined> {
  const r = await docker('inspect', '--type', 'container', id);
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as Json[])[0];
}

export interface EngineContainer {
  id: string;
  name: string;
  state: string;
  labels: Record<string, string>;
}

/** Containers (running or not) carrying every given label. */
export async function containersWith(labels: Record<string, string>): Promise<EngineContainer[]> {
  const filters = Object.entries(labels).flatMap(([k, v]) => ['--filter', `label=${k}=${v}`]);
  const r = await docker('ps', '-a', '--no-trunc', ...filters, '--format', '{{.ID}}');
  if (r.code !== 0) throw new Error(`docker ps failed: ${r.stderr}`);
  const ids = r.stdout.split('\n').filter((s) => s !== '');
  if (ids.length === 0) return [];
  const out: EngineContainer[] = [];
  for (const id of ids) {
    const c = await inspectContainer(id);
    if (!c) continue; // removed in between
    out.push({
      id: c.Id,
      name: String(c.Name).replace(/^\//, ''),
      state: c.State.Status,
      labels: c.Config.Labels ?? {},
    });
  }
  return out;
}

export interface HttpResult {
  status: number;
  body: string;
}

/** GET http://host:port/path (loopback only); rejects on a connection error. */
export function httpGet(host: string, port: number, path = '/', timeoutMs = 3000): Promise<HttpResult> {
  if (!host.startsWith('127.')) throw new Error(`refusing to send traffic to ${host}: loopback only`);
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${host}:${port}${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Poll `check` until it returns something other than undefined/false, and return that.
 * On time-out the error names what was awaited and the last value seen (or the last error).
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${seen})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface PodOptions {
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  terminationGracePeriodSeconds?: number;
  volumes?: Json[];
  labels?: Record<string, string>;
}

/** A Pod already bound to `nodeName` (there is no scheduler yet). */
export function podManifest(name: string, nodeName: string, containers: Json[], o: PodOptions = {}): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NAMESPACE, labels: { app: 'agent-test', ...o.labels } },
    spec: {
      nodeName,
      containers,
      ...(o.restartPolicy ? { restartPolicy: o.restartPolicy } : {}),
      ...(o.terminationGracePeriodSeconds !== undefined
        ? { terminationGracePeriodSeconds: o.terminationGracePeriodSeconds }
        : {}),
      ...(o.volumes ? { volumes: o.volumes } : {}),
    },
  };
}

/** A busybox container running `script` with sh -c. */
export function shContainer(name: string, script: string, extra: Json = {}): Json {
  return { name, image: BUSYBOX, imagePullPolicy: 'Never', command: ['sh', '-c', script], ...extra };
}

export const conditionOf = (pod: Json, type: string): Json =>
  (pod?.status?.conditions ?? []).find((c: Json) => c.type === type);

export const isReady = (pod: Json): boolean => conditionOf(pod, 'Ready')?.status === 'True';

/** The engine id of a container from its status (containerID is docker://<id>). */
export function containerIdOf(pod: Json, name: string): string | undefined {
  const s = (pod?.status?.containerStatuses ?? []).find((c: Json) => c.name === name);
  const id = s?.containerID as string | undefined;
  return id?.replace(/^docker:\/\//, '');
}

export const statusOf = (pod: Json, name: string): Json =>
  (pod?.status?.containerStatuses ?? []).find((c: Json) => c.name === name);

/** A cluster of berth-nodes running the agent, with an API client and cleanup of what tests made. */
export class AgentEnv {
  private readonly createdPods = new Set<string>();
  private readonly createdOthers: { resource: string; name: string }[] = [];
  private clusterId: string | undefined;

  private constructor(
    readonly cluster: BerthCluster,
    readonly api: ApiClient,
  ) {}

  static async start(size = 3, extraArgs: string[] = []): Promise<AgentEnv> {
    const cluster = await BerthCluster.start({ size, agent: true, extraArgs });
    const api = createApiClient({ endpoints: cluster.endpoints() });
    const env = new AgentEnv(cluster, api);
    try {
      // The object API serves once there is a leader; each agent registers its Node.
      await waitFor(
        'every node to register',
        async () => (await api.list('nodes')).items.length === size || undefined,
        30_000,
      );
      env.clusterId = await env.readClusterId();
    } catch (err) {
      await env.destroy();
      throw err;
    }
    return env;
  }

  nodeName(i: number): string {
    return this.cluster.node(i).name;
  }

  nodeAddress(i: number): string {
    return this.cluster.node(i).address;
  }

  /** The cluster id every container of this cluster is labelled with (berth.io/cluster). */
  get id(): string {
    if (!this.clusterId) throw new Error('cluster id not known yet');
    return this.clusterId;
  }

  private async readClusterId(): Promise<string> {
    const text = await readFile(join(this.cluster.node(0).dataDir, 'member.json'), 'utf8');
    return (JSON.parse(text) as { clusterId: string }).clusterId;
  }

  /** A client that talks to the given nodes only (the others may be down). */
  clientOf(nodes: number[]): ApiClient {
    return createApiClient({ endpoints: nodes.map((i) => this.cluster.node(i).clientAddress) });
  }

  async createPod(manifest: Json): Promise<Json> {
    this.createdPods.add(manifest.metadata.name);
    return this.api.create(manifest);
  }

  async create(resource: string, manifest: Json): Promise<Json> {
    this.createdOthers.push({ resource, name: manifest.metadata.name });
    return this.api.create(manifest);
  }

  async getPod(name: string): Promise<Json | undefined> {
    try {
      return await this.api.get('pods', NAMESPACE, name);
    } catch (err) {
      if (err instanceof ApiError && err.code === ApiErrorCode.NotFound) return undefined;
      throw err;
    }
  }

  /** Poll the pod until `check(pod)` holds; returns the pod. */
  async waitPod(
    name: string,
    what: string,
    check: (pod: Json) => boolean,
    timeoutMs = 30_000,
  ): Promise<Json> {
    return waitFor(
      `pod ${name}: ${what}`,
      async () => {
        const p = await this.getPod(name);
        return p && check(p) ? p : undefined;
      },
      timeoutMs,
    );
  }

  /** Wait until the pod runs with every container ready. */
  waitRunningReady(name: string, timeoutMs = 30_000): Promise<Json> {
    return this.waitPod(
      name,
      'Running and Ready',
      (p) => p.status?.phase === 'Running' && isReady(p),
      timeoutMs,
    );
  }

  /** Events about a pod (involvedObject.name). */
  async eventsOf(podName: string): Promise<Json[]> {
    const list = await this.api.list('events', {
      namespace: NAMESPACE,
      fieldSelector: `involvedObject.name=${podName}`,
    });
    return list.items as Json[];
  }

  /** Containers of this cluster belonging to the pod with `uid` (sandbox included). */
  podContainers(uid: string): Promise<EngineContainer[]> {
    return containersWith({ 'berth.io/cluster': this.id, 'berth.io/pod-uid': uid });
  }

  /** The tail of a node's log, for assertion messages. */
  logTail(i: number, lines = 40): Promise<string> {
    return this.cluster.tail(this.cluster.node(i), lines);
  }

  /** Lines of a node's log containing `text`. */
  async logLines(i: number, text: string): Promise<string[]> {
    const all = await readFile(this.cluster.node(i).logFile, 'utf8').catch(() => '');
    return all.split('\n').filter((l) => l.includes(text));
  }

  /**
   * Delete the pods and objects the tests made (through the API, so the agents tear the
   * containers down), stop the cluster, then remove whatever containers of this cluster are
   * left. Containers of other clusters are never touched.
   */
  async destroy(): Promise<void> {
    try {
      const running = this.cluster.endpoints().length > 0;
      if (running) {
        await Promise.allSettled(
          [...this.createdPods].map((name) =>
            this.api.delete('pods', NAMESPACE, name, { gracePeriodSeconds: 0 }),
          ),
        );
        await waitFor(
          'the test pods to be gone',
          async () => {
            const list = await this.api.list('pods', { namespace: NAMESPACE });
            return list.items.every((p) => !this.createdPods.has(p.metadata.name as string)) || undefined;
          },
          15_000,
        ).catch(() => undefined);
        await Promise.allSettled(
          this.createdOthers.map((o) => this.api.delete(o.resource, NAMESPACE, o.name)),
        );
      }
    } finally {
      this.api.close();
      await this.cluster.destroy();
      if (this.clusterId) {
        const left = await containersWith({ 'berth.io/cluster': this.clusterId }).catch(() => []);
        if (left.length > 0) await docker('rm', '-f', '-v', ...left.map((c) => c.id));
      }
    }
  }
}

/** Every watch event of one pod, from now on, in order (to see states a poll could miss). */
export class PodRecorder {
  readonly events: { type: string; pod: Json; at: number }[] = [];
  private readonly handle: { cancel(): void };

  constructor(api: ApiClient, name: string) {
    this.handle = api.watch(
      'pods',
      { namespace: NAMESPACE, fieldSelector: `metadata.name=${name}` },
      (e) => this.events.push({ type: e.type, pod: e.object, at: Date.now() }),
      () => undefined,
    );
  }

  /** The waiting reasons of container `name`, in the order seen, without repeats in a row. */
  waitingReasons(container: string): string[] {
    const out: string[] = [];
    for (const e of this.events) {
      const r = statusOf(e.pod, container)?.state?.waiting?.reason as string | undefined;
      if (r && out.at(-1) !== r) out.push(r);
    }
    return out;
  }

  stop(): void {
    this.handle.cancel();
  }
}

/** Poll `check` for `ms`; throws as soon as it does not hold (a negative assertion over time). */
export async function holds(
  what: string,
  check: () => Promise<boolean> | boolean,
  ms: number,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!(await check())) throw new Error(`${what}: did not hold for ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
