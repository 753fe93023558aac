// Feasibility: a chain of small checks, each answering why a node cannot take the pod, or
// undefined when it can. Kubernetes' order (cheap and common rejections first); a node stops
// at the first check that fails, as kube-scheduler does, so each node has one cause.

import { matches } from '../api/labels.js';
import { antiSelects, HOSTNAME_LABEL, type PodInfo, termMatches } from './pod-info.js';
import { Reason, untoleratedTaint } from './reasons.js';
import { getOrCreate, type NodeInfo, type Snapshot } from './snapshot.js';
import type { Taint, Toleration } from './types.js';
import { type PodVolumes, podVolumes, volumeBindingReason } from './volume-binding.js';

/** Per-pod facts computed once before the node loop (anti-affinity needs the whole snapshot). */
export interface FilterContext {
  pod: PodInfo;
  /** topologyKey -> domain values where this pod's own anti-affinity terms select a pod. */
  ownDomains: Map<string, Set<string>>;
  /** topologyKey -> domain values where a bound pod's anti-affinity term selects this pod. */
  existingDomains: Map<string, Set<string>>;
  /** The pod's claims; undefined when it uses none. */
  volumes: PodVolumes | undefined;
}

export type Filter = (ctx: FilterContext, node: NodeInfo) => string | readonly string[] | undefined;

/** Kubernetes' Toleration.ToleratesTaint. */
export function tolerates(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.key && t.key !== taint.key) return false;
  if (t.operator === 'Exists') return true;
  return (t.operator === undefined || t.operator === 'Equal') && (t.value ?? '') === (taint.value ?? '');
}

export const toleratedBy = (tolerations: readonly Toleration[], taint: Taint): boolean =>
  tolerations.some((t) => tolerates(t, taint));

const UNSCHEDULABLE_TAINT: Taint = { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' };

export const nodeReady: Filter = ({ pod }, node) => {
  if (!node.ready) return Reason.NotReady;
  // A cordoned node still takes pods that tolerate its taint (DaemonSets do).
  if (node.unschedulable && !toleratedBy(pod.tolerations, UNSCHEDULABLE_TAINT)) return Reason.Unschedulable;
  return undefined;
};

export const taintToleration: Filter = ({ pod }, node) => {
  for (const taint of node.hardTaints) {
    if (!toleratedBy(pod.tolerations, taint)) return untoleratedTaint(taint.key, taint.value);
  }
  return undefined;
};

export const nodeAffinity: Filter = ({ pod }, node) => {
  if (pod.nodeSelector && !matches(pod.nodeSelector, node.labels)) return Reason.NodeAffinity;
  if (pod.required && !pod.required.some((t) => termMatches(t, node.labels, node.name)))
    return Reason.NodeAffinity;
  return undefined;
};

export const hostPorts: Filter = ({ pod }, node) => {
  for (const hp of pod.ports) {
    const ips = node.ports.get(hp.key);
    if (!ips) continue;
    // 0.0.0.0 on either side takes the port on every address.
    if (hp.ip === '0.0.0.0' || ips.has(hp.ip) || ips.has('0.0.0.0')) return Reason.HostPorts;
  }
  return undefined;
};

export const resourcesFit: Filter = ({ pod }, node) => {
  const pods = node.pods.size + 1 > node.allocPods;
  const cpu = pod.cpu > 0 && pod.cpu > node.allocCpu - node.reqCpu;
  const memory = pod.memory > 0 && pod.memory > node.allocMemory - node.reqMemory;
  if (!pods && !cpu && !memory) return undefined;
  const out: string[] = [];
  if (pods) out.push(Reason.TooManyPods);
  if (cpu) out.push(Reason.InsufficientCpu);
  if (memory) out.push(Reason.InsufficientMemory);
  return out;
};

const inDomain = (domains: Map<string, Set<string>>, node: NodeInfo): boolean => {
  for (const [key, values] of domains) {
    const v = key === HOSTNAME_LABEL ? (node.labels[key] ?? node.name) : node.labels[key];
    if (v !== undefined && values.has(v)) return true;
  }
  return false;
};

export const podAntiAffinity: Filter = (ctx, node) => {
  if (ctx.existingDomains.size > 0 && inDomain(ctx.existingDomains, node)) return Reason.ExistingAntiAffinity;
  if (ctx.ownDomains.size > 0 && inDomain(ctx.ownDomains, node)) return Reason.AntiAffinity;
  return undefined;
};

export const volumeBinding: Filter = ({ volumes }, node) =>
  volumes ? volumeBindingReason(volumes, node) : undefined;

/** In Kubernetes' order. */
export const FILTERS: readonly Filter[] = [
  nodeReady,
  taintToleration,
  nodeAffinity,
  hostPorts,
  resourcesFit,
  volumeBinding,
  podAntiAffinity,
];

// A node's value for a topology key; hostname falls back to the node name (agents set both).
const domainOf = (node: NodeInfo, key: string): string | undefined =>
  key === HOSTNAME_LABEL ? (node.labels[key] ?? node.name) : node.labels[key];

const addDomain = (m: Map<string, Set<string>>, key: string, value: string | undefined): void => {
  if (value === undefined) return;
  const set = getOrCreate(m, key, () => new Set());
  set.add(value);
};

/**
 * The anti-affinity domains for one pod: O(nodes) index look-ups for its own terms, and only
 * the bound pods' terms that could select it (indexed by a label they require) for the others.
 */
export function filterContext(pod: PodInfo, snapshot: Snapshot): FilterContext {
  const ownDomains = new Map<string, Set<string>>();
  for (const term of pod.anti) {
    for (const node of snapshot.nodes()) {
      const candidates = term.indexKey === undefined ? node.pods.values() : node.byLabel.get(term.indexKey);
      if (!candidates) continue;
      for (const other of candidates) {
        if (other.key !== pod.key && antiSelects(term, other.namespace, other.labels)) {
          addDomain(ownDomains, term.topologyKey, domainOf(node, term.topologyKey));
          break;
        }
      }
    }
  }
  const existingDomains = new Map<string, Set<string>>();
  for (const e of snapshot.antiCandidates(pod.labels)) {
    if (e.pod.key !== pod.key && antiSelects(e.term, pod.namespace, pod.labels))
      addDomain(existingDomains, e.term.topologyKey, domainOf(e.node, e.term.topologyKey));
  }
  return { pod, ownDomains, existingDomains, volumes: podVolumes(pod, snapshot.storage) };
}
