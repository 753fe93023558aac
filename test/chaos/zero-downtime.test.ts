// Zero-downtime: continuous HTTP load through a NodePort (on two nodes) and through the
// Ingress router (on the third) while a 4-replica Deployment rolls to a new image, scales
// 4 → 8 → 2, and has a pod's container killed. Not one request may fail. No preStop sleep:
// a terminating pod leaves every proxy before its containers get SIGTERM, and a proxy moves
// a request on when a dead pod's published port accepts and closes without answering.
// Then a worker machine dies under load through the surviving nodes: requests keep
// succeeding (failures, if any, only until the Endpoints drop the dead node's pods).
import test from 'ava';
import { ApiError, ApiErrorCode } from '../../pkg/api/errors.js';
import { HttpLoad } from '../support/http-load.js';
import { ChaosEnv, docker, isReady, type Json, NAMESPACE, waitFor, webDeployment } from './support.js';

let c: ChaosEnv;

test.before(async () => {
  c = await ChaosEnv.start(3);
});

test.after.always(async () => {
  await c?.destroy();
});

const NAME = 'zd';
const V2 = 'berth/busybox:v2';

async function waitPods(
  what: string,
  check: (pods: Json[]) => boolean,
  timeoutMs = 120_000,
): Promise<Json[]> {
  return waitFor(
    what,
    async () => {
      const all = (await c.api.list('pods', { namespace: NAMESPACE, labelSelector: `app=${NAME}` }))
        .items as Json[];
      return check(all) ? all : false;
    },
    timeoutMs,
    250,
  );
}

test.serial(
  'a rollout, scaling 4 → 8 → 2 and a killed container under load through NodePort and Ingress fail no request',
  async (t) => {
    await c.api.create(
      webDeployment(NAME, { replicas: 4, maxSurge: 1, maxUnavailable: 0, terminationGracePeriodSeconds: 5 }),
    );
    await c.api.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: NAME, namespace: NAMESPACE },
      spec: { type: 'NodePort', selector: { app: NAME }, ports: [{ port: 80, targetPort: 'http' }] },
    });
    await c.api.create({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: NAME, namespace: NAMESPACE },
      spec: {
        defaultBackend: { service: { name: NAME, port: { number: 80 } } },
      },
    });
    await c.waitDeploymentReady(NAME, 4, 120_000);
    const svc = (await c.api.get('services', NAMESPACE, NAME)) as Json;
    const nodePort = svc.spec.ports[0].nodePort as number;
    const address = (i: number) => c.cluster.node(i).address;
    const targets = [
      { name: `nodeport@${address(0)}`, host: address(0), port: nodePort },
      { name: `nodeport@${address(1)}`, host: address(1), port: nodePort },
      { name: `ingress@${address(2)}`, host: address(2), port: 80 },
    ];
    // Every route answers before the load starts counting.
    await waitFor('the endpoints of 4 pods', async () => {
      const ep = (await c.api.get('endpoints', NAMESPACE, NAME)) as Json;
      return (ep.subsets ?? []).flatMap((s: Json) => s.addresses ?? []).length === 4;
    });
    const probe = new HttpLoad({ targets, concurrency: 1 }).start();
    await waitFor(
      'every route answering',
      async () => Object.values(probe.report().targets).every((x) => x.ok > 0),
      20_000,
    );
    await probe.stop();

    const load = new HttpLoad({ targets, concurrency: 2, pauseMs: 5, timeoutMs: 5000 }).start();
    const marks: string[] = [];
    const mark = (what: string) => marks.push(`${what}: ${load.sent} sent, ${load.failed} failed`);
    try {
      // 1. Roll to a new image.
      await updateDeployment((d) => {
        d.spec.template.spec.containers[0].image = V2;
      });
      await waitPods(
        'every pod on the new image, ready, the old ones gone',
        (pods) =>
          pods.length === 4 &&
          pods.every((p) => !p.metadata.deletionTimestamp && isReady(p) && p.spec.containers[0].image === V2),
      );
      mark('rolled to v2');

      // 2. Scale out and in.
      await scale(8);
      await waitPods('8 ready pods', (pods) => pods.length === 8 && pods.every(isReady));
      mark('scaled to 8');
      await scale(2);
      await waitPods(
        '2 pods left',
        (pods) => pods.length === 2 && pods.every((p) => !p.metadata.deletionTimestamp && isReady(p)),
      );
      mark('scaled to 2');

      // 3. Kill one pod's container; the agent restarts it.
      const [victim] = await waitPods('2 pods', (pods) => pods.length === 2);
      const id = await waitFor('the victim’s container', async () => {
        const r = await docker(
          'ps',
          '-q',
          '--no-trunc',
          '--filter',
          `label=berth.io/pod-uid=${victim?.metadata.uid}`,
          '--filter',
          'label=berth.io/role=container',
        );
        return r.stdout.trim().split('\n')[0] || undefined;
      });
      const killed = await docker('kill', id);
      t.is(killed.code, 0, killed.stderr);
      await waitPods(
        'the killed container restarted and ready',
        (pods) =>
          pods.some(
            (p) =>
              p.metadata.uid === victim?.metadata.uid &&
              isReady(p) &&
              (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1,
          ),
        60_000,
      );
      // A little more load on the restarted pod.
      await new Promise((r) => setTimeout(r, 2000));
      mark('container killed and restarted');
    } finally {
      const report = await load.stop();
      t.log(marks.join('\n'));
      t.log(
        JSON.stringify({
          sent: report.sent,
          failed: report.failed,
          p99_ms: report.p99_ms,
          targets: report.targets,
        }),
      );
      if (report.failures.length > 0) t.log(JSON.stringify(report.failures.slice(0, 10), null, 1));
      t.true(report.sent > 500, `load was sent (${report.sent})`);
      for (const target of targets)
        t.true((report.targets[target.name]?.ok ?? 0) > 100, `${target.name} carried load`);
      t.is(report.failed, 0, 'no request failed');
    }
  },
);

test.serial('a dead worker: requests through the surviving nodes keep succeeding', async (t) => {
  await scale(4);
  await c.waitDeploymentReady(NAME, 4, 120_000);
  const leader = await c.waitLeader();
  const placement = await c.placement(NAME);
  const victim = [0, 1, 2].find((i) => i !== leader && (placement[c.nodeName(i)] ?? 0) > 0);
  if (victim === undefined) throw new Error(`no worker with pods: ${JSON.stringify(placement)}`);
  const victimName = c.nodeName(victim);
  const survivors = [0, 1, 2].filter((i) => i !== victim);
  const svc = (await c.api.get('services', NAMESPACE, NAME)) as Json;
  const nodePort = svc.spec.ports[0].nodePort as number;
  const targets = survivors.flatMap((i) => {
    const host = c.cluster.node(i).address;
    return [
      { name: `nodeport@${host}`, host, port: nodePort },
      { name: `ingress@${host}`, host, port: 80 },
    ];
  });
  c.focus(survivors);
  const load = new HttpLoad({ targets, concurrency: 1, pauseMs: 5, timeoutMs: 5000 }).start();
  let updatedAt = 0;
  let killedAt = 0;
  let before: Record<string, number> = {};
  try {
    await new Promise((r) => setTimeout(r, 1000));
    killedAt = Date.now();
    await c.killMachine(victim);
    await waitFor(
      `the endpoints without ${victimName}'s pods`,
      async () => {
        const ep = (await c.api.get('endpoints', NAMESPACE, NAME)) as Json;
        const addresses = (ep.subsets ?? []).flatMap((s: Json) => s.addresses ?? []);
        return !addresses.some((a: Json) => a.nodeName === victimName);
      },
      60_000,
      100,
    );
    updatedAt = Date.now();
    before = Object.fromEntries(Object.entries(load.report().targets).map(([k, v]) => [k, v.ok]));
    await new Promise((r) => setTimeout(r, 3000));
  } finally {
    const report = await load.stop();
    c.unfocus();
    const after = report.failures.filter((f) => f.at > updatedAt);
    t.log(
      `killed ${victimName}; endpoints updated after ${updatedAt - killedAt} ms; ` +
        `${report.sent} requests, ${report.failed} failed, p99 ${report.p99_ms} ms`,
    );
    if (report.failures.length > 0) t.log(JSON.stringify(report.failures.slice(0, 10), null, 1));
    t.deepEqual(after, [], 'no request failed once the endpoints dropped the dead node');
    for (const target of targets)
      t.true(
        (report.targets[target.name]?.ok ?? 0) > (before[target.name] ?? 0),
        `${target.name} kept answering after the kill`,
      );
    t.true(report.failed <= 5, `at most a handful of failures while the proxies learn (${report.failed})`);
  }
});

async function scale(replicas: number): Promise<void> {
  await updateDeployment((d) => {
    d.spec.replicas = replicas;
  });
}

/** Read, change and write the Deployment; again on a conflict (its controller writes it too). */
async function updateDeployment(change: (d: Json) => void): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const d = (await c.api.get('deployments', NAMESPACE, NAME)) as Json;
    change(d);
    try {
      await c.api.update(d);
      return;
    } catch (err) {
      if (!(err instanceof ApiError && err.code === ApiErrorCode.Conflict) || attempt >= 10) throw err;
    }
  }
}
