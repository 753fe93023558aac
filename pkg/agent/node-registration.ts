// The node's presence in the cluster: its Node object (capacity and allocatable from the OS,
// labels, taints, addresses, system info, conditions) and a Lease renewed every heartbeat,
// the way the kubelet reports itself. The Lease is cheap (one small write a second) and is
// what the node lifecycle controller watches; the full status is rewritten less often, or
// at once when something in it changes.

import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { Logger } from 'pino';
import { ApiError, ApiErrorCode } from '../api/errors.js';
import type { ApiServer } from '../api/server/api-server.js';
import type { ApiObject } from '../api/types.js';
import { BERTH_VERSION } from '../version.js';
import type { ContainerRuntime } from './runtime.js';

/** Where node Leases live, as kube-node-lease does in Kubernetes. */
export const NODE_LEASE_NAMESPACE = 'berth-node-lease';
/** The node's client (gRPC) address, for requests served by the node itself (logs, exec). */
export const CLIENT_ADDRESS_ANNOTATION = 'berth.io/client-address';
/** Pods per node, Kubernetes' default. */
export const DEFAULT_MAX_PODS = 110;

export interface NodeRegistrationOptions {
  api: ApiServer;
  runtime: ContainerRuntime;
  nodeName: string;
  /** The node's address (127.0.0.N locally): where its pods' ports are published. */
  address: string;
  clientAddress: string;
  labels: Record<string, string>;
  /** Annotations the node owns (the local-path root), set on every registration. */
  annotations?: Record<string, string>;
  taints: { key: string; value?: string; effect: string }[];
  heartbeatMs: number;
  statusMs: number;
  logger: Logger;
  now?: () => number;
}

/** RFC 3339 with microseconds, as Kubernetes writes MicroTime (Lease renewTime). */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

const rfc3339 = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

function osImage(): string {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text)?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}

function readId(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };

/** What the machine has, as Node status.capacity: CPU cores, memory (Ki), pods. */
export function machineCapacity(): Record<string, string> {
  return {
    cpu: String(os.cpus().length),
    memory: `${Math.floor(os.totalmem() / 1024)}Ki`,
    pods: String(DEFAULT_MAX_PODS),
  };
}

export class NodeRegistration {
  private readonly now: () => number;
  private readonly stopped = new AbortController();
  private lastStatusAt = 0;
  private runtimeVersion = 'unknown';
  private readyCondition:
    | { status: 'True' | 'False'; reason: string; message: string; since: number }
    | undefined;

  constructor(private readonly o: NodeRegistrationOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Labels every node carries, then the user's (which may override none of the first). */
  labels(): Record<string, string> {
    return {
      ...this.o.labels,
      'kubernetes.io/hostname': this.o.nodeName,
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': ARCH[process.arch] ?? process.arch,
    };
  }

  /** Report the node Ready (or not, with why); written at the next status round. */
  setReady(ready: boolean, reason: string, message: string): void {
    const status = ready ? 'True' : 'False';
    if (this.readyCondition?.status === status && this.readyCondition.reason === reason) return;
    this.readyCondition = { status, reason, message, since: this.now() };
    this.lastStatusAt = 0;
  }

  /** Register (create or adopt the Node object), then heartbeat until stop(). */
  async run(): Promise<void> {
    this.runtimeVersion = await this.o.runtime.version().catch(() => 'unknown');
    const signal = this.stopped.signal;
    while (!signal.aborted) {
      try {
        await this.ensureNode();
        break;
      } catch (err) {
        this.o.logger.warn({ err }, 'cannot register the node yet; retrying');
        await sleep(1000, signal);
      }
    }
    while (!signal.aborted) {
      try {
        // A renewal stuck on a leader that just died must not hold the next ones back: give
        // each at most two heartbeats, then go on (it may still land; renewals are unguarded).
        await withTimeout(this.renewLease(), this.o.heartbeatMs * 2);
        if (this.now() - this.lastStatusAt >= this.o.statusMs) {
          await withTimeout(this.writeStatus(), this.o.heartbeatMs * 2);
        }
      } catch (err) {
        const transient = err instanceof ApiError && err.code === ApiErrorCode.Unavailable;
        if (err instanceof HeartbeatTimeout || transient) this.o.logger.debug({ err }, 'heartbeat delayed');
        else this.o.logger.warn({ err }, 'heartbeat failed');
      }
      await sleep(this.o.heartbeatMs, signal);
    }
  }

  stop(): void {
    this.stopped.abort();
  }

  private async ensureNode(): Promise<void> {
    const { api, nodeName } = this.o;
    let current: ApiObject | undefined;
    try {
      current = await api.get('nodes', undefined, nodeName);
    } catch (err) {
      if (!(err instanceof ApiError && err.code === ApiErrorCode.NotFound)) throw err;
    }
    if (!current) {
      await api.create({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: nodeName,
          labels: this.labels(),
          annotations: { ...this.o.annotations, [CLIENT_ADDRESS_ANNOTATION]: this.o.clientAddress },
        },
        spec: this.o.taints.length > 0 ? { taints: this.o.taints } : {},
      });
      this.o.logger.info({ node: nodeName }, 'registered the node');
    } else {
      // A node that comes back keeps what others set (cordon, taints added later), and
      // updates what is its own: labels it owns and its address.
      const meta = current.metadata;
      const labels = { ...meta.labels, ...this.labels() };
      const annotations = {
        ...meta.annotations,
        ...this.o.annotations,
        [CLIENT_ADDRESS_ANNOTATION]: this.o.clientAddress,
      };
      await api.update({ ...current, metadata: { ...meta, labels, annotations } });
    }
    this.lastStatusAt = 0;
    await this.writeStatus();
  }

  private async writeStatus(): Promise<void> {
    const { api, nodeName } = this.o;
    const node = await api.get('nodes', undefined, nodeName);
    const now = this.now();
    const ready = this.readyCondition ?? {
      status: 'True' as const,
      reason: 'AgentReady',
      message: 'berth agent is posting ready status',
      since: now,
    };
    const prev =
      (node.status?.conditions as { type: string; status: string; lastTransitionTime?: string }[]) ?? [];
    const transition = (type: string, status: string, since: number) => {
      const p = prev.find((c) => c.type === type);
      return p && p.status === status && p.lastTransitionTime ? p.lastTransitionTime : rfc3339(since);
    };
    const pressure = (type: string, reason: string, message: string) => ({
      type,
      status: 'False',
      reason,
      message,
      lastHeartbeatTime: rfc3339(now),
      lastTransitionTime: transition(type, 'False', now),
    });
    const capacity = machineCapacity();
    const status = {
      capacity,
      allocatable: capacity,
      conditions: [
        pressure('MemoryPressure', 'AgentHasSufficientMemory', 'berth agent has sufficient memory available'),
        pressure('DiskPressure', 'AgentHasNoDiskPressure', 'berth agent has no disk pressure'),
        pressure('PIDPressure', 'AgentHasSufficientPID', 'berth agent has sufficient PID available'),
        {
          type: 'Ready',
          status: ready.status,
          reason: ready.reason,
          message: ready.message,
          lastHeartbeatTime: rfc3339(now),
          lastTransitionTime: transition('Ready', ready.status, ready.since),
        },
      ],
      addresses: [
        { type: 'InternalIP', address: this.o.address },
        { type: 'Hostname', address: nodeName },
      ],
      nodeInfo: {
        machineID: readId('/etc/machine-id'),
        systemUUID: readId('/sys/class/dmi/id/product_uuid'),
        bootID: readId('/proc/sys/kernel/random/boot_id'),
        kernelVersion: os.release(),
        osImage: osImage(),
        containerRuntimeVersion: this.runtimeVersion,
        kubeletVersion: `v${BERTH_VERSION}-berth`,
        operatingSystem: 'linux',
        architecture: ARCH[process.arch] ?? process.arch,
      },
      daemonEndpoints: { kubeletEndpoint: { Port: Number(this.o.clientAddress.split(':').pop()) } },
    };
    await api.update({ ...node, status }, {}, true);
    this.lastStatusAt = now;
  }

  private async renewLease(): Promise<void> {
    const { api, nodeName } = this.o;
    const spec = {
      holderIdentity: nodeName,
      leaseDurationSeconds: Math.max(1, Math.ceil((this.o.heartbeatMs * 40) / 1000)),
      renewTime: microTime(this.now()),
    };
    // Unguarded: this node is the Lease's only writer, and renewals may overlap (see run()).
    const lease: ApiObject = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: nodeName, namespace: NODE_LEASE_NAMESPACE },
      spec,
    };
    try {
      await api.update(lease);
    } catch (err) {
      if (!(err instanceof ApiError && err.code === ApiErrorCode.NotFound)) throw err;
      await api.create(lease);
    }
  }
}

class HeartbeatTimeout extends Error {}

/** `p`, or a HeartbeatTimeout after `ms` (p goes on; its outcome is then ignored). */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HeartbeatTimeout(`no answer within ${ms} ms`)), ms);
  });
  p.catch(() => {});
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
