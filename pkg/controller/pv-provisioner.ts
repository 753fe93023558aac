// The local-path provisioner (rancher's local-path-provisioner, as k3s ships it): a Pending
// claim of a class whose provisioner is berth.io/local-path, once the scheduler chose the
// node of its first consumer (annotation volume.kubernetes.io/selected-node), gets a new
// PersistentVolume when no existing one fits:
//
//   name          pvc-<claim uid>
//   capacity      the claim's request; accessModes the claim's; reclaimPolicy the class's
//   local.path    <root>/pvc-<uid>_<namespace>_<name>, <root> from the node's annotation
//                 berth.io/local-path-root (set by its agent), else /var/lib/berth/local-path
//   nodeAffinity  kubernetes.io/hostname In [node]
//   claimRef      the claim (uid included): pre-bound, so the binder binds exactly these two
//   finalizer     berth.io/local-path-cleanup: on deletion the node's agent removes the
//                 directory, then the finalizer (the controller never touches the disk)
//
// The provisioner only creates; the binder (pv-binder.ts) binds, releases and deletes.
// Events on the claim: ProvisioningSucceeded, ProvisioningFailed.

import { ApiError, ApiErrorCode } from '../api/errors.js';
import {
  accessModesOf,
  ClaimPhase,
  classOf,
  DEFAULT_LOCAL_PATH_ROOT,
  HOSTNAME_LABEL,
  LOCAL_PATH_FINALIZER,
  LOCAL_PATH_PROVISIONER,
  LOCAL_PATH_ROOT_ANNOTATION,
  PROVISIONED_BY_ANNOTATION,
  phaseOf,
  SELECTED_NODE_ANNOTATION,
} from '../api/storage.js';
import type { ApiObject, JsonObject } from '../api/types.js';
import { type Informer, keyOf } from './informer.js';
import type { ControllerContext, ControllerDefinition } from './manager.js';
import { findBestMatch, selectedNodeOf } from './pv-match.js';
import type { Reconciler } from './runner.js';

export const ProvisionerReason = {
  ProvisioningSucceeded: 'ProvisioningSucceeded',
  ProvisioningFailed: 'ProvisioningFailed',
} as const;

interface ClassView {
  provisioner?: string;
  reclaimPolicy?: string;
  volumeBindingMode?: string;
}

/** The name of the volume provisioned for a claim. */
export const provisionedVolumeName = (claim: ApiObject): string => `pvc-${claim.metadata.uid ?? ''}`;

/** Where a claim's directory goes under a node's local-path root. */
export function localPathOf(root: string, claim: ApiObject): string {
  const base = root.endsWith('/') && root !== '/' ? root.slice(0, -1) : root;
  return `${base}/pvc-${claim.metadata.uid ?? ''}_${claim.metadata.namespace ?? ''}_${claim.metadata.name ?? ''}`;
}

/** The PersistentVolume local-path makes for `claim` on `node` (a Node object, if known). */
export function localPathVolume(
  claim: ApiObject,
  sc: ApiObject,
  nodeName: string,
  node: ApiObject | undefined,
): ApiObject {
  // A node whose agent has not announced its root yet (an older agent) gets the default.
  const root = node?.metadata.annotations?.[LOCAL_PATH_ROOT_ANNOTATION] || DEFAULT_LOCAL_PATH_ROOT;
  const requests = (claim.spec as { resources?: { requests?: JsonObject } } | undefined)?.resources?.requests;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name: provisionedVolumeName(claim),
      annotations: { [PROVISIONED_BY_ANNOTATION]: LOCAL_PATH_PROVISIONER },
      finalizers: [LOCAL_PATH_FINALIZER],
    },
    spec: {
      capacity: { storage: requests?.storage ?? '0' },
      accessModes: accessModesOf(claim),
      persistentVolumeReclaimPolicy: (sc as ClassView).reclaimPolicy ?? 'Delete',
      storageClassName: classOf(claim),
      volumeMode: 'Filesystem',
      local: { path: localPathOf(root, claim) },
      nodeAffinity: {
        required: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: HOSTNAME_LABEL, operator: 'In', values: [nodeName] }] },
          ],
        },
      },
      claimRef: {
        kind: 'PersistentVolumeClaim',
        apiVersion: 'v1',
        namespace: claim.metadata.namespace ?? '',
        name: claim.metadata.name ?? '',
        uid: claim.metadata.uid ?? '',
      },
    },
  };
}

export class LocalPathProvisionerReconciler implements Reconciler {
  readonly name = 'pv-provisioner';
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
    this.claims.on({ add: (c) => enqueue(keyOf(c)), update: (_o, c) => enqueue(keyOf(c)) });
    const pending = () => {
      for (const c of this.claims.list()) if (phaseOf(c) !== ClaimPhase.Bound) enqueue(keyOf(c));
    };
    this.classes.on({ add: pending, update: pending });
  }

  initialKeys(): string[] {
    return this.claims.list().map(keyOf);
  }

  async reconcile(key: string): Promise<undefined> {
    const claim = this.claims.get(key);
    if (!claim || claim.metadata.deletionTimestamp) return undefined;
    if ((claim.spec as { volumeName?: string } | undefined)?.volumeName) return undefined;
    if (phaseOf(claim) === ClaimPhase.Bound) return undefined;
    const sc = this.classes.get(classOf(claim));
    if (!sc || (sc as ClassView).provisioner !== LOCAL_PATH_PROVISIONER) return undefined;
    const nodeName = claim.metadata.annotations?.[SELECTED_NODE_ANNOTATION];
    if (!nodeName) {
      // WaitForFirstConsumer: the binder tells the user it waits. Immediate: local-path
      // cannot choose a node by itself (the upstream provisioner refuses the same way).
      if ((sc as ClassView).volumeBindingMode !== 'WaitForFirstConsumer')
        this.ctx.events.recordQuietly(
          claim,
          'Warning',
          ProvisionerReason.ProvisioningFailed,
          `configuration error, no node was specified: storage class "${sc.metadata.name}" must use volumeBindingMode WaitForFirstConsumer`,
        );
      return undefined;
    }
    if (this.volumes.get(provisionedVolumeName(claim))) return undefined;
    const node = this.nodes.get(nodeName);
    // An existing volume that fits is the binder's to bind; provision only when none does.
    if (findBestMatch(claim, this.volumes.list(), { node: selectedNodeOf(nodeName, node) })) return undefined;
    const pv = localPathVolume(claim, sc, nodeName, node);
    try {
      await this.ctx.api.create(pv);
    } catch (err) {
      if (err instanceof ApiError && err.code === ApiErrorCode.AlreadyExists) return undefined;
      this.ctx.events.recordQuietly(
        claim,
        'Warning',
        ProvisionerReason.ProvisioningFailed,
        `failed to provision volume with StorageClass "${sc.metadata.name}": ${err instanceof Error ? err.message : String(err)}`,
      );
      throw err;
    }
    this.ctx.logger.info({ claim: key, volume: pv.metadata.name, node: nodeName }, 'provisioned volume');
    this.ctx.events.recordQuietly(
      claim,
      'Normal',
      ProvisionerReason.ProvisioningSucceeded,
      `Successfully provisioned volume ${pv.metadata.name}`,
    );
    return undefined;
  }
}

export const localPathProvisionerController: ControllerDefinition = {
  name: 'pv-provisioner',
  create: (ctx, enqueue) => new LocalPathProvisionerReconciler(ctx, enqueue),
};
