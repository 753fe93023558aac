// Where the autoscaler reads pods' usage from. The controller sees only this interface; the
// berth-node gives it one backed by the agents (pod-metrics-top.ts), tests a fake.

import type { Selector } from '../api/labels.js';

export interface ContainerMetrics {
  name: string;
  cpuMillicores: number;
  memoryBytes: number;
}

/** One pod's usage, as one sample of each of its running containers. */
export interface PodMetrics {
  /** The pod's name (in the namespace asked for). */
  pod: string;
  /** When the sample was taken (ms since the epoch). */
  timestamp: number;
  /** How long the sample measured cpu over (ms); Docker's stats cover about a second. */
  windowMs?: number;
  containers: ContainerMetrics[];
}

/**
 * Usage of the pods of `namespace` whose labels match `selector`. Pods no node reported are
 * absent (the autoscaler counts them as "missing"); a rejection means no answer at all.
 * Implementations may take a few seconds (the agents sample the engine); the autoscaler
 * calls it once per autoscaler per sync period.
 */
export interface PodMetricsSource {
  podMetrics(namespace: string, selector: Selector): Promise<PodMetrics[]>;
}
