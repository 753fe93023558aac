// A worker is cut off from the other two nodes (iptables on lo; this test process still
// reaches every node). The majority marks it unreachable, evicts its pods and runs them
// elsewhere, while its containers keep running on the far side. After the heal the cut-off
// agent learns its pods are gone and removes their containers: the cluster converges to
// exactly the desired replicas, in the API (Ready pods) and on the engine (app containers).
import test from 'ava';
import { ChaosEnv, isReady, runningDeploymentPods, sleep, waitFor, webDeployment } from './support.js';

let c: ChaosEnv;

test.before(async () => {
  c = await ChaosEnv.start(3);
});

test.after.always(async () => {
  await c?.destroy();
});

test('a partitioned worker’s pods are replaced on the majority side; after the heal exactly the desired replicas run', async (t) => {
  const name = 'cut';
  const replicas = 6;
  await c.api.create(webDeployment(name, { replicas, terminationGracePeriodSeconds: 2 }));
  await c.waitDeploymentReady(name, replicas, 90_000);
  const leader = await c.waitLeader();
  const before = await c.placement(name);
  const victim = [0, 1, 2]
    .filter((i) => i !== leader)
    .sort((a, b) => (before[c.nodeName(b)] ?? 0) - (before[c.nodeName(a)] ?? 0))[0] as number;
  const victimName = c.nodeName(victim);
  const majority = [0, 1, 2].filter((i) => i !== victim);
  t.log(`placement ${JSON.stringify(before)}; cutting ${victimName} off (leader n${leader + 1})`);

  const cutAt = Date.now();
  await c.cluster.partition([[victim], majority]);
  // Ask the majority only: the cut-off node cannot serve linearizable reads.
  c.focus(majority);
  await c.waitDeploymentReady(name, replicas, 40_000, [victimName]);
  t.log(`${replicas} replicas Ready on the majority side ${Date.now() - cutAt} ms after the cut`);
  t.is(await c.readyCondition(victimName), 'Unknown');
  const farSide = (await runningDeploymentPods(c.id, name)).filter((x) => x.node === victimName);
  t.log(`${farSide.length} app containers still run on the cut-off ${victimName}`);
  await sleep(3000);

  await c.cluster.heal();
  const healedAt = Date.now();
  c.unfocus();
  try {
    await c.waitNodesReady([0, 1, 2], 30_000);
    t.log(`${victimName} Ready again ${Date.now() - healedAt} ms after the heal`);
    const converged = await waitFor(
      `exactly ${replicas} Ready pods and ${replicas} app containers of ${name}`,
      async () => {
        const pods = await c.livePods(name);
        const all = (await c.api.list('pods', { namespace: 'default', labelSelector: `app=${name}` })).items;
        const engine = await runningDeploymentPods(c.id, name);
        const ready = pods.filter(isReady);
        const uids = new Set(pods.map((p) => p.metadata.uid));
        const ok =
          all.length === replicas &&
          ready.length === replicas &&
          engine.length === replicas &&
          engine.every((x) => uids.has(x.podUid));
        return ok ? { engine } : undefined;
      },
      30_000,
      250,
    );
    t.log(
      `converged ${Date.now() - healedAt} ms after the heal: ${JSON.stringify(await c.placement(name))}; ` +
        `${converged.engine.filter((x) => x.node === victimName).length} on ${victimName}`,
    );
  } catch (err) {
    t.log(`${victimName} log tail:\n${await c.logTail(victim, 30)}`);
    throw err;
  }
  // And it stays that way: nothing more is created or left behind.
  await sleep(3000);
  t.is((await c.livePods(name)).length, replicas);
  t.is((await runningDeploymentPods(c.id, name)).length, replicas);
});
