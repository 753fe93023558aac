// The garbage collector against an in-process API server. Owners are removed through the
// store directly, as if the node that took the delete crashed before its follow-up ran.
import test, { type ExecutionContext } from 'ava';
import pino from 'pino';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import type { ApiObject, OwnerReference } from '../../pkg/api/types.js';
import { garbageCollectorController } from '../../pkg/controller/garbage-collector.js';
import { ControllerManager } from '../../pkg/controller/manager.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const logger = pino({ level: 'silent' });

async function setup(t: ExecutionContext): Promise<{ api: ApiServer; start: () => Promise<void> }> {
  const api = new ApiServer({ kv: createLocalStore(), logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  const manager = new ControllerManager([garbageCollectorController], logger, {
    nodeGracePeriodMs: 300,
    podEvictionTimeoutMs: 200,
  });
  t.teardown(() => manager.stop());
  return { api, start: () => manager.start(api) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const refTo = (owner: ApiObject): OwnerReference => ({
  apiVersion: owner.apiVersion,
  kind: owner.kind,
  name: owner.metadata.name as string,
  uid: owner.metadata.uid as string,
});

const configMap = (name: string, owners: ApiObject[] = []) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, ...(owners.length > 0 ? { ownerReferences: owners.map(refTo) } : {}) },
  data: { k: 'v' },
});

function replicaSet(name: string, owners: ApiObject[] = []) {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name, ...(owners.length > 0 ? { ownerReferences: owners.map(refTo) } : {}) },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'c', image: 'berth/busybox:test' }] },
      },
    },
  };
}

const pod = (name: string, owners: ApiObject[]) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, ownerReferences: owners.map(refTo) },
  spec: { containers: [{ name: 'c', image: 'berth/busybox:test' }] },
});

/** Remove an object without any follow-up: what a crash after the delete leaves behind. */
async function removeRaw(api: ApiServer, resource: string, name: string): Promise<void> {
  const kind = api.resolve(resource);
  const found = await api.store.get(kind, api.namespaceFor(kind, 'default'), name);
  if (!found) throw new Error(`${resource}/${name} not found`);
  await api.store.delete(kind, found.object, found.revision);
}

/** Mark an object terminating with `finalizers`, without any follow-up. */
async function terminateRaw(
  api: ApiServer,
  resource: string,
  name: string,
  finalizers: string[],
): Promise<void> {
  const kind = api.resolve(resource);
  const found = await api.store.get(kind, 'default', name);
  if (!found) throw new Error(`${resource}/${name} not found`);
  const metadata = { ...found.object.metadata, deletionTimestamp: new Date().toISOString(), finalizers };
  await api.store.update(kind, { ...found.object, metadata }, found.revision);
}

async function exists(api: ApiServer, resource: string, name: string): Promise<boolean> {
  try {
    await api.get(resource, 'default', name);
    return true;
  } catch {
    return false;
  }
}

test('dependents of a gone owner are deleted; a live owner keeps its dependents', async (t) => {
  const { api, start } = await setup(t);
  const rs = await api.create(replicaSet('web'));
  await api.create(pod('web-a', [rs]));
  await api.create(pod('web-b', [rs]));
  const live = await api.create(configMap('live'));
  await api.create(configMap('kept', [live]));
  await start();
  await sleep(200);
  t.true(await exists(api, 'pods', 'web-a'), 'nothing is collected while the owner exists');
  await removeRaw(api, 'replicasets', 'web');
  await waitFor(
    'pods collected',
    async () => (await api.list('pods', { namespace: 'default' })).items.length === 0,
  );
  t.true(await exists(api, 'configmaps', 'kept'));
});

test('orphans left before the collector started are collected at start', async (t) => {
  const { api, start } = await setup(t);
  const owner = await api.create(configMap('owner'));
  await api.create(configMap('orphan', [owner]));
  await removeRaw(api, 'configmaps', 'owner');
  await start();
  await waitFor('orphan collected', async () => !(await exists(api, 'configmaps', 'orphan')));
  t.pass();
});

test('an owner replaced by another object of the same name does not own the dependents', async (t) => {
  const { api, start } = await setup(t);
  const first = await api.create(configMap('owner'));
  await api.create(configMap('dep-of-first', [first]));
  await start();
  await removeRaw(api, 'configmaps', 'owner');
  const second = await api.create(configMap('owner'));
  await api.create(configMap('dep-of-second', [second]));
  await waitFor('old dependent collected', async () => !(await exists(api, 'configmaps', 'dep-of-first')));
  await sleep(200);
  t.true(await exists(api, 'configmaps', 'dep-of-second'));
});

test('a dependent with a remaining owner only loses the reference to the gone one', async (t) => {
  const { api, start } = await setup(t);
  const a = await api.create(configMap('a'));
  const b = await api.create(configMap('b'));
  await api.create(configMap('shared', [a, b]));
  await start();
  await removeRaw(api, 'configmaps', 'a');
  await waitFor('reference dropped', async () => {
    const shared = await api.get('configmaps', 'default', 'shared');
    return shared.metadata.ownerReferences?.length === 1;
  });
  const shared = await api.get('configmaps', 'default', 'shared');
  t.is(shared.metadata.ownerReferences?.[0]?.uid, b.metadata.uid);
  await sleep(200);
  t.true(await exists(api, 'configmaps', 'shared'));
});

test('owners of kinds it does not watch are looked up in the API (a Lease)', async (t) => {
  const { api, start } = await setup(t);
  const lease = await api.create({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'holder' },
    spec: { holderIdentity: 'x' },
  });
  await api.create(configMap('held', [lease]));
  await start();
  await sleep(300);
  t.true(await exists(api, 'configmaps', 'held'));
  await removeRaw(api, 'leases', 'holder');
  // Nothing about configmaps changed: the sweep finds it when it looks again (a relist or a restart).
  await api.update({ ...(await api.get('configmaps', 'default', 'held')), data: { k: 'w' } });
  await waitFor('collected', async () => !(await exists(api, 'configmaps', 'held')));
});

test('foreground deletion: dependents go first, then the finalizer and the owner', async (t) => {
  const { api, start } = await setup(t);
  const deploy = await api.create({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web' },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'c', image: 'berth/busybox:test' }] },
      },
    },
  });
  const rs = await api.create(replicaSet('web-1', [deploy]));
  await api.create(pod('web-1-a', [rs]));
  await api.create(configMap('also', [deploy]));
  const other = await api.create(configMap('other'));
  await api.create(configMap('two-owners', [deploy, other]));
  await start();
  await terminateRaw(api, 'deployments', 'web', ['foregroundDeletion']);
  await waitFor('owner gone', async () => !(await exists(api, 'deployments', 'web')));
  t.false(await exists(api, 'replicasets', 'web-1'));
  t.false(await exists(api, 'configmaps', 'also'));
  const kept = await api.get('configmaps', 'default', 'two-owners');
  t.deepEqual(
    kept.metadata.ownerReferences?.map((r) => r.name),
    ['other'],
  );
  await waitFor('pod of the replica set collected', async () => !(await exists(api, 'pods', 'web-1-a')));
});

test('orphan finalizer: dependents lose the reference and stay; the owner goes', async (t) => {
  const { api, start } = await setup(t);
  const owner = await api.create(configMap('owner'));
  await api.create(configMap('child', [owner]));
  await start();
  await terminateRaw(api, 'configmaps', 'owner', ['orphan']);
  await waitFor('owner gone', async () => !(await exists(api, 'configmaps', 'owner')));
  const child = await api.get('configmaps', 'default', 'child');
  t.is(child.metadata.ownerReferences, undefined);
  await sleep(200);
  t.true(await exists(api, 'configmaps', 'child'));
});
