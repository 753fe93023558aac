// PersistentVolume, PersistentVolumeClaim and StorageClass: the schema accepts Kubernetes'
// manifests and refuses bad ones at the field's path; defaults; update rules (a claim's spec
// is fixed but for growth); and the API server's storage admission (default class,
// protection finalizers, phase Pending) and bootstrap of the `local-path` class.
import test from 'ava';
import pino from 'pino';
import { parse } from 'yaml';
import { applyDefaults } from '../../pkg/api/defaults.js';
import { ApiError, formatFieldError } from '../../pkg/api/errors.js';
import { type KindInfo, kindByName } from '../../pkg/api/kinds.js';
import { describeObject, printObjects } from '../../cmd/ctl/printers/index.js';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureDefaultStorageClass, ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import {
  DEFAULT_CLASS_ANNOTATION,
  LOCAL_PATH_CLASS,
  LOCAL_PATH_PROVISIONER,
  PV_PROTECTION_FINALIZER,
  PVC_PROTECTION_FINALIZER,
} from '../../pkg/api/storage.js';
import type { ApiObject } from '../../pkg/api/types.js';
import { validateObject, validateUpdate } from '../../pkg/api/validation.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const logger = pino({ level: 'silent' });
// biome-ignore lint/suspicious/noExplicitAny: tests edit manifests at any depth
type Manifest = Record<string, any>;
const y = (s: string) => parse(s, { version: '1.1' }) as Record<string, unknown>;
const errs = (raw: unknown) => validateObject(raw).map(formatFieldError);

const PV = `
apiVersion: v1
kind: PersistentVolume
metadata: { name: pv1 }
spec:
  capacity: { storage: 5Gi }
  accessModes: [ReadWriteOnce]
  hostPath: { path: /data/pv1 }
`;

const PVC = `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: { name: data }
spec:
  accessModes: [ReadWriteOnce]
  resources: { requests: { storage: 1Gi } }
`;

function edit(base: string, f: (o: Manifest) => void): Record<string, unknown> {
  const o = y(base);
  f(o as Manifest);
  return o;
}

test('kinds are addressable by plural, singular and short name', (t) => {
  t.is(kindByName('pv')?.kind, 'PersistentVolume');
  t.is(kindByName('pvc')?.kind, 'PersistentVolumeClaim');
  t.is(kindByName('sc')?.kind, 'StorageClass');
  t.is(kindByName('storageclasses.storage.k8s.io')?.apiVersion, 'storage.k8s.io/v1');
  t.false(kindByName('pv')?.namespaced);
  t.true(kindByName('pvc')?.namespaced);
  t.true(kindByName('pvc')?.statusSubresource);
});

test('valid volumes and claims pass; defaults follow Kubernetes', (t) => {
  t.deepEqual(errs(y(PV)), []);
  t.deepEqual(errs(y(PVC)), []);
  const pv = applyDefaults(y(PV) as unknown as ApiObject);
  t.is((pv.spec as Record<string, unknown>).persistentVolumeReclaimPolicy, 'Retain');
  t.is((pv.spec as Record<string, unknown>).volumeMode, 'Filesystem');
  const sc = applyDefaults({
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: 'fast' },
    provisioner: 'example.com/fast',
  } as ApiObject);
  t.is(sc.reclaimPolicy, 'Delete');
  t.is(sc.volumeBindingMode, 'Immediate');
});

test('a volume needs exactly one source, capacity and access modes', (t) => {
  t.deepEqual(errs(edit(PV, (o) => delete o.spec.hostPath)), [
    'spec: Required value: must specify a volume type (exactly one of `local` or `hostPath`)',
  ]);
  t.deepEqual(errs(edit(PV, (o) => (o.spec.local = { path: '/x' }))), [
    'spec.hostPath: Forbidden: may not specify more than 1 volume type',
    'spec.nodeAffinity: Required value: Local volume requires node affinity',
  ]);
  t.deepEqual(errs(edit(PV, (o) => delete o.spec.capacity)), ['spec.capacity: Required value']);
  t.deepEqual(errs(edit(PV, (o) => delete o.spec.accessModes)), ['spec.accessModes: Required value']);
  t.deepEqual(errs(edit(PV, (o) => (o.spec.accessModes = ['ReadWriteSometimes']))), [
    'spec.accessModes[0]: Unsupported value: "ReadWriteSometimes": supported values: "ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"',
  ]);
  t.deepEqual(errs(edit(PV, (o) => (o.spec.accessModes = ['ReadWriteOncePod', 'ReadOnlyMany']))), [
    'spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes',
  ]);
  t.deepEqual(errs(edit(PV, (o) => (o.spec.capacity.storage = '0'))), [
    'spec.capacity.storage: Invalid value: "0": must be greater than zero',
  ]);
  t.deepEqual(errs(edit(PV, (o) => (o.spec.hostPath.path = 'rel/../x'))), [
    'spec.hostPath.path: Invalid value: "rel/../x": must be an absolute path',
  ]);
  t.deepEqual(errs(edit(PV, (o) => (o.spec.hostPath.path = '/a/../b'))), [
    'spec.hostPath.path: Invalid value: "/a/../b": must not contain \'..\'',
  ]);
  t.deepEqual(errs(edit(PV, (o) => (o.spec.volumeMode = 'Block'))), [
    'spec.volumeMode: Unsupported value: "Block": supported values: "Filesystem"',
  ]);
  t.deepEqual(errs(edit(PV, (o) => (o.spec.nodeAffinity = { required: { nodeSelectorTerms: [] } }))), [
    'spec.nodeAffinity.required.nodeSelectorTerms: Required value: must have at least one node selector term',
  ]);
  t.deepEqual(
    errs(
      edit(PV, (o) => {
        o.spec.nodeAffinity = {
          required: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In' }] }],
          },
        };
      }),
    ),
    [
      "spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
    ],
  );
});

test('Recycle is refused with a clear message', (t) => {
  const [e] = errs(edit(PV, (o) => (o.spec.persistentVolumeReclaimPolicy = 'Recycle')));
  t.regex(
    e ?? '',
    /^spec\.persistentVolumeReclaimPolicy: Forbidden: Recycle is deprecated and not supported/,
  );
  const [s] = errs({
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: 'x' },
    provisioner: 'a/b',
    reclaimPolicy: 'Recycle',
  });
  t.regex(s ?? '', /^reclaimPolicy: Forbidden: Recycle/);
});

test('a claim needs access modes and a storage request', (t) => {
  t.deepEqual(errs(edit(PVC, (o) => delete o.spec.accessModes)), ['spec.accessModes: Required value']);
  t.deepEqual(errs(edit(PVC, (o) => delete o.spec.resources)), [
    'spec.resources.requests.storage: Required value',
  ]);
  t.deepEqual(errs(edit(PVC, (o) => (o.spec.resources.requests.storage = 'lots'))), [
    'spec.resources.requests.storage: Invalid value: "lots": quantities must match the regular expression \'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$\'',
  ]);
  t.deepEqual(errs(edit(PVC, (o) => (o.spec.storageClassName = 'Not_A_Name'))).length, 1);
  t.deepEqual(errs(edit(PVC, (o) => (o.spec.storageClassName = ''))), []);
  t.deepEqual(errs(edit(PVC, (o) => (o.spec.selector = { matchLabels: { tier: 'fast' } }))), []);
  t.deepEqual(errs(edit(PVC, (o) => (o.status = { phase: 'Gone' }))), [
    'status.phase: Unsupported value: "Gone": supported values: "Pending", "Bound", "Lost"',
  ]);
});

test('a StorageClass needs a provisioner; binding mode and policy are enums', (t) => {
  const sc = (extra: Record<string, unknown>) => ({
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: 'x' },
    ...extra,
  });
  t.deepEqual(errs(sc({})), ['provisioner: Required value']);
  t.deepEqual(errs(sc({ provisioner: 'a/b', volumeBindingMode: 'Later' })), [
    'volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", "WaitForFirstConsumer"',
  ]);
  t.deepEqual(errs(sc({ provisioner: 'a/b', spec: {} })), ['spec: unknown field']);
});

test('a claim spec is immutable except for growth of its request; volumeName is set once', (t) => {
  const cur = applyDefaults(y(PVC) as unknown as ApiObject);
  const upd = (f: (o: Manifest) => void) => {
    const next = structuredClone(cur) as Manifest;
    f(next);
    return validateUpdate(next as ApiObject, cur).map(formatFieldError);
  };
  t.deepEqual(
    upd((o) => (o.spec.resources.requests.storage = '2Gi')),
    [],
  );
  t.deepEqual(
    upd((o) => (o.spec.volumeName = 'pv1')),
    [],
  );
  t.deepEqual(
    upd((o) => (o.spec.resources.requests.storage = '512Mi')),
    ['spec.resources.requests.storage: Forbidden: field can not be less than previous value (1Gi)'],
  );
  t.deepEqual(
    upd((o) => (o.spec.accessModes = ['ReadWriteMany'])),
    ['spec: Forbidden: spec is immutable after creation except resources.requests for bound claims'],
  );
  const bound = structuredClone(cur) as Manifest;
  bound.spec.volumeName = 'pv1';
  const rebind = structuredClone(bound);
  rebind.spec.volumeName = 'pv2';
  t.is(validateUpdate(rebind as ApiObject, bound as ApiObject).length, 1);
});

test('a volume source is immutable; a StorageClass provisioner and parameters too', (t) => {
  const cur = applyDefaults(y(PV) as unknown as ApiObject);
  const next = structuredClone(cur) as Manifest;
  next.spec.hostPath.path = '/elsewhere';
  next.spec.claimRef = { namespace: 'default', name: 'data' };
  t.deepEqual(validateUpdate(next as ApiObject, cur).map(formatFieldError), [
    'spec.hostPath: Forbidden: the volume source is immutable after creation',
  ]);
  const sc = {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: 'x' },
    provisioner: 'a/b',
  } as ApiObject;
  t.deepEqual(
    validateUpdate({ ...sc, provisioner: 'c/d', parameters: { a: '1' } }, sc).map(formatFieldError),
    [
      'parameters: Forbidden: updates to parameters are forbidden.',
      'provisioner: Forbidden: updates to provisioner are forbidden.',
    ],
  );
  t.deepEqual(validateUpdate({ ...sc, allowVolumeExpansion: true }, sc), []);
});

async function server() {
  const api = new ApiServer({ kv: createLocalStore(), logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  return api;
}

test('bootstrap creates the default local-path class once and never overwrites it', async (t) => {
  const api = await server();
  await ensureDefaultStorageClass(api, logger, new AbortController().signal);
  const sc = await api.get('storageclasses', undefined, LOCAL_PATH_CLASS);
  t.is(sc.provisioner, LOCAL_PATH_PROVISIONER);
  const now = Date.parse(sc.metadata.creationTimestamp as string) + 60_000;
  t.is(
    printObjects(kindByName('sc') as KindInfo, [sc], 'table', { now }),
    [
      'NAME                   PROVISIONER           RECLAIMPOLICY   VOLUMEBINDINGMODE      ALLOWVOLUMEEXPANSION   AGE',
      'local-path (default)   berth.io/local-path   Delete          WaitForFirstConsumer   false                  60s',
    ].join('\n'),
  );
  const described = describeObject(kindByName('sc') as KindInfo, sc, { events: [], now });
  t.regex(described, /IsDefaultClass:\s+Yes\n/);
  t.regex(described, /VolumeBindingMode:\s+WaitForFirstConsumer\n/);
  t.is(sc.volumeBindingMode, 'WaitForFirstConsumer');
  t.is(sc.reclaimPolicy, 'Delete');
  t.is(sc.metadata.annotations?.[DEFAULT_CLASS_ANNOTATION], 'true');
  // A user's edit survives the next node start.
  await api.update({ ...sc, metadata: { ...sc.metadata, annotations: {} }, allowVolumeExpansion: true });
  await ensureDefaultStorageClass(api, logger, new AbortController().signal);
  const after = await api.get('storageclasses', undefined, LOCAL_PATH_CLASS);
  t.deepEqual(after.metadata.annotations ?? {}, {});
  t.true(after.allowVolumeExpansion);
});

test('a claim without a class gets the default class; "" stays no class; finalizers and phase', async (t) => {
  const api = await server();
  const none = await api.create(y(PVC));
  t.is((none.spec as Record<string, unknown>).storageClassName, undefined, 'no default class yet');
  await ensureDefaultStorageClass(api, logger, new AbortController().signal);
  const claim = await api.create(edit(PVC, (o) => (o.metadata.name = 'data2')));
  t.is((claim.spec as Record<string, unknown>).storageClassName, LOCAL_PATH_CLASS);
  t.deepEqual(claim.metadata.finalizers, [PVC_PROTECTION_FINALIZER]);
  t.deepEqual(claim.status, { phase: 'Pending' });
  const explicit = await api.create(
    edit(PVC, (o) => {
      o.metadata.name = 'static';
      o.spec.storageClassName = '';
    }),
  );
  t.is((explicit.spec as Record<string, unknown>).storageClassName, '');
  const pv = await api.create(edit(PV, (o) => (o.status = { phase: 'Bound' })));
  t.deepEqual(pv.metadata.finalizers, [PV_PROTECTION_FINALIZER]);
  t.deepEqual(pv.status, { phase: 'Pending' });
  // Updates keep the class; shrinking is refused through the server too.
  const err = await t.throwsAsync(
    api.update(
      edit(JSON.stringify(claim), (o) => {
        o.spec.resources.requests.storage = '1Mi';
      }),
    ),
  );
  t.true(err instanceof ApiError);
  t.regex(err?.message ?? '', /can not be less than previous value/);
});
