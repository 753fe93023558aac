// The PersistentVolume binder (Kubernetes' persistentvolume controller, binding and
// reclaiming; provisioning is pv-provisioner.ts). One queue holds both kinds: a claim's key
// is `namespace/name`, a volume's just `name` (cluster-scoped), so the key says which.
//
//   claim without volumeName ─► best match (pv-match.ts) ─► bind:
//        pv.spec.claimRef (uid) ─► pv Bound ─► claim.spec.volumeName ─► claim Bound
//        (each step an update of what the previous returned; a crash resumes from any step)
//   WaitForFirstConsumer class: the claim waits for volume.kubernetes.io/selected-node (the
//        scheduler sets it), then only volumes whose node affinity allows that node fit
//   volume whose claim is gone ─► Released ─► reclaimPolicy Delete: the volume is deleted
//        (a local-path volume keeps its finalizer until its node's agent removed the
//        directory); Retain: it stays Released until an administrator deals with it
//   claim whose volume is gone ─► Lost

import { ApiError, ApiErrorCode } from '../api/errors.js';
import {
  BIND_COMPLETED_ANNOTATION,
  BOUND_BY_CONTROLLER_ANNOTATION,
  ClaimPhase,
  claimRefOf,
  classOf,
  PROVISIONED_BY_ANNOTATION,
  phaseOf,
  SELECTED_NODE_ANNOTATION,
  VolumePhase,
} from '../api/storage.js';
import { jsonEqual } from '../api/merge.js';
import { type ApiObject, type JsonObject, rfc3339 } from '../api/types.js';
import { type Informer, keyOf } from './informer.js';
import type { ControllerContext, ControllerDefinition } from './manager.js';
import { findBestMatch, mismatch, preBoundTo, selectedNodeOf } from './pv-match.js';
import type { Reconciler } from './runner.js';

/** Event reasons, Kubernetes' strings. */
export const BinderReason = {
  WaitForFirstConsumer: 'WaitForFirstConsumer',
  FailedBinding: 'FailedBinding',
  ClaimLost: 'ClaimLost',
} as const;

export const WAIT_FOR_FIRST_CONSUMER_MESSAGE = 'waiting for first consumer to be created before binding';

const CLAIM_INDEX = 'claim';

interface VolumeSpec {
  claimRef?: JsonObject;
  persistentVolumeReclaimPolicy?: string;
  capacity?: JsonObject;
  accessModes?: string[];
}

interface ClaimSpec {
  volumeName?: string;
}

const volumeNameOf = (claim: ApiObject): string => (claim.spec as ClaimSpec | undefined)?.volumeName ?? '';
const isClaimKey = (key: string): boolean => key.includes('/');

export class VolumeBinderReconciler implements Reconciler {
  readonly name = 'pv-binder';
  private readonly claims: Informer;
  private readonly volumes: Informer;
  private readonly classes: Informer;
  private readonly nodes: Informer;

  constructor(
    private readonly ctx: ControllerContext,
    enqueue: (key: string) => void,
  ) {
    this.claims = ctx.informers.get('persistentvolumeclaims');
    this.volumes = ctx.informers.get('persistentvolumes');
    this.classes = ctx.informers.get('storageclasses');
    this.nodes = ctx.informers.get('nodes');
    this.volumes.addIndex(CLAIM_INDEX, (pv) => {
      const ref = claimRefOf(pv);
      return ref?.name ? [`${ref.namespace ?? ''}/${ref.name}`] : [];
    });
    const pendingClaims = () => {
      for (const c of this.claims.list()) if (volumeNameOf(c) === '') enqueue(keyOf(c));
    };
    const claimChanged = (claim: ApiObject) => {
      enqueue(keyOf(claim));
      for (const pv of this.volumes.byIndex(CLAIM_INDEX, keyOf(claim))) enqueue(keyOf(pv));
    };
    this.claims.on({
      add: claimChanged,
      update: (_old, c) => claimChanged(c),
      delete: (c) => {
        for (const pv of this.volumes.byIndex(CLAIM_INDEX, keyOf(c))) enqueue(keyOf(pv));
        if (volumeNameOf(c) !== '') enqueue(volumeNameOf(c));
      },
    });
    const volumeChanged = (pv: ApiObject) => {
      enqueue(keyOf(pv));
      const ref = claimRefOf(pv);
      if (ref?.name) enqueue(`${ref.namespace ?? ''}/${ref.name}`);
      // A volume that became free may fit a waiting claim.
      if (!ref) pendingClaims();
    };
    this.volumes.on({ add: volumeChanged, update: (_o, pv) => volumeChanged(pv), delete: volumeChanged });
    this.classes.on({ add: pendingClaims, update: pendingClaims });
  }

  initialKeys(): string[] {
    return [...this.claims.list(), ...this.volumes.list()].map(keyOf);
  }

  async reconcile(key: string): Promise<undefined> {
    if (isClaimKey(key)) {
      const claim = this.claims.get(key);
      if (claim) await this.syncClaim(claim);
    } else {
      const pv = this.volumes.get(key);
      if (pv) await this.syncVolume(pv);
    }
    return undefined;
  }

  // ---- claims ----

  private async syncClaim(claim: ApiObject): Promise<void> {
    const volumeName = volumeNameOf(claim);
    const bound = claim.metadata.annotations?.[BIND_COMPLETED_ANNOTATION] !== undefined;
    if (volumeName === '' || !bound) {
      await this.syncUnboundClaim(claim);
      return;
    }
    const pv = this.volumes.get(volumeName);
    const ref = pv ? claimRefOf(pv) : undefined;
    if (!pv || !ref || ref.uid !== claim.metadata.uid) {
      // Bound once, and the volume is gone or serves another claim: the data is lost.
      if (phaseOf(claim) !== ClaimPhase.Lost) {
        await this.setClaimStatus(claim, { phase: ClaimPhase.Lost });
        this.ctx.events.recordQuietly(
          claim,
          'Warning',
          BinderReason.ClaimLost,
          'Bound claim has lost its PersistentVolume. Data on the volume is lost!',
        );
      }
      return;
    }
    await this.bind(pv, claim);
  }

  private async syncUnboundClaim(claim: ApiObject): Promise<void> {
    // A claim being deleted before it bound gets no volume.
    if (claim.metadata.deletionTimestamp) return;
    const className = classOf(claim);
    const sc = className ? this.classes.get(className) : undefined;
    const delayed =
      (sc as { volumeBindingMode?: string } | undefined)?.volumeBindingMode === 'WaitForFirstConsumer';
    const nodeName = claim.metadata.annotations?.[SELECTED_NODE_ANNOTATION];
    const node = nodeName ? selectedNodeOf(nodeName, this.nodes.get(nodeName)) : undefined;
    const volumeName = volumeNameOf(claim);
    if (volumeName !== '') {
      // The user named the volume: bind to it when it is free (or reserved for this claim) and fits.
      const pv = this.volumes.get(volumeName);
      const why = !pv
        ? `volume "${volumeName}" not found`
        : claimRefOf(pv) && !preBoundTo(pv, claim)
          ? `volume "${volumeName}" already bound to a different claim.`
          : mismatch(pv, claim, node);
      if (pv && why === undefined) {
        await this.bind(pv, claim);
        return;
      }
      await this.setClaimStatus(claim, { phase: ClaimPhase.Pending });
      this.ctx.events.recordQuietly(claim, 'Warning', BinderReason.FailedBinding, why ?? '');
      return;
    }
    const pv = findBestMatch(claim, this.volumes.list(), { node, delayBinding: delayed && !node });
    if (pv) {
      await this.bind(pv, claim);
      return;
    }
    await this.setClaimStatus(claim, { phase: ClaimPhase.Pending });
    if (delayed && !node) {
      this.ctx.events.recordQuietly(
        claim,
        'Normal',
        BinderReason.WaitForFirstConsumer,
        WAIT_FOR_FIRST_CONSUMER_MESSAGE,
      );
    } else if (className === '') {
      this.ctx.events.recordQuietly(
        claim,
        'Normal',
        BinderReason.FailedBinding,
        'no persistent volumes available for this claim and no storage class is set',
      );
    } else if (!sc) {
      this.ctx.events.recordQuietly(
        claim,
        'Warning',
        BinderReason.FailedBinding,
        `storageclass.storage.k8s.io "${className}" not found`,
      );
    }
    // Otherwise the class's provisioner makes a volume; its creation brings the claim back here.
  }

  /**
   * Bind a volume and a claim in Kubernetes' order: the volume's claimRef, its phase, the
   * claim's volumeName, its phase. Each write is skipped when already done.
   */
  private async bind(pv: ApiObject, claim: ApiObject): Promise<void> {
    const ref = claimRefOf(pv);
    if (!ref || ref.uid !== claim.metadata.uid) {
      const annotations = { ...pv.metadata.annotations };
      if (!ref) annotations[BOUND_BY_CONTROLLER_ANNOTATION] = 'yes';
      const claimRef: JsonObject = {
        kind: 'PersistentVolumeClaim',
        apiVersion: 'v1',
        namespace: claim.metadata.namespace ?? '',
        name: claim.metadata.name ?? '',
        uid: claim.metadata.uid ?? '',
      };
      if (claim.metadata.resourceVersion) claimRef.resourceVersion = claim.metadata.resourceVersion;
      pv = await this.ctx.api.update({
        ...pv,
        metadata: { ...pv.metadata, annotations },
        spec: { ...pv.spec, claimRef },
      });
    }
    if (phaseOf(pv) !== VolumePhase.Bound) pv = await this.setVolumeStatus(pv, { phase: VolumePhase.Bound });
    if (
      volumeNameOf(claim) !== pv.metadata.name ||
      !claim.metadata.annotations?.[BIND_COMPLETED_ANNOTATION]
    ) {
      const annotations: Record<string, string> = {
        ...claim.metadata.annotations,
        [BIND_COMPLETED_ANNOTATION]: 'yes',
      };
      if (volumeNameOf(claim) === '') annotations[BOUND_BY_CONTROLLER_ANNOTATION] = 'yes';
      claim = await this.ctx.api.update({
        ...claim,
        metadata: { ...claim.metadata, annotations },
        spec: { ...claim.spec, volumeName: pv.metadata.name ?? '' },
      });
    }
    const spec = pv.spec as VolumeSpec | undefined;
    await this.setClaimStatus(claim, {
      phase: ClaimPhase.Bound,
      accessModes: spec?.accessModes ?? [],
      capacity: spec?.capacity ?? {},
    });
  }

  // ---- volumes ----

  private async syncVolume(pv: ApiObject): Promise<void> {
    const ref = claimRefOf(pv);
    if (!ref?.name) {
      if (phaseOf(pv) !== VolumePhase.Available && phaseOf(pv) !== VolumePhase.Failed)
        await this.setVolumeStatus(pv, { phase: VolumePhase.Available });
      return;
    }
    const claim = this.claims.get(`${ref.namespace ?? ''}/${ref.name}`);
    if (!ref.uid) {
      // Reserved by a user for a claim that has not bound yet: free until it does.
      if (phaseOf(pv) !== VolumePhase.Available)
        await this.setVolumeStatus(pv, { phase: VolumePhase.Available });
      return;
    }
    if (claim && claim.metadata.uid === ref.uid) {
      const volumeName = volumeNameOf(claim);
      if (volumeName === pv.metadata.name) {
        if (phaseOf(pv) !== VolumePhase.Bound) await this.setVolumeStatus(pv, { phase: VolumePhase.Bound });
        return;
      }
      // Binding in progress (the claim's key is queued too).
      if (volumeName === '') return;
      // The claim bound another volume. One this controller reserved goes back to the pool;
      // a provisioned one (made for this claim alone) is released and reclaimed.
      if (
        pv.metadata.annotations?.[BOUND_BY_CONTROLLER_ANNOTATION] &&
        !pv.metadata.annotations?.[PROVISIONED_BY_ANNOTATION]
      ) {
        await this.unbind(pv);
        return;
      }
    }
    // The claim is gone (or is a new claim of the same name): the volume is released.
    if (phaseOf(pv) !== VolumePhase.Released && phaseOf(pv) !== VolumePhase.Failed)
      pv = await this.setVolumeStatus(pv, { phase: VolumePhase.Released });
    await this.reclaim(pv);
  }

  private async unbind(pv: ApiObject): Promise<void> {
    const { claimRef: _c, ...spec } = (pv.spec ?? {}) as JsonObject;
    const annotations = { ...pv.metadata.annotations };
    delete annotations[BOUND_BY_CONTROLLER_ANNOTATION];
    const next = await this.ctx.api.update({ ...pv, metadata: { ...pv.metadata, annotations }, spec });
    await this.setVolumeStatus(next, { phase: VolumePhase.Available });
  }

  /**
   * Retain: nothing (the volume stays Released). Delete: delete the volume object; a
   * local-path volume's finalizer berth.io/local-path-cleanup keeps it until its node's agent
   * removed the directory. A static volume's data is left where it is.
   */
  private async reclaim(pv: ApiObject): Promise<void> {
    const policy = (pv.spec as VolumeSpec | undefined)?.persistentVolumeReclaimPolicy ?? 'Retain';
    if (policy !== 'Delete' || pv.metadata.deletionTimestamp) return;
    try {
      await this.ctx.api.delete('persistentvolumes', undefined, pv.metadata.name ?? '', {
        preconditions: { uid: pv.metadata.uid ?? '' },
      });
      this.ctx.logger.info({ volume: pv.metadata.name }, 'deleted released volume');
    } catch (err) {
      if (err instanceof ApiError && err.code === ApiErrorCode.NotFound) return;
      throw err;
    }
  }

  // ---- status writes ----

  private async setVolumeStatus(pv: ApiObject, status: JsonObject): Promise<ApiObject> {
    if (phaseOf(pv) === status.phase) return pv;
    const next: JsonObject = { ...status, lastPhaseTransitionTime: rfc3339(this.ctx.now()) };
    return this.ctx.api.update({ ...pv, status: next }, {}, true);
  }

  private async setClaimStatus(claim: ApiObject, status: JsonObject): Promise<ApiObject> {
    if (jsonEqual(claim.status ?? {}, status)) return claim;
    return this.ctx.api.update({ ...claim, status }, {}, true);
  }
}

export const volumeBinderController: ControllerDefinition = {
  name: 'pv-binder',
  create: (ctx, enqueue) => new VolumeBinderReconciler(ctx, enqueue),
};
