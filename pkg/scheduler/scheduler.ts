// The scheduling decision for one pod against a Snapshot: filters, then scores, then a
// seeded tie-break. Pure and synchronous: no clock, no I/O, no Math.random. The caller (the
// leader's scheduling loop) binds the answer through the API and calls snapshot.assume().

import { FILTERS, filterContext } from './filters.js';
import { podInfo } from './pod-info.js';
import { summarize, summarizePodLevel } from './reasons.js';
import {
  DEFAULT_WEIGHTS,
  leastAllocated,
  normalize,
  ownerCount,
  preferredAffinity,
  untoleratedSoftTaints,
} from './scores.js';
import type { NodeInfo, Snapshot } from './snapshot.js';
import type { NodeScore, ScheduleResult, SchedulingPod, ScoreWeights } from './types.js';

/** mulberry32: a small seeded PRNG giving uint32s; enough to break ties reproducibly. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

// murmur3's finaliser: mixes the draw with a node's name hash into an unbiased order.
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export interface SchedulerOptions {
  /** Seeds the tie-break: the same seed and the same calls give the same placements. */
  seed: number;
  weights?: Partial<ScoreWeights>;
}

export interface Scheduler {
  readonly weights: Readonly<ScoreWeights>;
  /**
   * Picks a node for `pod` (not yet bound) or says why none fits. Reads the snapshot, never
   * changes it: call snapshot.assume(pod, result.node) before scheduling the next pod.
   * Each call draws once from the seeded PRNG, so replaying the same calls replays the choices.
   */
  schedule(pod: SchedulingPod, snapshot: Snapshot): ScheduleResult;
}

export function createScheduler(options: SchedulerOptions): Scheduler {
  const weights: ScoreWeights = { ...DEFAULT_WEIGHTS, ...options.weights };
  const random = mulberry32(options.seed);

  function schedule(pod: SchedulingPod, snapshot: Snapshot): ScheduleResult {
    const p = podInfo(pod);
    const ctx = filterContext(p, snapshot);
    const nodes = snapshot.nodes();
    const draw = random();
    const filtered: Record<string, string[]> = {};
    const refusal = ctx.volumes?.refusal;
    if (refusal !== undefined) {
      for (const node of nodes) filtered[node.name] = [refusal];
      return { unschedulable: summarizePodLevel(nodes.length, refusal), filtered, scores: [] };
    }
    const feasible: NodeInfo[] = [];
    for (const node of nodes) {
      let rejected = false;
      for (const f of FILTERS) {
        const r = f(ctx, node);
        if (r === undefined) continue;
        filtered[node.name] = typeof r === 'string' ? [r] : [...r];
        rejected = true;
        break;
      }
      if (!rejected) feasible.push(node);
    }
    if (feasible.length === 0)
      return { unschedulable: summarize(nodes.length, filtered), filtered, scores: [] };

    // Raw values first: three plugins are normalised against the best/worst feasible node.
    const n = feasible.length;
    const owners = new Array<number>(n);
    const affinity = new Array<number>(n);
    const taints = new Array<number>(n);
    let maxOwners = 0;
    let maxAffinity = 0;
    let maxTaints = 0;
    for (let i = 0; i < n; i++) {
      const node = feasible[i] as NodeInfo;
      const o = ownerCount(p, node);
      const a = p.preferred.length > 0 ? preferredAffinity(p, node) : 0;
      const t = node.softTaints.length > 0 ? untoleratedSoftTaints(p, node) : 0;
      owners[i] = o;
      affinity[i] = a;
      taints[i] = t;
      if (o > maxOwners) maxOwners = o;
      if (a > maxAffinity) maxAffinity = a;
      if (t > maxTaints) maxTaints = t;
    }

    const scores: NodeScore[] = new Array(n);
    let best = '';
    let bestTotal = -1;
    let bestKey = 0;
    for (let i = 0; i < n; i++) {
      const node = feasible[i] as NodeInfo;
      const s: NodeScore = {
        node: node.name,
        total: 0,
        leastAllocated: leastAllocated(p, node),
        ownerSpread: normalize(owners[i] ?? 0, maxOwners, true),
        nodeAffinity: normalize(affinity[i] ?? 0, maxAffinity, false),
        taintToleration: normalize(taints[i] ?? 0, maxTaints, true),
      };
      s.total =
        weights.leastAllocated * s.leastAllocated +
        weights.ownerSpread * s.ownerSpread +
        weights.nodeAffinity * s.nodeAffinity +
        weights.taintToleration * s.taintToleration;
      scores[i] = s;
      // Ties: the node whose name hash, mixed with this call's draw, is smallest. Independent
      // of the order nodes were added, uniform over the tied nodes.
      const key = s.total === bestTotal || s.total > bestTotal ? fmix32(draw ^ node.hash) : 0;
      if (s.total > bestTotal || (s.total === bestTotal && key < bestKey)) {
        best = node.name;
        bestTotal = s.total;
        bestKey = key;
      }
    }
    const claimsToSelect = ctx.volumes?.toSelect ?? [];
    return { node: best, filtered, scores, ...(claimsToSelect.length > 0 ? { claimsToSelect } : {}) };
  }

  return { weights, schedule };
}
