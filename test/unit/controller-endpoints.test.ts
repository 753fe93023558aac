// The Endpoints controller on an in-process API server: addresses from the pods' published
// host ports (status.endpoints), ready and not-ready addresses, packing into subsets, pods
// leaving (terminating, relabelled), the Service going, and no write when nothing changed.
// The agent is played by `run` below (binds the pod and writes its status).
import test from 'ava';
import pino from 'pino';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import type { ApiObject } from '../../pkg/api/types.js';
import {
  desiredSubsets,
  type EndpointSubset,
  endpointsController,
  MANAGED_BY_LABEL,
} from '../../pkg/controller/endpoints.js';
import { ControllerManager } from '../../pkg/controller/manager.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const logger = pino({ level: 'silent' });

async function setup() {
  const api = new ApiServer({ kv: createLocalStore(), logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  const manager = new ControllerManager([endpointsController], logger);
  await manager.start(api);
  return { api, stop: () => manager.stop() };
}

function service(name: string, selector: Record<string, string> | undefined, targetPort: number | string) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default', labels: { team: 'a' } },
    spec: {
      ...(selector ? { selector } : {}),
      ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort }],
    },
  };
}

/** A pod with one container whose port `containerPort` is named `portName`. */
function pod(name: string, labels: Record<string, string>, containerPort: number, portName = 'web') {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels },
    spec: {
      containers: [{ name: 'c', image: 'berth/busybox:test', ports: [{ name: portName, containerPort }] }],
    },
  };
}

/** What the scheduler and agent would do: bind to `node` and publish the port on hostIP:hostPort. */
async function run(
  api: ApiServer,
  name: string,
  o: { node?: string; hostIP?: string; hostPort: number; ready: boolean },
): Promise<ApiObject> {
  let p = await api.get('pods', 'default', name);
  if (!(p.spec as { nodeName?: string }).nodeName)
    p = await api.update({ ...p, spec: { ...p.spec, nodeName: o.node ?? 'n1' } });
  const containerPort = (p.spec as { containers: { ports: { name: string; containerPort: number }[] }[] })
    .containers[0]?.ports[0];
  const status = {
    phase: 'Running',
    conditions: [
      { type: 'Ready', status: o.ready ? 'True' : 'False', lastTransitionTime: '2024-01-01T00:00:00Z' },
    ],
    endpoints: [
      {
        name: containerPort?.name,
        containerPort: containerPort?.containerPort,
        protocol: 'TCP',
        hostIP: o.hostIP ?? '10.0.0.1',
        hostPort: o.hostPort,
      },
    ],
  };
  return api.update({ ...p, status }, {}, true);
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const getEndpoints = async (api: ApiServer, name: string): Promise<ApiObject | undefined> => {
  try {
    return await api.get('endpoints', 'default', name);
  } catch {
    return undefined;
  }
};

const subsetsOf = (ep: ApiObject | undefined) => (ep?.subsets ?? []) as EndpointSubset[];

/** Pod names, ready and not ready, with ip:port, over all subsets. */
function summary(ep: ApiObject | undefined) {
  const ready: string[] = [];
  const notReady: string[] = [];
  for (const s of subsetsOf(ep)) {
    const port = s.ports?.map((p) => `${p.name}:${p.port}`).join(',');
    for (const a of s.addresses ?? []) ready.push(`${a.targetRef.name}@${a.ip}/${port}`);
    for (const a of s.notReadyAddresses ?? []) notReady.push(`${a.targetRef.name}@${a.ip}/${port}`);
  }
  return { ready: ready.sort(), notReady: notReady.sort() };
}

async function waitForSummary(api: ApiServer, name: string, want: { ready: string[]; notReady: string[] }) {
  return waitFor(`endpoints ${JSON.stringify(want)}`, async () => {
    const ep = await getEndpoints(api, name);
    return ep && JSON.stringify(summary(ep)) === JSON.stringify(want) ? ep : undefined;
  });
}

test('named targetPort: ready and not-ready pods at their hostIP:hostPort; readiness moves them', async (t) => {
  const { api, stop } = await setup();
  try {
    await api.create(service('web', { app: 'web' }, 'web'));
    // Pods may name different container ports 'web'.
    await api.create(pod('a', { app: 'web' }, 8080));
    await api.create(pod('b', { app: 'web' }, 9090));
    await api.create(pod('other', { app: 'db' }, 8080));
    const a = await run(api, 'a', { hostIP: '10.0.0.1', hostPort: 31001, ready: true });
    await run(api, 'b', { node: 'n2', hostIP: '10.0.0.2', hostPort: 31002, ready: false });
    await run(api, 'other', { hostPort: 31003, ready: true });
    const ep = await waitForSummary(api, 'web', {
      ready: ['a@10.0.0.1/http:31001'],
      notReady: ['b@10.0.0.2/http:31002'],
    });
    t.is(ep.metadata.labels?.[MANAGED_BY_LABEL], 'endpoints-controller');
    t.is(ep.metadata.labels?.team, 'a');
    const subsets = subsetsOf(ep);
    t.is(subsets.length, 2, 'different host ports: one subset each');
    const withA = subsets.find((s) => s.addresses?.length);
    t.deepEqual(withA, {
      addresses: [
        {
          ip: '10.0.0.1',
          nodeName: 'n1',
          targetRef: { kind: 'Pod', namespace: 'default', name: 'a', uid: a.metadata.uid as string },
        },
      ],
      ports: [{ name: 'http', port: 31001, protocol: 'TCP' }],
    });
    await run(api, 'b', { hostIP: '10.0.0.2', hostPort: 31002, ready: true });
    await waitForSummary(api, 'web', {
      ready: ['a@10.0.0.1/http:31001', 'b@10.0.0.2/http:31002'],
      notReady: [],
    });
  } finally {
    await stop();
  }
});

test('numeric targetPort; a terminating pod leaves at once; a pod losing the label leaves', async (t) => {
  const { api, stop } = await setup();
  try {
    await api.create(service('web', { app: 'web' }, 8080));
    for (const [name, port] of [
      ['a', 31001],
      ['b', 31002],
      ['c', 31003],
    ] as const) {
      await api.create({
        ...pod(name, { app: 'web' }, 8080),
        metadata: { name, namespace: 'default', labels: { app: 'web' }, finalizers: ['test/hold'] },
      });
      await run(api, name, { hostPort: port, ready: true });
    }
    await waitForSummary(api, 'web', {
      ready: ['a@10.0.0.1/http:31001', 'b@10.0.0.1/http:31002', 'c@10.0.0.1/http:31003'],
      notReady: [],
    });
    // The finalizer keeps the pod terminating: it must leave now, not when it is gone.
    await api.delete('pods', 'default', 'a');
    t.truthy((await api.get('pods', 'default', 'a')).metadata.deletionTimestamp);
    await waitForSummary(api, 'web', {
      ready: ['b@10.0.0.1/http:31002', 'c@10.0.0.1/http:31003'],
      notReady: [],
    });
    const b = await api.get('pods', 'default', 'b');
    await api.update({ ...b, metadata: { ...b.metadata, labels: { app: 'other' } } });
    await waitForSummary(api, 'web', { ready: ['c@10.0.0.1/http:31003'], notReady: [] });
  } finally {
    await stop();
  }
});

test('deleting the Service, or emptying its selector, deletes its Endpoints; user Endpoints stay', async (t) => {
  const { api, stop } = await setup();
  try {
    await api.create(service('web', { app: 'web' }, 'web'));
    await api.create(service('db', { app: 'db' }, 'web'));
    await api.create(pod('a', { app: 'web' }, 8080));
    await run(api, 'a', { hostPort: 31001, ready: true });
    await waitForSummary(api, 'web', { ready: ['a@10.0.0.1/http:31001'], notReady: [] });
    await waitFor('db endpoints', () => getEndpoints(api, 'db'));
    await api.delete('services', 'default', 'web');
    await waitFor('web endpoints gone', async () => (await getEndpoints(api, 'web')) === undefined);
    const db = await api.get('services', 'default', 'db');
    await api.update({ ...db, spec: { ...db.spec, selector: {} } });
    await waitFor('db endpoints gone', async () => (await getEndpoints(api, 'db')) === undefined);
    // A selector-less Service with Endpoints a user wrote: left alone.
    await api.create(service('ext', undefined, 5432));
    await api.create({
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name: 'ext', namespace: 'default' },
      subsets: [{ addresses: [{ ip: '192.168.1.5' }], ports: [{ name: 'http', port: 5432 }] }],
    });
    await new Promise((r) => setTimeout(r, 200));
    t.truthy(await getEndpoints(api, 'ext'));
  } finally {
    await stop();
  }
});

test('no write when nothing changed: the resourceVersion stays', async (t) => {
  const { api, stop } = await setup();
  try {
    await api.create(service('web', { app: 'web' }, 'web'));
    await api.create(pod('a', { app: 'web' }, 8080));
    await run(api, 'a', { hostPort: 31001, ready: true });
    const ep = await waitForSummary(api, 'web', { ready: ['a@10.0.0.1/http:31001'], notReady: [] });
    // Changes that leave the endpoints the same: a pod annotation, a Service annotation.
    const a = await api.get('pods', 'default', 'a');
    await api.update({ ...a, metadata: { ...a.metadata, annotations: { x: '1' } } });
    const svc = await api.get('services', 'default', 'web');
    await api.update({ ...svc, metadata: { ...svc.metadata, annotations: { y: '2' } } });
    await new Promise((r) => setTimeout(r, 300));
    t.is(
      (await api.get('endpoints', 'default', 'web')).metadata.resourceVersion,
      ep.metadata.resourceVersion,
    );
  } finally {
    await stop();
  }
});

test('desiredSubsets packs pods with the same ports into one subset, sorted by ip then name', (t) => {
  const svc = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 's', namespace: 'default' },
    spec: { selector: { app: 'x' }, ports: [{ name: 'http', port: 80, targetPort: 80 }] },
  } as ApiObject;
  const mk = (name: string, ip: string, hostPort: number, ready = true): ApiObject => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', uid: `u-${name}`, labels: { app: 'x' } },
    spec: { nodeName: 'n', containers: [{ name: 'c', ports: [{ containerPort: 80 }] }] },
    status: {
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
      endpoints: [{ containerPort: 80, protocol: 'TCP', hostIP: ip, hostPort }],
    },
  });
  const subsets = desiredSubsets(svc, [
    mk('z', '10.0.0.2', 30000),
    mk('y', '10.0.0.1', 30000, false),
    mk('b', '10.0.0.1', 30000),
    mk('a', '10.0.0.3', 30001),
    { ...mk('unbound', '10.0.0.1', 30000), spec: { containers: [] } },
  ]);
  t.deepEqual(
    subsets.map((s) => ({
      ready: s.addresses?.map((a) => a.targetRef.name),
      notReady: s.notReadyAddresses?.map((a) => a.targetRef.name),
      ports: s.ports?.map((p) => p.port),
    })),
    [
      { ready: ['b', 'z'], notReady: ['y'], ports: [30000] },
      { ready: ['a'], notReady: undefined, ports: [30001] },
    ],
  );
});
