// A worker machine dies (SIGKILL of its berth-node and removal of its containers): the node
// lifecycle controller marks it unreachable after its grace period (5 s), evicts its pods
// 3 s later, and the ReplicaSet and scheduler put every replica back on the survivors.
// The whole recovery must stay well under 30 s.
import test from 'ava';
import { ChaosEnv, runningDeploymentPods, webDeployment } from './support.js';

let c: ChaosEnv;

test.before(async () => {
  c = await ChaosEnv.start(3);
});

test.after.always(async () => {
  await c?.destroy();
});

test('every pod of a 6-replica Deployment runs again on the survivors within 30 s of a worker dying', async (t) => {
  const name = 'web';
  await c.api.create(webDeployment(name, { replicas: 6 }));
  await c.waitDeploymentReady(name, 6, 90_000);
  const leader = await c.waitLeader();
  const before = await c.placement(name);
  t.log(`placement before: ${JSON.stringify(before)}, leader n${leader + 1}`);

  // The worker with the most pods, so the test means something whatever the spread.
  const workers = [0, 1, 2].filter((i) => i !== leader);
  const victim = workers.sort(
    (a, b) => (before[c.nodeName(b)] ?? 0) - (before[c.nodeName(a)] ?? 0),
  )[0] as number;
  const victimName = c.nodeName(victim);
  const onVictim = before[victimName] ?? 0;
  t.true(onVictim > 0, `the scheduler spreads 6 replicas over 3 nodes (${JSON.stringify(before)})`);

  const killedAt = Date.now();
  await c.killMachine(victim);
  t.log(`killed ${victimName} (${onVictim} pods on it) and removed its containers`);

  let detectedMs: number | undefined;
  const detect = (async () => {
    while (detectedMs === undefined && Date.now() - killedAt < 60_000) {
      const ready = await c.readyCondition(victimName).catch(() => 'True');
      if (ready !== 'True') detectedMs = Date.now() - killedAt;
      else await new Promise((r) => setTimeout(r, 100));
    }
  })();

  const pods = await c.waitDeploymentReady(name, 6, 60_000, [victimName]);
  const recoveredMs = Date.now() - killedAt;
  await detect;
  t.log(
    `${victimName} not Ready after ${detectedMs} ms; 6 replicas Ready on the survivors after ${recoveredMs} ms: ` +
      JSON.stringify(await c.placement(name)),
  );
  t.is(pods.length, 6);
  t.true(recoveredMs < 30_000, `recovery took ${recoveredMs} ms`);

  // The engine agrees: six running app containers of the Deployment, none on the dead node.
  const engine = await runningDeploymentPods(c.id, name);
  t.is(new Set(engine.map((x) => x.podUid)).size, 6, JSON.stringify(engine));
  t.false(
    engine.some((x) => x.node === victimName),
    'nothing runs on the dead node',
  );
});
