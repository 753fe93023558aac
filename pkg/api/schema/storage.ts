// PersistentVolume, PersistentVolumeClaim (core/v1) and StorageClass (storage.k8s.io/v1):
// field names, descriptions and validation after Kubernetes' pkg/apis/core/validation and
// pkg/apis/storage/validation. Berth's volumes are node-local directories (`local` or
// `hostPath`), so only Filesystem mode exists. Update rules are in validation.ts.

import { ACCESS_MODES } from '../storage.js';
import {
  arr,
  asArr,
  asObj,
  bool,
  enumOf,
  type Issues,
  invalid,
  map,
  obj,
  own,
  quantity,
  ref,
  required,
  str,
} from './dsl.js';
import { dnsSubdomain, qualifiedName } from './formats.js';
import { LabelSelector, ObjectReference, time } from './meta.js';
import { NodeSelectorTerm } from './pod.js';
import { tryParseQuantity } from './quantity.js';

export const RECLAIM_POLICIES = ['Retain', 'Delete', 'Recycle'] as const;
export const VOLUME_BINDING_MODES = ['Immediate', 'WaitForFirstConsumer'] as const;
export const VOLUME_MODES = ['Filesystem'] as const;
const VOLUME_PHASES = ['Pending', 'Available', 'Bound', 'Released', 'Failed'] as const;
const CLAIM_PHASES = ['Pending', 'Bound', 'Lost'] as const;
const HOST_PATH_TYPES = [
  '',
  'DirectoryOrCreate',
  'Directory',
  'FileOrCreate',
  'File',
  'Socket',
  'CharDevice',
  'BlockDevice',
];
const PV_SOURCES = ['local', 'hostPath'] as const;

const RECYCLE_REFUSED =
  'Forbidden: Recycle is deprecated and not supported by Berth; use Delete (with a provisioner such as berth.io/local-path) or Retain';

function refuseRecycle(v: string, path: string, out: Issues): void {
  if (v === 'Recycle') out.add(path, RECYCLE_REFUSED);
}

/** An optional class name: '' (no class) or a DNS subdomain. */
const className = (s: string) => (s === '' ? undefined : dnsSubdomain(s));

/** validatePathNoBacksteps: no `..` element. */
function noBacksteps(s: string): string | undefined {
  return s.split('/').includes('..') ? "must not contain '..'" : undefined;
}

function absolutePath(s: string): string | undefined {
  if (!s.startsWith('/')) return 'must be an absolute path';
  return noBacksteps(s);
}

function positiveStorage(v: unknown, path: string, out: Issues): void {
  const n = tryParseQuantity(v);
  if (n !== undefined && n <= 0) out.add(path, invalid(v, 'must be greater than zero'));
}

function checkAccessModes(v: unknown[], path: string, out: Issues): void {
  if (v.length === 0) out.add(path, 'Required value: at least 1 access mode is required');
  if (v.includes('ReadWriteOncePod') && v.length > 1)
    out.add(path, 'Forbidden: may not use ReadWriteOncePod with other access modes');
}

const accessModes = (description: string) =>
  arr(enumOf(ACCESS_MODES, 'An access mode.'), description, { check: checkAccessModes });

const storageMap = (description: string, entry: string) =>
  obj('ResourceList', description, { storage: quantity(entry, { check: positiveStorage }) });

const VolumeNodeAffinity = obj(
  'VolumeNodeAffinity',
  'The nodes this volume can be accessed from. Pods using it are scheduled onto those nodes.',
  {
    required: obj('NodeSelector', 'Nodes that must match for the volume to be usable there.', {
      nodeSelectorTerms: required(
        arr(NodeSelectorTerm, 'A list of node selector terms, ORed.', {
          check: (v: unknown[], path: string, out: Issues) => {
            if (v.length === 0) out.add(path, 'Required value: must have at least one node selector term');
          },
        }),
      ),
    }),
  },
);

function checkVolumeSpec(v: Record<string, unknown>, path: string, out: Issues): void {
  const set = PV_SOURCES.filter((s) => own(v, s) != null);
  if (set.length === 0)
    out.add(path, 'Required value: must specify a volume type (exactly one of `local` or `hostPath`)');
  if (set.length > 1) out.add(`${path}.${set[1]}`, 'Forbidden: may not specify more than 1 volume type');
  if (own(v, 'local') != null && own(v, 'nodeAffinity') == null)
    out.add(`${path}.nodeAffinity`, 'Required value: Local volume requires node affinity');
  if (own(v, 'accessModes') == null) out.add(`${path}.accessModes`, 'Required value');
}

export const PersistentVolumeSpec = obj(
  'PersistentVolumeSpec',
  'The specification of a persistent volume.',
  {
    capacity: required(
      storageMap(
        "The volume's resources and capacity. Only `storage` is defined.",
        'The size of the volume, a quantity (e.g. 10Gi).',
      ),
    ),
    accessModes: accessModes(
      'All ways the volume can be mounted: ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod.',
    ),
    persistentVolumeReclaimPolicy: enumOf(
      RECLAIM_POLICIES,
      'What happens to the volume when released from its claim: Retain (kept for manual reclamation) or Delete (deleted, with its data for provisioned volumes). Recycle is refused. Defaults to Retain for volumes created by hand; provisioned volumes get their class reclaimPolicy.',
      { default: 'Retain', check: refuseRecycle },
    ),
    storageClassName: str(
      'Name of the StorageClass this volume belongs to. Empty: no class; only claims asking for no class bind to it.',
      { format: className },
    ),
    volumeMode: enumOf(VOLUME_MODES, 'How the volume is consumed: Filesystem (the only mode Berth has).', {
      default: 'Filesystem',
    }),
    claimRef: ref(
      ObjectReference,
      'The claim bound to this volume (set by the binder, or by a user to reserve the volume for one claim).',
    ),
    nodeAffinity: ref(
      VolumeNodeAffinity,
      'The nodes the volume can be used on. Required for `local` volumes.',
    ),
    mountOptions: arr(str('A mount option.'), 'Mount options; Berth bind-mounts and ignores them.'),
    local: obj('LocalVolumeSource', 'A directory on one node (use nodeAffinity to name the node).', {
      path: required(str('Full path to the directory on the node.', { format: absolutePath })),
      fsType: str('Filesystem type; ignored for directories.'),
    }),
    hostPath: obj('HostPathVolumeSource', 'A directory on the host, for single-node testing.', {
      path: required(str('Path of the directory on the host.', { format: absolutePath })),
      type: enumOf(HOST_PATH_TYPES, 'Type for HostPath volume.', { default: '' }),
    }),
  },
  { check: checkVolumeSpec },
);

export const PersistentVolumeStatus = obj(
  'PersistentVolumeStatus',
  'The current status of a persistent volume. Set by the binder.',
  {
    phase: enumOf(VOLUME_PHASES, 'Pending, Available (free), Bound, Released (claim deleted) or Failed.'),
    message: str('Human-readable message why the volume is in this phase.'),
    reason: str('Short CamelCase reason for a failure.'),
    lastPhaseTransitionTime: time('When the volume last moved to another phase.'),
  },
);

function checkClaimSpec(v: Record<string, unknown>, path: string, out: Issues): void {
  if (own(v, 'accessModes') == null) out.add(`${path}.accessModes`, 'Required value');
  const requests = asObj(own(asObj(own(v, 'resources')), 'requests'));
  if (own(requests, 'storage') == null) out.add(`${path}.resources.requests.storage`, 'Required value');
}

export const PersistentVolumeClaimSpec = obj(
  'PersistentVolumeClaimSpec',
  'What a claim asks for: size, access modes, a class, optionally a particular volume.',
  {
    accessModes: accessModes('The access modes the volume must have (a volume may have more).'),
    resources: obj('VolumeResourceRequirements', 'The minimum resources the volume should have.', {
      requests: storageMap('Minimum amount of storage.', 'The size the claim needs, a quantity (e.g. 1Gi).'),
      limits: storageMap('Maximum amount of storage.', 'The most storage the claim may use.'),
    }),
    storageClassName: str(
      'Name of the StorageClass the claim needs. Unset: the default class (set on create). "": no class, only volumes without one bind.',
      { format: className },
    ),
    volumeName: str('The name of the volume to bind to (set by the binder when unset).'),
    volumeMode: enumOf(VOLUME_MODES, 'How the volume is consumed: Filesystem.', { default: 'Filesystem' }),
    selector: ref(LabelSelector, 'A label query over volumes to consider for binding.'),
  },
  { check: checkClaimSpec },
);

export const PersistentVolumeClaimStatus = obj(
  'PersistentVolumeClaimStatus',
  'The current status of a claim. Set by the binder.',
  {
    phase: enumOf(CLAIM_PHASES, 'Pending (not bound yet), Bound, or Lost (the bound volume is gone).'),
    accessModes: arr(enumOf(ACCESS_MODES, 'An access mode.'), 'The access modes of the bound volume.'),
    capacity: map(quantity('A quantity.'), 'The capacity of the bound volume.'),
  },
);

/** StorageClass has no spec: its fields are at the top level, as in Kubernetes. */
export const StorageClassFields = {
  provisioner: required(
    str('The provisioner that makes volumes of this class (berth.io/local-path is built in).', {
      format: qualifiedName,
    }),
  ),
  parameters: map(str('A value.'), 'Parameters for the provisioner. Immutable.'),
  reclaimPolicy: enumOf(
    RECLAIM_POLICIES,
    'The reclaimPolicy of volumes this class provisions: Delete or Retain. Recycle is refused.',
    { default: 'Delete', check: refuseRecycle },
  ),
  volumeBindingMode: enumOf(
    VOLUME_BINDING_MODES,
    'When claims are bound and provisioned: Immediate, or WaitForFirstConsumer (once a pod using the claim is scheduled, on its node).',
    { default: 'Immediate' },
  ),
  allowVolumeExpansion: bool('Whether claims of this class may grow.'),
  mountOptions: arr(str('A mount option.'), 'Mount options of provisioned volumes.'),
};

export function checkStorageClass(v: Record<string, unknown>, _path: string, out: Issues): void {
  const params = asObj(own(v, 'parameters')) ?? {};
  if (Object.keys(params).length > 512) out.add('parameters', 'Too many: must have at most 512 parameters');
  for (const m of asArr(own(v, 'mountOptions')) ?? [])
    if (m === '') out.add('mountOptions', 'Invalid value: "": must not be empty');
}
