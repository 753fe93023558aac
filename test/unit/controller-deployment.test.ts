// The Deployment controller with the ReplicaSet controller on an in-process API server.
// A fake agent binds pods, marks them Ready one at a time and finishes terminating ones;
// a monitor checks the rollout invariants on every state it sees.
import test, { type ExecutionContext } from 'ava';
import pino from 'pino';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import type { ApiObject } from '../../pkg/api/types.js';
import { deploymentController } from '../../pkg/controller/deployment.js';
import { computeHash, resolveFenceposts } from '../../pkg/controller/deployment-util.js';
import { ControllerManager } from '../../pkg/controller/manager.js';
import { replicaSetController } from '../../pkg/controller/replicaset.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const logger = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const REVISION = 'deployment.kubernetes.io/revision';

interface AgentOptions {
  /** Pods whose image is this never become Ready. */
  neverReady?: string;
  /** Pause between two pods turning Ready (ms), so a rollout goes step by step. */
  readyEveryMs?: number;
  /** How long terminating pods linger before they are gone (ms). */
  terminateAfterMs?: number;
}

/** Plays the scheduler and the agents: bind, turn Ready, finish terminating pods. */
function fakeAgent(api: ApiServer, o: AgentOptions) {
  let stopped = false;
  let lastReady = 0;
  const seenTerminating = new Map<string, number>();
  const image = (p: ApiObject) => (p.spec?.containers as { image: string }[] | undefined)?.[0]?.image;
  const tick = async () => {
    for (const p of (await api.list('pods', { namespace: 'default' })).items) {
      const name = p.metadata.name as string;
      if (p.metadata.deletionTimestamp) {
        const since = seenTerminating.get(name) ?? Date.now();
        seenTerminating.set(name, since);
        if (Date.now() - since >= (o.terminateAfterMs ?? 0))
          await api.delete('pods', 'default', name, { gracePeriodSeconds: 0 });
      } else if (!p.spec?.nodeName) {
        await api.update({ ...p, spec: { ...p.spec, nodeName: 'n1' } });
      } else if (!ready(p) && image(p) !== o.neverReady && Date.now() - lastReady >= (o.readyEveryMs ?? 0)) {
        lastReady = Date.now();
        const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
        const status = {
          phase: 'Running',
          conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: at }],
        };
        await api.update({ ...p, status }, {}, true);
      }
    }
  };
  const loop = (async () => {
    while (!stopped) {
      await tick().catch(() => undefined); // conflicts with the controllers: try again next tick
      await sleep(5);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

const ready = (p: ApiObject) =>
  (p.status?.conditions as { type: string; status: string }[] | undefined)?.some(
    (c) => c.type === 'Ready' && c.status === 'True',
  ) === true;

async function cluster(agent: AgentOptions = {}) {
  const api = new ApiServer({ kv: createLocalStore(), logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  const manager = new ControllerManager([replicaSetController, deploymentController], logger);
  await manager.start(api);
  const a = fakeAgent(api, agent);
  return {
    api,
    stop: async () => {
      await a.stop();
      await manager.stop();
    },
  };
}

function deployment(name: string, replicas: number, spec: Record<string, unknown> = {}, image = 'v1') {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'c', image: `berth/app:${image}` }] },
      },
      ...spec,
    },
  };
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const getD = (api: ApiServer, name: string) => api.get('deployments', 'default', name);
const replicaSets = async (api: ApiServer, app: string) =>
  (await api.list('replicasets', { namespace: 'default', labelSelector: `app=${app}` })).items;
type Template = { spec: { containers: { image: string }[] } };
const image = (o: ApiObject) => (o.spec?.template as Template | undefined)?.spec.containers[0]?.image;

async function edit(api: ApiServer, name: string, f: (spec: Record<string, unknown>) => void): Promise<void> {
  for (;;) {
    const d = structuredClone(await getD(api, name));
    f(d.spec as Record<string, unknown>);
    try {
      await api.update(d);
      return;
    } catch {
      // a status write got in between: read again
    }
  }
}

const setImage = (api: ApiServer, name: string, tag: string) =>
  edit(api, name, (s) => {
    (
      (s.template as { spec: { containers: { image: string }[] } }).spec.containers[0] as { image: string }
    ).image = `berth/app:${tag}`;
  });

/** The rollout is done: every replica updated and available, old ReplicaSets at 0. */
async function rolledOut(api: ApiServer, name: string, tag: string): Promise<ApiObject[]> {
  return waitFor(`${name} rolled out to ${tag}`, async () => {
    const d = await getD(api, name);
    const s = (d.status ?? {}) as Record<string, number>;
    const n = d.spec?.replicas as number;
    const rss = await replicaSets(api, name);
    const done =
      s.observedGeneration === d.metadata.generation &&
      s.updatedReplicas === n &&
      s.availableReplicas === n &&
      s.replicas === n &&
      rss.every((rs) => (image(rs) === `berth/app:${tag}`) === (rs.spec?.replicas !== 0));
    return done ? rss : undefined;
  });
}

/** Checks, on every state it sees, sum(RS replicas) <= replicas + maxSurge and Ready pods >= replicas - maxUnavailable. */
function monitor(
  t: ExecutionContext,
  api: ApiServer,
  app: string,
  replicas: number,
  surge: number,
  unavailable: number,
) {
  let stopped = false;
  let states = 0;
  const loop = (async () => {
    while (!stopped) {
      const rss = await replicaSets(api, app);
      const total = rss.reduce((n, rs) => n + (rs.spec?.replicas as number), 0);
      if (total > replicas + surge) t.fail(`${total} replicas > ${replicas} + maxSurge ${surge}`);
      const pods = (await api.list('pods', { namespace: 'default', labelSelector: `app=${app}` })).items;
      const available = pods.filter((p) => !p.metadata.deletionTimestamp && ready(p)).length;
      if (available < replicas - unavailable)
        t.fail(`${available} available < ${replicas} - maxUnavailable ${unavailable}`);
      states++;
      await sleep(1);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return states;
    },
  };
}

test('fenceposts: surge rounds up, unavailable down, both 0 means one unavailable', (t) => {
  t.deepEqual(resolveFenceposts('25%', '25%', 10), { surge: 3, unavailable: 2 });
  t.deepEqual(resolveFenceposts('30%', '30%', 5), { surge: 2, unavailable: 1 });
  t.deepEqual(resolveFenceposts(0, '10%', 5), { surge: 0, unavailable: 1 });
  t.deepEqual(resolveFenceposts('0%', 0, 5), { surge: 0, unavailable: 1 });
  const template = { metadata: { labels: { app: 'web' } }, spec: { containers: [] } };
  t.is(computeHash(template), computeHash(structuredClone(template)));
  t.not(computeHash(template), computeHash(template, 1));
  t.regex(computeHash(template), /^[bcdfghjklmnpqrstvwxz2456789]+$/);
});

test('a new Deployment gets a ReplicaSet named by its template hash, revision 1, and completes', async (t) => {
  const { api, stop } = await cluster();
  const d = await api.create(deployment('web', 3));
  const [rs] = await rolledOut(api, 'web', 'v1');
  const hash = rs?.metadata.labels?.['pod-template-hash'] as string;
  t.is(rs?.metadata.name, `web-${hash}`);
  t.is(hash, computeHash((d.spec as { template: never }).template));
  t.like(rs?.metadata.annotations, {
    [REVISION]: '1',
    'deployment.kubernetes.io/desired-replicas': '3',
    'deployment.kubernetes.io/max-replicas': '4',
  });
  t.deepEqual(rs?.spec?.selector, {
    matchLabels: { app: 'web', 'pod-template-hash': hash },
  });
  t.is(rs?.metadata.ownerReferences?.[0]?.uid, d.metadata.uid);
  const pods = (await api.list('pods', { namespace: 'default' })).items;
  t.true(pods.every((p) => p.metadata.labels?.['pod-template-hash'] === hash));
  const done = await waitFor('conditions', async () => {
    const got = await getD(api, 'web');
    const conds = got.status?.conditions as { type: string; reason: string }[];
    return conds.some((c) => c.reason === 'NewReplicaSetAvailable') ? got : undefined;
  });
  t.is(done.metadata.annotations?.[REVISION], '1');
  t.like(done.status, {
    replicas: 3,
    updatedReplicas: 3,
    readyReplicas: 3,
    availableReplicas: 3,
    unavailableReplicas: 0,
  });
  const conds = done.status?.conditions as { type: string; status: string; reason: string }[];
  t.like(
    conds.find((c) => c.type === 'Available'),
    { status: 'True', reason: 'MinimumReplicasAvailable' },
  );
  const events = (await api.list('events', { namespace: 'default' })).items;
  t.true(
    events.some(
      (e) => e.reason === 'ScalingReplicaSet' && e.message === `Scaled up replica set web-${hash} to 3`,
    ),
  );
  await stop();
});

test('a rolling update keeps within maxSurge and maxUnavailable at every step; rollback reuses the old ReplicaSet', async (t) => {
  const { api, stop } = await cluster({ readyEveryMs: 30 });
  // 30% of 5: surge rounds up to 2, unavailable down to 1.
  await api.create(
    deployment('web', 5, { strategy: { rollingUpdate: { maxSurge: '30%', maxUnavailable: '30%' } } }),
  );
  const [v1] = await rolledOut(api, 'web', 'v1');
  const m = monitor(t, api, 'web', 5, 2, 1);
  await setImage(api, 'web', 'v2');
  const rss = await rolledOut(api, 'web', 'v2');
  t.is(rss.length, 2);
  const v2 = rss.find((rs) => image(rs) === 'berth/app:v2');
  t.is(v2?.metadata.annotations?.[REVISION], '2');

  await setImage(api, 'web', 'v1');
  const after = await rolledOut(api, 'web', 'v1');
  t.true((await m.stop()) > 10);
  t.is(after.length, 2, 'no third ReplicaSet: the old one is new again');
  const back = after.find((rs) => rs.metadata.uid === v1?.metadata.uid);
  t.is(back?.metadata.annotations?.[REVISION], '3');
  t.is(back?.metadata.annotations?.['deployment.kubernetes.io/revision-history'], '1');
  t.is((await getD(api, 'web')).metadata.annotations?.[REVISION], '3');
  await stop();
});

test('revisionHistoryLimit prunes the oldest scaled-down ReplicaSets', async (t) => {
  const { api, stop } = await cluster();
  await api.create(deployment('web', 1, { revisionHistoryLimit: 1 }));
  await rolledOut(api, 'web', 'v1');
  for (const tag of ['v2', 'v3', 'v4']) {
    await setImage(api, 'web', tag);
    await rolledOut(api, 'web', tag);
  }
  const rss = await waitFor('pruned', async () => {
    const all = await replicaSets(api, 'web');
    return all.length === 2 ? all : undefined;
  });
  t.deepEqual(rss.map((rs) => rs.metadata.annotations?.[REVISION]).sort(), ['3', '4']);
  await stop();
});

test('Recreate scales the old ReplicaSet to 0 and waits for its pods to go before creating new ones', async (t) => {
  const { api, stop } = await cluster({ terminateAfterMs: 100 });
  await api.create(deployment('web', 3, { strategy: { type: 'Recreate' } }));
  await rolledOut(api, 'web', 'v1');
  let overlap = false;
  let stopped = false;
  const watch = (async () => {
    while (!stopped) {
      const pods = (await api.list('pods', { namespace: 'default' })).items;
      const tags = new Set(
        pods.map((p) => (p.spec?.containers as { image: string }[] | undefined)?.[0]?.image),
      );
      if (tags.size > 1) overlap = true;
      await sleep(2);
    }
  })();
  await setImage(api, 'web', 'v2');
  await rolledOut(api, 'web', 'v2');
  stopped = true;
  await watch;
  t.false(overlap, 'old and new pods never existed at once');
  await stop();
});

test('a paused Deployment scales but does not roll out; resuming rolls out', async (t) => {
  const { api, stop } = await cluster();
  await api.create(deployment('web', 2));
  await rolledOut(api, 'web', 'v1');
  await edit(api, 'web', (s) => {
    s.paused = true;
  });
  await setImage(api, 'web', 'v2');
  await edit(api, 'web', (s) => {
    s.replicas = 4;
  });
  const d = await waitFor('paused condition and scaled', async () => {
    const got = await getD(api, 'web');
    const conds = (got.status?.conditions ?? []) as { type: string; reason: string }[];
    const paused = conds.some((c) => c.type === 'Progressing' && c.reason === 'DeploymentPaused');
    return paused && got.status?.availableReplicas === 4 ? got : undefined;
  });
  t.truthy(d);
  const rss = await replicaSets(api, 'web');
  t.is(rss.length, 1, 'no new ReplicaSet while paused');
  t.is(image(rss[0] as ApiObject), 'berth/app:v1');
  t.is(rss[0]?.spec?.replicas, 4);
  await edit(api, 'web', (s) => {
    s.paused = false;
  });
  await rolledOut(api, 'web', 'v2');
  t.pass();
  await stop();
});

test('progress deadline: new pods never Ready → ProgressDeadlineExceeded, old pods keep serving', async (t) => {
  const { api, stop } = await cluster({ neverReady: 'berth/app:bad' });
  await api.create(deployment('web', 4, { progressDeadlineSeconds: 1 }));
  await rolledOut(api, 'web', 'v1');
  await setImage(api, 'web', 'bad');
  const d = await waitFor(
    'ProgressDeadlineExceeded',
    async () => {
      const got = await getD(api, 'web');
      const conds = (got.status?.conditions ?? []) as { type: string; status: string; reason: string }[];
      return conds.find((c) => c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded')
        ? got
        : undefined;
    },
    6000,
  );
  const conds = d.status?.conditions as { type: string; status: string; reason: string }[];
  t.like(
    conds.find((c) => c.type === 'Progressing'),
    { status: 'False' },
  );
  t.like(
    conds.find((c) => c.type === 'Available'),
    { status: 'True' },
  );
  // 25% of 4: one may be unavailable, one may surge: old 3 + new 2 (not ready).
  const rss = await replicaSets(api, 'web');
  const old = rss.find((rs) => image(rs) === 'berth/app:v1');
  const bad = rss.find((rs) => image(rs) === 'berth/app:bad');
  t.is(old?.spec?.replicas, 3);
  t.is(bad?.spec?.replicas, 2);
  t.is(d.status?.availableReplicas, 3);
  await stop();
});

test('scaling during a stuck rollout spreads the change over the ReplicaSets in proportion', async (t) => {
  const { api, stop } = await cluster({ neverReady: 'berth/app:bad' });
  await api.create(deployment('web', 4));
  await rolledOut(api, 'web', 'v1');
  await setImage(api, 'web', 'bad');
  const sizes = async () => {
    const rss = await replicaSets(api, 'web');
    const of = (tag: string) => rss.find((rs) => image(rs) === `berth/app:${tag}`)?.spec?.replicas;
    return { old: of('v1'), bad: of('bad') };
  };
  await waitFor('stuck at old 3, new 2', async () => {
    const s = await sizes();
    return s.old === 3 && s.bad === 2;
  });
  await edit(api, 'web', (s) => {
    s.replicas = 8;
  });
  // maxSurge 25% of 8 = 2: 10 allowed, 5 to add; 3/5 and 2/5 of 10 are 6 and 4.
  await waitFor('scaled in proportion', async () => {
    const s = await sizes();
    return s.old === 6 && s.bad === 4;
  });
  await sleep(200);
  t.deepEqual(await sizes(), { old: 6, bad: 4 }, 'and it stays there');
  await stop();
});
