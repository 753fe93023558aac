// Shared pieces of the node-failure chaos tests: a 3-node cluster with the agent (real
// berth-node processes, pods on the local Docker engine), a Deployment of busybox web pods,
// "a dead VM" (SIGKILL the node and remove its containers), who leads Raft, and counts of
// what the API and the engine hold for one Deployment.
//
// Ownership: everything here touches only this cluster's processes (by pid, through
// BerthCluster) and containers (by the berth.io/cluster label); destroy() removes both and
// drops any partition rule, whatever state a test left the nodes in.
import type { ApiClient } from '../../pkg/client/api-client.js';
import { type Client, createClient } from '../../pkg/client/client.js';
import {
  AgentEnv,
  BUSYBOX,
  docker,
  isReady,
  type Json,
  NAMESPACE,
  waitFor,
} from '../support/agent-helpers.js';

export { docker, isReady, type Json, NAMESPACE, waitFor };

export const CLUSTER_LABEL = 'berth.io/cluster';
export const NODE_LABEL = 'berth.io/node';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface WebDeploymentOptions {
  replicas: number;
  /** Changes the template (an env var), so a new value starts a rollout. */
  version?: string;
  maxSurge?: number | string;
  maxUnavailable?: number | string;
  terminationGracePeriodSeconds?: number;
  /** Keep the pods off these nodes (required node affinity on kubernetes.io/hostname). */
  avoidNodes?: string[];
}

/** A Deployment of busybox httpd pods, Ready once GET / answers on 8080. */
export function webDeployment(name: string, o: WebDeploymentOptions): Json {
  const affinity =
    o.avoidNodes && o.avoidNodes.length > 0
      ? {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                {
                  matchExpressions: [
                    { key: 'kubernetes.io/hostname', operator: 'NotIn', values: o.avoidNodes },
                  ],
                },
              ],
            },
          },
        }
      : undefined;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NAMESPACE, labels: { app: name } },
    spec: {
      replicas: o.replicas,
      selector: { matchLabels: { app: name } },
      strategy: {
        type: 'RollingUpdate',
        rollingUpdate: { maxSurge: o.maxSurge ?? 1, maxUnavailable: o.maxUnavailable ?? 0 },
      },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: o.terminationGracePeriodSeconds ?? 2,
          ...(affinity ? { affinity } : {}),
          containers: [
            {
              name: 'web',
              image: BUSYBOX,
              imagePullPolicy: 'Never',
              command: ['sh', '-c', 'echo ok > /tmp/index.html && exec httpd -f -p 8080 -h /tmp'],
              env: [{ name: 'VERSION', value: o.version ?? 'v1' }],
              ports: [{ name: 'http', containerPort: 8080 }],
              readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
            },
          ],
        },
      },
    },
  };
}

export interface EngineContainer {
  id: string;
  state: string;
  podName: string;
  podUid: string;
  node: string;
  role: string;
}

/** Containers of a cluster on the engine (one `docker ps`, labels from its format). */
export async function clusterContainers(
  clusterId: string,
  labels: Record<string, string> = {},
): Promise<EngineContainer[]> {
  const filters = Object.entries({ [CLUSTER_LABEL]: clusterId, ...labels }).flatMap(([k, v]) => [
    '--filter',
    `label=${k}=${v}`,
  ]);
  const format = [
    '{{.ID}}',
    '{{.State}}',
    '{{.Label "berth.io/pod-name"}}',
    '{{.Label "berth.io/pod-uid"}}',
    '{{.Label "berth.io/node"}}',
    '{{.Label "berth.io/role"}}',
  ].join('\t');
  const r = await docker('ps', '-a', '--no-trunc', ...filters, '--format', format);
  if (r.code !== 0) throw new Error(`docker ps failed: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [id = '', state = '', podName = '', podUid = '', node = '', role = ''] = l.split('\t');
      return { id, state, podName, podUid, node, role };
    });
}

/** Pods (by uid) of Deployment `name` that have a running app container on the engine. */
export async function runningDeploymentPods(clusterId: string, name: string): Promise<EngineContainer[]> {
  const all = await clusterContainers(clusterId);
  return all.filter(
    (c) => c.role === 'container' && c.state === 'running' && c.podName.startsWith(`${name}-`),
  );
}

/** A 3-node cluster with the agent, plus the faults and views the chaos tests need. */
export class ChaosEnv {
  private readonly store: Client;
  private focused: ApiClient | undefined;

  private constructor(readonly env: AgentEnv) {
    this.store = createClient({
      endpoints: env.cluster.endpoints(true),
      requestTimeoutMs: 1000,
      dialTimeoutMs: 500,
      retries: 0,
    });
  }

  static async start(size = 3): Promise<ChaosEnv> {
    const env = await AgentEnv.start(size);
    const c = new ChaosEnv(env);
    try {
      await c.waitNodesReady(env.cluster.nodes.map((_, i) => i));
    } catch (err) {
      await c.destroy();
      throw err;
    }
    return c;
  }

  get cluster() {
    return this.env.cluster;
  }

  /** The API client the helpers use: every node's, or those of focus(). */
  get api(): ApiClient {
    return this.focused ?? this.env.api;
  }

  /**
   * Talk only to these nodes until unfocus(): a stopped (SIGSTOP) node accepts connections
   * and never answers, so a client that may pick it waits out a deadline per call.
   */
  focus(nodes: number[]): void {
    this.unfocus();
    this.focused = this.env.clientOf(nodes);
  }

  unfocus(): void {
    this.focused?.close();
    this.focused = undefined;
  }

  get id(): string {
    return this.env.id;
  }

  get size(): number {
    return this.env.cluster.nodes.length;
  }

  nodeName(i: number): string {
    return this.env.nodeName(i);
  }

  indexOf(nodeName: string): number {
    return this.cluster.nodes.findIndex((n) => n.name === nodeName);
  }

  running(i: number): boolean {
    return this.cluster.node(i).proc !== undefined;
  }

  /** The node every answering member names as Raft leader (they must agree), or undefined. */
  async leader(): Promise<number | undefined> {
    const all = await this.store.cluster.statusAll();
    const ids = all.map((s) => s.status?.header.memberId);
    const named = all.flatMap((s) => (s.status ? [s.status.leader] : []));
    if (named.length === 0 || named[0] === '0' || named.some((l) => l !== named[0])) return undefined;
    const i = ids.indexOf(named[0]);
    return i >= 0 ? i : undefined;
  }

  waitLeader(timeoutMs = 20_000): Promise<number> {
    return waitFor('a Raft leader all running members agree on', () => this.leader(), timeoutMs, 100);
  }

  /** The machine died: SIGKILL the node process, then remove every container it ran. */
  async killMachine(i: number): Promise<void> {
    await this.cluster.kill(i);
    await this.removeContainers({ [NODE_LABEL]: this.nodeName(i) });
  }

  /** Remove this cluster's containers (with the extra labels, if any). Nobody else's. */
  async removeContainers(labels: Record<string, string> = {}): Promise<void> {
    const left = await clusterContainers(this.id, labels).catch(() => []);
    if (left.length > 0) await docker('rm', '-f', '-v', ...left.map((c) => c.id));
  }

  async readyCondition(nodeName: string): Promise<string | undefined> {
    const node = (await this.api.get('nodes', undefined, nodeName)) as Json;
    return (node.status?.conditions ?? []).find((c: Json) => c.type === 'Ready')?.status;
  }

  async waitNodesReady(nodes: number[], timeoutMs = 60_000): Promise<void> {
    await waitFor(
      `nodes ${nodes.map((i) => this.nodeName(i)).join(',')} Ready`,
      async () => {
        for (const i of nodes) if ((await this.readyCondition(this.nodeName(i))) !== 'True') return false;
        return true;
      },
      timeoutMs,
      250,
    );
  }

  /** Pods of Deployment `name` (by its app label), not terminating. */
  async livePods(name: string): Promise<Json[]> {
    const list = await this.api.list('pods', { namespace: NAMESPACE, labelSelector: `app=${name}` });
    return (list.items as Json[]).filter((p) => !p.metadata.deletionTimestamp);
  }

  /**
   * Wait until Deployment `name` has exactly `replicas` pods, all Ready, none on `avoid`
   * nodes; returns them.
   */
  async waitDeploymentReady(
    name: string,
    replicas: number,
    timeoutMs = 60_000,
    avoid: string[] = [],
  ): Promise<Json[]> {
    return waitFor(
      `${replicas} Ready pods of ${name}${avoid.length ? ` off ${avoid.join(',')}` : ''}`,
      async () => {
        const pods = await this.livePods(name);
        const ok =
          pods.length === replicas &&
          pods.every((p) => isReady(p) && !avoid.includes(p.spec.nodeName as string));
        return ok ? pods : false;
      },
      timeoutMs,
      200,
    );
  }

  /** Where the pods of `name` run: node name → count. */
  async placement(name: string): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const p of await this.livePods(name)) {
      const n = (p.spec.nodeName as string | undefined) ?? '(unscheduled)';
      out[n] = (out[n] ?? 0) + 1;
    }
    return out;
  }

  logTail(i: number, lines = 40): Promise<string> {
    return this.env.logTail(i, lines);
  }

  logLines(i: number, text: string): Promise<string[]> {
    return this.env.logLines(i, text);
  }

  /** Resume paused nodes, drop partitions, stop every node, remove every container of the cluster. */
  async destroy(): Promise<void> {
    for (let i = 0; i < this.size; i++) this.cluster.resume(i);
    await this.cluster.heal();
    this.unfocus();
    this.store.close();
    await this.env.destroy();
    await this.removeContainers();
  }
}
