import test from 'ava';
import {
  type Container,
  containerName,
  type Pod,
  podHostname,
  sandboxName,
  sandboxSpec,
  specHash,
  toContainerSpec,
} from '../../pkg/agent/container-spec.js';
import { Labels, MANAGED_BY } from '../../pkg/agent/runtime.js';

const app: Container = {
  name: 'app',
  image: 'busybox:1.36',
  command: ['sh', '-c'],
  args: ['sleep 1000'],
  workingDir: '/srv',
  env: [{ name: 'A', value: '1' }],
  ports: [{ containerPort: 80, protocol: 'TCP', name: 'http' }],
  resources: { limits: { cpu: '500m', memory: '128Mi' }, requests: { cpu: '100m' } },
  readinessProbe: { tcpSocket: { port: 80 } },
};

const pod: Pod = {
  metadata: { name: 'web-1', namespace: 'shop', uid: 'abcdef0123456789' },
  spec: { containers: [app], nodeName: 'node-a' },
};

const DOCKER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

test('engine names: berth_<ns>_<pod>_<uid8>_<container>_<attempt>', (t) => {
  t.is(containerName(pod, 'app', 3), 'berth_shop_web-1_abcdef01_app_3');
  t.is(sandboxName(pod), 'berth_shop_web-1_abcdef01_sandbox');
  t.not(containerName(pod, 'sandbox', 0), sandboxName(pod));
  const odd: Pod = { metadata: { name: 'a b/c', namespace: 'x', uid: 'u' }, spec: { containers: [] } };
  t.regex(containerName(odd, 'c', 0), DOCKER_NAME);
});

test('specHash: stable across key order, blind to probes, sensitive to what needs a new container', (t) => {
  const reordered = Object.fromEntries(Object.entries(app).reverse()) as unknown as Container;
  t.not(Object.keys(reordered)[0], Object.keys(app)[0]);
  t.is(specHash(reordered), specHash(app));
  const shuffled: Container = {
    ...app,
    resources: { requests: { cpu: '100m' }, limits: { memory: '128Mi', cpu: '500m' } },
  };
  t.is(specHash(shuffled), specHash(app));
  t.is(
    specHash({ ...app, readinessProbe: undefined, livenessProbe: { exec: { command: ['true'] } } }),
    specHash(app),
  );
  t.is(specHash({ ...app, imagePullPolicy: 'Always' }), specHash(app));
  t.is(
    specHash({ name: 'x', image: 'i', env: [] }),
    specHash({ name: 'x', image: 'i' }),
    'empty list = none',
  );
  for (const change of [
    { image: 'busybox:1.37' },
    { command: ['sh'] },
    { args: ['sleep 1'] },
    { workingDir: '/' },
    { env: [{ name: 'A', value: '2' }] },
    { envFrom: [{ configMapRef: { name: 'c' } }] },
    { ports: [{ containerPort: 81 }] },
    { resources: { limits: { cpu: '1' } } },
    { volumeMounts: [{ name: 'v', mountPath: '/v' }] },
  ] as Partial<Container>[])
    t.not(specHash({ ...app, ...change }), specHash(app), JSON.stringify(change));
  t.regex(specHash(app), /^[0-9a-f]{12}$/);
});

test('toContainerSpec: labels, limits, command/args', (t) => {
  const mounts = [{ hostPath: '/d/v', containerPath: '/v', readOnly: true }];
  const spec = toContainerSpec(pod, app, {
    env: ['A=1'],
    mounts,
    sandboxId: 'sb1',
    nodeName: 'node-a',
    attempt: 2,
  });
  t.deepEqual(spec, {
    name: 'berth_shop_web-1_abcdef01_app_2',
    image: 'busybox:1.36',
    command: ['sh', '-c'],
    args: ['sleep 1000'],
    workingDir: '/srv',
    env: ['A=1'],
    labels: {
      [Labels.managedBy]: MANAGED_BY,
      [Labels.node]: 'node-a',
      [Labels.podUid]: 'abcdef0123456789',
      [Labels.podName]: 'web-1',
      [Labels.podNamespace]: 'shop',
      [Labels.container]: 'app',
      [Labels.role]: 'container',
      [Labels.attempt]: '2',
      [Labels.specHash]: specHash(app),
    },
    mounts,
    cpuLimit: 0.5,
    memoryLimit: 128 * 1024 * 1024,
    sandboxId: 'sb1',
  });
  const bare = toContainerSpec(
    pod,
    { name: 'b', image: 'i' },
    { env: [], mounts: [], sandboxId: 's', nodeName: 'n', attempt: 0 },
  );
  t.false('command' in bare || 'args' in bare || 'cpuLimit' in bare || 'memoryLimit' in bare);
  const numeric = toContainerSpec(
    pod,
    { name: 'b', image: 'i', resources: { limits: { cpu: 2, memory: '1G' } } },
    {
      env: [],
      mounts: [],
      sandboxId: 's',
      nodeName: 'n',
      attempt: 0,
    },
  );
  t.is(numeric.cpuLimit, 2);
  t.is(numeric.memoryLimit, 1e9);
});

test('sandboxSpec: labels, hostname, ports land on the node address', (t) => {
  const s = sandboxSpec(pod, 'node-a', '127.0.0.2', [
    { containerPort: 80, protocol: 'TCP', hostIp: '', hostPort: 40000 },
    { containerPort: 53, protocol: 'UDP', hostIp: '127.0.0.2', hostPort: 40001 },
    { containerPort: 81, protocol: 'TCP', hostIp: '0.0.0.0', hostPort: 40002 },
  ]);
  t.is(s.name, sandboxName(pod));
  t.is(s.hostname, 'web-1');
  t.is(s.labels[Labels.role], 'sandbox');
  t.is(s.labels[Labels.node], 'node-a');
  t.false(Labels.container in s.labels);
  t.deepEqual(
    s.ports.map((p) => p.hostIp),
    ['127.0.0.2', '127.0.0.2', '127.0.0.2'],
  );
});

test('podHostname: spec.hostname, else the name cut to 63 characters', (t) => {
  t.is(podHostname({ ...pod, spec: { ...pod.spec, hostname: 'h' } }), 'h');
  const long = `${'a'.repeat(62)}-b`;
  t.is(podHostname({ ...pod, metadata: { ...pod.metadata, name: long } }), 'a'.repeat(62));
});
