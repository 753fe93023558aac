// The API server's semantics over a real (in-process) store: admission, lifecycle metadata,
// optimistic concurrency, apply's merge, deletion with finalizers and propagation, namespace
// deletion, watch, events. The gRPC edge and berthctl are covered against a real cluster.
import test from 'ava';
import pino from 'pino';
import { ApiError, ApiErrorCode } from '../../pkg/api/errors.js';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import { EventRecorder } from '../../pkg/api/server/events.js';
import type { ApiWatchEvent } from '../../pkg/api/server/watch.js';
import type { ApiObject } from '../../pkg/api/types.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const logger = pino({ level: 'silent' });

async function server(): Promise<ApiServer> {
  const api = new ApiServer({ kv: createLocalStore(), logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  return api;
}

function deployment(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: { app: name } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'web', image: 'berth/busybox:test', ports: [{ containerPort: 80 }] }] },
      },
      ...extra,
    },
  };
}

const configMap = (name: string, data: Record<string, string>, namespace?: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, ...(namespace ? { namespace } : {}) },
  data,
});

async function rejects(
  t: import('ava').ExecutionContext,
  p: Promise<unknown>,
  code: ApiErrorCode,
  re?: RegExp,
) {
  const err = await t.throwsAsync(p);
  t.true(err instanceof ApiError, `an ApiError, got ${String(err)}`);
  t.is((err as ApiError).code, code, (err as Error).message);
  if (re) t.regex((err as Error).message, re);
  return err as ApiError;
}

test('create fills in uid, timestamps, generation, defaults and the resourceVersion', async (t) => {
  const api = await server();
  const d = await api.create(deployment('web'));
  t.regex(d.metadata.uid ?? '', /^[0-9a-f-]{36}$/);
  t.regex(d.metadata.creationTimestamp ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  t.is(d.metadata.namespace, 'default');
  t.is(d.metadata.generation, 1);
  t.regex(d.metadata.resourceVersion ?? '', /^\d+$/);
  t.is((d.spec?.strategy as { type: string } | undefined)?.type, 'RollingUpdate');
  const got = await api.get('deploy', 'default', 'web');
  t.deepEqual(got, d);
});

test('create: an existing name, a missing namespace and invalid objects are clear errors', async (t) => {
  const api = await server();
  await api.create(deployment('web'));
  await rejects(
    t,
    api.create(deployment('web')),
    ApiErrorCode.AlreadyExists,
    /deployments\.apps "web" already exists/,
  );
  await rejects(
    t,
    api.create(deployment('web'), { namespace: 'nope' }),
    ApiErrorCode.NotFound,
    /namespaces "nope" not found/,
  );
  const bad = deployment('x', { replicas: -1 });
  (
    (bad.spec as { template: { spec: { containers: Record<string, unknown>[] } } }).template.spec
      .containers[0] as Record<string, unknown>
  ).foo = 1;
  const err = await rejects(t, api.create(bad), ApiErrorCode.Invalid);
  t.true(
    err.fieldErrors.some(
      (f) => f.path === 'spec.template.spec.containers[0].foo' && /unknown field/.test(f.message),
    ),
  );
  t.true(err.fieldErrors.some((f) => f.path === 'spec.replicas'));
  t.is(err.grpc, 3);
  await rejects(t, api.get('deploy', 'default', 'x'), ApiErrorCode.NotFound);
});

test('dry run validates and answers, but stores nothing', async (t) => {
  const api = await server();
  const d = await api.create(deployment('web'), { dryRun: true });
  t.is(d.metadata.name, 'web');
  await rejects(t, api.get('deployments', 'default', 'web'), ApiErrorCode.NotFound);
});

test('update is guarded by resourceVersion, bumps generation on spec changes only, keeps status', async (t) => {
  const api = await server();
  const d = await api.create(deployment('web'));
  const withStatus = await api.update({ ...d, status: { replicas: 2, readyReplicas: 1 } }, {}, true);
  t.is(withStatus.metadata.generation, 1);
  t.deepEqual(withStatus.status, { replicas: 2, readyReplicas: 1 });

  const scaled = await api.update({ ...withStatus, spec: { ...withStatus.spec, replicas: 5 }, status: {} });
  t.is(scaled.metadata.generation, 2);
  t.deepEqual(scaled.status, { replicas: 2, readyReplicas: 1 }, 'update keeps the stored status');

  const labelled = await api.update({
    ...scaled,
    metadata: { ...scaled.metadata, labels: { app: 'web', x: 'y' } },
  });
  t.is(labelled.metadata.generation, 2, 'a metadata change is not a new generation');

  await rejects(
    t,
    api.update({ ...d, spec: { ...d.spec, replicas: 7 } }),
    ApiErrorCode.Conflict,
    /latest version and try again/,
  );
  const unchanged = await api.update(labelled);
  t.is(
    unchanged.metadata.resourceVersion,
    labelled.metadata.resourceVersion,
    'a no-op update writes nothing',
  );
});

test('apply creates, configures, and says unchanged; a field removed from the manifest is removed', async (t) => {
  const api = await server();
  const cm = configMap('app', { a: '1', b: '2' });
  t.is((await api.apply(cm)).result, 'created');
  t.is((await api.apply(cm)).result, 'unchanged');
  const r = await api.apply(configMap('app', { a: '1', c: '3' }));
  t.is(r.result, 'configured');
  t.deepEqual(r.object.data, { a: '1', c: '3' });

  // Fields others set survive an apply that does not mention them.
  const d = await api.apply(deployment('web'));
  await api.update({ ...d.object, status: { replicas: 2 } }, {}, true);
  const again = await api.apply(deployment('web', { replicas: 3 }));
  t.is(again.result, 'configured');
  t.deepEqual(again.object.status, { replicas: 2 });
  t.is(again.object.metadata.generation, 2);
  t.is((again.object.spec as { replicas: number }).replicas, 3);
});

test('list filters by namespace, labels and fields; a bad selector is INVALID_ARGUMENT', async (t) => {
  const api = await server();
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
  await api.create(deployment('web'));
  await api.create(deployment('api'));
  await api.create({
    ...deployment('cart'),
    metadata: { name: 'cart', namespace: 'shop', labels: { app: 'cart' } },
  });
  t.deepEqual(
    (await api.list('deploy', { namespace: 'default' })).items.map((d) => d.metadata.name),
    ['api', 'web'],
  );
  t.is((await api.list('deploy', {})).items.length, 3);
  t.deepEqual(
    (await api.list('deploy', { labelSelector: 'app in (web, cart)' })).items.map((d) => d.metadata.name),
    ['web', 'cart'],
  );
  t.deepEqual(
    (await api.list('deploy', { fieldSelector: 'metadata.name!=web', namespace: 'default' })).items.map(
      (d) => d.metadata.name,
    ),
    ['api'],
  );
  await rejects(t, api.list('deploy', { labelSelector: 'app in (' }), ApiErrorCode.BadRequest);
  await rejects(
    t,
    api.list('nonsense', {}),
    ApiErrorCode.BadRequest,
    /doesn't have a resource type "nonsense"/,
  );
});

test('secrets: stringData is merged into base64 data', async (t) => {
  const api = await server();
  const s = await api.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'db' },
    data: { user: Buffer.from('admin').toString('base64') },
    stringData: { password: 's3cret' },
  });
  t.is(s.type, 'Opaque');
  t.deepEqual(s.data, { user: 'YWRtaW4=', password: Buffer.from('s3cret').toString('base64') });
  t.is(s.stringData, undefined);
});

test('finalizers hold a deleted object until they are removed', async (t) => {
  const api = await server();
  const cm = await api.create({
    ...configMap('held', { a: '1' }),
    metadata: { name: 'held', finalizers: ['example.com/x'] },
  });
  const r = await api.delete('cm', 'default', 'held');
  t.false(r.deleted);
  t.truthy(r.object.metadata.deletionTimestamp);
  const now = await api.get('cm', 'default', 'held');
  t.truthy(now.metadata.deletionTimestamp);
  await api.update({ ...now, metadata: { ...now.metadata, finalizers: [] } });
  await rejects(t, api.get('cm', 'default', 'held'), ApiErrorCode.NotFound);
  t.truthy(cm);
});

test('propagation: background deletes dependents, orphan keeps them without the owner reference', async (t) => {
  const api = await server();
  const owner = await api.create(configMap('owner', {}));
  const ref = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    name: 'owner',
    uid: owner.metadata.uid as string,
    controller: true,
  };
  await api.create({ ...configMap('child', {}), metadata: { name: 'child', ownerReferences: [ref] } });
  await api.delete('cm', 'default', 'owner', { propagationPolicy: 'Background' });
  await waitFor(async () => !(await exists(api, 'child')));
  t.false(await exists(api, 'child'));

  const owner2 = await api.create(configMap('owner2', {}));
  const ref2 = { ...ref, name: 'owner2', uid: owner2.metadata.uid as string };
  await api.create({ ...configMap('kept', {}), metadata: { name: 'kept', ownerReferences: [ref2] } });
  await api.delete('cm', 'default', 'owner2', { propagationPolicy: 'Orphan' });
  const kept = await api.get('cm', 'default', 'kept');
  t.is(kept.metadata.ownerReferences, undefined);

  const owner3 = await api.create(configMap('owner3', {}));
  const ref3 = { ...ref, name: 'owner3', uid: owner3.metadata.uid as string };
  await api.create({ ...configMap('first', {}), metadata: { name: 'first', ownerReferences: [ref3] } });
  const r = await api.delete('cm', 'default', 'owner3', { propagationPolicy: 'Foreground' });
  t.false(r.deleted, 'foreground: the owner waits for its dependents');
  await waitFor(async () => !(await exists(api, 'owner3')));
  t.false(await exists(api, 'first'));
});

test('deleting a namespace deletes what is in it; system namespaces cannot be deleted', async (t) => {
  const api = await server();
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
  await api.create(configMap('a', { x: '1' }, 'shop'));
  await api.create({ ...deployment('web'), metadata: { name: 'web', namespace: 'shop' } });
  const r = await api.delete('ns', undefined, 'shop');
  t.false(r.deleted);
  t.is((r.object.status as { phase: string }).phase, 'Terminating');
  await rejects(t, api.create(configMap('b', {}, 'shop')), ApiErrorCode.Forbidden, /being terminated/);
  await waitFor(async () => {
    try {
      await api.get('ns', undefined, 'shop');
      return false;
    } catch {
      return true;
    }
  });
  t.is((await api.list('cm', { namespace: 'shop' })).items.length, 0);
  t.is((await api.list('deploy', { namespace: 'shop' })).items.length, 0);
  await rejects(t, api.delete('ns', undefined, 'default'), ApiErrorCode.Forbidden);
  await rejects(t, api.delete('ns', undefined, 'berth-system'), ApiErrorCode.Forbidden);
});

test('pods bound to a node terminate gracefully; grace 0 removes them', async (t) => {
  const api = await server();
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p' },
    spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'berth/busybox:test' }] },
  };
  const created = await api.create(pod);
  t.deepEqual(created.status, { phase: 'Pending' });
  const r = await api.delete('po', 'default', 'p');
  t.false(r.deleted);
  t.is(r.object.metadata.deletionGracePeriodSeconds, 30);
  const r2 = await api.delete('po', 'default', 'p', { gracePeriodSeconds: 0 });
  t.true(r2.deleted);
});

test('watch: initial ADDED, then changes in order; selectors turn into ADDED/DELETED; bookmarks', async (t) => {
  const api = await server();
  await api.create(configMap('one', { v: '1' }));
  const events: ApiWatchEvent[] = [];
  const h = await api.watch(
    'cm',
    { namespace: 'default', bookmarkIntervalMs: 100, labelSelector: '' },
    { event: (e) => events.push(e), end: () => {} },
  );
  const two = await api.create(configMap('two', { v: '2' }));
  await api.update({ ...two, data: { v: '3' } });
  await api.delete('cm', 'default', 'two');
  await waitFor(
    async () => events.some((e) => e.type === 'DELETED') && events.some((e) => e.type === 'BOOKMARK'),
  );
  await h.cancel();
  const seen = events
    .filter((e) => e.type !== 'BOOKMARK')
    .map((e) => `${e.type} ${(e.object as ApiObject).metadata.name}`);
  t.deepEqual(seen, ['ADDED one', 'ADDED two', 'MODIFIED two', 'DELETED two']);
  const bm = events.find((e) => e.type === 'BOOKMARK')?.object as ApiObject;
  t.regex(bm.metadata.resourceVersion ?? '', /^\d+$/);

  // A label selector: an object that stops matching is DELETED for this watcher.
  const sel: ApiWatchEvent[] = [];
  const labelled = await api.create({
    ...configMap('l', {}),
    metadata: { name: 'l', labels: { tier: 'fe' } },
  });
  const h2 = await api.watch(
    'cm',
    { namespace: 'default', labelSelector: 'tier=fe', resourceVersion: labelled.metadata.resourceVersion },
    { event: (e) => sel.push(e), end: () => {} },
  );
  const moved = await api.update({ ...labelled, metadata: { ...labelled.metadata, labels: { tier: 'be' } } });
  await api.update({ ...moved, metadata: { ...moved.metadata, labels: { tier: 'fe' } } });
  await waitFor(async () => sel.length >= 2);
  await h2.cancel();
  t.deepEqual(
    sel.map((e) => e.type),
    ['DELETED', 'ADDED'],
  );
});

test('watch from a compacted resourceVersion ends with an Expired ERROR telling to re-list', async (t) => {
  const kv = createLocalStore();
  const api = new ApiServer({ kv, logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  const a = await api.create(configMap('a', {}));
  await api.update({ ...a, data: { x: '1' } });
  const b = await api.create(configMap('b', {}));
  await kv.compact({ revision: Number(b.metadata.resourceVersion) });
  const events: ApiWatchEvent[] = [];
  let ended = false;
  await api.watch(
    'cm',
    { namespace: 'default', resourceVersion: a.metadata.resourceVersion },
    { event: (e) => events.push(e), end: () => (ended = true) },
  );
  await waitFor(async () => ended);
  t.is(events.length, 1);
  t.is(events[0]?.type, 'ERROR');
  const status = events[0]?.object as unknown as { code: number; reason: string; message: string };
  t.is(status.code, 410);
  t.is(status.reason, 'Expired');
  t.regex(status.message, /list again/);
});

test('events: a repeat counts up on one Event, attached to an hour-long lease', async (t) => {
  const kv = createLocalStore();
  const api = new ApiServer({ kv, logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  const d = await api.create(deployment('web'));
  const rec = new EventRecorder({ store: api.store, source: { component: 'test', host: 'n1' }, logger });
  const e1 = await rec.record(d, 'Normal', 'ScalingReplicaSet', 'Scaled up replica set web-1 to 2');
  const e2 = await rec.record(d, 'Normal', 'ScalingReplicaSet', 'Scaled up replica set web-1 to 2');
  await rec.record(d, 'Warning', 'BackOff', 'Back-off restarting failed container');
  t.is(e1.metadata.name, e2.metadata.name);
  t.is(e2.count, 2);
  const list = await api.list('events', {
    namespace: 'default',
    fieldSelector: `involvedObject.uid=${d.metadata.uid}`,
  });
  t.is(list.items.length, 2);
  const leases = await kv.leaseLeases();
  t.is(leases.leases.length, 1, 'events written together share one lease');
  const ttl = await kv.leaseTimeToLive(leases.leases[0]?.id as number, true);
  t.true(ttl.grantedTtl >= 3600);
  t.is(ttl.keys.length, 2);
});

test('hostile input never throws anything but an ApiError, and stores nothing', async (t) => {
  const api = await server();
  const before = (await api.list('cm', {})).items.length;
  const inputs: unknown[] = [
    null,
    42,
    'text',
    [],
    {},
    { apiVersion: 'v1' },
    { apiVersion: 'v1', kind: 'ConfigMap' },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: [] },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'UPPER' } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'ok' }, data: { k: 1 } },
    JSON.parse('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"p","__proto__":{"x":1}}}'),
    { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'c' } },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'big' },
      data: { k: 'x'.repeat(1.2 * 1024 * 1024) },
    },
  ];
  for (const input of inputs) {
    for (const op of [() => api.create(input), () => api.apply(input), () => api.update(input)]) {
      const err = await t.throwsAsync(op());
      t.true(err instanceof ApiError, `${JSON.stringify(input)?.slice(0, 80)}: ${String(err)}`);
    }
  }
  t.is((await api.list('cm', {})).items.length, before);
});

async function exists(api: ApiServer, name: string): Promise<boolean> {
  try {
    await api.get('cm', 'default', name);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(probe: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
