// The ReplicaSet controller on an in-process API server: pods made from the template,
// replaced, deleted in Kubernetes' order, adopted and released; expectations against a slow
// watch; status and the ReplicaFailure condition. The agent and scheduler are played by
// `bind` and `setPodStatus` below.
import test from 'ava';
import pino from 'pino';
import { ApiError, ApiErrorCode } from '../../pkg/api/errors.js';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import { EventRecorder } from '../../pkg/api/server/events.js';
import type { WatchSink } from '../../pkg/api/server/watch.js';
import type { ApiObject } from '../../pkg/api/types.js';
import {
  type ControllerContext,
  DEFAULT_CONTROLLER_OPTIONS,
  Informers,
} from '../../pkg/controller/manager.js';
import { type ReplicaSetReconciler, replicaSetController } from '../../pkg/controller/replicaset.js';
import { compareForDeletion } from '../../pkg/controller/replicaset-pods.js';
import { ControllerRunner } from '../../pkg/controller/runner.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const logger = pino({ level: 'silent' });

async function server(): Promise<ApiServer> {
  const api = new ApiServer({ kv: createLocalStore(), logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  return api;
}

interface StartOptions {
  /** The API the controller writes through (to inject failures). */
  writeApi?: ApiServer;
  /** The API the informers watch through (to slow the watch down). */
  watchApi?: ApiServer;
  /** Start the workers (false: the test calls reconcile itself). */
  run?: boolean;
}

async function start(api: ApiServer, o: StartOptions = {}) {
  const informers = new Informers(o.watchApi ?? api, logger);
  const events = new EventRecorder({ store: api.store, source: { component: 'test' }, logger });
  const ctx: ControllerContext = {
    api: o.writeApi ?? api,
    informers,
    events,
    logger,
    options: DEFAULT_CONTROLLER_OPTIONS,
    now: Date.now,
  };
  let runner: ControllerRunner | undefined;
  const r = replicaSetController.create(ctx, (k) => runner?.queue.add(k)) as ReplicaSetReconciler;
  runner = new ControllerRunner(r, logger);
  await informers.startAll();
  if (o.run !== false) {
    runner.start();
    for (const k of r.initialKeys?.() ?? []) runner.queue.add(k);
  }
  return {
    r,
    informers,
    stop: async () => {
      await runner?.stop();
      await informers.stopAll();
    },
  };
}

/** A watch that holds back pod events while `closed`, as a slow watch would. */
function gatedWatch(api: ApiServer) {
  const gate = { closed: false, held: [] as (() => void)[] };
  const proxy = Object.create(api) as ApiServer;
  proxy.watch = (resource, options, sink) => {
    if (resource !== 'pods') return api.watch(resource, options, sink);
    const gated: WatchSink = {
      ...sink,
      event: (e) => (gate.closed ? gate.held.push(() => sink.event(e)) : sink.event(e)),
    };
    return api.watch(resource, options, gated);
  };
  const open = () => {
    gate.closed = false;
    for (const f of gate.held.splice(0)) f();
  };
  return { proxy, gate, open };
}

function replicaSet(
  name: string,
  replicas: number,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name, tier: 'web' } },
        spec: { containers: [{ name: 'c', image: 'berth/busybox:test' }] },
      },
      ...extra,
    },
  };
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

const podsOf = async (api: ApiServer, app: string) =>
  (await api.list('pods', { namespace: 'default', labelSelector: `app=${app}` })).items;
const activePods = async (api: ApiServer, app: string) =>
  (await podsOf(api, app)).filter((p) => !p.metadata.deletionTimestamp);

async function waitForPods(api: ApiServer, app: string, n: number): Promise<ApiObject[]> {
  return waitFor(`${n} pods of ${app}`, async () => {
    const pods = await activePods(api, app);
    return pods.length === n ? pods : undefined;
  });
}

const bind = (api: ApiServer, pod: ApiObject, node = 'n1') =>
  api.update({ ...pod, spec: { ...pod.spec, nodeName: node } });

async function setPodStatus(
  api: ApiServer,
  pod: ApiObject,
  s: { phase?: string; ready?: boolean; restarts?: number; readySince?: string },
): Promise<ApiObject> {
  const current = await api.get('pods', pod.metadata.namespace, pod.metadata.name as string);
  const at = s.readySince ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const status = {
    phase: s.phase ?? 'Running',
    conditions: [{ type: 'Ready', status: s.ready ? 'True' : 'False', lastTransitionTime: at }],
    containerStatuses: [
      { name: 'c', ready: s.ready === true, restartCount: s.restarts ?? 0, image: 'i', imageID: 'i' },
    ],
  };
  return api.update({ ...current, status }, {}, true);
}

test('creates spec.replicas pods from the template, owned by the ReplicaSet, and reports status', async (t) => {
  const api = await server();
  const c = await start(api);
  const rs = await api.create(replicaSet('web', 3));
  const pods = await waitForPods(api, 'web', 3);
  for (const p of pods) {
    t.regex(p.metadata.name ?? '', /^web-[a-z0-9]{5}$/);
    t.deepEqual(p.metadata.labels, { app: 'web', tier: 'web' });
    t.deepEqual(p.metadata.ownerReferences, [
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        name: 'web',
        uid: rs.metadata.uid as string,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
  }
  for (const p of pods) await setPodStatus(api, await bind(api, p), { ready: true });
  const status = await waitFor('status', async () => {
    const s = (await api.get('rs', 'default', 'web')).status;
    return s?.readyReplicas === 3 ? s : undefined;
  });
  t.like(status, {
    replicas: 3,
    fullyLabeledReplicas: 3,
    readyReplicas: 3,
    availableReplicas: 3,
    observedGeneration: 1,
  });
  const events = (await api.list('events', { namespace: 'default' })).items;
  t.is(events.filter((e) => e.reason === 'SuccessfulCreate').length, 3);
  await c.stop();
});

test('replaces a deleted pod and a failed one; terminating pods are not counted', async (t) => {
  const api = await server();
  const c = await start(api);
  await api.create(replicaSet('web', 2));
  const [a, b] = await waitForPods(api, 'web', 2);
  await api.delete('pods', 'default', a?.metadata.name as string);
  const after = await waitForPods(api, 'web', 2);
  t.false(after.some((p) => p.metadata.name === a?.metadata.name));
  await setPodStatus(api, b as ApiObject, { phase: 'Failed' });
  await waitFor('a replacement for the failed pod', async () => {
    const pods = (await activePods(api, 'web')).filter(
      (p) => (p.status as { phase?: string }).phase !== 'Failed',
    );
    return pods.length === 2;
  });
  // A bound pod deleted stays terminating (the agent stops it); the RS replaces it at once.
  const [x] = await activePods(api, 'web');
  const bound = await bind(api, x as ApiObject);
  await api.delete('pods', 'default', bound.metadata.name as string);
  await waitFor('a replacement for the terminating pod', async () => {
    const pods = await podsOf(api, 'web');
    const live = pods.filter(
      (p) => !p.metadata.deletionTimestamp && (p.status as { phase?: string }).phase !== 'Failed',
    );
    return live.length === 2 && pods.some((p) => p.metadata.deletionTimestamp);
  });
  await c.stop();
});

test('deletion order: unscheduled, pending, not ready, ready for less time, more restarts, newer first', (t) => {
  const pod = (
    name: string,
    o: {
      node?: string;
      phase?: string;
      ready?: boolean;
      since?: string;
      restarts?: number;
      created?: string;
    },
  ): ApiObject => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, creationTimestamp: o.created ?? '2026-01-01T00:00:00Z' },
    spec: o.node ? { nodeName: o.node } : {},
    status: {
      phase: o.phase ?? 'Running',
      conditions: [
        {
          type: 'Ready',
          status: o.ready ? 'True' : 'False',
          lastTransitionTime: o.since ?? '2026-01-01T00:00:00Z',
        },
      ],
      containerStatuses: [{ restartCount: o.restarts ?? 0 }],
    },
  });
  const expected = [
    pod('unscheduled', { phase: 'Pending' }),
    pod('pending', { node: 'n', phase: 'Pending' }),
    pod('unknown', { node: 'n', phase: 'Unknown' }),
    pod('not-ready', { node: 'n' }),
    pod('ready-recently', { node: 'n', ready: true, since: '2026-01-01T00:05:00Z' }),
    pod('restarted', { node: 'n', ready: true, restarts: 4 }),
    pod('newer', { node: 'n', ready: true, created: '2026-01-01T00:00:10Z' }),
    pod('oldest', { node: 'n', ready: true }),
  ];
  const shuffled = [...expected].reverse();
  t.deepEqual(
    shuffled.sort(compareForDeletion).map((p) => p.metadata.name),
    expected.map((p) => p.metadata.name),
  );
});

test('scale down deletes not-ready and unscheduled pods before ready ones', async (t) => {
  const api = await server();
  const c = await start(api);
  await api.create(replicaSet('web', 4));
  const pods = await waitForPods(api, 'web', 4);
  const [p0, p1, p2, p3] = pods as [ApiObject, ApiObject, ApiObject, ApiObject];
  await setPodStatus(api, await bind(api, p1), { phase: 'Pending' });
  await setPodStatus(api, await bind(api, p2), { ready: true, restarts: 2 });
  await setPodStatus(api, await bind(api, p3), { ready: true });
  const rs = await api.get('rs', 'default', 'web');
  const scale = async (n: number) => {
    const cur = await api.get('rs', 'default', 'web');
    await api.update({ ...cur, spec: { ...cur.spec, replicas: n } });
    return waitForPods(api, 'web', n);
  };
  t.truthy(rs);
  t.deepEqual(
    (await scale(3)).map((p) => p.metadata.name).sort(),
    [p1, p2, p3].map((p) => p.metadata.name).sort(),
  );
  t.deepEqual(
    (await scale(2)).map((p) => p.metadata.name).sort(),
    [p2, p3].map((p) => p.metadata.name).sort(),
  );
  t.deepEqual(
    (await scale(1)).map((p) => p.metadata.name),
    [p3.metadata.name],
  );
  t.is(p0.spec?.nodeName, undefined);
  const events = (await api.list('events', { namespace: 'default' })).items;
  t.is(events.filter((e) => e.reason === 'SuccessfulDelete').length, 3);
  await c.stop();
});

test('adopts matching orphans and releases pods whose labels stop matching', async (t) => {
  const api = await server();
  const c = await start(api);
  const orphan = await api.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'stray', labels: { app: 'web' } },
    spec: { containers: [{ name: 'c', image: 'berth/busybox:test' }] },
  });
  const rs = await api.create(replicaSet('web', 2));
  const pods = await waitForPods(api, 'web', 2);
  const adopted = pods.find((p) => p.metadata.name === 'stray');
  t.is(adopted?.metadata.ownerReferences?.[0]?.uid, rs.metadata.uid);
  t.is(adopted?.metadata.uid, orphan.metadata.uid);
  // Relabel it out of the selector: released, and a replacement is made.
  await api.update({ ...adopted, metadata: { ...adopted?.metadata, labels: { app: 'other' } } });
  await waitFor('release and replacement', async () => {
    const stray = await api.get('pods', 'default', 'stray');
    const mine = await waitForPods(api, 'web', 2);
    return stray.metadata.ownerReferences === undefined && !mine.some((p) => p.metadata.name === 'stray');
  });
  await c.stop();
});

test('expectations: a slow watch does not make a second round of pods', async (t) => {
  const api = await server();
  const w = gatedWatch(api);
  const c = await start(api, { watchApi: w.proxy, run: false });
  w.gate.closed = true;
  await api.create(replicaSet('slow', 3));
  await waitFor('the RS in the cache', async () => c.informers.get('replicasets').get('default/slow'));
  await c.r.reconcile('default/slow');
  t.is((await podsOf(api, 'slow')).length, 3);
  // The cache has not seen the pods: without expectations this would make three more.
  await c.r.reconcile('default/slow');
  t.is((await podsOf(api, 'slow')).length, 3);
  t.false(c.r.expectations.satisfied('default/slow'));
  w.open();
  await waitFor('expectations met', async () => c.r.expectations.satisfied('default/slow'));
  await c.r.reconcile('default/slow');
  t.is((await podsOf(api, 'slow')).length, 3);
  await c.stop();
});

test('creates in slow-start batches and reports ReplicaFailure when creates fail', async (t) => {
  const api = await server();
  const failing = Object.create(api) as ApiServer;
  let creates = 0;
  failing.create = async (raw, options) => {
    if ((raw as ApiObject).kind === 'Pod' && ++creates > 3)
      throw new ApiError(ApiErrorCode.Forbidden, 'quota exceeded');
    return api.create(raw, options);
  };
  const c = await start(api, { writeApi: failing, run: false });
  await api.create(replicaSet('web', 10));
  await waitFor('the RS in the cache', async () => c.informers.get('replicasets').get('default/web'));
  await t.throwsAsync(c.r.reconcile('default/web'), { message: 'quota exceeded' });
  // Batches 1 and 2 succeed (3 pods); the batch of 4 fails and nothing more is tried.
  t.is(creates, 7);
  t.is((await podsOf(api, 'web')).length, 3);
  const rs = await api.get('rs', 'default', 'web');
  const cond = (
    rs.status?.conditions as { type: string; reason: string; message: string }[] | undefined
  )?.[0];
  t.like(cond, { type: 'ReplicaFailure', reason: 'FailedCreate', message: 'quota exceeded' });
  // The failed and untried creates are not expected: the next reconcile tries again.
  await waitFor('the 3 pods in the cache', async () => c.r.expectations.satisfied('default/web'));
  await t.throwsAsync(c.r.reconcile('default/web'));
  t.is(creates, 8, 'slow start begins at 1 again');
  await c.stop();
});

test('availableReplicas waits for minReadySeconds', async (t) => {
  const api = await server();
  const c = await start(api);
  await api.create(replicaSet('web', 1, { minReadySeconds: 1 }));
  const [p] = await waitForPods(api, 'web', 1);
  await setPodStatus(api, await bind(api, p as ApiObject), { ready: true });
  const first = await waitFor('ready', async () => {
    const s = (await api.get('rs', 'default', 'web')).status;
    return s?.readyReplicas === 1 ? s : undefined;
  });
  t.is(first.availableReplicas, 0);
  await waitFor(
    'available',
    async () => (await api.get('rs', 'default', 'web')).status?.availableReplicas === 1,
    4000,
  );
  t.pass();
  await c.stop();
});
