// Storage in-use protection: a claim a running pod uses stays (Terminating) after a delete
// until the pod terminates or goes; a Bound volume stays until it is no longer Bound; the
// finalizers are put back on objects that lack them; describe pvc lists the pods using it.
import test from 'ava';
import pino from 'pino';
import { describeObject } from '../../cmd/ctl/printers/index.js';
import { type KindInfo, kindByName } from '../../pkg/api/kinds.js';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureDefaultStorageClass, ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import { PV_PROTECTION_FINALIZER, PVC_PROTECTION_FINALIZER } from '../../pkg/api/storage.js';
import type { ApiObject } from '../../pkg/api/types.js';
import { ControllerManager } from '../../pkg/controller/manager.js';
import { volumeBinderController } from '../../pkg/controller/pv-binder.js';
import { storageProtectionController } from '../../pkg/controller/pv-protection.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const logger = pino({ level: 'silent' });

async function setup(t: import('ava').ExecutionContext) {
  const api = new ApiServer({ kv: createLocalStore(), logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  await ensureDefaultStorageClass(api, logger, new AbortController().signal);
  const manager = new ControllerManager([volumeBinderController, storageProtectionController], logger);
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

const phase = (o: ApiObject | undefined) => (o?.status as { phase?: string } | undefined)?.phase;

async function boundPair(api: ApiServer, name: string, policy = 'Retain') {
  await api.create({
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: `pv-${name}` },
    spec: {
      capacity: { storage: '1Gi' },
      accessModes: ['ReadWriteOnce'],
      storageClassName: '',
      persistentVolumeReclaimPolicy: policy,
      hostPath: { path: `/mnt/${name}` },
    },
  });
  await api.create({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: 'default' },
    spec: {
      accessModes: ['ReadWriteOnce'],
      storageClassName: '',
      resources: { requests: { storage: '1Gi' } },
    },
  });
  await waitFor('bound', async () => phase(await api.get('pvc', 'default', name)) === 'Bound');
}

function pod(name: string, claimName: string): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: {
      containers: [{ name: 'app', image: 'busybox', volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName } }],
    },
  };
}

test('a claim in use by a pod is not deleted until the pod terminates', async (t) => {
  const api = await setup(t);
  await boundPair(api, 'data');
  await api.create(pod('web', 'data'));
  await api.create(pod('done', 'data'));
  const done = await api.get('pods', 'default', 'done');
  await api.update({ ...done, status: { phase: 'Succeeded' } }, {}, true);

  const text = describeObject(kindByName('pvc') as KindInfo, await api.get('pvc', 'default', 'data'), {
    events: [],
    related: (await api.list('pods', { namespace: 'default' })).items,
    now: Date.now(),
  });
  t.regex(text, /Used By:\s+web\n/);
  t.regex(text, /Finalizers:\s+\[kubernetes\.io\/pvc-protection\]/);

  const r = await api.delete('pvc', 'default', 'data');
  t.false(r.deleted);
  await new Promise((res) => setTimeout(res, 200));
  const held = await api.get('pvc', 'default', 'data');
  t.truthy(held.metadata.deletionTimestamp);
  t.deepEqual(held.metadata.finalizers, [PVC_PROTECTION_FINALIZER]);
  t.is(phase(await api.get('pv', undefined, 'pv-data')), 'Bound');
  // The volume cannot go either while it is Bound.
  await api.delete('pv', undefined, 'pv-data');
  await new Promise((res) => setTimeout(res, 100));
  t.deepEqual((await api.get('pv', undefined, 'pv-data')).metadata.finalizers, [PV_PROTECTION_FINALIZER]);

  // The pod ends: the claim goes, its volume is Released, then (being deleted) goes too.
  const web = await api.get('pods', 'default', 'web');
  await api.update({ ...web, status: { phase: 'Failed' } }, {}, true);
  await waitFor('claim gone', async () => (await tryGet(api, 'pvc', 'default', 'data')) === undefined);
  await waitFor('volume gone', async () => (await tryGet(api, 'pv', undefined, 'pv-data')) === undefined);
  t.pass();
});

test('deleting the pod frees the claim; an unused claim goes at once', async (t) => {
  const api = await setup(t);
  await boundPair(api, 'a');
  await boundPair(api, 'b');
  await api.create(pod('user', 'a'));
  await api.delete('pvc', 'default', 'a');
  await api.delete('pvc', 'default', 'b');
  await waitFor('b gone', async () => (await tryGet(api, 'pvc', 'default', 'b')) === undefined);
  t.truthy((await api.get('pvc', 'default', 'a')).metadata.deletionTimestamp);
  await api.delete('pods', 'default', 'user', { gracePeriodSeconds: 0 });
  await waitFor('a gone', async () => (await tryGet(api, 'pvc', 'default', 'a')) === undefined);
  await waitFor('pv-a Released', async () => phase(await api.get('pv', undefined, 'pv-a')) === 'Released');
  t.pass();
});

test('the finalizers are put back when a user removes them', async (t) => {
  const api = await setup(t);
  await boundPair(api, 'c');
  const c = await api.get('pvc', 'default', 'c');
  await api.update({ ...c, metadata: { ...c.metadata, finalizers: [] } });
  const pv = await api.get('pv', undefined, 'pv-c');
  await api.update({ ...pv, metadata: { ...pv.metadata, finalizers: [] } });
  await waitFor('pvc finalizer back', async () =>
    (await api.get('pvc', 'default', 'c')).metadata.finalizers?.includes(PVC_PROTECTION_FINALIZER),
  );
  await waitFor('pv finalizer back', async () =>
    (await api.get('pv', undefined, 'pv-c')).metadata.finalizers?.includes(PV_PROTECTION_FINALIZER),
  );
  t.pass();
});
