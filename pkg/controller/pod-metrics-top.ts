// A PodMetricsSource backed by the agents, through the very call `berthctl top pods` makes:
// the Pods service's Top on one berth-node, which samples its own containers and forwards
// to every other node (pkg/agent/grpc-pods.ts). The autoscaler therefore sees exactly what
// `berthctl top pods` shows (cpu in cores turned into millicores, memory in bytes), the
// only difference being the rounding top applies for display.
//
// Top answers by namespace and knows no labels, so the selector is applied here, on the
// pods' labels as the caller's lister gives them.

import { matches, type Selector } from '../api/labels.js';
import type { ApiObject } from '../api/types.js';
import type { PodUsage, TopOptions } from '../client/pods-client.js';
import type { PodMetrics, PodMetricsSource } from './pod-metrics.js';

/** The part of PodsClient used here (a client to the node's own Pods service). */
export interface TopClient {
  top(options?: TopOptions): Promise<{ pods: PodUsage[] }>;
}

export interface TopPodMetricsSourceOptions {
  top: TopClient;
  /** The pods of a namespace, with their labels (the informer cache, or a List). */
  listPods(namespace: string): ApiObject[] | Promise<ApiObject[]>;
  /** Deadline of one Top call (ms): nodes sample their containers for a second or two. */
  timeoutMs?: number;
  now?: () => number;
}

/** Docker's one-shot stats compare two reads about a second apart. */
export const TOP_SAMPLE_WINDOW_MS = 1000;
const DEFAULT_TOP_TIMEOUT_MS = 30_000;

export function createTopPodMetricsSource(o: TopPodMetricsSourceOptions): PodMetricsSource {
  const now = o.now ?? Date.now;
  return {
    async podMetrics(namespace: string, selector: Selector): Promise<PodMetrics[]> {
      const [{ pods }, listed] = await Promise.all([
        o.top.top({ namespace, timeoutMs: o.timeoutMs ?? DEFAULT_TOP_TIMEOUT_MS }),
        o.listPods(namespace),
      ]);
      const selected = new Set(
        listed.filter((p) => matches(selector, p.metadata.labels)).map((p) => p.metadata.name as string),
      );
      const timestamp = now();
      return pods
        .filter((p) => p.namespace === namespace && selected.has(p.name))
        .map((p) => ({
          pod: p.name,
          timestamp,
          windowMs: TOP_SAMPLE_WINDOW_MS,
          containers: p.containers.map((c) => ({
            name: c.name,
            cpuMillicores: c.cpuCores * 1000,
            memoryBytes: c.memoryBytes,
          })),
        }));
    },
  };
}
