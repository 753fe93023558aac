// The agent with the real Docker engine, part two: a pod over time. Crash loops and their
// back-off (and a crash that a ConfigMap update cures), a liveness probe that restarts,
// graceful termination (Ready False first, SIGTERM, SIGKILL after the grace period, object
// gone only after its containers), and a restarted berth-node that adopts its running pods
// and reaps the containers of a pod deleted while it was down.
// Its own 3-node cluster, so it runs beside agent-pods.test.ts.
import { spawn } from 'node:child_process';
import test from 'ava';
import {
  AgentEnv,
  containerIdOf,
  conditionOf,
  docker,
  inspectContainer,
  isReady,
  type Json,
  NAMESPACE,
  PodRecorder,
  podManifest,
  shContainer,
  statusOf,
  httpGet,
  waitFor,
} from '../support/agent-helpers.js';

let env: AgentEnv;

test.before(async () => {
  env = await AgentEnv.start(3);
});

test.after.always(async () => {
  await env?.destroy();
});

const waitingReason = (p: Json, c = 'main'): string | undefined => statusOf(p, c)?.state?.waiting?.reason;

/** Follow a container's output (docker logs -f) until it ends; `text()` is what came so far. */
function followLogs(id: string): { text(): string; ended: Promise<void> } {
  let out = '';
  const child = spawn('docker', ['logs', '-f', id], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const ended = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return { text: () => out, ended };
}

test.serial(
  'a crashing container goes into CrashLoopBackOff; a ConfigMap update cures a crash loop',
  async (t) => {
    await env.create('configmaps', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'mode', namespace: NAMESPACE },
      data: { mode: 'bad' },
    });
    const created = Date.now();
    const rec = new PodRecorder(env.api, 'crasher');
    t.teardown(() => rec.stop());
    await env.createPod(podManifest('crasher', 'n1', [shContainer('main', 'echo start; exit 1')]));
    await env.createPod(
      podManifest(
        'fixme',
        'n2',
        [
          shContainer('main', 'test "$(cat /cfg/mode)" = ok || exit 1; exec httpd -f -p 8080 -h /cfg', {
            ports: [{ containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/mode', port: 8080 }, periodSeconds: 1 },
            volumeMounts: [{ name: 'cfg', mountPath: '/cfg' }],
          }),
        ],
        { volumes: [{ name: 'cfg', configMap: { name: 'mode' } }], terminationGracePeriodSeconds: 2 },
      ),
    );

    // crasher: back-off between restarts, and restarts keep coming.
    const looping = await env.waitPod(
      'crasher',
      'CrashLoopBackOff',
      (p) => waitingReason(p) === 'CrashLoopBackOff',
    );
    const s = statusOf(looping, 'main');
    t.regex(
      s.state.waiting.message,
      /back-off \d+s restarting failed container main in pod default\/crasher/,
    );
    t.is(s.lastState.terminated?.exitCode, 1, 'lastState: the run that failed');
    t.is(s.lastState.terminated?.reason, 'Error');
    t.false(s.ready);
    t.is(looping.status.phase, 'Running', 'a pod that has run and restarts (Always) is Running');
    const firstCount = s.restartCount as number;
    const grown = await env.waitPod(
      'crasher',
      'restartCount to grow',
      (p) => (statusOf(p, 'main')?.restartCount ?? 0) > firstCount,
      35_000,
    );
    t.log(
      `crasher: restartCount ${firstCount} -> ${statusOf(grown, 'main').restartCount} after ${Date.now() - created} ms`,
    );
    // As the kubelet (doBackOff: no back-off entry yet, restart at once) and backoff.ts's own
    // contract ("exit 1 -> inBackoff 0 -> restart at once, next() = 10 s"): the first crash is
    // restarted at once; the back-off (10 s, 20 s, ...) applies from the second crash on.
    const exited = rec.events.find((e) => {
      const c = statusOf(e.pod, 'main');
      return c?.state?.terminated || c?.lastState?.terminated;
    });
    const restarted = rec.events.find((e) => (statusOf(e.pod, 'main')?.restartCount ?? 0) >= 1);
    const firstRestartMs = (restarted?.at ?? Number.NaN) - (exited?.at ?? Number.NaN);
    t.log(`crasher: first exit seen, first restart ${firstRestartMs} ms later`);
    t.true(
      firstRestartMs < 5000,
      `the first crash is restarted at once, not after a back-off (took ${firstRestartMs} ms)`,
    );
    const logs = await docker('logs', containerIdOf(grown, 'main') as string);
    t.regex(logs.stdout, /start/, 'the container ran its command');
    const backOff = await waitFor('a BackOff event', async () =>
      (await env.eventsOf('crasher')).find((e) => e.reason === 'BackOff'),
    );
    t.is(backOff.type, 'Warning');
    t.regex(backOff.message, /Back-off restarting failed container main/);

    // fixme: crashes while mode=bad; once the ConfigMap says ok, the next restart serves.
    await env.waitPod(
      'fixme',
      'CrashLoopBackOff after a restart',
      (p) => waitingReason(p) === 'CrashLoopBackOff' && statusOf(p, 'main').restartCount >= 1,
      30_000,
    );
    const cm = (await env.api.get('configmaps', NAMESPACE, 'mode')) as Json;
    await env.api.update({ ...cm, data: { mode: 'ok' } });
    const fixedAt = Date.now();
    const fixed = await env.waitRunningReady('fixme', 60_000);
    t.log(`fixme: Running and Ready ${Date.now() - fixedAt} ms after the ConfigMap update`);
    t.truthy(statusOf(fixed, 'main').state.running);
    const [ep] = fixed.status.endpoints as Json[];
    const res = await httpGet(ep.hostIP, ep.hostPort, '/mode');
    t.is(res.status, 200);
    t.is(res.body, 'ok', 'the running pod sees the updated ConfigMap');
  },
);

test.serial('a failing liveness probe restarts the container', async (t) => {
  await env.createPod(
    podManifest(
      'sick',
      'n3',
      [
        shContainer(
          'main',
          'mkdir -p /tmp/www && echo hi > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www',
          {
            ports: [{ containerPort: 8080 }],
            livenessProbe: {
              httpGet: { path: '/healthz', port: 8080 },
              periodSeconds: 1,
              failureThreshold: 2,
            },
          },
        ),
      ],
      { terminationGracePeriodSeconds: 2 },
    ),
  );
  const running = await env.waitRunningReady('sick');
  const firstId = containerIdOf(running, 'main');
  const restarted = await env.waitPod(
    'sick',
    'restartCount > 0',
    (p) => (statusOf(p, 'main')?.restartCount ?? 0) > 0,
    40_000,
  );
  t.true(statusOf(restarted, 'main').restartCount > 0);
  const events = await waitFor('Unhealthy and Killing events', async () => {
    const all = await env.eventsOf('sick');
    const unhealthy = all.find((e) => e.reason === 'Unhealthy');
    const killing = all.find((e) => e.reason === 'Killing');
    return unhealthy && killing ? { unhealthy, killing } : undefined;
  });
  t.regex(events.unhealthy.message, /Liveness probe failed/);
  t.regex(events.unhealthy.message, /404/);
  t.regex(events.killing.message, /failed liveness probe, will be restarted/);
  // The engine container of the first run was replaced by a new one.
  const now = await env.waitPod('sick', 'a new container', (p) => {
    const id = containerIdOf(p, 'main');
    return id !== undefined && id !== firstId;
  });
  t.not(containerIdOf(now, 'main'), firstId);
});

test.serial(
  'graceful termination: Ready goes False, SIGTERM is caught, the pod leaves quickly',
  async (t) => {
    await env.createPod(
      podManifest(
        'polite',
        'n1',
        [shContainer('main', 'trap "echo bye; exit 0" TERM; echo up; while :; do sleep 1; done')],
        { terminationGracePeriodSeconds: 30 },
      ),
    );
    const pod = await env.waitRunningReady('polite');
    const id = containerIdOf(pod, 'main') as string;
    const logs = followLogs(id);
    await waitFor('the container to print up', () => logs.text().includes('up'));
    const rec = new PodRecorder(env.api, 'polite');
    t.teardown(() => rec.stop());
    await waitFor('the recorder to see the pod', () => rec.events.length > 0);

    const started = Date.now();
    await env.api.delete('pods', NAMESPACE, 'polite');
    await waitFor(
      'the pod object to be gone',
      async () => (await env.getPod('polite')) === undefined,
      15_000,
      50,
    );
    const took = Date.now() - started;
    t.log(`polite: gone ${took} ms after the delete`);
    t.true(took < 10_000, `left in ${took} ms, well within its 30 s grace`);
    await logs.ended;
    t.regex(logs.text(), /bye/, 'the container got SIGTERM and ran its trap');

    // From the watch: Ready turned False while the object still existed, before DELETED.
    await waitFor('the DELETED event', () => rec.events.some((e) => e.type === 'DELETED'));
    const deletedAt = rec.events.findIndex((e) => e.type === 'DELETED');
    const notReadyAt = rec.events.findIndex(
      (e) => e.type === 'MODIFIED' && e.pod.metadata.deletionTimestamp && !isReady(e.pod),
    );
    t.true(
      notReadyAt >= 0,
      `a terminating, not Ready pod was seen: ${rec.events.map((e) => e.type).join(',')}`,
    );
    t.true(notReadyAt < deletedAt, 'Ready went False before the object was deleted');
    t.is(conditionOf(rec.events[notReadyAt]?.pod, 'Ready')?.status, 'False');
    t.deepEqual(await env.podContainers(pod.metadata.uid), [], 'no container is left');
  },
);

test.serial(
  'a container that ignores SIGTERM is killed after its grace period; the object goes after it',
  async (t) => {
    await env.createPod(
      podManifest('stubborn', 'n2', [shContainer('main', 'trap "" TERM; while :; do sleep 1; done')], {
        terminationGracePeriodSeconds: 3,
      }),
    );
    const pod = await env.waitRunningReady('stubborn');
    const uid = pod.metadata.uid as string;
    const started = Date.now();
    await env.api.delete('pods', NAMESPACE, 'stubborn');
    // The moment the object is gone, the engine must have nothing of the pod left.
    let leftAtGone: { id: string; state: string }[] | undefined;
    await waitFor(
      'the pod object to be gone',
      async () => {
        if ((await env.getPod('stubborn')) !== undefined) return false;
        leftAtGone = (await env.podContainers(uid)).map((c) => ({ id: c.id, state: c.state }));
        return true;
      },
      20_000,
      50,
    );
    const took = Date.now() - started;
    t.log(`stubborn: gone ${took} ms after the delete`);
    t.true(took >= 2500, `the grace period was honoured (${took} ms)`);
    t.true(took < 8000, `killed soon after its 3 s grace (${took} ms)`);
    t.deepEqual(leftAtGone, [], 'no container of the pod existed when its object disappeared');
  },
);

test.serial(
  'a restarted berth-node adopts its running pods and reaps the containers of a pod deleted meanwhile',
  async (t) => {
    const node = 2; // n3
    const stay = await (async () => {
      await env.createPod(
        podManifest('stay', 'n3', [shContainer('main', 'exec sleep 3600')], {
          terminationGracePeriodSeconds: 1,
        }),
      );
      await env.createPod(
        podManifest('doomed', 'n3', [shContainer('main', 'exec sleep 3600')], {
          terminationGracePeriodSeconds: 1,
        }),
      );
      await env.waitRunningReady('doomed');
      return env.waitRunningReady('stay');
    })();
    const doomed = (await env.getPod('doomed')) as Json;
    const stayUid = stay.metadata.uid as string;
    const doomedUid = doomed.metadata.uid as string;
    const snapshot = async (uid: string) =>
      Promise.all(
        (await env.podContainers(uid)).map(async (c) => {
          const i = await inspectContainer(c.id);
          return {
            id: c.id,
            role: c.labels['berth.io/role'],
            running: i.State.Running,
            startedAt: i.State.StartedAt,
          };
        }),
      ).then((l) => l.sort((a, b) => a.id.localeCompare(b.id)));
    const before = await snapshot(stayUid);
    t.is(before.length, 2, 'sandbox and container');
    t.is((await env.podContainers(doomedUid)).length, 2);

    t.is(await env.cluster.stop(node), 0, 'n3 stops cleanly on SIGTERM');
    // Its pods keep running while the agent is away.
    t.deepEqual(await snapshot(stayUid), before, 'containers untouched by the shutdown');
    // Delete a pod of n3 through the other nodes, at once (no agent there to wait for).
    const others = env.clientOf([0, 1]);
    try {
      await others.delete('pods', NAMESPACE, 'doomed', { gracePeriodSeconds: 0 });
      await waitFor('doomed to be gone from the API', async () => {
        try {
          await others.get('pods', NAMESPACE, 'doomed');
          return false;
        } catch {
          return true;
        }
      });
    } finally {
      others.close();
    }
    t.is(
      (await env.podContainers(doomedUid)).length,
      2,
      "doomed's containers outlive its object while n3 is down",
    );

    await env.cluster.start(node);
    await waitFor(
      'n3 to adopt and report again',
      async () => {
        const lease = (await env.api.get('leases', 'berth-node-lease', 'n3')) as Json;
        return Date.now() - Date.parse(lease.spec.renewTime) < 1500;
      },
      30_000,
    );
    await waitFor(
      "the reaper to remove doomed's containers",
      async () => (await env.podContainers(doomedUid)).length === 0,
      30_000,
    );

    const after = await snapshot(stayUid);
    t.deepEqual(after, before, 'same containers, same StartedAt: nothing was restarted');
    const now = (await env.getPod('stay')) as Json;
    t.is(now.status.phase, 'Running');
    t.true(isReady(now));
    t.is(statusOf(now, 'main').restartCount, 0);
    t.is(containerIdOf(now, 'main'), before.find((c) => c.role === 'container')?.id);
    const log = await env.logLines(node, 'recreating the pod');
    t.deepEqual(log, [], 'the agent did not recreate any pod');
  },
);
