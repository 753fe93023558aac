// The PV binder and the local-path provisioner on an in-process API server: smallest fit,
// access modes, classes, selectors, WaitForFirstConsumer (waits for the scheduler's
// selected-node, then only volumes the node may use), provisioning of pvc-<uid>, and
// reclaiming (Released; Delete deletes, Retain keeps).
import test from 'ava';
import pino from 'pino';
import { describeObject, printObjects } from '../../cmd/ctl/printers/index.js';
import { kindByName, type KindInfo } from '../../pkg/api/kinds.js';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureDefaultStorageClass, ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import {
  BIND_COMPLETED_ANNOTATION,
  LOCAL_PATH_FINALIZER,
  LOCAL_PATH_PROVISIONER,
  LOCAL_PATH_ROOT_ANNOTATION,
  PROVISIONED_BY_ANNOTATION,
  PV_PROTECTION_FINALIZER,
  SELECTED_NODE_ANNOTATION,
} from '../../pkg/api/storage.js';
import type { ApiObject } from '../../pkg/api/types.js';
import { ControllerManager } from '../../pkg/controller/manager.js';
import { volumeBinderController } from '../../pkg/controller/pv-binder.js';
import { findBestMatch, selectedNodeOf } from '../../pkg/controller/pv-match.js';
import { storageProtectionController } from '../../pkg/controller/pv-protection.js';
import { localPathOf, localPathProvisionerController } from '../../pkg/controller/pv-provisioner.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const logger = pino({ level: 'silent' });
// biome-ignore lint/suspicious/noExplicitAny: tests edit manifests at any depth
type Manifest = Record<string, any>;

async function setup(t: import('ava').ExecutionContext) {
  const api = new ApiServer({ kv: createLocalStore(), logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  await ensureDefaultStorageClass(api, logger, new AbortController().signal);
  const manager = new ControllerManager(
    [volumeBinderController, localPathProvisionerController, storageProtectionController],
    logger,
  );
  await manager.start(api);
  t.teardown(() => manager.stop());
  return api;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function tryGet(api: ApiServer, resource: string, ns: string | undefined, name: string) {
  try {
    return await api.get(resource, ns, name);
  } catch {
    return undefined;
  }
}

interface VolumeOptions {
  size: string;
  modes?: string[];
  cls?: string;
  labels?: Record<string, string>;
  node?: string;
  policy?: string;
}

function volume(name: string, o: VolumeOptions): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name, ...(o.labels ? { labels: o.labels } : {}) },
    spec: {
      capacity: { storage: o.size },
      accessModes: o.modes ?? ['ReadWriteOnce'],
      storageClassName: o.cls ?? '',
      persistentVolumeReclaimPolicy: o.policy ?? 'Retain',
      ...(o.node
        ? {
            local: { path: `/mnt/${name}` },
            nodeAffinity: {
              required: {
                nodeSelectorTerms: [
                  { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [o.node] }] },
                ],
              },
            },
          }
        : { hostPath: { path: `/mnt/${name}` } }),
    },
  };
}

interface ClaimOptions {
  size: string;
  modes?: string[];
  cls?: string;
  selector?: Record<string, string>;
  node?: string;
  volumeName?: string;
}

function claim(name: string, o: ClaimOptions): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name,
      namespace: 'default',
      ...(o.node ? { annotations: { [SELECTED_NODE_ANNOTATION]: o.node } } : {}),
    },
    spec: {
      accessModes: o.modes ?? ['ReadWriteOnce'],
      resources: { requests: { storage: o.size } },
      ...(o.cls !== undefined ? { storageClassName: o.cls } : {}),
      ...(o.selector ? { selector: { matchLabels: o.selector } } : {}),
      ...(o.volumeName ? { volumeName: o.volumeName } : {}),
    },
  };
}

const phase = (o: ApiObject | undefined) => (o?.status as { phase?: string } | undefined)?.phase;
const volumeNameOf = (o: ApiObject) => (o.spec as { volumeName?: string }).volumeName;

async function boundVolume(api: ApiServer, name: string): Promise<string> {
  const c = await waitFor(`claim ${name} bound`, async () => {
    const c = await tryGet(api, 'pvc', 'default', name);
    return phase(c) === 'Bound' ? c : undefined;
  });
  return volumeNameOf(c) as string;
}

test('findBestMatch: the smallest Available volume that fits, pre-bound first', (t) => {
  const mk = (name: string, o: VolumeOptions, p = 'Available') => ({
    ...volume(name, o),
    status: { phase: p },
  });
  const c = {
    ...claim('c', { size: '2Gi', cls: '' }),
    metadata: { name: 'c', namespace: 'default', uid: 'u1' },
  };
  const vols = [
    mk('big', { size: '10Gi' }),
    mk('small', { size: '1Gi' }),
    mk('fit', { size: '3Gi' }),
    mk('exact', { size: '2Gi', modes: ['ReadOnlyMany'] }),
    mk('bound', { size: '2Gi' }, 'Bound'),
  ];
  t.is(findBestMatch(c, vols)?.metadata.name, 'fit');
  const reserved = mk('reserved', { size: '8Gi' });
  (reserved.spec as Record<string, unknown>).claimRef = { namespace: 'default', name: 'c' };
  t.is(findBestMatch(c, [...vols, reserved])?.metadata.name, 'reserved');
  t.is(findBestMatch(c, vols, { delayBinding: true }), undefined);
  const rwx = { ...c, spec: { ...(c.spec as object), accessModes: ['ReadWriteOnce', 'ReadWriteMany'] } };
  t.is(
    findBestMatch(rwx, [...vols, mk('multi', { size: '9Gi', modes: ['ReadWriteMany', 'ReadWriteOnce'] })])
      ?.metadata.name,
    'multi',
  );
  const local = [mk('on-a', { size: '2Gi', node: 'a' }), mk('on-b', { size: '5Gi', node: 'b' })];
  t.is(findBestMatch(c, local, { node: selectedNodeOf('b', undefined) })?.metadata.name, 'on-b');
  t.is(findBestMatch(c, local, { node: selectedNodeOf('c', undefined) }), undefined);
});

test('a claim binds to the smallest fitting volume of its class; both Bound', async (t) => {
  const api = await setup(t);
  await api.create(volume('pv-10g', { size: '10Gi', cls: 'manual' }));
  await api.create(volume('pv-2g', { size: '2Gi', cls: 'manual' }));
  await api.create(volume('pv-1g', { size: '1Gi', cls: 'manual' }));
  await api.create(volume('pv-rox', { size: '2Gi', cls: 'manual', modes: ['ReadOnlyMany'] }));
  await api.create(volume('pv-other', { size: '2Gi', cls: 'other' }));
  await api.create(claim('data', { size: '1500Mi', cls: 'manual' }));
  t.is(await boundVolume(api, 'data'), 'pv-2g');
  const pv = await waitFor('pv Bound', async () => {
    const pv = await api.get('pv', undefined, 'pv-2g');
    return phase(pv) === 'Bound' ? pv : undefined;
  });
  const ref = (pv.spec as { claimRef: Record<string, string> }).claimRef;
  const c = await api.get('pvc', 'default', 'data');
  t.like(ref, { kind: 'PersistentVolumeClaim', namespace: 'default', name: 'data', uid: c.metadata.uid });
  t.deepEqual(c.status, { phase: 'Bound', accessModes: ['ReadWriteOnce'], capacity: { storage: '2Gi' } });
  t.is(c.metadata.annotations?.[BIND_COMPLETED_ANNOTATION], 'yes');
  await waitFor(
    'others Available',
    async () => phase(await api.get('pv', undefined, 'pv-1g')) === 'Available',
  );

  // kubectl-like output.
  const pvKind = kindByName('pv') as KindInfo;
  const table = printObjects(pvKind, [pv], 'wide', { now: Date.now() });
  t.regex(
    table,
    /^NAME\s+CAPACITY\s+ACCESS MODES\s+RECLAIM POLICY\s+STATUS\s+CLAIM\s+STORAGECLASS\s+REASON\s+AGE\s+VOLUMEMODE\n/,
  );
  t.regex(table, /pv-2g\s+2Gi\s+RWO\s+Retain\s+Bound\s+default\/data\s+manual\s+\S+\s+Filesystem/);
  const claims = printObjects(kindByName('pvc') as KindInfo, [c], 'table', { now: Date.now() });
  t.regex(claims, /data\s+Bound\s+pv-2g\s+2Gi\s+RWO\s+manual\s+/);
  const text = describeObject(kindByName('pvc') as KindInfo, c, { events: [], related: [], now: Date.now() });
  t.regex(text, /Status:\s+Bound\nVolume:\s+pv-2g/);
  t.regex(text, /Used By:\s+<none>/);
});

test('access modes, selector and a named volume limit what a claim binds to', async (t) => {
  const api = await setup(t);
  await api.create(volume('rwo', { size: '5Gi' }));
  await api.create(volume('rwx', { size: '8Gi', modes: ['ReadWriteMany', 'ReadWriteOnce'] }));
  await api.create(volume('fast', { size: '9Gi', labels: { tier: 'fast' } }));
  await api.create(volume('named', { size: '20Gi' }));
  await api.create(claim('shared', { size: '1Gi', cls: '', modes: ['ReadWriteMany'] }));
  await api.create(claim('quick', { size: '1Gi', cls: '', selector: { tier: 'fast' } }));
  await api.create(claim('picky', { size: '1Gi', cls: '', volumeName: 'named' }));
  t.is(await boundVolume(api, 'shared'), 'rwx');
  t.is(await boundVolume(api, 'quick'), 'fast');
  t.is(await boundVolume(api, 'picky'), 'named');
  // Nothing left that fits 10Gi: the claim waits.
  await api.create(claim('huge', { size: '10Gi', cls: '' }));
  await new Promise((r) => setTimeout(r, 200));
  t.is(phase(await api.get('pvc', 'default', 'huge')), 'Pending');
  // A volume that appears later is bound.
  await api.create(volume('later', { size: '10Gi' }));
  t.is(await boundVolume(api, 'huge'), 'later');
});

test('WaitForFirstConsumer: the claim waits for the selected node, then binds a volume that node may use', async (t) => {
  const api = await setup(t);
  await api.create({
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: 'local-disks' },
    provisioner: 'kubernetes.io/no-provisioner',
    volumeBindingMode: 'WaitForFirstConsumer',
  });
  await api.create(volume('disk-a', { size: '1Gi', cls: 'local-disks', node: 'node-a' }));
  await api.create(volume('disk-b', { size: '5Gi', cls: 'local-disks', node: 'node-b' }));
  await api.create(claim('db', { size: '1Gi', cls: 'local-disks' }));
  const events = await waitFor('WaitForFirstConsumer event', async () => {
    const { items } = await api.list('events', { namespace: 'default' });
    const e = items.find((e) => e.reason === 'WaitForFirstConsumer');
    return e;
  });
  t.is(events.message, 'waiting for first consumer to be created before binding');
  t.is(phase(await api.get('pvc', 'default', 'db')), 'Pending');
  t.is(phase(await api.get('pv', undefined, 'disk-a')), 'Available');
  // The scheduler chose node-b: disk-a is smaller but not usable there.
  const c = await api.get('pvc', 'default', 'db');
  await api.update({
    ...c,
    metadata: { ...c.metadata, annotations: { [SELECTED_NODE_ANNOTATION]: 'node-b' } },
  });
  t.is(await boundVolume(api, 'db'), 'disk-b');
});

test('local-path provisions pvc-<uid> on the selected node, pre-bound, and binds it', async (t) => {
  const api = await setup(t);
  const node = await api.create({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: 'node-1',
      labels: { 'kubernetes.io/hostname': 'node-1' },
      annotations: { [LOCAL_PATH_ROOT_ANNOTATION]: '/srv/berth/local-path' },
    },
  });
  t.truthy(node);
  const created = await api.create(claim('data', { size: '3Gi' }));
  t.is((created.spec as { storageClassName?: string }).storageClassName, 'local-path');
  await new Promise((r) => setTimeout(r, 150));
  t.deepEqual((await api.list('pv')).items, [], 'nothing before a node is chosen');
  await api.update({
    ...(await api.get('pvc', 'default', 'data')),
    metadata: {
      ...created.metadata,
      resourceVersion: undefined,
      annotations: { [SELECTED_NODE_ANNOTATION]: 'node-1' },
    },
  });
  const uid = created.metadata.uid as string;
  t.is(await boundVolume(api, 'data'), `pvc-${uid}`);
  const pv = await api.get('pv', undefined, `pvc-${uid}`);
  const spec = pv.spec as Manifest;
  t.is(spec.local.path, `/srv/berth/local-path/pvc-${uid}_default_data`);
  t.deepEqual(spec.capacity, { storage: '3Gi' });
  t.deepEqual(spec.accessModes, ['ReadWriteOnce']);
  t.is(spec.persistentVolumeReclaimPolicy, 'Delete');
  t.is(spec.storageClassName, 'local-path');
  t.deepEqual(spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions, [
    { key: 'kubernetes.io/hostname', operator: 'In', values: ['node-1'] },
  ]);
  t.is(pv.metadata.annotations?.[PROVISIONED_BY_ANNOTATION], LOCAL_PATH_PROVISIONER);
  t.deepEqual(
    [...(pv.metadata.finalizers ?? [])].sort(),
    [LOCAL_PATH_FINALIZER, PV_PROTECTION_FINALIZER].sort(),
  );
  t.is(spec.claimRef.uid, uid);
  const described = describeObject(kindByName('pv') as KindInfo, pv, { events: [], now: Date.now() });
  t.regex(described, /Claim:\s+default\/data\n/);
  t.regex(described, /Term 0:\s+kubernetes\.io\/hostname in \[node-1\]\n/);
  t.regex(described, /Type:\s+LocalVolume .*\n\s+Path:\s+\/srv\/berth\/local-path\/pvc-/);
  const { items } = await api.list('events', { namespace: 'default' });
  t.truthy(
    items.find(
      (e) =>
        e.reason === 'ProvisioningSucceeded' && e.message === `Successfully provisioned volume pvc-${uid}`,
    ),
  );
  // A node without the root annotation gets the default root.
  t.is(
    localPathOf('/var/lib/berth/local-path', created),
    `/var/lib/berth/local-path/pvc-${uid}_default_data`,
  );
});

test('a deleted claim releases its volume: Delete deletes it (local-path cleanup finalizer kept), Retain keeps it Released', async (t) => {
  const api = await setup(t);
  await api.create(volume('keep', { size: '1Gi', cls: 'manual', policy: 'Retain' }));
  await api.create(claim('a', { size: '1Gi', cls: 'manual' }));
  t.is(await boundVolume(api, 'a'), 'keep');
  await api.create(volume('drop', { size: '1Gi', cls: 'manual2', policy: 'Delete' }));
  await api.create(claim('b', { size: '1Gi', cls: 'manual2' }));
  t.is(await boundVolume(api, 'b'), 'drop');
  await api.delete('pvc', 'default', 'a');
  await api.delete('pvc', 'default', 'b');
  await waitFor('keep Released', async () => phase(await api.get('pv', undefined, 'keep')) === 'Released');
  await waitFor('drop gone', async () => (await tryGet(api, 'pv', undefined, 'drop')) === undefined);
  t.is(phase(await api.get('pv', undefined, 'keep')), 'Released');
  // A new claim does not get the released volume.
  await api.create(claim('a2', { size: '1Gi', cls: 'manual' }));
  await new Promise((r) => setTimeout(r, 150));
  t.is(phase(await api.get('pvc', 'default', 'a2')), 'Pending');

  // Provisioned local-path volume: deleted, but held by the agent's cleanup finalizer.
  await api.create({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } });
  const c = await api.create(claim('lp', { size: '1Gi', node: 'n1' }));
  const name = await boundVolume(api, 'lp');
  t.is(name, `pvc-${c.metadata.uid}`);
  await api.delete('pvc', 'default', 'lp');
  const pv = await waitFor('pv terminating, only the cleanup finalizer left', async () => {
    const pv = await tryGet(api, 'pv', undefined, name);
    return pv?.metadata.deletionTimestamp && pv.metadata.finalizers?.join() === LOCAL_PATH_FINALIZER
      ? pv
      : undefined;
  });
  t.is(phase(pv), 'Released');
  // The agent's part: remove the directory, then the finalizer.
  await api.update({ ...pv, metadata: { ...pv.metadata, finalizers: [] } });
  t.is(await tryGet(api, 'pv', undefined, name), undefined);
});
