// From a Pod (as the API server stores it) to what the runtime is asked to make: engine
// names, labels, limits, and the spec hash that tells the agent a container must be
// replaced. Also the TypeScript shapes of the Pod fields the agent reads; the server has
// validated and defaulted them (pkg/api/schema/pod.ts, container.ts), so a cast is enough.

import { createHash } from 'node:crypto';
import { parseQuantity } from '../api/schema/quantity.js';
import type { ApiObject, ObjectMeta } from '../api/types.js';
import {
  type ContainerSpec,
  Labels,
  MANAGED_BY,
  type Mount,
  type PortBinding,
  type SandboxSpec,
} from './runtime.js';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface KeySelector {
  name: string;
  key: string;
  optional?: boolean;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    configMapKeyRef?: KeySelector;
    secretKeyRef?: KeySelector;
    fieldRef?: { apiVersion?: string; fieldPath: string };
  };
}

export interface EnvFromSource {
  prefix?: string;
  configMapRef?: { name: string; optional?: boolean };
  secretRef?: { name: string; optional?: boolean };
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  hostPort?: number;
  hostIP?: string;
  protocol?: Protocol;
}

export interface ProbeSpec {
  exec?: { command?: string[] };
  httpGet?: {
    path?: string;
    port: number | string;
    host?: string;
    scheme?: 'HTTP' | 'HTTPS';
    httpHeaders?: { name: string; value: string }[];
  };
  tcpSocket?: { port: number | string; host?: string };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  subPath?: string;
  readOnly?: boolean;
}

export type ResourceList = Record<string, string | number>;

export interface Container {
  name: string;
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: EnvVar[];
  envFrom?: EnvFromSource[];
  ports?: ContainerPort[];
  resources?: { limits?: ResourceList; requests?: ResourceList };
  livenessProbe?: ProbeSpec;
  readinessProbe?: ProbeSpec;
  startupProbe?: ProbeSpec;
  volumeMounts?: VolumeMount[];
}

export interface KeyToPath {
  key: string;
  path: string;
  mode?: number;
}

export interface Volume {
  name: string;
  emptyDir?: { medium?: string; sizeLimit?: string | number };
  hostPath?: { path: string; type?: string };
  configMap?: { name: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean };
  secret?: { secretName: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean };
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean };
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  terminationGracePeriodSeconds?: number;
  nodeName?: string;
  hostname?: string;
  subdomain?: string;
  serviceAccountName?: string;
  enableServiceLinks?: boolean;
}

export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: PodSpec;
  status?: Record<string, unknown>;
}

/** A stored Pod seen through its typed shape (the server validated and defaulted it). */
export function asPod(o: ApiObject): Pod {
  return o as unknown as Pod;
}

// Docker names: [a-zA-Z0-9][a-zA-Z0-9_.-]*. Kubernetes names already fit; this guards the rest.
const clean = (s: string) => s.replace(/[^a-zA-Z0-9_.-]/g, '-');

function podPrefix(pod: Pod): string {
  const m = pod.metadata;
  return `berth_${clean(m.namespace ?? 'default')}_${clean(m.name ?? '')}_${clean((m.uid ?? '').slice(0, 8))}`;
}

/** berth_<namespace>_<pod>_<uid first 8>_<container>_<attempt>: unique per start of a container. */
export function containerName(pod: Pod, name: string, attempt: number): string {
  return `${podPrefix(pod)}_${clean(name)}_${attempt}`;
}

/** berth_<namespace>_<pod>_<uid first 8>_sandbox (a container named 'sandbox' still ends in _<attempt>). */
export function sandboxName(pod: Pod): string {
  return `${podPrefix(pod)}_sandbox`;
}

/** Fields whose change needs a new container (Kubernetes hashes the whole container; probes don't matter here). */
const HASHED = [
  'image',
  'command',
  'args',
  'workingDir',
  'env',
  'envFrom',
  'ports',
  'resources',
  'volumeMounts',
] as const;

// JSON with sorted keys, and empty arrays/objects dropped so a defaulted `env: []` hashes like none.
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const c = canonical((v as Record<string, unknown>)[k]);
      if (c === undefined || (Array.isArray(c) && c.length === 0)) continue;
      if (c !== null && typeof c === 'object' && !Array.isArray(c) && Object.keys(c).length === 0) continue;
      out[k] = c;
    }
    return out;
  }
  return v;
}

/** A short stable hash (12 hex) of the container fields that need a new container when changed. */
export function specHash(container: Container): string {
  const picked: Record<string, unknown> = {};
  for (const f of HASHED) picked[f] = container[f];
  return createHash('sha256')
    .update(JSON.stringify(canonical(picked)))
    .digest('hex')
    .slice(0, 12);
}

function quantity(q: string | number | undefined): number | undefined {
  if (q === undefined) return undefined;
  return typeof q === 'number' ? q : parseQuantity(q);
}

function podLabels(pod: Pod, nodeName: string): Record<string, string> {
  return {
    [Labels.managedBy]: MANAGED_BY,
    [Labels.node]: nodeName,
    [Labels.podUid]: pod.metadata.uid ?? '',
    [Labels.podName]: pod.metadata.name ?? '',
    [Labels.podNamespace]: pod.metadata.namespace ?? 'default',
  };
}

export interface ContainerSpecContext {
  /** NAME=value pairs from resolveEnv. */
  env: string[];
  mounts: Mount[];
  sandboxId: string;
  nodeName: string;
  /** Starts of this spec container before this one (restartCount). */
  attempt: number;
}

export function toContainerSpec(pod: Pod, container: Container, ctx: ContainerSpecContext): ContainerSpec {
  const spec: ContainerSpec = {
    name: containerName(pod, container.name, ctx.attempt),
    image: container.image,
    env: ctx.env,
    labels: {
      ...podLabels(pod, ctx.nodeName),
      [Labels.container]: container.name,
      [Labels.role]: 'container',
      [Labels.attempt]: String(ctx.attempt),
      [Labels.specHash]: specHash(container),
    },
    mounts: ctx.mounts,
    sandboxId: ctx.sandboxId,
  };
  if (container.command?.length) spec.command = container.command;
  if (container.args?.length) spec.args = container.args;
  if (container.workingDir) spec.workingDir = container.workingDir;
  const limits = container.resources?.limits ?? {};
  const cpu = quantity(limits.cpu);
  const memory = quantity(limits.memory);
  if (cpu !== undefined && cpu > 0) spec.cpuLimit = cpu;
  // Bytes are whole; a fractional quantity ('1.5Ki' is whole, '0.1' is not) rounds up as Kubernetes does.
  if (memory !== undefined && memory > 0) spec.memoryLimit = Math.ceil(memory);
  return spec;
}

/** The pod's hostname: spec.hostname, else its name cut to a 63-character label (as the kubelet does). */
export function podHostname(pod: Pod): string {
  if (pod.spec.hostname) return pod.spec.hostname;
  return (pod.metadata.name ?? '').slice(0, 63).replace(/[-.]+$/, '');
}

/**
 * The sandbox of a pod. Ports without a host address (or bound to every address) are put on
 * the node's address: traffic only ever goes to the node's own loopback address.
 */
export function sandboxSpec(
  pod: Pod,
  nodeName: string,
  nodeAddress: string,
  ports: PortBinding[],
): SandboxSpec {
  return {
    name: sandboxName(pod),
    labels: { ...podLabels(pod, nodeName), [Labels.role]: 'sandbox' },
    hostname: podHostname(pod),
    ports: ports.map((p) => ({
      ...p,
      hostIp: p.hostIp === '' || p.hostIp === '0.0.0.0' ? nodeAddress : p.hostIp,
    })),
  };
}
