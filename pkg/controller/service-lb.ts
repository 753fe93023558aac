// The LoadBalancer status controller, Berth's stand-in for a cloud's service controller:
// every node serves every Service's node ports (pkg/proxy), so a LoadBalancer Service is
// reachable at the address of any node that can take traffic. Its status.loadBalancer.ingress
// lists those nodes' addresses, [{ ip }] sorted; other types have it cleared. It also gives
// Services stored before allocation existed their cluster IP and node ports. Nodes count
// when Ready, schedulable (not cordoned) and not labelled out of external load balancers.
//
//   service event ─────────────────────────► its key
//   node event that changes the address list ─► every LoadBalancer Service's key
//   reconcile: desired ingress from the cached nodes ─► UpdateStatus when different

import { isIPv4 } from 'node:net';
import { CLIENT_ADDRESS_ANNOTATION } from '../agent/node-registration.js';
import { jsonEqual } from '../api/merge.js';
import { needsAllocation } from '../api/server/service-alloc.js';
import type { ApiObject, JsonObject } from '../api/types.js';
import { type Informer, keyOf } from './informer.js';
import type { ControllerContext, ControllerDefinition } from './manager.js';
import type { Reconciler } from './runner.js';

/** Kubernetes' label that keeps a node out of every load balancer. */
export const EXCLUDE_FROM_LB_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';

export interface LoadBalancerIngress {
  ip: string;
}

interface NodeView {
  spec?: { unschedulable?: boolean };
  status?: {
    conditions?: { type?: string; status?: string }[];
    addresses?: { type?: string; address?: string }[];
  };
}

/** The host of `host:port` or `[v6]:port`. */
function hostOf(address: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(address) ?? /^([^:]+)(?::\d+)?$/.exec(address);
  return m?.[1] ?? address;
}

/**
 * Where a node takes traffic: its InternalIP, else the host of the client address its agent
 * annotated it with; undefined when the node may not take load-balanced traffic.
 */
export function nodeIngressAddress(node: ApiObject): string | undefined {
  const view = node as NodeView;
  if (node.metadata.deletionTimestamp || view.spec?.unschedulable === true) return undefined;
  if (node.metadata.labels?.[EXCLUDE_FROM_LB_LABEL] !== undefined) return undefined;
  const ready = (view.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
  if (!ready) return undefined;
  const internal = (view.status?.addresses ?? []).find((a) => a.type === 'InternalIP' && a.address);
  const address = internal?.address ?? hostOf(node.metadata.annotations?.[CLIENT_ADDRESS_ANNOTATION] ?? '');
  return address !== '' ? address : undefined;
}

/** IPv4 addresses in numeric order, anything else after them as text. */
function compareAddresses(a: string, b: string): number {
  const v4 = (s: string) => (isIPv4(s) ? s.split('.').reduce((n, o) => n * 256 + Number(o), 0) : undefined);
  const x = v4(a);
  const y = v4(b);
  if (x !== undefined && y !== undefined) return x - y;
  if (x !== undefined) return -1;
  if (y !== undefined) return 1;
  return a.localeCompare(b);
}

/** The ingress of every LoadBalancer Service: the addresses of the nodes that take traffic. */
export function desiredIngress(nodes: readonly ApiObject[]): LoadBalancerIngress[] {
  const addresses = new Set<string>();
  for (const n of nodes) {
    const a = nodeIngressAddress(n);
    if (a !== undefined) addresses.add(a);
  }
  return [...addresses].sort(compareAddresses).map((ip) => ({ ip }));
}

const isLoadBalancer = (svc: ApiObject) =>
  (svc.spec as { type?: string } | undefined)?.type === 'LoadBalancer';

const ingressOf = (svc: ApiObject): unknown[] => {
  const lb = (svc.status as { loadBalancer?: { ingress?: unknown[] } } | undefined)?.loadBalancer;
  return Array.isArray(lb?.ingress) ? lb.ingress : [];
};

export class ServiceLoadBalancerReconciler implements Reconciler {
  readonly name = 'service-lb';
  private readonly services: Informer;
  private readonly nodes: Informer;
  /** The ingress list as of the last node event, so node heartbeats do not requeue every Service. */
  private lastIngress: LoadBalancerIngress[] | undefined;

  constructor(
    private readonly ctx: ControllerContext,
    enqueue: (key: string) => void,
  ) {
    this.services = ctx.informers.get('services');
    this.nodes = ctx.informers.get('nodes');
    this.services.on({
      add: (svc) => enqueue(keyOf(svc)),
      update: (_old, svc) => enqueue(keyOf(svc)),
    });
    const nodesChanged = () => {
      const ingress = desiredIngress(this.nodes.list());
      if (this.lastIngress !== undefined && jsonEqual(ingress, this.lastIngress)) return;
      this.lastIngress = ingress;
      for (const svc of this.services.list()) if (isLoadBalancer(svc)) enqueue(keyOf(svc));
    };
    this.nodes.on({ add: nodesChanged, update: nodesChanged, delete: nodesChanged });
  }

  initialKeys(): string[] {
    return this.services.list().map(keyOf);
  }

  async reconcile(key: string): Promise<undefined> {
    const svc = this.services.get(key);
    if (!svc) return undefined;
    if (!svc.metadata.deletionTimestamp && needsAllocation(svc, svc)) {
      // Stored before Berth allocated addresses (an upgrade): a plain update allocates them.
      // The new version comes back through the watch and is looked at again.
      await this.ctx.api.update(svc);
      return undefined;
    }
    const desired = isLoadBalancer(svc) ? desiredIngress(this.nodes.list()) : [];
    if (jsonEqual(ingressOf(svc), desired)) return undefined;
    const loadBalancer: JsonObject =
      desired.length > 0 ? { ingress: desired as unknown as JsonObject[] } : {};
    // The cached copy carries its resourceVersion: a stale cache is a conflict, retried once
    // the watch has caught up.
    await this.ctx.api.update({ ...svc, status: { ...svc.status, loadBalancer } }, {}, true);
    return undefined;
  }
}

export const serviceLoadBalancerController: ControllerDefinition = {
  name: 'service-lb',
  create: (ctx, enqueue) => new ServiceLoadBalancerReconciler(ctx, enqueue),
};
