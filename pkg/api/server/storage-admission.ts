// Admission for storage objects on create, as Kubernetes' DefaultStorageClass and
// StorageObjectInUseProtection admission plugins:
// - a claim that names no class (storageClassName absent) gets the default StorageClass's
//   name; `storageClassName: ""` asks for no class and is left alone; without a default
//   class the field stays unset (the binder then treats it as "").
// - every claim gets the finalizer kubernetes.io/pvc-protection and every volume
//   kubernetes.io/pv-protection; the pv-protection controller removes them once no pod uses
//   the claim, or the volume is no longer Bound (the controller also adds them to objects
//   that predate this).
// - both start in phase Pending, whatever the manifest says.

import type { KindInfo } from '../kinds.js';
import {
  defaultClassName,
  PV_PROTECTION_FINALIZER,
  PVC_PROTECTION_FINALIZER,
  VolumePhase,
} from '../storage.js';
import type { ApiObject } from '../types.js';
import { resolveKind } from './names.js';
import type { ObjectStore } from './object-store.js';

const withFinalizer = (obj: ApiObject, finalizer: string): ApiObject => {
  const finalizers = obj.metadata.finalizers ?? [];
  if (finalizers.includes(finalizer)) return obj;
  return { ...obj, metadata: { ...obj.metadata, finalizers: [...finalizers, finalizer] } };
};

/** `obj` (validated, defaulted, about to be created) as storage admission leaves it. */
export async function admitStorageCreate(
  store: ObjectStore,
  kind: KindInfo,
  obj: ApiObject,
): Promise<ApiObject> {
  if (kind.kind === 'PersistentVolume') {
    return { ...withFinalizer(obj, PV_PROTECTION_FINALIZER), status: { phase: VolumePhase.Pending } };
  }
  if (kind.kind !== 'PersistentVolumeClaim') return obj;
  let claim: ApiObject = { ...withFinalizer(obj, PVC_PROTECTION_FINALIZER), status: { phase: 'Pending' } };
  const spec = (claim.spec ?? {}) as Record<string, unknown>;
  if (spec.storageClassName == null) {
    const { items } = await store.list(resolveKind('storageclasses'));
    const name = defaultClassName(items);
    if (name !== undefined) claim = { ...claim, spec: { ...claim.spec, storageClassName: name } };
  }
  return claim;
}
