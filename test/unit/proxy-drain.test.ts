// The drain barrier a terminating pod's SIGTERM waits on, over an in-process API server on
// a real (local) store: it waits while an Endpoints object still lists the pod as ready,
// then until every Ready node's proxy has recorded the revision of that change; a node
// without a record (no proxy) is not waited for; a proxy that never catches up holds the
// pod only for the bound.
import test from 'ava';
import { pino } from 'pino';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import type { ApiObject, JsonObject } from '../../pkg/api/types.js';
import { ProxyDrain } from '../../pkg/proxy/drain.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const logger = pino({ level: 'silent' });

async function setup() {
  const kv = createLocalStore();
  const api = new ApiServer({ kv, logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  for (const name of ['a', 'b']) {
    const node = await api.create({ apiVersion: 'v1', kind: 'Node', metadata: { name } });
    await api.update({ ...node, status: { conditions: [{ type: 'Ready', status: 'True' }] } }, {}, true);
  }
  const pod: ApiObject = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-1', namespace: 'default', uid: 'uid-1' },
  };
  const address = {
    ip: '127.0.0.1',
    nodeName: 'a',
    targetRef: { kind: 'Pod', namespace: 'default', name: 'web-1', uid: 'uid-1' },
  };
  const ep = await api.create({
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'web', namespace: 'default' },
    subsets: [{ addresses: [address], ports: [{ port: 40000 }] }],
  });
  const drains = ['a', 'b'].map(
    (nodeName) => new ProxyDrain({ kv, api, nodeName, logger, timeoutMs: 3000, pollMs: 20 }),
  );
  return { kv, api, pod, ep, drains };
}

const settle = () => new Promise((r) => setTimeout(r, 100));

test('SIGTERM waits until the endpoints drop the pod and every proxy has seen it', async (t) => {
  const { api, pod, ep, drains } = await setup();
  const [a, b] = drains as [ProxyDrain, ProxyDrain];
  a.report(Number(ep.metadata.resourceVersion));
  b.report(Number(ep.metadata.resourceVersion));
  await settle();
  let done = false;
  const started = Date.now();
  const waiting = a.waitRemoved(pod).then(() => {
    done = true;
  });
  await new Promise((r) => setTimeout(r, 200));
  t.false(done, 'still listed as ready: keeps waiting');
  const removed = await api.update({
    ...ep,
    subsets: [
      {
        notReadyAddresses: (ep as unknown as { subsets: { addresses: JsonObject[] }[] }).subsets[0]
          ?.addresses,
        ports: [{ port: 40000 }],
      },
    ],
  });
  const revision = Number(removed.metadata.resourceVersion);
  a.report(revision);
  await new Promise((r) => setTimeout(r, 200));
  t.false(done, 'node b’s proxy has not seen the change: keeps waiting');
  b.report(revision);
  await waiting;
  t.true(Date.now() - started < 2500, 'released well before the bound');
});

test('a node without a proxy record is not waited for', async (t) => {
  const { kv, api, pod, ep, drains } = await setup();
  const [a] = drains as [ProxyDrain];
  const removed = await api.update({ ...ep, subsets: [] });
  a.report(Number(removed.metadata.resourceVersion));
  await settle();
  const started = Date.now();
  await new ProxyDrain({ kv, api, nodeName: 'a', logger, timeoutMs: 3000, pollMs: 20 }).waitRemoved(pod);
  t.true(Date.now() - started < 1000);
});

test('a proxy that never catches up holds the pod only for the bound', async (t) => {
  const { kv, api, pod, ep, drains } = await setup();
  const [a, b] = drains as [ProxyDrain, ProxyDrain];
  b.report(Number(ep.metadata.resourceVersion));
  const removed = await api.update({ ...ep, subsets: [] });
  a.report(Number(removed.metadata.resourceVersion));
  await settle();
  const started = Date.now();
  await new ProxyDrain({ kv, api, nodeName: 'a', logger, timeoutMs: 600, pollMs: 20 }).waitRemoved(pod);
  const waited = Date.now() - started;
  t.true(waited >= 550 && waited < 2000, `waited ${waited} ms`);
});
