// The service table alone: listen addresses per Service type, ready backends per port
// (matched by port name, or a single unnamed port), skipped non-TCP ports, affinity, and
// the ServiceBackends lookups the Ingress router makes.
import test from 'ava';
import type { ApiObject } from '../../pkg/api/types.js';
import { ServiceTable, servicePortEntries } from '../../pkg/proxy/service-table.js';

function service(name: string, spec: Record<string, unknown>): ApiObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'demo' }, spec: spec as never };
}

const addr = (ip: string, pod: string, nodeName = 'n1') => ({
  ip,
  nodeName,
  targetRef: { kind: 'Pod', namespace: 'demo', name: pod, uid: `uid-${pod}` },
});

function endpoints(name: string, subsets: unknown[], resourceVersion = '7'): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name, namespace: 'demo', resourceVersion },
    subsets,
  };
}

const web = service('web', {
  type: 'NodePort',
  clusterIP: '127.96.0.10',
  ports: [
    { name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 },
    { name: 'metrics', port: 9100, protocol: 'TCP', nodePort: 30091 },
    { name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 },
  ],
});

const webEndpoints = endpoints('web', [
  {
    addresses: [addr('127.0.0.2', 'web-b', 'n2'), addr('127.0.0.1', 'web-a')],
    notReadyAddresses: [addr('127.0.0.3', 'web-c', 'n3')],
    ports: [
      { name: 'http', port: 31001, protocol: 'TCP' },
      { name: 'metrics', port: 31002, protocol: 'TCP' },
    ],
  },
  {
    // A pod whose http port is published elsewhere, in its own subset.
    addresses: [addr('127.0.0.1', 'web-d')],
    ports: [{ name: 'http', port: 31005, protocol: 'TCP' }],
  },
]);

test('NodePort: clusterIP:port and nodeAddress:nodePort per TCP port, ready backends only', (t) => {
  const { entries, skipped } = servicePortEntries(web, webEndpoints, '127.0.0.9');
  t.deepEqual(skipped, [{ key: 'demo/web:dns', protocol: 'UDP' }]);
  t.deepEqual(
    entries.map((e) => [e.key, e.listen.map((l) => `${l.kind} ${l.host}:${l.port}`)]),
    [
      ['demo/web:http', ['ClusterIP 127.96.0.10:80', 'NodePort 127.0.0.9:30080']],
      ['demo/web:metrics', ['ClusterIP 127.96.0.10:9100', 'NodePort 127.0.0.9:30091']],
    ],
  );
  const http = entries[0];
  t.deepEqual(http?.backends, [
    { ip: '127.0.0.1', port: 31001, nodeName: 'n1', pod: 'demo/web-a' },
    { ip: '127.0.0.1', port: 31005, nodeName: 'n1', pod: 'demo/web-d' },
    { ip: '127.0.0.2', port: 31001, nodeName: 'n2', pod: 'demo/web-b' },
  ]);
  t.deepEqual(
    entries[1]?.backends.map((b) => `${b.ip}:${b.port}`),
    ['127.0.0.1:31002', '127.0.0.2:31002'],
  );
  t.is(http?.affinity, undefined);
});

test('ClusterIP: no node port listener even when a nodePort is present', (t) => {
  const svc = service('a', {
    type: 'ClusterIP',
    clusterIP: '127.96.0.11',
    ports: [{ port: 8080, nodePort: 30001 }],
  });
  const { entries } = servicePortEntries(svc, undefined, '127.0.0.9');
  t.deepEqual(entries[0]?.listen, [{ host: '127.96.0.11', port: 8080, kind: 'ClusterIP' }]);
  t.is(entries[0]?.key, 'demo/a:8080', 'an unnamed port is keyed by its number');
  t.deepEqual(entries[0]?.backends, [], 'no Endpoints: no backends');
});

test('LoadBalancer listens like NodePort; a nodePort of 0 (not allocated yet) is not listened on', (t) => {
  const svc = service('lb', {
    type: 'LoadBalancer',
    clusterIP: '127.96.0.12',
    ports: [
      { name: 'a', port: 80, nodePort: 31234 },
      { name: 'b', port: 81, nodePort: 0 },
    ],
  });
  const { entries } = servicePortEntries(svc, undefined, '127.0.0.9');
  t.deepEqual(
    entries.map((e) => e.listen.map((l) => `${l.host}:${l.port}`)),
    [['127.96.0.12:80', '127.0.0.9:31234'], ['127.96.0.12:81']],
  );
});

test('headless and ExternalName Services get no listeners; headless still has backends', (t) => {
  const headless = service('h', { clusterIP: 'None', ports: [{ port: 80 }] });
  const ep = endpoints('h', [
    { addresses: [addr('127.0.0.1', 'p')], ports: [{ port: 30999, protocol: 'TCP' }] },
  ]);
  const h = servicePortEntries(headless, ep, '127.0.0.9').entries[0];
  t.deepEqual(h?.listen, []);
  t.deepEqual(
    h?.backends.map((b) => b.port),
    [30999],
  );
  const unallocated = service('u', { ports: [{ port: 80 }] });
  t.deepEqual(servicePortEntries(unallocated, undefined, '127.0.0.9').entries[0]?.listen, []);
  const ext = service('x', { type: 'ExternalName', externalName: 'example.org', ports: [{ port: 80 }] });
  const x = servicePortEntries(ext, ep, '127.0.0.9').entries[0];
  t.deepEqual(x?.listen, []);
  t.deepEqual(x?.backends, []);
});

test('port matching: by name; a named service port does not take another name; single unnamed port', (t) => {
  const svc = service('m', { clusterIP: '127.96.0.13', ports: [{ name: 'http', port: 80 }] });
  const wrongName = endpoints('m', [
    { addresses: [addr('127.0.0.1', 'p')], ports: [{ name: 'grpc', port: 31000, protocol: 'TCP' }] },
  ]);
  t.deepEqual(servicePortEntries(svc, wrongName, 'n').entries[0]?.backends, []);
  // Hand-written Endpoints often leave the port unnamed: with one port on each side, it matches.
  const unnamed = endpoints('m', [{ addresses: [addr('127.0.0.1', 'p')], ports: [{ port: 31000 }] }]);
  t.deepEqual(
    servicePortEntries(svc, unnamed, 'n').entries[0]?.backends.map((b) => b.port),
    [31000],
  );
  const udp = endpoints('m', [
    { addresses: [addr('127.0.0.1', 'p')], ports: [{ name: 'http', port: 31000, protocol: 'UDP' }] },
  ]);
  t.deepEqual(servicePortEntries(svc, udp, 'n').entries[0]?.backends, [], 'protocols must agree');
});

test('ClientIP affinity with the given timeout, or Kubernetes default of 10800 s', (t) => {
  const given = service('s', {
    clusterIP: '127.96.0.14',
    ports: [{ port: 80 }],
    sessionAffinity: 'ClientIP',
    sessionAffinityConfig: { clientIP: { timeoutSeconds: 30 } },
  });
  t.deepEqual(servicePortEntries(given, undefined, 'n').entries[0]?.affinity, { timeoutSeconds: 30 });
  const dflt = service('s', { clusterIP: '127.96.0.14', ports: [{ port: 80 }], sessionAffinity: 'ClientIP' });
  t.deepEqual(servicePortEntries(dflt, undefined, 'n').entries[0]?.affinity, { timeoutSeconds: 10800 });
});

test('ServiceTable: backends by port number or name, undefined for unknown, [] without endpoints', (t) => {
  const table = new ServiceTable('127.0.0.9');
  t.is(table.backends('demo', 'web', { number: 80 }), undefined);
  table.setService(web);
  t.deepEqual(table.backends('demo', 'web', { name: 'http' }), []);
  table.setEndpoints(webEndpoints);
  t.deepEqual(
    table.backends('demo', 'web', { number: 80 })?.map((b) => b.port),
    [31001, 31005, 31001],
  );
  t.deepEqual(
    table.backends('demo', 'web', { name: 'metrics' })?.map((b) => b.port),
    [31002, 31002],
  );
  t.is(table.backends('demo', 'web', { number: 81 }), undefined);
  t.is(table.backends('demo', 'web', { name: 'nope' }), undefined);
  t.is(table.backends('demo', 'web', { name: 'dns' }), undefined, 'UDP ports are not served');
  t.is(table.backends('other', 'web', { number: 80 }), undefined);
  // Entries follow changes of either object.
  table.setEndpoints(endpoints('web', [], '8'));
  t.deepEqual(table.backends('demo', 'web', { number: 80 }), []);
  t.is(table.entries().length, 2);
  t.deepEqual(table.skipped(), [{ key: 'demo/web:dns', protocol: 'UDP' }]);
  table.deleteService('demo', 'web');
  t.deepEqual(table.entries(), []);
  t.is(table.backends('demo', 'web', { number: 80 }), undefined);
});
