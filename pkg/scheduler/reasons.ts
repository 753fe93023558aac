// Why a node was rejected, in Kubernetes' words (pkg/scheduler/framework/plugins/*), and the
// one-line summary an unschedulable pod's condition carries.

export const Reason = {
  NotReady: 'node(s) were not ready',
  Unschedulable: 'node(s) were unschedulable',
  InsufficientCpu: 'Insufficient cpu',
  InsufficientMemory: 'Insufficient memory',
  TooManyPods: 'Too many pods',
  NodeAffinity: "node(s) didn't match Pod's node affinity/selector",
  AntiAffinity: "node(s) didn't match pod anti-affinity rules",
  ExistingAntiAffinity: "node(s) didn't satisfy existing pods anti-affinity rules",
  HostPorts: "node(s) didn't have free ports for the requested pod ports",
} as const;

/** 'node(s) had untolerated taint {dedicated: db}', as Kubernetes' TaintToleration says. */
export const untoleratedTaint = (key: string, value: string | undefined): string =>
  `node(s) had untolerated taint {${key}: ${value ?? ''}}`;

export const NO_NODES = 'no nodes available to schedule pods';

/**
 * A refusal that holds for every node (Kubernetes' PreFilter): no count, as Kubernetes
 * writes it: '0/3 nodes are available: persistentvolumeclaim "data" not found.'
 */
export function summarizePodLevel(nodeCount: number, reason: string): string {
  return nodeCount === 0 ? NO_NODES : `0/${nodeCount} nodes are available: ${reason}.`;
}

/**
 * '0/3 nodes are available: 2 Insufficient memory, 1 node(s) had untolerated taint {dedicated: db}.'
 * A node rejected for several reasons counts once under each. Ordered by count, most first,
 * then by text, so the commonest cause leads (Kubernetes sorts the "N reason" strings as
 * text, which puts "10 ..." before "2 ..."; this order reads better and is as stable).
 */
export function summarize(nodeCount: number, filtered: Record<string, readonly string[]>): string {
  if (nodeCount === 0) return NO_NODES;
  const counts = new Map<string, number>();
  for (const reasons of Object.values(filtered)) {
    for (const r of reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  const parts = [...counts]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([r, n]) => `${n} ${r}`);
  return `0/${nodeCount} nodes are available: ${parts.join(', ')}.`;
}
