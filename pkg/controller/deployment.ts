// The Deployment controller, after Kubernetes' pkg/controller/deployment: a Deployment owns
// ReplicaSets named <deployment>-<hash of the pod template>; the one whose template equals
// the Deployment's is new, the others old. A reconcile claims the ReplicaSets, then:
//
//   deleting ─► status only          paused ─► scale only (no rollout), prune history
//   spec.replicas changed ─► scale   otherwise ─► Recreate or RollingUpdate (deployment-rolling.ts)
//
// Rolling back is setting an old template again: its ReplicaSet becomes new, with the next
// revision. Writes are guarded by resourceVersion: a stale cache fails with a conflict and
// the key is retried.

import { matches, type Selector, selectorFromLabelSelector } from '../api/labels.js';
import type { ApiObject } from '../api/types.js';
import { isScalingEvent, rolloutRecreate, rolloutRolling, syncScaling } from './deployment-rolling.js';
import { DeploymentSync } from './deployment-sync.js';
import { deploymentSpec } from './deployment-util.js';
import { type Informer, keyOf } from './informer.js';
import type { ControllerContext, ControllerDefinition } from './manager.js';
import { indexByNamespace, NAMESPACE_INDEX } from './replicaset.js';
import { claimObjects, controllerOf } from './replicaset-pods.js';
import type { ReconcileResult, Reconciler } from './runner.js';

export class DeploymentReconciler implements Reconciler {
  readonly name = 'deployment';
  private readonly deployments: Informer;
  private readonly sets: Informer;
  private readonly pods: Informer;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly enqueue: (key: string) => void,
  ) {
    this.deployments = ctx.informers.get('deployments');
    this.sets = ctx.informers.get('replicasets');
    this.pods = ctx.informers.get('pods');
    for (const i of [this.deployments, this.sets, this.pods]) indexByNamespace(i);
    this.deployments.on({
      add: (d) => enqueue(keyOf(d)),
      update: (_old, d) => enqueue(keyOf(d)),
      delete: (d) => enqueue(keyOf(d)),
    });
    this.sets.on({
      add: (rs) => this.replicaSetChanged(rs),
      update: (old, rs) => {
        const oldOwner = controllerOf(old);
        if (oldOwner && oldOwner.uid !== controllerOf(rs)?.uid) this.replicaSetChanged(old);
        this.replicaSetChanged(rs);
      },
      delete: (rs) => this.replicaSetChanged(rs),
    });
    // Recreate waits for old pods to be gone: their deletion is news to the owner.
    this.pods.on({ delete: (pod) => this.podDeleted(pod) });
  }

  initialKeys(): string[] {
    return this.deployments.list().map(keyOf);
  }

  private ownerOf(obj: ApiObject, kind: string, informer: Informer): ApiObject | undefined {
    const ref = controllerOf(obj);
    if (ref?.kind !== kind) return undefined;
    const owner = informer.get(`${obj.metadata.namespace}/${ref.name}`);
    return owner?.metadata.uid === ref.uid ? owner : undefined;
  }

  private replicaSetChanged(rs: ApiObject): void {
    const owner = this.ownerOf(rs, 'Deployment', this.deployments);
    if (owner) {
      this.enqueue(keyOf(owner));
      return;
    }
    if (controllerOf(rs)) return;
    // An orphan: every Deployment that could adopt it.
    for (const d of this.deployments.byIndex(NAMESPACE_INDEX, rs.metadata.namespace ?? '')) {
      const selector = selectorOf(d);
      if (selector && selector.length > 0 && matches(selector, rs.metadata.labels)) this.enqueue(keyOf(d));
    }
  }

  private podDeleted(pod: ApiObject): void {
    const rs = this.ownerOf(pod, 'ReplicaSet', this.sets);
    const d = rs && this.ownerOf(rs, 'Deployment', this.deployments);
    if (d) this.enqueue(keyOf(d));
  }

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const d = this.deployments.get(key);
    if (!d) return undefined;
    const selector = selectorOf(d);
    if (!selector || selector.length === 0) {
      this.ctx.logger.warn({ key }, 'deployment selects nothing or everything; ignoring it');
      return undefined;
    }
    const rsList = await claimObjects({
      api: this.ctx.api,
      owner: d,
      ownerResource: 'deployments',
      selector,
      candidates: this.sets.byIndex(NAMESPACE_INDEX, d.metadata.namespace ?? ''),
    });
    const s = new DeploymentSync(this.ctx, d);
    if (d.metadata.deletionTimestamp) {
      const { newRS, oldRSs } = await s.getAllReplicaSetsAndSyncRevision(rsList, false);
      await s.syncDeploymentStatus([...oldRSs, ...(newRS ? [newRS] : [])], newRS);
      return undefined;
    }
    await s.checkPausedConditions();
    const spec = deploymentSpec(d);
    if (spec.paused || (await isScalingEvent(s, rsList))) await syncScaling(s, rsList);
    else if (spec.recreate) await rolloutRecreate(s, rsList, this.podsByReplicaSet(rsList));
    else await rolloutRolling(s, rsList);
    return s.requeueAfterMs === undefined ? undefined : { requeueAfterMs: s.requeueAfterMs };
  }

  /** Pods (terminating ones included) by the uid of the ReplicaSet that controls them. */
  private podsByReplicaSet(rsList: ApiObject[]): Map<string, ApiObject[]> {
    const out = new Map<string, ApiObject[]>(rsList.map((rs) => [rs.metadata.uid as string, []]));
    const ns = rsList[0]?.metadata.namespace;
    if (ns === undefined) return out;
    for (const pod of this.pods.byIndex(NAMESPACE_INDEX, ns)) {
      const uid = controllerOf(pod)?.uid;
      if (uid !== undefined) out.get(uid)?.push(pod);
    }
    return out;
  }
}

function selectorOf(d: ApiObject): Selector | undefined {
  try {
    return selectorFromLabelSelector(deploymentSpec(d).selector);
  } catch {
    return undefined;
  }
}

export const deploymentController: ControllerDefinition = {
  name: 'deployment',
  create: (ctx, enqueue) => new DeploymentReconciler(ctx, enqueue),
};
