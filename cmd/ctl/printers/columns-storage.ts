// kubectl get's columns for PersistentVolume, PersistentVolumeClaim and StorageClass
// (k8s.io/kubernetes/pkg/printers/internalversion printPersistentVolume, ...Claim, printStorageClass).
import { ACCESS_MODE_SHORT, isDefaultClass } from '../../../pkg/api/storage.js';
import type { ApiObject } from '../../../pkg/api/types.js';
import { formatAge } from './age.js';
import type { KindColumns } from './columns.js';
import { arr, at, str } from './fields.js';

const age = (o: ApiObject, now: number): string => formatAge(o.metadata.creationTimestamp, now);

/** kubectl's GetAccessModesAsString: RWO,ROX,RWX,RWOP in that order, each once. */
export function accessModesShort(modes: unknown): string {
  const set = new Set(arr(modes).map(str));
  return ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod']
    .filter((m) => set.has(m))
    .map((m) => ACCESS_MODE_SHORT[m])
    .join(',');
}

/** A PV's claim as `namespace/name`, '' when unclaimed. */
export function volumeClaim(pv: ApiObject): string {
  const name = str(at(pv, 'spec.claimRef.name'));
  return name ? `${str(at(pv, 'spec.claimRef.namespace'))}/${name}` : '';
}

const volumeMode = (o: ApiObject): string => str(at(o, 'spec.volumeMode')) || 'Filesystem';

export const STORAGE_COLUMNS: Record<string, KindColumns> = {
  PersistentVolume: {
    head: ['CAPACITY', 'ACCESS MODES', 'RECLAIM POLICY', 'STATUS', 'CLAIM', 'STORAGECLASS', 'REASON', 'AGE'],
    wideHead: ['VOLUMEMODE'],
    hasName: true,
    cells: (o, now) => [
      str(at(o, 'spec.capacity.storage')),
      accessModesShort(at(o, 'spec.accessModes')),
      str(at(o, 'spec.persistentVolumeReclaimPolicy')),
      str(at(o, 'status.phase')),
      volumeClaim(o),
      str(at(o, 'spec.storageClassName')),
      str(at(o, 'status.reason')),
      age(o, now),
    ],
    wideCells: (o) => [volumeMode(o)],
  },
  PersistentVolumeClaim: {
    head: ['STATUS', 'VOLUME', 'CAPACITY', 'ACCESS MODES', 'STORAGECLASS', 'AGE'],
    wideHead: ['VOLUMEMODE'],
    hasName: true,
    cells: (o, now) => {
      const bound = str(at(o, 'spec.volumeName')) !== '' && str(at(o, 'status.phase')) === 'Bound';
      return [
        o.metadata.deletionTimestamp ? 'Terminating' : str(at(o, 'status.phase')),
        str(at(o, 'spec.volumeName')),
        bound ? str(at(o, 'status.capacity.storage')) : '',
        bound ? accessModesShort(at(o, 'status.accessModes')) : '',
        str(at(o, 'spec.storageClassName')),
        age(o, now),
      ];
    },
    wideCells: (o) => [volumeMode(o)],
  },
  StorageClass: {
    head: ['PROVISIONER', 'RECLAIMPOLICY', 'VOLUMEBINDINGMODE', 'ALLOWVOLUMEEXPANSION', 'AGE'],
    wideHead: [],
    hasName: true,
    displayName: (o) => `${o.metadata.name ?? ''}${isDefaultClass(o) ? ' (default)' : ''}`,
    cells: (o, now) => [
      str(o.provisioner),
      str(o.reclaimPolicy) || 'Delete',
      str(o.volumeBindingMode) || 'Immediate',
      o.allowVolumeExpansion === true ? 'true' : 'false',
      age(o, now),
    ],
    wideCells: () => [],
  },
};
