// Shapes the scheduler reads from Pods and Nodes (Kubernetes' field names), and what it answers.
// The API server has validated and defaulted the objects, so a cast is enough to read them.

import type { PodSpec } from '../agent/container-spec.js';
import type { ObjectMeta } from '../api/types.js';

export type TaintEffect = 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';

export interface Taint {
  key: string;
  value?: string;
  effect: TaintEffect;
}

export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  /** Empty matches every effect. */
  effect?: TaintEffect | '';
  tolerationSeconds?: number;
}

export interface NodeSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';
  values?: string[];
}

/** Requirements ANDed; a term without any requirement matches no node (as in Kubernetes). */
export interface NodeSelectorTerm {
  matchExpressions?: NodeSelectorRequirement[];
  /** Only the field metadata.name is supported, as in Kubernetes. */
  matchFields?: NodeSelectorRequirement[];
}

export interface PodAffinityTerm {
  labelSelector?: {
    matchLabels?: Record<string, string>;
    matchExpressions?: { key: string; operator: string; values?: string[] }[];
  };
  /** Empty (with no namespaceSelector): the pod's own namespace. */
  namespaces?: string[];
  /** Only `{}` (every namespace) is understood: the core has no Namespace objects. */
  namespaceSelector?: Record<string, unknown>;
  topologyKey: string;
}

export interface Affinity {
  nodeAffinity?: {
    requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms: NodeSelectorTerm[] };
    preferredDuringSchedulingIgnoredDuringExecution?: { weight: number; preference: NodeSelectorTerm }[];
  };
  podAntiAffinity?: {
    requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[];
  };
}

export interface SchedulingPodSpec extends PodSpec {
  nodeSelector?: Record<string, string>;
  affinity?: Affinity;
  tolerations?: Toleration[];
}

/** A Pod as the scheduler reads it. An ApiObject of kind Pod can be passed as it is. */
export interface SchedulingPod {
  metadata: ObjectMeta;
  spec: SchedulingPodSpec;
  status?: Record<string, unknown>;
}

/** A Node as the scheduler reads it. */
export interface SchedulingNode {
  metadata: ObjectMeta;
  spec?: { unschedulable?: boolean; taints?: Taint[] };
  status?: {
    allocatable?: Record<string, string | number>;
    capacity?: Record<string, string | number>;
    conditions?: { type: string; status: string }[];
  };
}

/** Score plugin weights; the total is the weighted sum of 0-100 scores. */
export interface ScoreWeights {
  leastAllocated: number;
  ownerSpread: number;
  nodeAffinity: number;
  taintToleration: number;
}

/** One feasible node's scores (each 0-100) and the weighted total. */
export interface NodeScore {
  node: string;
  total: number;
  leastAllocated: number;
  ownerSpread: number;
  nodeAffinity: number;
  taintToleration: number;
}

interface Explanation {
  /** Nodes rejected by a filter, with the reasons (Kubernetes' strings, see reasons.ts). */
  filtered: Record<string, string[]>;
  /** Feasible nodes with their scores, in snapshot order. */
  scores: NodeScore[];
}

export type ScheduleResult =
  | ({
      node: string;
      unschedulable?: undefined;
      /**
       * Claims (namespace/name) of a WaitForFirstConsumer class with no node yet: to be
       * annotated with volume.kubernetes.io/selected-node = node before the pod is bound.
       */
      claimsToSelect?: string[];
    } & Explanation)
  | ({ node?: undefined; unschedulable: string; claimsToSelect?: undefined } & Explanation);
