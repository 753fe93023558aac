// What the node running a pod answers about it from the engine: logs, exec, usage. The
// gRPC edge (grpc-pods.ts) forwards requests for other nodes' pods to those nodes.

import os from 'node:os';
import { ApiError, ApiErrorCode, badRequest, notFound } from '../api/errors.js';
import type { ApiObject } from '../api/types.js';
import {
  type ContainerInfo,
  type ContainerRuntime,
  type ExecResult,
  Labels,
  type LogOptions,
} from './runtime.js';

export interface PodIOOptions {
  runtime: ContainerRuntime;
  /** Labels every container of this node carries (cluster and node). */
  nodeLabels: Record<string, string>;
}

export interface ContainerUsage {
  name: string;
  cpuCores: number;
  memoryBytes: number;
}

export interface PodUsage {
  namespace: string;
  name: string;
  containers: ContainerUsage[];
}

const podRef = (pod: ApiObject) => `pod "${pod.metadata.name}"`;

/** The spec container a request means: the one named, or the only one. */
export function containerOf(pod: ApiObject, name: string | undefined): string {
  const names = ((pod.spec?.containers as { name: string }[] | undefined) ?? []).map((c) => c.name);
  if (name) {
    if (!names.includes(name)) {
      throw badRequest(
        `container ${name} is not valid for ${podRef(pod)}; choose one of: [${names.join(' ')}]`,
      );
    }
    return name;
  }
  if (names.length === 1) return names[0] as string;
  throw badRequest(
    `a container name must be specified for ${podRef(pod)}, choose one of: [${names.join(' ')}]`,
  );
}

export class PodIO {
  private lastCpu: { idle: number; total: number } | undefined;

  constructor(private readonly o: PodIOOptions) {}

  /** This pod's instances of a container, newest first. */
  async instances(pod: ApiObject, container: string): Promise<ContainerInfo[]> {
    const list = await this.o.runtime.list({
      ...this.o.nodeLabels,
      [Labels.podUid]: pod.metadata.uid as string,
      [Labels.container]: container,
    });
    return list.sort((a, b) => Number(b.labels[Labels.attempt] ?? 0) - Number(a.labels[Labels.attempt] ?? 0));
  }

  async logs(
    pod: ApiObject,
    container: string | undefined,
    previous: boolean,
    options: LogOptions,
  ): Promise<NodeJS.ReadableStream> {
    const name = containerOf(pod, container);
    const all = await this.instances(pod, name);
    const chosen = previous ? all[1] : all[0];
    if (!chosen) {
      const what = previous ? 'previous terminated container' : 'container';
      throw notFound(`${what} "${name}" in ${podRef(pod)}`);
    }
    return this.o.runtime.logs(chosen.id, options);
  }

  async exec(
    pod: ApiObject,
    container: string | undefined,
    command: string[],
    timeoutMs: number,
  ): Promise<ExecResult> {
    if (command.length === 0) throw badRequest('exec needs a command');
    const name = containerOf(pod, container);
    const current = (await this.instances(pod, name))[0];
    if (current?.state !== 'running') {
      throw new ApiError(
        ApiErrorCode.BadRequest,
        `container ${name} in ${podRef(pod)} is not running; exec needs a running container`,
      );
    }
    return this.o.runtime.exec(current.id, command, timeoutMs);
  }

  /** Usage of every pod running here (from one stats sample of each container). */
  async topPods(): Promise<PodUsage[]> {
    const running = (await this.o.runtime.list(this.o.nodeLabels)).filter(
      (c) => c.state === 'running' && c.labels[Labels.role] === 'container',
    );
    const pods = new Map<string, PodUsage>();
    await Promise.all(
      running.map(async (c) => {
        const stats = await this.o.runtime.stats(c.id).catch(() => undefined);
        if (!stats) return;
        const key = `${c.labels[Labels.podNamespace]}/${c.labels[Labels.podName]}`;
        let p = pods.get(key);
        if (!p) {
          p = {
            namespace: c.labels[Labels.podNamespace] ?? '',
            name: c.labels[Labels.podName] ?? '',
            containers: [],
          };
          pods.set(key, p);
        }
        p.containers.push({
          name: c.labels[Labels.container] ?? '',
          cpuCores: stats.cpuCores,
          memoryBytes: stats.memoryBytes,
        });
      }),
    );
    return [...pods.values()].sort((a, b) =>
      `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`),
    );
  }

  /** The machine's usage: CPU cores busy since the last call, memory in use. */
  nodeUsage(): { cpuCores: number; memoryBytes: number; cpuCapacity: number; memoryCapacity: number } {
    const cpus = os.cpus();
    let idle = 0;
    let total = 0;
    for (const c of cpus) {
      idle += c.times.idle;
      total += c.times.user + c.times.nice + c.times.sys + c.times.irq + c.times.idle;
    }
    const prev = this.lastCpu;
    this.lastCpu = { idle, total };
    const busy = prev && total > prev.total ? 1 - (idle - prev.idle) / (total - prev.total) : 0;
    return {
      cpuCores: Math.max(0, busy * cpus.length),
      memoryBytes: os.totalmem() - os.freemem(),
      cpuCapacity: cpus.length,
      memoryCapacity: os.totalmem(),
    };
  }
}
