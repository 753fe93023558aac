// What the scheduler needs from a Pod, computed once per pod: requests in integer units,
// host ports, compiled selectors. Filters and scores then only compare numbers and sets.

import type { Container } from '../agent/container-spec.js';
import { matches, type Requirement, type Selector, selectorFromLabelSelector } from '../api/labels.js';
import { tryParseQuantity } from '../api/schema/quantity.js';
import type { NodeSelectorTerm, PodAffinityTerm, SchedulingPod, Toleration } from './types.js';

export const HOSTNAME_LABEL = 'kubernetes.io/hostname';

export interface HostPort {
  /** `${protocol}/${port}`: the key of the node's port table. */
  key: string;
  /** '0.0.0.0' when bound to every address. */
  ip: string;
}

/** A node selector term as two selectors: on the node's labels and on {metadata.name}. */
export interface CompiledTerm {
  labels: Selector;
  fields: Selector;
  /** A term without requirements matches nothing. */
  empty: boolean;
}

export interface AntiTerm {
  selector: Selector;
  /** undefined: every namespace. */
  namespaces: ReadonlySet<string> | undefined;
  topologyKey: string;
  /** 'key=value' of one In requirement every matching pod has, for index look-ups. */
  indexKey: string | undefined;
}

export interface PodInfo {
  key: string;
  namespace: string;
  labels: Record<string, string>;
  /** uid of the controller ownerReference (the ReplicaSet), if any. */
  ownerUid: string | undefined;
  /** Millicores. */
  cpu: number;
  /** Bytes. */
  memory: number;
  ports: HostPort[];
  nodeSelector: Selector | undefined;
  /** undefined: no required node affinity; else ORed terms. */
  required: CompiledTerm[] | undefined;
  preferred: { weight: number; term: CompiledTerm }[];
  tolerations: Toleration[];
  anti: AntiTerm[];
  nodeName: string | undefined;
  /** Names of the PersistentVolumeClaims its volumes use. */
  claims: string[];
}

export const podKey = (pod: SchedulingPod): string =>
  `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name ?? ''}`;

// Kubernetes rounds cpu up to whole millicores and memory up to whole bytes.
const milli = (q: unknown): number => {
  const v = tryParseQuantity(q);
  return v === undefined || v <= 0 ? 0 : Math.ceil(v * 1000 - 1e-9);
};
const bytes = (q: unknown): number => {
  const v = tryParseQuantity(q);
  return v === undefined || v <= 0 ? 0 : Math.ceil(v);
};

// A request left out while a limit is set defaults to the limit (Kubernetes' defaulting).
const request = (c: Container, name: string): unknown =>
  c.resources?.requests?.[name] ?? c.resources?.limits?.[name];

/** Sum over containers; init containers run one at a time, so the largest of them counts if bigger. */
export function podRequests(pod: SchedulingPod): { cpu: number; memory: number } {
  let cpu = 0;
  let memory = 0;
  for (const c of pod.spec.containers ?? []) {
    cpu += milli(request(c, 'cpu'));
    memory += bytes(request(c, 'memory'));
  }
  for (const c of pod.spec.initContainers ?? []) {
    cpu = Math.max(cpu, milli(request(c, 'cpu')));
    memory = Math.max(memory, bytes(request(c, 'memory')));
  }
  return { cpu, memory };
}

function hostPorts(pod: SchedulingPod): HostPort[] {
  const out: HostPort[] = [];
  for (const c of pod.spec.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (!p.hostPort) continue;
      const ip = p.hostIP === undefined || p.hostIP === '' ? '0.0.0.0' : p.hostIP;
      out.push({ key: `${p.protocol ?? 'TCP'}/${p.hostPort}`, ip });
    }
  }
  return out;
}

export function compileTerm(term: NodeSelectorTerm): CompiledTerm {
  const req = (e: { key: string; operator: string; values?: string[] }): Requirement => ({
    key: e.key,
    operator: e.operator as Requirement['operator'],
    values: e.values ?? [],
  });
  const labels = (term.matchExpressions ?? []).map(req);
  const fields = (term.matchFields ?? []).map(req);
  return { labels, fields, empty: labels.length === 0 && fields.length === 0 };
}

/** Whether a node (its labels and name) satisfies one compiled term. */
export function termMatches(t: CompiledTerm, labels: Record<string, string>, name: string): boolean {
  if (t.empty || !matches(t.labels, labels)) return false;
  return t.fields.length === 0 || matches(t.fields, { 'metadata.name': name });
}

function compileAnti(term: PodAffinityTerm, namespace: string): AntiTerm {
  // A term without a labelSelector selects no pod (Kubernetes), so it can never conflict.
  const selector = selectorFromLabelSelector(term.labelSelector);
  let namespaces: Set<string> | undefined;
  if (term.namespaces && term.namespaces.length > 0) namespaces = new Set(term.namespaces);
  else if (term.namespaceSelector === undefined) namespaces = new Set([namespace]);
  const first = selector.find((r) => r.operator === 'In' && r.values.length === 1);
  return {
    selector,
    namespaces,
    topologyKey: term.topologyKey,
    indexKey: first ? `${first.key}=${first.values[0]}` : undefined,
  };
}

/** Whether an anti-affinity term selects a pod with these labels in this namespace. */
export function antiSelects(t: AntiTerm, namespace: string, labels: Record<string, string>): boolean {
  return (t.namespaces === undefined || t.namespaces.has(namespace)) && matches(t.selector, labels);
}

export function podInfo(pod: SchedulingPod): PodInfo {
  const namespace = pod.metadata.namespace ?? 'default';
  const { cpu, memory } = podRequests(pod);
  const spec = pod.spec;
  const na = spec.affinity?.nodeAffinity;
  const requiredTerms = na?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  const nodeSelector = spec.nodeSelector;
  return {
    key: podKey(pod),
    namespace,
    labels: pod.metadata.labels ?? {},
    ownerUid: pod.metadata.ownerReferences?.find((r) => r.controller)?.uid,
    cpu,
    memory,
    ports: hostPorts(pod),
    nodeSelector:
      nodeSelector && Object.keys(nodeSelector).length > 0
        ? Object.entries(nodeSelector).map(([key, v]) => ({ key, operator: 'In' as const, values: [v] }))
        : undefined,
    required: requiredTerms ? requiredTerms.map(compileTerm) : undefined,
    preferred: (na?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((p) => ({
      weight: p.weight,
      term: compileTerm(p.preference),
    })),
    tolerations: spec.tolerations ?? [],
    anti: (spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []).map((t) =>
      compileAnti(t, namespace),
    ),
    nodeName: spec.nodeName,
    claims: (spec.volumes ?? []).flatMap((v) =>
      v.persistentVolumeClaim ? [v.persistentVolumeClaim.claimName] : [],
    ),
  };
}
