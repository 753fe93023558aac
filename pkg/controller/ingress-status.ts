// Ingress status: every node's router serves every Ingress (pkg/proxy), so an Ingress is
// reachable at the address of any node that takes load-balanced traffic — the same nodes a
// LoadBalancer Service lists (service-lb.ts). status.loadBalancer.ingress lists them.
//
//   ingress event ─────────────────────────► its key
//   node event that changes the address list ─► every Ingress's key
//   reconcile: desired ingress from the cached nodes ─► UpdateStatus when different

import { jsonEqual } from '../api/merge.js';
import type { ApiObject, JsonObject } from '../api/types.js';
import { type Informer, keyOf } from './informer.js';
import type { ControllerContext, ControllerDefinition } from './manager.js';
import type { Reconciler } from './runner.js';
import { desiredIngress, type LoadBalancerIngress } from './service-lb.js';

const ingressOf = (ing: ApiObject): unknown[] => {
  const lb = (ing.status as { loadBalancer?: { ingress?: unknown[] } } | undefined)?.loadBalancer;
  return Array.isArray(lb?.ingress) ? lb.ingress : [];
};

export class IngressStatusReconciler implements Reconciler {
  readonly name = 'ingress-status';
  private readonly ingresses: Informer;
  private readonly nodes: Informer;
  private lastIngress: LoadBalancerIngress[] | undefined;

  constructor(
    private readonly ctx: ControllerContext,
    enqueue: (key: string) => void,
  ) {
    this.ingresses = ctx.informers.get('ingresses');
    this.nodes = ctx.informers.get('nodes');
    this.ingresses.on({
      add: (ing) => enqueue(keyOf(ing)),
      update: (_old, ing) => enqueue(keyOf(ing)),
    });
    const nodesChanged = () => {
      const ingress = desiredIngress(this.nodes.list());
      if (this.lastIngress !== undefined && jsonEqual(ingress, this.lastIngress)) return;
      this.lastIngress = ingress;
      for (const ing of this.ingresses.list()) enqueue(keyOf(ing));
    };
    this.nodes.on({ add: nodesChanged, update: nodesChanged, delete: nodesChanged });
  }

  initialKeys(): string[] {
    return this.ingresses.list().map(keyOf);
  }

  async reconcile(key: string): Promise<undefined> {
    const ing = this.ingresses.get(key);
    if (!ing || ing.metadata.deletionTimestamp) return undefined;
    const desired = desiredIngress(this.nodes.list());
    if (jsonEqual(ingressOf(ing), desired)) return undefined;
    const loadBalancer: JsonObject =
      desired.length > 0 ? { ingress: desired as unknown as JsonObject[] } : {};
    await this.ctx.api.update({ ...ing, status: { ...ing.status, loadBalancer } }, {}, true);
    return undefined;
  }
}

export const ingressStatusController: ControllerDefinition = {
  name: 'ingress-status',
  create: (ctx, enqueue) => new IngressStatusReconciler(ctx, enqueue),
};
