// A worker freezes (SIGSTOP of its berth-node only: its containers keep running, as on a VM
// whose agent hangs) for longer than the node grace period. Its pods are evicted and
// replaced on the other nodes; when it thaws (SIGCONT) its agent finds those pods gone and
// must remove their containers within the pods' termination grace period (plus a little
// for the agent to notice), so no replica of the Deployment runs twice for longer than that.
import test from 'ava';
import { ChaosEnv, runningDeploymentPods, sleep, waitFor, webDeployment } from './support.js';

let c: ChaosEnv;

test.before(async () => {
  c = await ChaosEnv.start(3);
});

test.after.always(async () => {
  await c?.destroy();
});

const GRACE_S = 2;
/** Time the thawed agent may take to see that its pods are gone (watch resumes, reconcile). */
const NOTICE_MS = 5000;

test('a frozen node loses its pods to the others and removes their containers soon after it thaws', async (t) => {
  const name = 'frozen';
  await c.api.create(webDeployment(name, { replicas: 6, terminationGracePeriodSeconds: GRACE_S }));
  await c.waitDeploymentReady(name, 6, 90_000);
  const leader = await c.waitLeader();
  const before = await c.placement(name);
  const victim = [0, 1, 2]
    .filter((i) => i !== leader)
    .sort((a, b) => (before[c.nodeName(b)] ?? 0) - (before[c.nodeName(a)] ?? 0))[0] as number;
  const victimName = c.nodeName(victim);
  const others = [0, 1, 2].filter((i) => i !== victim);
  const onVictim = (await runningDeploymentPods(c.id, name)).filter((x) => x.node === victimName);
  t.log(`placement ${JSON.stringify(before)}; freezing ${victimName} (${onVictim.length} app containers)`);
  t.true(onVictim.length > 0);

  c.focus(others);
  const frozenAt = Date.now();
  c.cluster.pause(victim);
  await c.waitDeploymentReady(name, 6, 40_000, [victimName]);
  const replacedMs = Date.now() - frozenAt;
  t.log(`6 replicas Ready off ${victimName} ${replacedMs} ms after the freeze`);
  // Its containers kept running all along: the freeze is of the agent, not the machine.
  const stillThere = (await runningDeploymentPods(c.id, name)).filter((x) => x.node === victimName);
  t.is(stillThere.length, onVictim.length, 'the frozen node’s containers still run');
  // Stay frozen a little longer: well past grace, eviction and replacement.
  await sleep(3000);

  c.cluster.resume(victim);
  const thawedAt = Date.now();
  t.log(`thawed ${victimName} after ${thawedAt - frozenAt} ms frozen`);
  let doubled: number[] = [];
  try {
    await waitFor(
      `the containers of ${victimName}'s evicted pods to be gone`,
      async () => {
        const mine = (await runningDeploymentPods(c.id, name)).filter((x) => x.node === victimName);
        doubled = mine.map(() => Date.now() - thawedAt);
        return mine.length === 0;
      },
      GRACE_S * 1000 + NOTICE_MS + 20_000,
      100,
    );
  } catch (err) {
    t.log(`${victimName} log tail:\n${await c.logTail(victim, 30)}`);
    throw err;
  }
  const goneMs = Date.now() - thawedAt;
  t.log(`the old containers were gone ${goneMs} ms after the thaw (bound ${GRACE_S * 1000 + NOTICE_MS} ms)`);
  t.true(
    goneMs <= GRACE_S * 1000 + NOTICE_MS,
    `replicas ran twice for ${goneMs} ms after the thaw (last seen ${doubled.join(',')})`,
  );

  c.unfocus();
  await c.waitNodesReady([victim], 30_000);
  const pods = await c.waitDeploymentReady(name, 6, 30_000);
  const engine = await runningDeploymentPods(c.id, name);
  t.is(pods.length, 6);
  t.deepEqual(
    [...new Set(engine.map((x) => x.podUid))].sort(),
    pods.map((p) => p.metadata.uid as string).sort(),
    'the engine runs the app containers of exactly the live pods',
  );
  t.is(engine.length, 6, 'one app container per pod');
});
