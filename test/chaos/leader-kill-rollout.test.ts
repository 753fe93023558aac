// The Raft leader (which runs the controllers and the scheduler) dies in the middle of a
// rolling update. The new leader's Deployment controller must pick the rollout up from the
// store alone and finish it, keeping RollingUpdate's bounds at every moment:
// - surge: the ReplicaSets' spec.replicas never add up to more than replicas + maxSurge;
// - availability: never fewer than replicas - maxUnavailable pods Ready (not terminating).
// Both are sampled on every watch event of the ReplicaSets and pods. The pods are kept off
// the old leader's node (node affinity), so its death takes controllers away, not replicas:
// losing replicas with a node is outside what maxUnavailable promises.
import test from 'ava';
import type { ApiWatchEvent } from '../../pkg/client/api-client.js';
import { ChaosEnv, isReady, type Json, NAMESPACE, waitFor, webDeployment } from './support.js';

let c: ChaosEnv;

test.before(async () => {
  c = await ChaosEnv.start(3);
});

test.after.always(async () => {
  await c?.destroy();
});

const REPLICAS = 6;
const MAX_SURGE = 2;
const MAX_UNAVAILABLE = 1;

const versionOf = (pod: Json): string | undefined =>
  (pod.spec?.containers?.[0]?.env ?? []).find((e: Json) => e.name === 'VERSION')?.value;

test('a rollout interrupted by the leader dying finishes under the new leader within its surge and availability bounds', async (t) => {
  const name = 'roll';
  const leader = await c.waitLeader();
  const leaderName = c.nodeName(leader);
  const opts = {
    replicas: REPLICAS,
    maxSurge: MAX_SURGE,
    maxUnavailable: MAX_UNAVAILABLE,
    avoidNodes: [leaderName],
    terminationGracePeriodSeconds: 2,
  };
  await c.api.create(webDeployment(name, { ...opts, version: 'v1' }));
  await c.waitDeploymentReady(name, REPLICAS, 90_000);
  t.log(`cluster data and logs in ${c.cluster.root}`);
  t.log(`leader ${leaderName}; v1 placement ${JSON.stringify(await c.placement(name))}`);

  // Local caches of the ReplicaSets and pods, from a list and then every watch event.
  const rsets = new Map<string, Json>();
  const pods = new Map<string, Json>();
  const extremes = { rsSum: { max: 0 }, livePods: { max: 0 }, ready: { min: Number.POSITIVE_INFINITY } };
  const violations: string[] = [];
  const started = Date.now();
  const at = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  // Judged only once both caches hold their lists: an event that arrives between the two
  // lists would otherwise be checked against an empty pod cache.
  let loaded = false;
  const check = (why: string) => {
    if (!loaded) return;
    const rsSum = [...rsets.values()].reduce((n, rs) => n + (rs.spec?.replicas ?? 0), 0);
    const live = [...pods.values()].filter((p) => !p.metadata.deletionTimestamp && p.spec.nodeName);
    const ready = live.filter(isReady).length;
    extremes.rsSum.max = Math.max(extremes.rsSum.max, rsSum);
    extremes.livePods.max = Math.max(extremes.livePods.max, live.length);
    extremes.ready.min = Math.min(extremes.ready.min, ready);
    if (rsSum > REPLICAS + MAX_SURGE) violations.push(`${at()} ${why}: ReplicaSets want ${rsSum} pods`);
    if (ready < REPLICAS - MAX_UNAVAILABLE) {
      const where = live.map(
        (p) => `${p.metadata.name}@${p.spec.nodeName}${isReady(p) ? '' : '(not Ready)'}`,
      );
      violations.push(`${at()} ${why}: only ${ready} pods Ready: ${where.join(' ')}`);
    }
  };
  const ended: string[] = [];
  const follow = (resource: string, cache: Map<string, Json>) => {
    return async () => {
      const list = await c.api.list(resource, { namespace: NAMESPACE, labelSelector: `app=${name}` });
      for (const o of list.items) cache.set(o.metadata.uid as string, o);
      return c.api.watch(
        resource,
        {
          namespace: NAMESPACE,
          labelSelector: `app=${name}`,
          resourceVersion: list.metadata.resourceVersion,
        },
        (e: ApiWatchEvent) => {
          if (e.type === 'BOOKMARK' || e.type === 'ERROR') return;
          const uid = e.object.metadata.uid as string;
          if (e.type === 'DELETED') cache.delete(uid);
          else cache.set(uid, e.object);
          check(`${e.type} ${resource} ${e.object.metadata.name}`);
        },
        (err) => ended.push(`${resource} watch ended: ${err?.message ?? 'canceled'}`),
      );
    };
  };
  const rsWatch = await follow('replicasets', rsets)();
  const podWatch = await follow('pods', pods)();
  t.teardown(() => {
    rsWatch.cancel();
    podWatch.cancel();
  });
  loaded = true;
  check('initial');

  // Start the rollout; kill the leader once the new ReplicaSet has a Ready pod and the old
  // one still wants some: the rollout is half done.
  await c.api.apply(webDeployment(name, { ...opts, version: 'v2' }));
  const midway = await waitFor(
    'the rollout to be midway',
    () => {
      const live = [...pods.values()].filter((p) => !p.metadata.deletionTimestamp);
      const v2Ready = live.filter((p) => versionOf(p) === 'v2' && isReady(p)).length;
      const v1 = live.filter((p) => versionOf(p) === 'v1').length;
      return v2Ready >= 1 && v1 >= 1 ? { v2Ready, v1 } : undefined;
    },
    30_000,
    20,
  );
  // What the store says about the agents' heartbeats: the longest gap between two changes
  // of each node's Lease renewTime as this test sees them (polled), to tell a stopped
  // heartbeat from a leader that does not see it.
  const leaseGaps = new Map<string, { renewTime?: string; changedAt: number; maxGapMs: number }>();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      try {
        const list = await c.api.list('leases', { namespace: 'berth-node-lease' });
        for (const l of list.items as Json[]) {
          const n = l.metadata.name as string;
          const g = leaseGaps.get(n) ?? { changedAt: Date.now(), maxGapMs: 0 };
          if (g.renewTime !== l.spec?.renewTime) {
            g.maxGapMs = Math.max(g.maxGapMs, Date.now() - g.changedAt);
            g.renewTime = l.spec?.renewTime;
            g.changedAt = Date.now();
          }
          leaseGaps.set(n, g);
        }
      } catch {
        // The next poll will do.
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  t.teardown(async () => {
    sampling = false;
    await sampler;
  });
  await c.killMachine(leader);
  const killedAt = Date.now();
  t.log(`${at()}: killed the leader ${leaderName} midway (v2 Ready ${midway.v2Ready}, v1 pods ${midway.v1})`);

  const newLeader = await c.waitLeader();
  t.not(newLeader, leader);
  t.log(`${at()}: new leader ${c.nodeName(newLeader)} after ${Date.now() - killedAt} ms`);

  const done = await waitFor(
    `the rollout to finish: ${REPLICAS} v2 pods Ready, no v1 pod, Deployment status complete`,
    async () => {
      const live = await c.livePods(name);
      const all = (await c.api.list('pods', { namespace: NAMESPACE, labelSelector: `app=${name}` })).items;
      const d = (await c.api.get('deployments', NAMESPACE, name)) as Json;
      const ok =
        all.length === REPLICAS &&
        live.length === REPLICAS &&
        live.every((p) => versionOf(p) === 'v2' && isReady(p)) &&
        d.status?.observedGeneration >= d.metadata.generation &&
        d.status?.updatedReplicas === REPLICAS &&
        d.status?.availableReplicas === REPLICAS &&
        d.status?.replicas === REPLICAS;
      return ok ? d : undefined;
    },
    60_000,
    250,
  );
  t.log(
    `${at()}: rollout complete ${Date.now() - killedAt} ms after the kill; status ${JSON.stringify(done.status)}`,
  );
  // Let the watches deliver what happened up to now, then look at the whole history.
  await new Promise((r) => setTimeout(r, 1000));
  t.log(
    `extremes: ReplicaSets' spec.replicas sum max ${extremes.rsSum.max} (bound ${REPLICAS + MAX_SURGE}), ` +
      `scheduled live pods max ${extremes.livePods.max}, Ready pods min ${extremes.ready.min} ` +
      `(bound ${REPLICAS - MAX_UNAVAILABLE})`,
  );
  sampling = false;
  await sampler;
  t.log(
    `longest gap between Lease renewals seen in the store: ${[...leaseGaps]
      .map(([n, g]) => `${n} ${g.maxGapMs} ms`)
      .join(', ')} (${leaderName} is the dead one)`,
  );
  const nodeEvictions = [];
  for (let i = 0; i < 3; i++) {
    if (i !== leader)
      nodeEvictions.push(...(await c.logLines(i, 'evicting a pod from a NoExecute-tainted node')));
  }
  if (nodeEvictions.length > 0) {
    t.log(`evictions by the new leader:\n${nodeEvictions.slice(0, 10).join('\n')}`);
    const unknown = [];
    for (let i = 0; i < 3; i++)
      if (i !== leader) unknown.push(...(await c.logLines(i, 'stopped heartbeating')));
    t.log(unknown.join('\n'));
  }
  t.deepEqual(ended, [], 'the watches followed the cluster across the leader change');
  t.deepEqual(violations.slice(0, 20), [], 'RollingUpdate bounds held at every event');
  const rsNow = [...rsets.values()].map((rs) => `${rs.metadata.name}=${rs.spec.replicas}`);
  t.log(`ReplicaSets at the end: ${rsNow.join(', ')}`);
  t.is(
    [...rsets.values()].filter((rs) => rs.spec.replicas > 0).length,
    1,
    'only the new ReplicaSet has replicas',
  );
});
