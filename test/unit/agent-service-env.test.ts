// The Services' environment variables a container gets, as the kubelet sets them: names
// upper-cased with '-' as '_', the first port as <NAME>_SERVICE_PORT, named ports, the
// Docker-link style <NAME>_PORT_* variables; headless and ExternalName Services give none;
// the container's own env overrides them and may refer to them; enableServiceLinks: false
// turns them off.
import test from 'ava';
import type { ApiObject, JsonObject } from '../../pkg/api/types.js';
import type { Pod } from '../../pkg/agent/container-spec.js';
import { type ConfigLookups, resolveEnv } from '../../pkg/agent/env.js';
import { serviceEnv } from '../../pkg/agent/service-env.js';

const svc = (name: string, spec: JsonObject): ApiObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'default' },
  spec,
});

const SERVICES = [
  svc('web-api', {
    clusterIP: '127.96.0.10',
    ports: [
      { name: 'http', port: 80, protocol: 'TCP' },
      { name: 'metrics', port: 9090, protocol: 'TCP' },
    ],
  }),
  svc('headless', { clusterIP: 'None', ports: [{ port: 80 }] }),
  svc('external', { type: 'ExternalName', externalName: 'example.test' }),
];

test('a Service with a cluster IP gives the kubelet’s variables', (t) => {
  const env = new Map(serviceEnv(SERVICES));
  t.is(env.get('WEB_API_SERVICE_HOST'), '127.96.0.10');
  t.is(env.get('WEB_API_SERVICE_PORT'), '80');
  t.is(env.get('WEB_API_SERVICE_PORT_HTTP'), '80');
  t.is(env.get('WEB_API_SERVICE_PORT_METRICS'), '9090');
  t.is(env.get('WEB_API_PORT'), 'tcp://127.96.0.10:80');
  t.is(env.get('WEB_API_PORT_9090_TCP'), 'tcp://127.96.0.10:9090');
  t.is(env.get('WEB_API_PORT_9090_TCP_PROTO'), 'tcp');
  t.is(env.get('WEB_API_PORT_9090_TCP_PORT'), '9090');
  t.is(env.get('WEB_API_PORT_9090_TCP_ADDR'), '127.96.0.10');
  t.false([...env.keys()].some((k) => k.startsWith('HEADLESS_') || k.startsWith('EXTERNAL_')));
});

const lookups: ConfigLookups = {
  configMap: async () => undefined,
  secret: async () => undefined,
  services: async () => SERVICES,
};

function pod(env: { name: string; value: string }[], enableServiceLinks?: boolean): Pod {
  return {
    metadata: { name: 'p', namespace: 'default' },
    spec: {
      containers: [{ name: 'c', image: 'i', env }],
      ...(enableServiceLinks === undefined ? {} : { enableServiceLinks }),
    },
  } as Pod;
}

test('the container’s own env overrides and refers to the Services’ variables', async (t) => {
  const p = pod([
    { name: 'WEB_API_SERVICE_PORT', value: '8080' },
    { name: 'API_URL', value: 'http://$(WEB_API_SERVICE_HOST):$(WEB_API_SERVICE_PORT_HTTP)/' },
  ]);
  const r = await resolveEnv(p.spec.containers[0] as Pod['spec']['containers'][0], p, lookups);
  t.deepEqual(r.errors, []);
  t.true(r.env.includes('WEB_API_SERVICE_PORT=8080'));
  t.true(r.env.includes('API_URL=http://127.96.0.10:80/'));
  t.true(r.env.includes('WEB_API_SERVICE_HOST=127.96.0.10'));
});

test('enableServiceLinks: false leaves the Services out', async (t) => {
  const p = pod([{ name: 'A', value: '1' }], false);
  const r = await resolveEnv(p.spec.containers[0] as Pod['spec']['containers'][0], p, lookups);
  t.deepEqual(r.env, ['A=1']);
});
