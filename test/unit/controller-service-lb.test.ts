// The LoadBalancer status controller on an in-process API server: ingress from the Ready,
// schedulable nodes' addresses (InternalIP, else the agent's client-address annotation),
// following nodes that come, go, fail and get cordoned; cleared when the type changes; and
// no write when nothing changed.
import test from 'ava';
import pino from 'pino';
import { describeObject, printObjects } from '../../cmd/ctl/printers/index.js';
import { CLIENT_ADDRESS_ANNOTATION } from '../../pkg/agent/node-registration.js';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import { type KindInfo, kindByName } from '../../pkg/api/kinds.js';
import type { ApiObject } from '../../pkg/api/types.js';
import { ControllerManager } from '../../pkg/controller/manager.js';
import {
  desiredIngress,
  EXCLUDE_FROM_LB_LABEL,
  nodeIngressAddress,
  serviceLoadBalancerController,
} from '../../pkg/controller/service-lb.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const logger = pino({ level: 'silent' });

async function setup(t: import('ava').ExecutionContext) {
  const api = new ApiServer({ kv: createLocalStore(), logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  const manager = new ControllerManager([serviceLoadBalancerController], logger);
  await manager.start(api);
  t.teardown(() => manager.stop());
  return api;
}

interface NodeOptions {
  ready?: boolean;
  address?: string;
  clientAddress?: string;
  unschedulable?: boolean;
}

function nodeObject(name: string, o: NodeOptions): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      ...(o.clientAddress ? { annotations: { [CLIENT_ADDRESS_ANNOTATION]: o.clientAddress } } : {}),
    },
    spec: o.unschedulable ? { unschedulable: true } : {},
    status: {
      conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
      ...(o.address ? { addresses: [{ type: 'InternalIP', address: o.address }] } : {}),
    },
  };
}

async function addNode(api: ApiServer, name: string, o: NodeOptions): Promise<void> {
  const { status, ...rest } = nodeObject(name, o);
  const created = await api.create(rest);
  await api.update({ ...created, status }, {}, true);
}

async function setReady(api: ApiServer, name: string, ready: boolean): Promise<void> {
  const node = await api.get('nodes', undefined, name);
  const conditions = [
    { type: 'Ready', status: ready ? 'True' : 'False', lastHeartbeatTime: new Date().toISOString() },
  ];
  await api.update({ ...node, status: { ...node.status, conditions } }, {}, true);
}

function service(name: string, type: string) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: { type, selector: { app: name }, ports: [{ port: 80 }] },
  };
}

const ingressOf = (svc: ApiObject) =>
  ((svc.status?.loadBalancer as { ingress?: { ip: string }[] } | undefined)?.ingress ?? []).map((i) => i.ip);

async function waitForIngress(api: ApiServer, name: string, want: string[], ms = 5000): Promise<ApiObject> {
  const end = Date.now() + ms;
  for (;;) {
    const svc = await api.get('svc', 'default', name);
    if (JSON.stringify(ingressOf(svc)) === JSON.stringify(want)) return svc;
    if (Date.now() > end) {
      throw new Error(
        `timed out: ${name} has ingress ${JSON.stringify(ingressOf(svc))}, want ${JSON.stringify(want)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('which nodes take traffic and at which address', (t) => {
  t.is(
    nodeIngressAddress(nodeObject('a', { address: '10.0.0.1', clientAddress: '10.9.9.9:2379' })),
    '10.0.0.1',
  );
  t.is(nodeIngressAddress(nodeObject('b', { clientAddress: '10.0.0.2:2379' })), '10.0.0.2');
  t.is(nodeIngressAddress(nodeObject('c', { address: '10.0.0.3', ready: false })), undefined);
  t.is(nodeIngressAddress(nodeObject('d', { address: '10.0.0.4', unschedulable: true })), undefined);
  t.is(nodeIngressAddress(nodeObject('e', {})), undefined);
  const excluded = nodeObject('f', { address: '10.0.0.6' });
  excluded.metadata.labels = { [EXCLUDE_FROM_LB_LABEL]: '' };
  t.is(nodeIngressAddress(excluded), undefined);
  // Numeric order, duplicates once.
  const nodes = ['10.0.0.10', '10.0.0.9', '10.0.0.10', '9.0.0.1'].map((address, i) =>
    nodeObject(`n${i}`, { address }),
  );
  t.deepEqual(desiredIngress(nodes), [{ ip: '9.0.0.1' }, { ip: '10.0.0.9' }, { ip: '10.0.0.10' }]);
});

test('a LoadBalancer Service lists the Ready, schedulable nodes and follows them', async (t) => {
  const api = await setup(t);
  await addNode(api, 'n1', { address: '127.0.0.12' });
  await addNode(api, 'n2', { address: '127.0.0.2' });
  await addNode(api, 'n3', { address: '127.0.0.3', ready: false });
  await addNode(api, 'n4', { address: '127.0.0.4', unschedulable: true });
  await addNode(api, 'n5', { clientAddress: '127.0.0.5:2379' });
  await api.create(service('lb', 'LoadBalancer'));
  await api.create(service('np', 'NodePort'));
  await waitForIngress(api, 'lb', ['127.0.0.2', '127.0.0.5', '127.0.0.12']);

  await setReady(api, 'n3', true);
  await waitForIngress(api, 'lb', ['127.0.0.2', '127.0.0.3', '127.0.0.5', '127.0.0.12']);
  const n2 = await api.get('nodes', undefined, 'n2');
  await api.update({ ...n2, spec: { ...n2.spec, unschedulable: true } });
  await waitForIngress(api, 'lb', ['127.0.0.3', '127.0.0.5', '127.0.0.12']);
  await api.delete('nodes', undefined, 'n5');
  await setReady(api, 'n1', false);
  await waitForIngress(api, 'lb', ['127.0.0.3']);

  // A heartbeat that changes nothing the controller reads does not rewrite the Service.
  const settled = await api.get('svc', 'default', 'lb');
  await setReady(api, 'n3', true);
  await new Promise((r) => setTimeout(r, 200));
  t.is((await api.get('svc', 'default', 'lb')).metadata.resourceVersion, settled.metadata.resourceVersion);

  // No node left: the ingress goes (berthctl shows <pending>).
  await setReady(api, 'n3', false);
  await waitForIngress(api, 'lb', []);

  // Only LoadBalancer Services get one.
  t.deepEqual(ingressOf(await api.get('svc', 'default', 'np')), []);
});

test('a Service that stops being a LoadBalancer has its ingress cleared; one that becomes one gets it', async (t) => {
  const api = await setup(t);
  await addNode(api, 'n1', { address: '127.0.0.1' });
  await api.create(service('web', 'LoadBalancer'));
  await waitForIngress(api, 'web', ['127.0.0.1']);
  await api.apply(service('web', 'NodePort'));
  const cleared = await waitForIngress(api, 'web', []);
  t.deepEqual(cleared.status?.loadBalancer, {});
  await api.apply(service('web', 'LoadBalancer'));
  await waitForIngress(api, 'web', ['127.0.0.1']);
  // Ingress someone wrote on a ClusterIP Service is taken away as well.
  const c = await api.create(service('internal', 'ClusterIP'));
  await api.update({ ...c, status: { loadBalancer: { ingress: [{ ip: '1.2.3.4' }] } } }, {}, true);
  await waitForIngress(api, 'internal', []);
  t.pass();
});

test('berthctl shows the allocated values: CLUSTER-IP, EXTERNAL-IP (<pending> until a node is there), PORT(S)', async (t) => {
  const api = await setup(t);
  const svcKind = kindByName('svc') as KindInfo;
  const created = await api.create({
    ...service('web', 'LoadBalancer'),
    spec: {
      type: 'LoadBalancer',
      selector: { app: 'web' },
      ports: [{ name: 'http', port: 80, nodePort: 30080 }],
    },
  });
  const ip = (created.spec as { clusterIP: string }).clusterIP;
  const row = (o: ApiObject) => printObjects(svcKind, [o], 'table', { now: Date.now() }).split('\n')[1] ?? '';
  t.regex(
    row(created),
    new RegExp(`^web\\s+LoadBalancer\\s+${ip.replaceAll('.', '\\.')}\\s+<pending>\\s+80:30080/TCP\\s+\\d+s$`),
  );
  await addNode(api, 'n1', { address: '127.0.0.7' });
  const ready = await waitForIngress(api, 'web', ['127.0.0.7']);
  t.regex(row(ready), /^web\s+LoadBalancer\s+\S+\s+127\.0\.0\.7\s+80:30080\/TCP/);
  const text = describeObject(svcKind, ready, { events: [], now: Date.now() });
  for (const line of [
    'Type:                     LoadBalancer',
    'IP Family Policy:         SingleStack',
    'IP Families:              IPv4',
    `IP:                       ${ip}`,
    `IPs:                      ${ip}`,
    'LoadBalancer Ingress:     127.0.0.7',
    'NodePort:                 http  30080/TCP',
    'Endpoints:                <none>',
    'External Traffic Policy:  Cluster',
  ])
    t.true(text.includes(`${line}\n`), `${line}\n---\n${text}`);
});
