// The schema registry: one entry per kind in kinds.ts. Adding a kind means writing its
// schema and one `register` call here; validation, defaults and explain need no change.

import type { KindInfo } from '../kinds.js';
import { KINDS } from '../kinds.js';
import {
  checkHorizontalPodAutoscaler,
  defaultHorizontalPodAutoscaler,
  HorizontalPodAutoscalerSpec,
  HorizontalPodAutoscalerStatus,
} from './autoscaling.js';
import {
  ConfigMapFields,
  checkConfigMap,
  checkSecret,
  EventFields,
  LeaseSpec,
  mergeStringData,
  NamespaceSpec,
  NamespaceStatus,
  NodeSpec,
  NodeStatus,
  SecretFields,
} from './core.js';
import { arr, type Issues, type Mutable, type ObjectSchema, obj, ref, type Schema, str } from './dsl.js';
import { dns1035Label, dnsLabel, dnsSubdomain } from './formats.js';
import { checkIngress, defaultIngress, IngressSpec, IngressStatus } from './ingress.js';
import { ObjectMeta } from './meta.js';
import { PodSpec, PodStatus } from './pod.js';
import { EndpointSubset, ServiceSpec, ServiceStatus } from './service.js';
import {
  checkStorageClass,
  PersistentVolumeClaimSpec,
  PersistentVolumeClaimStatus,
  PersistentVolumeSpec,
  PersistentVolumeStatus,
  StorageClassFields,
} from './storage.js';
import { DeploymentSpec, DeploymentStatus, ReplicaSetSpec, ReplicaSetStatus } from './workloads.js';

export { defaultPullPolicy } from './container.js';
export * from './dsl.js';
export * from './formats.js';
export * from './int-or-percent.js';
export * from './meta.js';
export * from './quantity.js';

export interface KindSchema {
  /** The whole object: apiVersion, kind, metadata and the kind's own fields. */
  root: ObjectSchema;
  /** The format metadata.name must have (the problem, or undefined). */
  nameFormat: (name: string) => string | undefined;
}

const REGISTRY = new Map<string, KindSchema>();
const keyOf = (apiVersion: string, kind: string) => `${apiVersion}|${kind}`;

interface RegisterOptions {
  nameFormat?: (name: string) => string | undefined;
  check?: (v: Record<string, unknown>, path: string, out: Issues) => void;
  defaults?: (obj: Mutable) => void;
}

function register(
  apiVersion: string,
  kind: string,
  description: string,
  fields: Record<string, Schema>,
  opts: RegisterOptions = {},
): void {
  const root = obj(
    kind,
    description,
    {
      apiVersion: str('APIVersion defines the versioned schema of this representation of an object.'),
      kind: str('Kind is a string value representing the REST resource this object represents.'),
      metadata: ref(ObjectMeta, "Standard object's metadata."),
      ...fields,
    },
    { ...(opts.check ? { check: opts.check } : {}), ...(opts.defaults ? { defaults: opts.defaults } : {}) },
  );
  REGISTRY.set(keyOf(apiVersion, kind), { root, nameFormat: opts.nameFormat ?? dnsSubdomain });
}

const spec = (s: ObjectSchema, d: string) => ref(s, d);
const status = (s: ObjectSchema, d: string) => ref(s, d);

register(
  'v1',
  'Namespace',
  'Namespace provides a scope for names.',
  {
    spec: spec(NamespaceSpec, 'Spec defines the behavior of the Namespace.'),
    status: status(NamespaceStatus, 'Status describes the current status of a Namespace. Read-only.'),
  },
  {
    nameFormat: dnsLabel,
    defaults: (o) => {
      if (o.status == null) o.status = {};
    },
  },
);
register('v1', 'Node', 'Node is a worker machine that runs pods.', {
  spec: spec(NodeSpec, 'Spec defines the behavior of a node.'),
  status: status(NodeStatus, 'Most recently observed status of the node. Reported by the node.'),
});
register('v1', 'Pod', 'Pod is a collection of containers that can run on a host.', {
  spec: spec(PodSpec, 'Specification of the desired behavior of the pod.'),
  status: status(PodStatus, 'Most recently observed status of the pod. Read-only.'),
});
register(
  'v1',
  'Service',
  'Service is a named abstraction of software service consisting of local port that the proxy listens on, and the selector that determines which pods will answer requests sent through the proxy.',
  {
    spec: spec(ServiceSpec, 'Spec defines the behavior of a service.'),
    status: status(ServiceStatus, 'Most recently observed status of the service. Read-only.'),
  },
  { nameFormat: dns1035Label },
);
register('v1', 'Endpoints', 'Endpoints is a collection of endpoints that implement the actual service.', {
  subsets: arr(EndpointSubset, 'The set of all endpoints: the union of all subsets.'),
});
register('v1', 'ConfigMap', 'ConfigMap holds configuration data for pods to consume.', ConfigMapFields, {
  check: checkConfigMap,
});
register('v1', 'Secret', 'Secret holds secret data of a certain type (at most 1 MiB).', SecretFields, {
  check: checkSecret,
  defaults: mergeStringData,
});
register('v1', 'Event', 'Event is a report of an event somewhere in the cluster.', EventFields);
register(
  'v1',
  'PersistentVolume',
  'PersistentVolume (PV) is a piece of storage in the cluster: a directory on a node (`local`, or `hostPath`), made by an administrator or by a provisioner, and bound to at most one claim.',
  {
    spec: spec(
      PersistentVolumeSpec,
      'Spec defines the volume: capacity, access modes, source, reclaim policy.',
    ),
    status: status(PersistentVolumeStatus, 'Status is the current phase of the volume. Read-only.'),
  },
);
register(
  'v1',
  'PersistentVolumeClaim',
  "PersistentVolumeClaim (PVC) is a user's request for a persistent volume, bound to one PersistentVolume and used by pods through `volumes[].persistentVolumeClaim`.",
  {
    spec: spec(
      PersistentVolumeClaimSpec,
      'Spec is what the claim asks for. Immutable after creation except resources.requests (growth).',
    ),
    status: status(PersistentVolumeClaimStatus, 'Status is the current state of the claim. Read-only.'),
  },
);
register(
  'storage.k8s.io/v1',
  'StorageClass',
  'StorageClass describes a class of storage: which provisioner makes its volumes, with what parameters and reclaim policy, and when claims of the class are bound.',
  StorageClassFields,
  { check: checkStorageClass },
);
register(
  'apps/v1',
  'ReplicaSet',
  'ReplicaSet ensures that a specified number of pod replicas are running at any given time.',
  {
    spec: spec(ReplicaSetSpec, 'Spec defines the desired behavior of the ReplicaSet.'),
    status: status(ReplicaSetStatus, 'Most recently observed status of the ReplicaSet. Read-only.'),
  },
);
register('apps/v1', 'Deployment', 'Deployment enables declarative updates for Pods and ReplicaSets.', {
  spec: spec(DeploymentSpec, 'Specification of the desired behavior of the Deployment.'),
  status: status(DeploymentStatus, 'Most recently observed status of the Deployment. Read-only.'),
});
register(
  'coordination.k8s.io/v1',
  'Lease',
  'Lease defines a lease concept (leader election, node heartbeats).',
  {
    spec: spec(LeaseSpec, 'Specification of the Lease.'),
  },
);
register(
  'networking.k8s.io/v1',
  'Ingress',
  'Ingress is a collection of rules that allow inbound connections to reach the endpoints defined by a backend. An Ingress can be configured to give services externally-reachable urls, load balance traffic and offer name based virtual hosting. Every berth-node serves Ingresses on its HTTP router; TLS is not terminated.',
  {
    spec: spec(
      IngressSpec,
      'Spec is the desired state of the Ingress: its rules, default backend and TLS settings.',
    ),
    status: status(IngressStatus, 'Status is the current state of the Ingress. Read-only.'),
  },
  { check: checkIngress, defaults: defaultIngress },
);

register(
  'autoscaling/v2',
  'HorizontalPodAutoscaler',
  "HorizontalPodAutoscaler is the configuration for a horizontal pod autoscaler, which automatically manages the replica count of a Deployment or ReplicaSet based on the pods' cpu or memory usage, as the agents measure it (`berthctl top`).",
  {
    spec: spec(
      HorizontalPodAutoscalerSpec,
      'Behaviour of the autoscaler: the target, the replica limits, the metrics and the scaling behavior.',
    ),
    status: status(HorizontalPodAutoscalerStatus, 'Current information about the autoscaler. Read-only.'),
  },
  { check: checkHorizontalPodAutoscaler, defaults: defaultHorizontalPodAutoscaler },
);

/** The schema entry of a kind, or undefined when none is registered. */
export function kindSchema(kind: Pick<KindInfo, 'apiVersion' | 'kind'>): KindSchema | undefined {
  return REGISTRY.get(keyOf(kind.apiVersion, kind.kind));
}

/** The schema of a kind's objects. Throws for a kind without one (a programming error). */
export function schemaOf(kind: Pick<KindInfo, 'apiVersion' | 'kind'>): ObjectSchema {
  const entry = kindSchema(kind);
  if (!entry) throw new Error(`no schema for ${kind.apiVersion}/${kind.kind}`);
  return entry.root;
}

/** Kinds in kinds.ts that have no schema yet (a test keeps this empty). */
export function kindsWithoutSchema(): string[] {
  return KINDS.filter((k) => !kindSchema(k)).map((k) => k.kind);
}
