// The Proxier on an in-process API server over a real (local) store, with real loopback
// servers as endpoints: traffic through clusterIP:port and nodeAddress:nodePort, an
// address leaving the Endpoints, onApplied's revision, Services going away, two nodes on
// one machine sharing a cluster IP (one binds, the other takes over when it stops),
// Services that are not proxied, and cluster IPs made local through the adapter.
import { randomInt } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import test from 'ava';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import type { ApiObject } from '../../pkg/api/types.js';
import type { LocalAddressAdapter } from '../../pkg/proxy/local-address.js';
import { Proxier, type ProxierOptions } from '../../pkg/proxy/proxier.js';
import { createLocalStore } from '../../pkg/store/local-store.js';
import {
  exchange,
  randomLoopback,
  randomPort,
  silentLogger,
  startBackend,
  type TestBackend,
  waitFor,
} from './proxy-support.js';

const logger = silentLogger;

/** Everything is local: the adapter must never be asked to add anything. */
const allLocal: LocalAddressAdapter = {
  isLocal: () => true,
  add: async (ip) => {
    throw new Error(`unexpected add of ${ip}`);
  },
  remove: async (ip) => {
    throw new Error(`unexpected remove of ${ip}`);
  },
};

async function apiServer(): Promise<ApiServer> {
  const api = new ApiServer({ kv: createLocalStore(), logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  return api;
}

/** A cluster IP in the default service range (127.96.0.0/16). */
const randomClusterIP = () => `127.96.${randomInt(1, 255)}.${randomInt(1, 255)}`;

async function createService(
  api: ApiServer,
  name: string,
  spec: Record<string, unknown>,
): Promise<{ svc: ApiObject; clusterIP: string; port: number; nodePort: number }> {
  const svc = await api.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec,
  });
  const s = svc.spec as { clusterIP: string; ports: { port: number; nodePort?: number }[] };
  return { svc, clusterIP: s.clusterIP, port: s.ports[0]?.port ?? 0, nodePort: s.ports[0]?.nodePort ?? 0 };
}

/** One subset per backend: each test server has its own kernel-chosen port. */
function subsetsFor(backends: TestBackend[], portName = 'http') {
  return backends.map((b) => ({
    addresses: [
      {
        ip: b.host,
        nodeName: 'n1',
        targetRef: { kind: 'Pod', namespace: 'default', name: `pod-${b.name}`, uid: `uid-${b.name}` },
      },
    ],
    ports: [{ name: portName, port: b.port, protocol: 'TCP' }],
  }));
}

function writeEndpoints(api: ApiServer, name: string, backends: TestBackend[], current?: ApiObject) {
  const obj = {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: current ? current.metadata : { name, namespace: 'default' },
    subsets: subsetsFor(backends),
  };
  return current ? api.update(obj) : api.create(obj);
}

function newProxier(api: ApiServer, o: Partial<ProxierOptions> = {}) {
  const applied: number[] = [];
  const proxier = new Proxier({
    api,
    nodeName: 'n1',
    nodeAddress: randomLoopback(),
    logger,
    localAddress: allLocal,
    bindRetryMs: 100,
    onApplied: (rv) => applied.push(rv),
    ...o,
  });
  return { proxier, applied, lastApplied: () => applied[applied.length - 1] ?? -1 };
}

const nameOf = (answer: string) => answer.split(':')[0];

async function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ host, port });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
  });
}

test('clusterIP and nodePort reach the endpoints; a removed address gets no more traffic; onApplied', async (t) => {
  const api = await apiServer();
  const b1 = await startBackend('b1');
  const b2 = await startBackend('b2');
  const nodeAddress = randomLoopback();
  const { clusterIP, port, nodePort } = await createService(api, 'web', {
    type: 'NodePort',
    clusterIP: randomClusterIP(),
    ports: [{ name: 'http', port: randomPort(), targetPort: 8080, nodePort: randomPort(30000, 32767) }],
  });
  const ep = await writeEndpoints(api, 'web', [b1, b2]);
  const { proxier, lastApplied } = newProxier(api, { nodeAddress });
  await proxier.start();
  t.true(lastApplied() >= Number(ep.metadata.resourceVersion), 'the first reconcile reports the Endpoints');
  await waitFor(
    'both listeners up',
    () => proxier.listeners().filter((l) => l.state === 'listening').length === 2,
  );
  t.deepEqual(
    proxier
      .listeners()
      .map((l) => `${l.kind} ${l.host}:${l.port} ${l.service}`)
      .sort(),
    [
      `ClusterIP ${clusterIP}:${port} default/web:http`,
      `NodePort ${nodeAddress}:${nodePort} default/web:http`,
    ],
  );

  for (const [host, p] of [
    [clusterIP, port],
    [nodeAddress, nodePort],
  ] as const) {
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) seen.push((await exchange(host, p, `via ${host}`)).data);
    t.deepEqual(seen.map(nameOf).sort(), ['b1', 'b1', 'b2', 'b2'], `${host}:${p} balances over both`);
    t.true(seen.every((s) => s.endsWith(`:via ${host}`)));
  }
  t.deepEqual(
    proxier
      .backends('default', 'web', { name: 'http' })
      ?.map((b) => b.port)
      .sort(),
    [b1.port, b2.port].sort(),
  );
  t.deepEqual(proxier.backends('default', 'web', { number: port })?.length, 2);

  // b1's pod leaves the endpoints: once this revision is applied, nothing more reaches it.
  const before = b1.accepted;
  const updated = await writeEndpoints(api, 'web', [b2], ep);
  await waitFor('update applied', () => lastApplied() >= Number(updated.metadata.resourceVersion));
  for (let i = 0; i < 6; i++) t.is(nameOf((await exchange(clusterIP, port, 'x')).data), 'b2');
  for (let i = 0; i < 2; i++) t.is(nameOf((await exchange(nodeAddress, nodePort, 'x')).data), 'b2');
  t.is(b1.accepted, before);
  t.deepEqual(
    proxier.backends('default', 'web', { name: 'http' })?.map((b) => b.port),
    [b2.port],
  );

  // The Service goes: its listeners close.
  await api.delete('services', 'default', 'web');
  await waitFor('listeners closed', () => proxier.listeners().length === 0);
  await waitFor('clusterIP refused', () => refused(clusterIP, port));
  await waitFor('nodePort refused', () => refused(nodeAddress, nodePort));
  t.is(proxier.backends('default', 'web', { name: 'http' }), undefined);

  await proxier.stop();
  await Promise.all([b1.close(), b2.close()]);
});

test('endpoints appearing later and affinity changes apply to the running listener', async (t) => {
  const api = await apiServer();
  const bs = await Promise.all(['b1', 'b2', 'b3'].map((n) => startBackend(n)));
  const { clusterIP, port, svc } = await createService(api, 'sticky', {
    clusterIP: randomClusterIP(),
    ports: [{ port: randomPort() }],
  });
  const { proxier, lastApplied } = newProxier(api);
  let changes = 0;
  proxier.onChange(() => changes++);
  await proxier.start();
  await waitFor('listening', () => proxier.listeners()[0]?.state === 'listening');
  t.is((await exchange(clusterIP, port, 'x')).data, '', 'no endpoints yet: closed');

  const ep = await api.create({
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'sticky', namespace: 'default' },
    // Unnamed ports, as a hand-written Endpoints has them.
    subsets: bs.map((b) => ({ addresses: [{ ip: b.host }], ports: [{ port: b.port }] })),
  });
  await waitFor('endpoints applied', () => lastApplied() >= Number(ep.metadata.resourceVersion));
  t.true(changes >= 2);
  const rotating = new Set<string>();
  for (let i = 0; i < 3; i++) rotating.add(nameOf((await exchange(clusterIP, port, 'x')).data) ?? '');
  t.is(rotating.size, 3);

  await api.update({
    ...svc,
    metadata: (await api.get('services', 'default', 'sticky')).metadata,
    spec: {
      ...svc.spec,
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
    },
  });
  const client = randomLoopback();
  await waitFor('affinity applied', async () => {
    const got = new Set<string>();
    for (let i = 0; i < 4; i++)
      got.add(nameOf((await exchange(clusterIP, port, 'x', { localAddress: client })).data) ?? '');
    return got.size === 1;
  });
  await proxier.stop();
  await Promise.all(bs.map((b) => b.close()));
});

test('two nodes on one machine: one binds the cluster IP, the other takes over when it stops', async (t) => {
  const api = await apiServer();
  const b = await startBackend('b');
  const { clusterIP, port, nodePort } = await createService(api, 'shared', {
    type: 'NodePort',
    clusterIP: randomClusterIP(),
    ports: [{ name: 'http', port: randomPort(), nodePort: randomPort(30000, 32767) }],
  });
  await writeEndpoints(api, 'shared', [b]);
  const a = newProxier(api, { nodeName: 'a', bindRetryMs: 2000 });
  const c = newProxier(api, { nodeName: 'c', bindRetryMs: 2000 });
  await a.proxier.start();
  await c.proxier.start();
  const clusterState = (p: Proxier) => p.listeners().find((l) => l.kind === 'ClusterIP');
  t.is(clusterState(a.proxier)?.state, 'listening');
  t.is(clusterState(c.proxier)?.state, 'waiting');
  t.is(clusterState(c.proxier)?.error, 'EADDRINUSE');
  // Each node has its own address, so both serve the node port.
  t.true(c.proxier.listeners().some((l) => l.kind === 'NodePort' && l.state === 'listening'));
  const cNode = c.proxier.listeners().find((l) => l.kind === 'NodePort');
  t.is(nameOf((await exchange(cNode?.host ?? '', nodePort, 'x')).data), 'b');
  t.is(nameOf((await exchange(clusterIP, port, 'x')).data), 'b');

  const stoppedAt = Date.now();
  await a.proxier.stop();
  await waitFor('c takes the cluster IP', () => clusterState(c.proxier)?.state === 'listening', 5000);
  const took = Date.now() - stoppedAt;
  t.true(took <= 4500, `took over after ${took} ms`);
  t.is(nameOf((await exchange(clusterIP, port, 'x')).data), 'b');
  await c.proxier.stop();
  await b.close();
});

test('headless, ExternalName and UDP ports get no listeners; headless backends are still known', async (t) => {
  const api = await apiServer();
  const b = await startBackend('b');
  await createService(api, 'headless', { clusterIP: 'None', ports: [{ name: 'http', port: 80 }] });
  await writeEndpoints(api, 'headless', [b]);
  await api.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'ext', namespace: 'default' },
    spec: { type: 'ExternalName', externalName: 'example.org' },
  });
  const tcpPort = randomPort();
  const { clusterIP } = await createService(api, 'mixed', {
    clusterIP: randomClusterIP(),
    ports: [
      { name: 'dns', port: randomPort(), protocol: 'UDP' },
      { name: 'tcp', port: tcpPort, protocol: 'TCP' },
    ],
  });
  const { proxier } = newProxier(api);
  await proxier.start();
  t.deepEqual(
    proxier.listeners().map((l) => `${l.service} ${l.host}:${l.port}`),
    [`default/mixed:tcp ${clusterIP}:${tcpPort}`],
  );
  t.deepEqual(proxier.backends('default', 'headless', { name: 'http' }), [
    { ip: b.host, port: b.port, nodeName: 'n1', pod: 'default/pod-b' },
  ]);
  t.deepEqual(proxier.backends('default', 'ext', { number: 80 }), undefined);
  t.is(proxier.backends('default', 'mixed', { name: 'dns' }), undefined);
  await proxier.stop();
  await b.close();
});

test('a cluster IP that is not local is added through the adapter, and removed when unused', async (t) => {
  const api = await apiServer();
  const clusterIP = randomClusterIP();
  const calls: string[] = [];
  // Pretend the (loopback) cluster IP is not local, so the proxy must add it first.
  const adapter: LocalAddressAdapter = {
    isLocal: (ip) => ip !== clusterIP,
    add: async (ip) => void calls.push(`add ${ip}`),
    remove: async (ip) => void calls.push(`remove ${ip}`),
  };
  const svc = await createService(api, 'addme', {
    clusterIP,
    ports: [
      { name: 'a', port: randomPort() },
      { name: 'b', port: randomPort() },
    ],
  });
  const { proxier } = newProxier(api, { localAddress: adapter });
  await proxier.start();
  t.deepEqual(calls, [`add ${clusterIP}`], 'added once for both ports, before binding');
  t.true(proxier.listeners().every((l) => l.state === 'listening'));
  await api.delete('services', 'default', 'addme');
  await waitFor('removed', () => calls.length === 2);
  t.deepEqual(calls, [`add ${clusterIP}`, `remove ${clusterIP}`]);
  t.true(await refused(clusterIP, svc.port));

  // Added again by a new Service; stop() removes it.
  await createService(api, 'addme2', { clusterIP, ports: [{ port: randomPort() }] });
  await waitFor('added again', () => calls.length === 3);
  await waitFor('listening', () => proxier.listeners()[0]?.state === 'listening');
  await proxier.stop();
  t.deepEqual(calls, [`add ${clusterIP}`, `remove ${clusterIP}`, `add ${clusterIP}`, `remove ${clusterIP}`]);
});
