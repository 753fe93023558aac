// Ranking: each score plugin gives a feasible node 0-100 (integers, as in Kubernetes, so
// near-equal nodes tie and the seeded tie-break spreads them). Plugins that compare nodes
// with each other (spread, affinity, taints) get a raw value first and are normalised over
// the feasible nodes, as Kubernetes' NormalizeScore does.

import { toleratedBy } from './filters.js';
import { type PodInfo, termMatches } from './pod-info.js';
import type { NodeInfo } from './snapshot.js';
import type { ScoreWeights } from './types.js';

/** kube-scheduler's default plugin weights for the matching plugins. */
export const DEFAULT_WEIGHTS: Readonly<ScoreWeights> = Object.freeze({
  leastAllocated: 1,
  ownerSpread: 2,
  nodeAffinity: 2,
  taintToleration: 3,
});

const free = (alloc: number, used: number): number =>
  alloc <= 0 ? 0 : Math.max(0, Math.floor(((alloc - used) * 100) / alloc));

/** NodeResourcesFit LeastAllocated: mean free fraction of cpu and memory once the pod is placed. */
export function leastAllocated(pod: PodInfo, node: NodeInfo): number {
  const cpu = free(node.allocCpu, node.reqCpu + pod.cpu);
  const mem = free(node.allocMemory, node.reqMemory + pod.memory);
  return Math.floor((cpu + mem) / 2);
}

/** Raw: pods of the same controller already on the node (fewer is better). */
export const ownerCount = (pod: PodInfo, node: NodeInfo): number =>
  pod.ownerUid === undefined ? 0 : (node.owners.get(pod.ownerUid) ?? 0);

/** Raw: sum of the weights of the preferred node affinity terms the node matches. */
export function preferredAffinity(pod: PodInfo, node: NodeInfo): number {
  let sum = 0;
  for (const p of pod.preferred) if (termMatches(p.term, node.labels, node.name)) sum += p.weight;
  return sum;
}

/** Raw: PreferNoSchedule taints the pod does not tolerate (fewer is better). */
export function untoleratedSoftTaints(pod: PodInfo, node: NodeInfo): number {
  let n = 0;
  for (const t of node.softTaints) if (!toleratedBy(pod.tolerations, t)) n++;
  return n;
}

/** Kubernetes' DefaultNormalizeScore: raw / max scaled to 0-100, reversed when less is better. */
export function normalize(raw: number, max: number, reverse: boolean): number {
  if (max === 0) return reverse ? 100 : 0;
  const s = Math.floor((raw * 100) / max);
  return reverse ? 100 - s : s;
}
