// The scheduler as the leader runs it, over a real (in-process) API server: pending pods are
// bound, spread over nodes and never overcommit one; a pod that fits nowhere says why and
// is placed once a node that fits appears.
import test from 'ava';
import pino from 'pino';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import type { ApiObject } from '../../pkg/api/types.js';
import { SchedulerLoop } from '../../pkg/scheduler/loop.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const logger = pino({ level: 'silent' });

function node(name: string, cpu: string, memory: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name } },
    spec: {},
    status: {
      capacity: { cpu, memory, pods: '110' },
      allocatable: { cpu, memory, pods: '110' },
      conditions: [{ type: 'Ready', status: 'True' }],
    },
    ...extra,
  };
}

function pod(name: string, cpu: string, memory = '64Mi') {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: 'x' } },
    spec: {
      containers: [{ name: 'c', image: 'berth/busybox:test', resources: { requests: { cpu, memory } } }],
    },
  };
}

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function setup(t: import('ava').ExecutionContext) {
  const api = new ApiServer({ kv: createLocalStore(), logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  const loop = new SchedulerLoop({ logger, seed: 42 });
  t.teardown(() => loop.stop());
  return { api, loop };
}

test('pending pods are bound, spread over the nodes, without overcommitting any', async (t) => {
  const { api, loop } = await setup(t);
  for (const n of ['n1', 'n2', 'n3']) await api.create(node(n, '1', '4Gi'));
  await loop.start(api);
  for (let i = 0; i < 9; i++) await api.create(pod(`p${i}`, '300m'));
  const pods = await until(async () => {
    const items = (await api.list('pods', { namespace: 'default' })).items;
    return items.length === 9 && items.every((p) => p.spec?.nodeName) ? items : undefined;
  });
  const perNode = new Map<string, number>();
  for (const p of pods)
    perNode.set(p.spec?.nodeName as string, (perNode.get(p.spec?.nodeName as string) ?? 0) + 1);
  t.deepEqual([...perNode.values()].sort(), [3, 3, 3], 'three per node: 1 cpu fits three 300m pods');
  const events = (await api.list('events', { namespace: 'default' })).items;
  t.true(events.some((e) => e.reason === 'Scheduled'));
});

test('a pod that fits nowhere says why, and is placed when a node that fits appears', async (t) => {
  const { api, loop } = await setup(t);
  await api.create(node('small', '1', '1Gi'));
  await api.create(
    node('tainted', '8', '16Gi', {
      spec: { taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] },
    }),
  );
  await loop.start(api);
  await api.create(pod('big', '2', '2Gi'));
  const waiting = await until(async () => {
    const p = await api.get('pods', 'default', 'big');
    const c = (p.status?.conditions as { type: string; status: string; message: string }[] | undefined)?.find(
      (x) => x.type === 'PodScheduled',
    );
    return c ? c : undefined;
  });
  t.is(waiting.status, 'False');
  t.is(
    waiting.message,
    '0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 node(s) had untolerated taint {dedicated: db}.',
  );
  const events = (await api.list('events', { namespace: 'default' })).items;
  t.true(events.some((e: ApiObject) => e.reason === 'FailedScheduling'));

  await api.create(node('large', '4', '8Gi'));
  const bound = await until(async () => {
    const p = await api.get('pods', 'default', 'big');
    return p.spec?.nodeName ? p : undefined;
  });
  t.is(bound.spec?.nodeName, 'large');
});

function pvcPod(name: string, claimName: string) {
  const p = pod(name, '100m');
  return { ...p, spec: { ...p.spec, volumes: [{ name: 'data', persistentVolumeClaim: { claimName } }] } };
}

const podScheduled = async (api: ApiServer, name: string) =>
  until(async () => {
    const p = await api.get('pods', 'default', name);
    return (p.status?.conditions as { type: string; message: string }[] | undefined)?.find(
      (x) => x.type === 'PodScheduled',
    );
  });

test('a pod whose claim does not exist says so in PodScheduled', async (t) => {
  const { api, loop } = await setup(t);
  for (const n of ['n1', 'n2']) await api.create(node(n, '1', '4Gi'));
  await loop.start(api);
  await api.create(pvcPod('db', 'data'));
  t.is(
    (await podScheduled(api, 'db')).message,
    '0/2 nodes are available: persistentvolumeclaim "data" not found.',
  );
});

test('a WaitForFirstConsumer claim is given the node before its pod is bound there', async (t) => {
  const { api, loop } = await setup(t);
  for (const n of ['n1', 'n2']) await api.create(node(n, '1', '4Gi'));
  await api
    .create({
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: 'local-path' },
      provisioner: 'berth.io/local-path',
      volumeBindingMode: 'WaitForFirstConsumer',
    })
    .catch(() => undefined); // The API may make the default class itself.
  await api.create({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'data', namespace: 'default' },
    spec: {
      storageClassName: 'local-path',
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '1Gi' } },
    },
  });
  await loop.start(api);
  await api.create(pvcPod('db', 'data'));
  const bound = await until(async () => {
    const p = await api.get('pods', 'default', 'db');
    return p.spec?.nodeName ? p : undefined;
  });
  const claim = await api.get('persistentvolumeclaims', 'default', 'data');
  t.is(claim.metadata.annotations?.['volume.kubernetes.io/selected-node'], bound.spec?.nodeName as string);
});
