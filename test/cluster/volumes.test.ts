// Persistent volumes on a real 3-node cluster with the real Docker engine: claims of the
// default class (local-path, WaitForFirstConsumer) get a directory on the node their first
// pod is scheduled to, the data outlives the pod and a restart of the node process, a pod of
// the claim only ever goes to the volume's node (and says why when that node cannot take
// it), and deleting the claim deletes the volume and its directory.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { ApiError, ApiErrorCode } from '../../pkg/api/errors.js';
import {
  AgentEnv,
  BUSYBOX,
  containerIdOf,
  dockerExec,
  type Json,
  NAMESPACE,
  waitFor,
} from '../support/agent-helpers.js';

let env: AgentEnv;

test.before(async () => {
  env = await AgentEnv.start(3);
});

test.after.always(async () => {
  await env?.destroy();
});

function claim(name: string): Json {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: NAMESPACE },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '64Mi' } } },
  };
}

/** A scheduler-placed pod running `script`, with the claim mounted as given. */
function claimPod(name: string, claimName: string, script: string, mount: Json): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NAMESPACE, labels: { app: 'volumes-test' } },
    spec: {
      terminationGracePeriodSeconds: 0,
      containers: [
        {
          name: 'main',
          image: BUSYBOX,
          imagePullPolicy: 'Never',
          command: ['sh', '-c', script],
          volumeMounts: [{ name: 'data', ...mount }],
        },
      ],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName } }],
    },
  };
}

async function getOrUndefined(resource: string, name: string, namespace = NAMESPACE): Promise<Json> {
  try {
    return await env.api.get(resource, namespace, name);
  } catch (err) {
    if (err instanceof ApiError && err.code === ApiErrorCode.NotFound) return undefined;
    throw err;
  }
}

async function exec(pod: Json, command: string[]) {
  const id = containerIdOf(pod, 'main');
  if (!id) throw new Error(`pod ${pod.metadata.name} has no container id yet`);
  return dockerExec(id, command);
}

function nodeIndex(nodeName: string): number {
  for (let i = 0; i < 3; i++) if (env.nodeName(i) === nodeName) return i;
  throw new Error(`no node ${nodeName}`);
}

async function deletePodAndWait(name: string): Promise<void> {
  await env.api.delete('pods', NAMESPACE, name, { gracePeriodSeconds: 0 });
  await waitFor(
    `pod ${name} to be gone`,
    async () => (await env.getPod(name)) === undefined || undefined,
    30_000,
  );
}

test('a claim outlives its pod and a node process restart; deleting it removes the volume and the directory', async (t) => {
  await env.create('persistentvolumeclaims', claim('notes'));
  const token = `berth-${Date.now().toString(36)}`;
  // The writer sees only its subPath of the volume.
  await env.createPod(
    claimPod('writer', 'notes', `echo ${token} > /data/msg && sleep 3600`, {
      mountPath: '/data',
      subPath: 'app',
    }),
  );
  const writer = await env.waitRunningReady('writer', 45_000);
  const node = writer.spec.nodeName as string;

  // Provisioned on the writer's node, bound, and pinned to that node.
  const pvc = await waitFor(
    'claim notes to be Bound',
    async () => {
      const c = await getOrUndefined('persistentvolumeclaims', 'notes');
      return c?.status?.phase === 'Bound' ? c : undefined;
    },
    20_000,
  );
  t.is(pvc.spec.storageClassName, 'local-path');
  t.is(pvc.metadata.annotations?.['volume.kubernetes.io/selected-node'], node);
  const pv: Json = await env.api.get('persistentvolumes', '', pvc.spec.volumeName);
  t.is(pv.status?.phase, 'Bound');
  t.is(pv.spec.persistentVolumeReclaimPolicy, 'Delete');
  t.deepEqual(pv.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values, [node]);
  const dir = pv.spec.local?.path ?? pv.spec.hostPath?.path;
  t.true(
    dir.startsWith(join(env.cluster.node(nodeIndex(node)).dataDir, 'local-path')),
    `volume directory ${dir}`,
  );
  await waitFor('the writer to write', async () => existsSync(join(dir, 'app', 'msg')) || undefined, 15_000);
  t.is((await readFile(join(dir, 'app', 'msg'), 'utf8')).trim(), token);

  // A claim in use cannot go: it waits, Terminating, for its pod (pvc-protection).
  // (Checked on a second claim below; this one is needed again.)

  // The node process restarts (its containers keep running); the volume stays bound.
  const i = nodeIndex(node);
  await env.cluster.stop(i);
  await env.cluster.start(i);
  await env.waitRunningReady('writer', 45_000);
  await deletePodAndWait('writer');

  // A new pod of the claim goes to the same node and reads the data back, read-only.
  await env.createPod(claimPod('reader', 'notes', 'sleep 3600', { mountPath: '/all', readOnly: true }));
  const reader = await env.waitRunningReady('reader', 45_000);
  t.is(reader.spec.nodeName, node, 'a pod of a bound local claim runs on the volume node');
  const read = await exec(reader, ['cat', '/all/app/msg']);
  t.is(read.stdout.trim(), token, read.stderr);
  const write = await exec(reader, ['sh', '-c', 'echo x > /all/other']);
  t.not(write.code, 0, 'a readOnly mount refuses writes');
  t.regex(write.stderr, /Read-only file system/i);

  // Deleting the claim while the reader uses it: Terminating until the pod is gone.
  await env.api.delete('persistentvolumeclaims', NAMESPACE, 'notes');
  const held = await getOrUndefined('persistentvolumeclaims', 'notes');
  t.truthy(held?.metadata.deletionTimestamp, 'the claim in use is kept (kubernetes.io/pvc-protection)');
  t.true(existsSync(dir));
  await deletePodAndWait('reader');

  // Then the claim, its volume (reclaim policy Delete) and the directory all go.
  await waitFor(
    'the claim and its volume to be deleted',
    async () =>
      ((await getOrUndefined('persistentvolumeclaims', 'notes')) === undefined &&
        (await getOrUndefined('persistentvolumes', pv.metadata.name, '')) === undefined) ||
      undefined,
    30_000,
  );
  await waitFor('the volume directory to be removed', async () => !existsSync(dir) || undefined, 15_000);
  t.pass();
});

test("a Deployment's pod with a claim is placed only on the volume's node, and says why when that node cannot take it", async (t) => {
  await env.create('persistentvolumeclaims', claim('db'));
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'db', namespace: NAMESPACE },
    spec: {
      replicas: 1,
      strategy: { type: 'Recreate' },
      selector: { matchLabels: { app: 'db' } },
      template: {
        metadata: { labels: { app: 'db' } },
        spec: {
          terminationGracePeriodSeconds: 0,
          containers: [
            {
              name: 'main',
              image: BUSYBOX,
              imagePullPolicy: 'Never',
              command: ['sh', '-c', 'hostname >> /data/hosts && sleep 3600'],
              volumeMounts: [{ name: 'data', mountPath: '/data' }],
            },
          ],
          volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'db' } }],
        },
      },
    },
  };
  await env.create('deployments', deployment);
  t.teardown(() => env.api.delete('deployments', NAMESPACE, 'db').catch(() => undefined));

  const runningPod = async (): Promise<Json> =>
    waitFor(
      'the db pod to run',
      async () => {
        const pods = await env.api.list('pods', { namespace: NAMESPACE, labelSelector: 'app=db' });
        return pods.items.find(
          (p: Json) => !p.metadata.deletionTimestamp && p.status?.phase === 'Running',
        ) as Json;
      },
      45_000,
    );
  const first = await runningPod();
  const node = first.spec.nodeName as string;

  // Replaced twice: each replacement lands on the same node (2 other nodes are free).
  let current = first;
  for (let round = 0; round < 2; round++) {
    await deletePodAndWait(current.metadata.name);
    current = await runningPod();
    t.is(current.spec.nodeName, node, `replacement ${round + 1} placed on the volume's node`);
  }

  // The volume's node is cordoned: the next replacement waits, and says why.
  const cordon = async (unschedulable: boolean) => {
    for (;;) {
      const n = await env.api.get('nodes', '', node);
      n.spec = { ...n.spec, unschedulable };
      try {
        await env.api.update(n);
        return;
      } catch (err) {
        if (!(err instanceof ApiError && err.code === ApiErrorCode.Conflict)) throw err;
      }
    }
  };
  await cordon(true);
  t.teardown(() => cordon(false).catch(() => undefined));
  await deletePodAndWait(current.metadata.name);
  const pending = await waitFor(
    'the replacement to be reported unschedulable',
    async () => {
      const pods = await env.api.list('pods', { namespace: NAMESPACE, labelSelector: 'app=db' });
      return pods.items.find((p: Json) =>
        (p.status?.conditions ?? []).some(
          (c: Json) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable',
        ),
      ) as Json;
    },
    30_000,
  );
  const message = pending.status.conditions.find((c: Json) => c.type === 'PodScheduled').message as string;
  t.regex(message, /0\/3 nodes are available/);
  t.regex(message, /1 node\(s\) were unschedulable/);
  t.regex(message, /2 node\(s\) had volume node affinity conflict/);
  t.falsy(pending.spec.nodeName);

  // Uncordoned: it runs there, and finds what the earlier pods wrote.
  await cordon(false);
  const back = await runningPod();
  t.is(back.spec.nodeName, node);
  const hosts = await waitFor(
    'the pod to append its hostname',
    async () => {
      const r = await exec(back, ['cat', '/data/hosts']);
      const lines = r.stdout.trim().split('\n');
      return lines.length >= 4 ? lines : undefined;
    },
    15_000,
  );
  t.is(hosts.length, 4, 'four pods, one after the other, wrote to the same volume');
});
