// The node lifecycle controller against an in-process API server: heartbeats are Lease
// renewals the test makes itself; grace and eviction timeouts are a few hundred ms.
import test, { type ExecutionContext } from 'ava';
import pino from 'pino';
import { microTime, NODE_LEASE_NAMESPACE } from '../../pkg/agent/node-registration.js';
import { ApiError, ApiErrorCode } from '../../pkg/api/errors.js';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import type { ApiObject } from '../../pkg/api/types.js';
import { ControllerManager } from '../../pkg/controller/manager.js';
import {
  NODE_STATUS_UNKNOWN,
  nodeLifecycleController,
  TAINT_MANAGER_EVICTION,
  TAINT_NODE_NOT_READY,
  TAINT_NODE_UNREACHABLE,
  tolerates,
  tolerationMs,
} from '../../pkg/controller/node-lifecycle.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const logger = pino({ level: 'silent' });
const GRACE = 300;
const EVICTION = 200;

async function setup(t: ExecutionContext): Promise<{ api: ApiServer; start: () => Promise<void> }> {
  const api = new ApiServer({ kv: createLocalStore(), logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  const manager = new ControllerManager([nodeLifecycleController], logger, {
    nodeGracePeriodMs: GRACE,
    podEvictionTimeoutMs: EVICTION,
  });
  t.teardown(() => manager.stop());
  return { api, start: () => manager.start(api) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function setReady(api: ApiServer, name: string, status: 'True' | 'False'): Promise<void> {
  const node = await api.get('nodes', undefined, name);
  const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const ready = {
    type: 'Ready',
    status,
    reason: 'AgentReady',
    lastHeartbeatTime: at,
    lastTransitionTime: at,
  };
  await api.update({ ...node, status: { ...node.status, conditions: [ready] } }, {}, true);
}

async function renew(api: ApiServer, name: string, ms = Date.now()): Promise<void> {
  const lease = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace: NODE_LEASE_NAMESPACE },
    spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: microTime(ms) },
  };
  try {
    await api.update(lease);
  } catch (err) {
    if (!(err instanceof ApiError && err.code === ApiErrorCode.NotFound)) throw err;
    await api.create(lease);
  }
}

/** A node's agent: renews its Lease every 50 ms until stopped. */
function heartbeat(t: ExecutionContext, api: ApiServer, name: string): () => void {
  const timer = setInterval(() => void renew(api, name).catch(() => {}), 50);
  const stop = () => clearInterval(timer);
  t.teardown(stop);
  return stop;
}

async function createNode(api: ApiServer, name: string): Promise<void> {
  await api.create({ apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: {} });
  await setReady(api, name, 'True');
  await renew(api, name);
}

async function createPod(
  api: ApiServer,
  name: string,
  node: string,
  tolerations?: unknown[],
): Promise<ApiObject> {
  return api.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      nodeName: node,
      containers: [{ name: 'c', image: 'berth/busybox:test' }],
      ...(tolerations ? { tolerations } : {}),
    },
  });
}

const readyOf = (node: ApiObject) =>
  ((node.status?.conditions ?? []) as { type: string; status: string; reason?: string }[]).find(
    (c) => c.type === 'Ready',
  );
const taintsOf = (node: ApiObject) =>
  ((node.spec?.taints ?? []) as { key: string; effect: string; timeAdded?: string }[]).map(
    (t) => `${t.key}:${t.effect}`,
  );

async function exists(api: ApiServer, pod: string): Promise<boolean> {
  try {
    await api.get('pods', 'default', pod);
    return true;
  } catch {
    return false;
  }
}

async function eventReasons(api: ApiServer, name: string): Promise<string[]> {
  const { items } = await api.list('events', { namespace: 'default' });
  return items
    .filter((e) => (e.involvedObject as { name: string }).name === name)
    .map((e) => e.reason as string);
}

test('tolerations: matching and how long a NoExecute taint is tolerated', (t) => {
  const unreachable = { key: TAINT_NODE_UNREACHABLE, effect: 'NoExecute' };
  t.true(tolerates({ operator: 'Exists' }, unreachable));
  t.true(tolerates({ key: TAINT_NODE_UNREACHABLE, operator: 'Exists', effect: 'NoExecute' }, unreachable));
  t.false(tolerates({ key: TAINT_NODE_UNREACHABLE, operator: 'Exists', effect: 'NoSchedule' }, unreachable));
  t.true(
    tolerates({ key: 'dedicated', value: 'db' }, { key: 'dedicated', value: 'db', effect: 'NoExecute' }),
  );
  t.false(
    tolerates({ key: 'dedicated', value: 'web' }, { key: 'dedicated', value: 'db', effect: 'NoExecute' }),
  );
  t.is(tolerationMs([], unreachable, 200), 200);
  t.is(tolerationMs([], { key: 'dedicated', effect: 'NoExecute' }, 200), 0);
  t.is(
    tolerationMs([{ operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 7 }], unreachable, 200),
    7000,
  );
  t.is(tolerationMs([{ operator: 'Exists', effect: 'NoExecute' }], unreachable, 200), undefined);
  const both = [
    { operator: 'Exists', effect: 'NoExecute' },
    { key: TAINT_NODE_UNREACHABLE, operator: 'Exists', tolerationSeconds: 3 },
  ];
  t.is(tolerationMs(both, unreachable, 200), 3000);
});

test('a node that stops heartbeating turns Unknown and tainted; pods go by their tolerations; it recovers', async (t) => {
  const { api, start } = await setup(t);
  // A healthy node beside it: with no node Ready at all, evictions pause (full disruption).
  await createNode(api, 'healthy');
  heartbeat(t, api, 'healthy');
  await createNode(api, 'n1');
  let stopBeats = heartbeat(t, api, 'n1');
  await createPod(api, 'plain', 'n1');
  await createPod(api, 'patient', 'n1', [
    { key: TAINT_NODE_UNREACHABLE, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 1 },
  ]);
  await createPod(api, 'forever', 'n1', [
    { key: TAINT_NODE_UNREACHABLE, operator: 'Exists', effect: 'NoExecute' },
  ]);
  await start();

  // Heartbeating for longer than the grace period: healthy.
  await sleep(GRACE * 2);
  let node = await api.get('nodes', undefined, 'n1');
  t.is(readyOf(node)?.status, 'True');
  t.deepEqual(taintsOf(node), []);

  stopBeats();
  const stoppedAt = Date.now();
  await sleep(GRACE / 2);
  t.is(readyOf(await api.get('nodes', undefined, 'n1'))?.status, 'True', 'not before the grace period');
  await waitFor('unreachable taints', async () => {
    node = await api.get('nodes', undefined, 'n1');
    return taintsOf(node).length === 2;
  });
  const taintedAt = Date.now();
  t.true(taintedAt - stoppedAt < GRACE + 400, `tainted ${taintedAt - stoppedAt} ms after the last heartbeat`);
  t.is(readyOf(node)?.status, 'Unknown');
  t.is(readyOf(node)?.reason, NODE_STATUS_UNKNOWN);
  t.deepEqual(taintsOf(node), [
    `${TAINT_NODE_UNREACHABLE}:NoSchedule`,
    `${TAINT_NODE_UNREACHABLE}:NoExecute`,
  ]);
  t.truthy(((node.spec?.taints ?? []) as { timeAdded?: string }[])[1]?.timeAdded);

  // No toleration: the eviction timeout; tolerationSeconds 1: a second; no tolerationSeconds: never.
  t.true(await exists(api, 'plain'), 'not evicted at once');
  await waitFor('plain evicted', async () => !(await exists(api, 'plain')));
  t.true(Date.now() - taintedAt >= EVICTION - 50, `evicted after ${Date.now() - taintedAt} ms`);
  t.true(await exists(api, 'patient'));
  await waitFor('patient evicted', async () => !(await exists(api, 'patient')));
  t.true(Date.now() - taintedAt >= 900, `patient evicted after ${Date.now() - taintedAt} ms`);
  await waitFor('eviction event', async () =>
    (await eventReasons(api, 'plain')).includes(TAINT_MANAGER_EVICTION),
  );
  t.true((await eventReasons(api, 'n1')).includes('NodeNotReady'));
  await sleep(300);
  t.true(await exists(api, 'forever'));

  // Heartbeats alone keep the node Unknown (its agent has not said Ready); Ready True clears it.
  stopBeats = heartbeat(t, api, 'n1');
  await sleep(GRACE);
  t.is(taintsOf(await api.get('nodes', undefined, 'n1')).length, 2);
  await setReady(api, 'n1', 'True');
  await waitFor('taints removed', async () => taintsOf(await api.get('nodes', undefined, 'n1')).length === 0);
  await waitFor('NodeReady event', async () => (await eventReasons(api, 'n1')).includes('NodeReady'));
  await sleep(GRACE * 2);
  node = await api.get('nodes', undefined, 'n1');
  t.is(readyOf(node)?.status, 'True');
  t.deepEqual(taintsOf(node), []);
  t.true(await exists(api, 'forever'));
  stopBeats();
});

test('with no node Ready, evictions pause (full disruption)', async (t) => {
  const { api, start } = await setup(t);
  await createNode(api, 'lonely');
  await createPod(api, 'kept', 'lonely');
  await start();
  await waitFor(
    'unreachable taints',
    async () => taintsOf(await api.get('nodes', undefined, 'lonely')).length === 2,
  );
  await sleep(EVICTION * 3);
  t.true(await exists(api, 'kept'), 'the only node is down: its pods are not evicted');
});

test('a new leader gives every node a full grace period before declaring it dead', async (t) => {
  const { api, start } = await setup(t);
  await createNode(api, 'old');
  await renew(api, 'old', Date.now() - 3_600_000);
  const startedAt = Date.now();
  await start();
  await sleep(GRACE / 2);
  let node = await api.get('nodes', undefined, 'old');
  t.is(readyOf(node)?.status, 'True');
  t.deepEqual(taintsOf(node), []);
  await waitFor('unknown', async () => {
    node = await api.get('nodes', undefined, 'old');
    return readyOf(node)?.status === 'Unknown';
  });
  t.true(Date.now() - startedAt >= GRACE - 20);
  await waitFor('tainted', async () => taintsOf(await api.get('nodes', undefined, 'old')).length === 2);
});

test('a node reporting Ready=False gets not-ready taints, its pods are evicted, and it recovers', async (t) => {
  const { api, start } = await setup(t);
  // A healthy node beside it: with no node Ready at all, evictions pause (full disruption).
  await createNode(api, 'healthy');
  heartbeat(t, api, 'healthy');
  await createNode(api, 'n2');
  const stopBeats = heartbeat(t, api, 'n2');
  await createPod(api, 'p', 'n2');
  await start();
  await setReady(api, 'n2', 'False');
  await waitFor('not-ready taints', async () => {
    const node = await api.get('nodes', undefined, 'n2');
    return taintsOf(node).join() === `${TAINT_NODE_NOT_READY}:NoSchedule,${TAINT_NODE_NOT_READY}:NoExecute`;
  });
  // The agent is there: a graceful delete, which the agent finishes.
  await waitFor(
    'pod evicted',
    async () => (await api.get('pods', 'default', 'p')).metadata.deletionTimestamp !== undefined,
  );
  const terminating = await api.get('pods', 'default', 'p');
  t.is(terminating.metadata.deletionGracePeriodSeconds, 30);
  await sleep(300);
  t.is(
    (await api.get('pods', 'default', 'p')).metadata.resourceVersion,
    terminating.metadata.resourceVersion,
  );
  await api.delete('pods', 'default', 'p', { gracePeriodSeconds: 0 });
  t.is(
    readyOf(await api.get('nodes', undefined, 'n2'))?.status,
    'False',
    'a heartbeating node keeps its own status',
  );
  await setReady(api, 'n2', 'True');
  await waitFor('taints removed', async () => taintsOf(await api.get('nodes', undefined, 'n2')).length === 0);
  stopBeats();
  t.pass();
});

test('a pod deleted gracefully on an unreachable node is removed once its grace period ends', async (t) => {
  const { api, start } = await setup(t);
  // A healthy node beside it: with no node Ready at all, evictions pause (full disruption).
  await createNode(api, 'healthy');
  heartbeat(t, api, 'healthy');
  await createNode(api, 'n3');
  await createPod(api, 'stuck', 'n3', [{ operator: 'Exists' }]);
  await start();
  await waitFor('tainted', async () => taintsOf(await api.get('nodes', undefined, 'n3')).length === 2);
  const r = await api.delete('pods', 'default', 'stuck', { gracePeriodSeconds: 1 });
  t.false(r.deleted, 'waits for the agent at first');
  await waitFor('force-deleted', async () => !(await exists(api, 'stuck')), 3000);
});
