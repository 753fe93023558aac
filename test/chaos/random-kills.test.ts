// Machines die and come back, one at a time (a majority always stays), for about a minute,
// while a writer keeps applying ConfigMaps and now and then scales a Deployment. Each death
// is a dead VM: SIGKILL of the node and removal of its containers; some last longer than the
// node grace period (its pods get evicted), some do not. At the end desired and actual state
// agree (Ready replicas = spec, no container of the cluster without a live pod) and every
// acknowledged apply is there: each ConfigMap holds its last acknowledged value, or a value
// applied after it whose answer was lost.
//
// The schedule of kills is seeded: BERTH_CHAOS_SEED=<n> replays one (the seed is logged).
import test from 'ava';
import {
  ChaosEnv,
  clusterContainers,
  isReady,
  type Json,
  NAMESPACE,
  runningDeploymentPods,
  sleep,
  waitFor,
  webDeployment,
} from './support.js';

let c: ChaosEnv;

test.before(async () => {
  c = await ChaosEnv.start(3);
});

test.after.always(async () => {
  await c?.destroy();
});

const CHAOS_MS = 80_000;
const CONFIGMAPS = 8;

/** mulberry32: small, seeded, good enough to pick nodes and pauses. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What one writer asked for, per object: the last acknowledged value and any sent after it. */
class Ledger<T> {
  readonly acked = new Map<string, T>();
  readonly after = new Map<string, T[]>();
  attempts = 0;
  failures = 0;

  async write(key: string, value: T, send: () => Promise<unknown>): Promise<void> {
    this.attempts++;
    try {
      await send();
      this.acked.set(key, value);
      this.after.set(key, []);
    } catch {
      this.failures++;
      // Unknown outcome: the write may still have been applied.
      this.after.set(key, [...(this.after.get(key) ?? []), value]);
    }
  }

  /** Values the object may legitimately hold now. */
  allowed(key: string): T[] {
    const a = this.acked.get(key);
    return [...(a === undefined ? [] : [a]), ...(this.after.get(key) ?? [])];
  }
}

test('random machine deaths under steady apply traffic: desired and actual state agree, acknowledged applies survive', async (t) => {
  const seed = Number(process.env.BERTH_CHAOS_SEED ?? Date.now() % 1_000_000);
  t.log(`seed ${seed} (BERTH_CHAOS_SEED=${seed} replays the kill schedule)`);
  const random = rng(seed);
  const name = 'steady';
  const manifest = (replicas: number) => webDeployment(name, { replicas, terminationGracePeriodSeconds: 1 });
  await c.api.apply(manifest(3));
  await c.waitDeploymentReady(name, 3, 90_000);

  const cms = new Ledger<string>();
  const scales = new Ledger<number>();
  let writing = true;
  const writer = (async () => {
    for (let n = 0; writing; n++) {
      const key = `cm-${n % CONFIGMAPS}`;
      const value = `v${n}`;
      await cms.write(key, value, () =>
        c.api.apply({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: key, namespace: NAMESPACE },
          data: { value },
        }),
      );
      if (n % 25 === 24) {
        const replicas = 2 + (n % 4);
        await scales.write(name, replicas, () => c.api.apply(manifest(replicas)));
      }
      await sleep(100);
    }
  })();

  const started = Date.now();
  const at = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  const kills: string[] = [];
  try {
    while (Date.now() - started < CHAOS_MS) {
      const victim = Math.floor(random() * c.size);
      const leader = await c.leader().catch(() => undefined);
      // Down for 2-9 s: below and above the 5 s node grace period.
      const downMs = 2000 + Math.floor(random() * 7000);
      await c.killMachine(victim);
      kills.push(`${at()} ${c.nodeName(victim)}${victim === leader ? ' (leader)' : ''} down ${downMs} ms`);
      await sleep(downMs);
      await c.cluster.start(victim);
      // Keep quorum: the next death only once this machine is back in service.
      await c.waitNodesReady([0, 1, 2], 60_000);
      await sleep(1000 + Math.floor(random() * 3000));
    }
  } finally {
    writing = false;
    await writer;
  }
  t.log(`kills: ${kills.join('; ')}`);
  t.log(
    `ConfigMap applies: ${cms.attempts} sent, ${cms.failures} failed; ` +
      `scales: ${scales.attempts} sent, ${scales.failures} failed`,
  );
  t.true(cms.acked.size === CONFIGMAPS, 'some apply of every ConfigMap succeeded');

  await c.waitNodesReady([0, 1, 2], 60_000);
  const d = (await c.api.get('deployments', NAMESPACE, name)) as Json;
  const desired = d.spec.replicas as number;
  const allowedScales = scales.acked.has(name) ? scales.allowed(name) : [3, ...scales.allowed(name)];
  t.true(
    allowedScales.includes(desired),
    `spec.replicas ${desired} is the last acknowledged scale or a later one (${allowedScales})`,
  );
  let last = '';
  try {
    await waitFor(
      `${desired} Ready replicas and nothing else on the engine`,
      async () => {
        const pods = await c.livePods(name);
        const all = (await c.api.list('pods', { namespace: NAMESPACE })).items as Json[];
        const uids = new Set(all.map((p) => p.metadata.uid as string));
        const engine = await clusterContainers(c.id);
        const orphans = engine.filter((x) => !uids.has(x.podUid));
        const app = await runningDeploymentPods(c.id, name);
        last =
          `${pods.length} live pods (${pods.filter(isReady).length} Ready), ${all.length} pods in all, ` +
          `${app.length} app containers, ${orphans.length} containers of no pod`;
        return (
          all.length === desired &&
          pods.length === desired &&
          pods.every(isReady) &&
          app.length === desired &&
          orphans.length === 0
        );
      },
      60_000,
      500,
    );
  } catch (err) {
    t.log(`last seen: ${last}`);
    throw err;
  }
  t.log(`${at()}: converged: ${last}; ${JSON.stringify(await c.placement(name))}`);

  for (const key of cms.acked.keys()) {
    const cm = (await c.api.get('configmaps', NAMESPACE, key)) as Json;
    const allowed = cms.allowed(key);
    t.true(
      allowed.includes(cm.data?.value),
      `${key} holds ${cm.data?.value}; acknowledged ${cms.acked.get(key)}, later unknown ${cms.after.get(key)}`,
    );
  }
});
