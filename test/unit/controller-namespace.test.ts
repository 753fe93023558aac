// The namespace controller against an in-process API server. A Terminating namespace is
// made through the store directly, as if the node that took the delete crashed before its
// follow-up emptied it.
import test, { type ExecutionContext } from 'ava';
import pino from 'pino';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import type { ApiObject } from '../../pkg/api/types.js';
import { ControllerManager } from '../../pkg/controller/manager.js';
import { namespaceController } from '../../pkg/controller/namespace.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const logger = pino({ level: 'silent' });

async function setup(t: ExecutionContext): Promise<{ api: ApiServer; start: () => Promise<void> }> {
  const api = new ApiServer({ kv: createLocalStore(), logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  const manager = new ControllerManager([namespaceController], logger, {
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

async function fill(api: ApiServer, namespace: string): Promise<void> {
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await api.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg', namespace }, data: {} });
  await api.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace }, data: {} });
  await api.create({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'c', image: 'berth/busybox:test' }] },
      },
    },
  });
  await api.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'loose', namespace },
    spec: { containers: [{ name: 'c', image: 'berth/busybox:test' }] },
  });
}

/** What a delete leaves when its follow-up never ran: Terminating, with the `kubernetes` finalizer. */
async function terminateRaw(api: ApiServer, name: string, finalizers?: string[]): Promise<void> {
  const kind = api.resolve('namespaces');
  const found = await api.store.get(kind, undefined, name);
  if (!found) throw new Error(`namespace ${name} not found`);
  const ns = found.object;
  const next: ApiObject = {
    ...ns,
    metadata: {
      ...ns.metadata,
      deletionTimestamp: new Date().toISOString(),
      ...(finalizers ? { finalizers } : {}),
    },
    spec: { ...ns.spec, finalizers: ['kubernetes'] },
    status: { ...ns.status, phase: 'Terminating' },
  };
  await api.store.update(kind, next, found.revision);
}

async function nsExists(api: ApiServer, name: string): Promise<boolean> {
  try {
    await api.get('namespaces', undefined, name);
    return true;
  } catch {
    return false;
  }
}

async function count(api: ApiServer, namespace: string): Promise<number> {
  let n = 0;
  for (const resource of ['configmaps', 'secrets', 'deployments', 'pods', 'events', 'leases'])
    n += (await api.list(resource, { namespace })).items.length;
  return n;
}

test('a Terminating namespace whose follow-up never ran is emptied and removed', async (t) => {
  const { api, start } = await setup(t);
  await fill(api, 'shop');
  await fill(api, 'keep');
  await terminateRaw(api, 'shop');
  await start();
  await waitFor('namespace removed', async () => !(await nsExists(api, 'shop')));
  t.is(await count(api, 'shop'), 0);
  t.true(await nsExists(api, 'keep'), 'other namespaces are left alone');
  t.true((await count(api, 'keep')) > 0);
});

test('it waits for pods that terminate gracefully, then finishes', async (t) => {
  const { api, start } = await setup(t);
  await fill(api, 'slow');
  await api.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'bound', namespace: 'slow' },
    spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'berth/busybox:test' }] },
  });
  await start();
  await terminateRaw(api, 'slow');
  await waitFor('bound pod terminating', async () => {
    const p = await api.get('pods', 'slow', 'bound');
    return p.metadata.deletionTimestamp !== undefined && (await count(api, 'slow')) === 1;
  });
  await sleep(300);
  t.true(await nsExists(api, 'slow'), 'waits for the pod');
  // The node's agent finishes the pod.
  await api.delete('pods', 'slow', 'bound', { gracePeriodSeconds: 0 });
  await waitFor('namespace removed', async () => !(await nsExists(api, 'slow')));
});

test('another finalizer holds the empty namespace until it is removed', async (t) => {
  const { api, start } = await setup(t);
  await fill(api, 'held');
  await terminateRaw(api, 'held', ['example.com/hold']);
  await start();
  await waitFor('spec finalizer removed', async () => {
    const ns = await api.get('namespaces', undefined, 'held');
    return ((ns.spec?.finalizers as string[] | undefined) ?? []).length === 0;
  });
  t.is(await count(api, 'held'), 0);
  const ns = await api.get('namespaces', undefined, 'held');
  await api.update({ ...ns, metadata: { ...ns.metadata, finalizers: [] } });
  await waitFor('namespace removed', async () => !(await nsExists(api, 'held')));
});

test('a namespace deleted through the API is finished by the controller too', async (t) => {
  const { api, start } = await setup(t);
  await start();
  await fill(api, 'normal');
  await api.delete('namespaces', undefined, 'normal');
  await waitFor('namespace removed', async () => !(await nsExists(api, 'normal')));
  t.is(await count(api, 'normal'), 0);
});
