// Storage object in-use protection (Kubernetes' pvc-protection and pv-protection
// controllers), one queue for both: a claim's key is `namespace/name`, a volume's `name`.
//
// - Every claim carries kubernetes.io/pvc-protection (the API server adds it on create;
//   this adds it to any that lack it). A claim being deleted keeps it while a pod that is
//   not terminated (phase neither Succeeded nor Failed) names the claim in its volumes;
//   so a claim in use is not deleted out from under its pod.
// - Every volume carries kubernetes.io/pv-protection, removed from a volume being deleted
//   once it is no longer Bound (the binder marks it Released when its claim is gone).
//
// "No pod uses it" is read from the pod cache, then confirmed with a live list (the cache
// may not have seen a pod created a moment ago), as Kubernetes does.

import {
  claimsOfPod,
  phaseOf,
  podTerminated,
  PV_PROTECTION_FINALIZER,
  PVC_PROTECTION_FINALIZER,
  VolumePhase,
} from '../api/storage.js';
import type { ApiObject } from '../api/types.js';
import { type Informer, keyOf } from './informer.js';
import type { ControllerContext, ControllerDefinition } from './manager.js';
import type { Reconciler } from './runner.js';

const CLAIM_INDEX = 'claim';

const podUses = (pod: ApiObject, claim: ApiObject): boolean =>
  !podTerminated(pod) &&
  pod.metadata.namespace === claim.metadata.namespace &&
  claimsOfPod(pod).includes(claim.metadata.name ?? '');

export class StorageProtectionReconciler implements Reconciler {
  readonly name = 'pv-protection';
  private readonly claims: Informer;
  private readonly volumes: Informer;
  private readonly pods: Informer;

  constructor(
    private readonly ctx: ControllerContext,
    enqueue: (key: string) => void,
  ) {
    this.claims = ctx.informers.get('persistentvolumeclaims');
    this.volumes = ctx.informers.get('persistentvolumes');
    this.pods = ctx.informers.get('pods');
    this.pods.addIndex(CLAIM_INDEX, (pod) =>
      claimsOfPod(pod).map((c) => `${pod.metadata.namespace ?? ''}/${c}`),
    );
    const own = {
      add: (o: ApiObject) => enqueue(keyOf(o)),
      update: (_o: ApiObject, o: ApiObject) => enqueue(keyOf(o)),
    };
    this.claims.on(own);
    this.volumes.on(own);
    // A pod that ends or goes may free the claims it names.
    const podChanged = (pod: ApiObject) => {
      for (const c of claimsOfPod(pod)) enqueue(`${pod.metadata.namespace ?? ''}/${c}`);
    };
    this.pods.on({ update: (_o, p) => podChanged(p), delete: podChanged });
  }

  initialKeys(): string[] {
    return [...this.claims.list(), ...this.volumes.list()].map(keyOf);
  }

  async reconcile(key: string): Promise<undefined> {
    if (key.includes('/')) {
      const claim = this.claims.get(key);
      if (claim) await this.syncClaim(claim);
    } else {
      const pv = this.volumes.get(key);
      if (pv) await this.syncVolume(pv);
    }
    return undefined;
  }

  private async syncClaim(claim: ApiObject): Promise<void> {
    const has = (claim.metadata.finalizers ?? []).includes(PVC_PROTECTION_FINALIZER);
    if (!claim.metadata.deletionTimestamp) {
      if (!has) await this.setFinalizer(claim, PVC_PROTECTION_FINALIZER, true);
      return;
    }
    if (!has || (await this.inUse(claim))) return;
    await this.setFinalizer(claim, PVC_PROTECTION_FINALIZER, false);
    this.ctx.logger.info({ claim: keyOf(claim) }, 'claim no longer in use; protection removed');
  }

  private async syncVolume(pv: ApiObject): Promise<void> {
    const has = (pv.metadata.finalizers ?? []).includes(PV_PROTECTION_FINALIZER);
    if (!pv.metadata.deletionTimestamp) {
      if (!has) await this.setFinalizer(pv, PV_PROTECTION_FINALIZER, true);
      return;
    }
    if (has && phaseOf(pv) !== VolumePhase.Bound) await this.setFinalizer(pv, PV_PROTECTION_FINALIZER, false);
  }

  /** Whether a pod that has not terminated names the claim: the cache first, then a live list. */
  private async inUse(claim: ApiObject): Promise<boolean> {
    if (this.pods.byIndex(CLAIM_INDEX, keyOf(claim)).some((p) => podUses(p, claim))) return true;
    const { items } = await this.ctx.api.list('pods', { namespace: claim.metadata.namespace });
    return items.some((p) => podUses(p, claim));
  }

  private async setFinalizer(o: ApiObject, finalizer: string, present: boolean): Promise<void> {
    const rest = (o.metadata.finalizers ?? []).filter((f) => f !== finalizer);
    const finalizers = present ? [...rest, finalizer] : rest;
    // The cached copy carries its resourceVersion: a stale cache is a conflict, retried.
    await this.ctx.api.update({ ...o, metadata: { ...o.metadata, finalizers } });
  }
}

export const storageProtectionController: ControllerDefinition = {
  name: 'pv-protection',
  create: (ctx, enqueue) => new StorageProtectionReconciler(ctx, enqueue),
};
