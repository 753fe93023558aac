// applyDefaults fills in Kubernetes' defaults without touching its input; quantities and
// int-or-percent values parse as Kubernetes parses them.

import test from 'ava';
import { parse } from 'yaml';
import { applyDefaults } from '../../pkg/api/defaults.js';
import { defaultPullPolicy, parseIntOrPercent, scaledValue } from '../../pkg/api/schema/index.js';
import { parseQuantity, tryParseQuantity } from '../../pkg/api/schema/quantity.js';
import type { ApiObject } from '../../pkg/api/types.js';
import { validateObject } from '../../pkg/api/validation.js';

const y = (s: string) => parse(s, { version: '1.1' }) as ApiObject;

/** The value at a path like 'spec.containers[0].image'. */
const at = (o: unknown, path: string): unknown =>
  path
    .replace(/\[(\d+)\]/g, '.$1')
    .split('.')
    .reduce<unknown>((cur, k) => (cur as Record<string, unknown> | undefined)?.[k], o);

const DEPLOYMENT = `
apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
        - name: web
          image: nginx
          ports: [{ containerPort: 80 }]
          readinessProbe: { httpGet: { path: /, port: 80 } }
        - { name: pinned, image: "registry:5000/team/app:1.2", imagePullPolicy: Never }
        - { name: tagged, image: "registry:5000/team/app:1.2" }
        - { name: digest, image: "nginx@sha256:0123" }
      volumes:
        - { name: scratch }
        - { name: cfg, configMap: { name: cfg } }
`;

test("deployment and pod template defaults are Kubernetes'", (t) => {
  const input = y(DEPLOYMENT);
  const before = structuredClone(input);
  const d = applyDefaults(input);
  t.deepEqual(input, before, 'input untouched');
  t.is(at(d, 'spec.replicas'), 1);
  t.deepEqual(at(d, 'spec.strategy'), {
    type: 'RollingUpdate',
    rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' },
  });
  t.is(at(d, 'spec.revisionHistoryLimit'), 10);
  t.is(at(d, 'spec.progressDeadlineSeconds'), 600);
  const pod = at(d, 'spec.template.spec');
  t.is(at(pod, 'restartPolicy'), 'Always');
  t.is(at(pod, 'terminationGracePeriodSeconds'), 30);
  t.is(at(pod, 'dnsPolicy'), 'ClusterFirst');
  t.deepEqual(
    (at(pod, 'containers') as Record<string, unknown>[]).map((c) => c.imagePullPolicy),
    ['Always', 'Never', 'IfNotPresent', 'IfNotPresent'],
  );
  t.deepEqual(at(pod, 'containers[0].ports'), [{ containerPort: 80, protocol: 'TCP' }]);
  t.deepEqual(at(pod, 'containers[0].readinessProbe'), {
    httpGet: { path: '/', port: 80, scheme: 'HTTP' },
    timeoutSeconds: 1,
    periodSeconds: 10,
    successThreshold: 1,
    failureThreshold: 3,
  });
  t.deepEqual(at(pod, 'volumes'), [
    { name: 'scratch', emptyDir: {} },
    { name: 'cfg', configMap: { name: 'cfg', defaultMode: 0o644 } },
  ]);
  t.deepEqual(validateObject(d), [], 'defaulted object is still valid');
});

test('defaults keep what the user set', (t) => {
  const input = y(DEPLOYMENT);
  const spec = input.spec as Record<string, unknown>;
  spec.replicas = 0;
  spec.strategy = { type: 'Recreate' };
  (at(spec, 'template.spec') as Record<string, unknown>).terminationGracePeriodSeconds = 0;
  const d = applyDefaults(input);
  t.is(at(d, 'spec.replicas'), 0);
  t.deepEqual(at(d, 'spec.strategy'), { type: 'Recreate' });
  t.is(at(d, 'spec.template.spec.terminationGracePeriodSeconds'), 0);
  const partial = applyDefaults({
    ...input,
    spec: { ...spec, strategy: { rollingUpdate: { maxSurge: 0 } } },
  });
  t.deepEqual(at(partial, 'spec.strategy'), {
    type: 'RollingUpdate',
    rollingUpdate: { maxSurge: 0, maxUnavailable: '25%' },
  });
});

test('replicaset, service, namespace, event and node defaults', (t) => {
  const rs = applyDefaults(
    y(`
apiVersion: apps/v1
kind: ReplicaSet
metadata: { name: rs }
spec:
  selector: { matchLabels: { a: b } }
  template: { metadata: { labels: { a: b } }, spec: { containers: [{ name: c, image: "busybox:latest" }] } }
`),
  );
  t.is(at(rs, 'spec.replicas'), 1);
  t.is(at(rs, 'spec.template.spec.containers[0].imagePullPolicy'), 'Always');

  const svc = applyDefaults(
    y(`
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80 }, { name: metrics, port: 9090, targetPort: metrics, protocol: UDP }]
`),
  );
  t.deepEqual(at(svc, 'spec'), {
    type: 'ClusterIP',
    sessionAffinity: 'None',
    internalTrafficPolicy: 'Cluster',
    selector: { app: 'web' },
    ports: [
      { name: 'http', port: 80, protocol: 'TCP', targetPort: 80 },
      { name: 'metrics', port: 9090, targetPort: 'metrics', protocol: 'UDP' },
    ],
  });
  const sticky = applyDefaults(
    y(
      'apiVersion: v1\nkind: Service\nmetadata: { name: s }\nspec: { type: NodePort, sessionAffinity: ClientIP, ports: [{ port: 80 }] }',
    ),
  );
  t.deepEqual(at(sticky, 'spec.sessionAffinityConfig'), { clientIP: { timeoutSeconds: 10800 } });
  t.is(at(sticky, 'spec.externalTrafficPolicy'), 'Cluster');

  const ns = applyDefaults(y('apiVersion: v1\nkind: Namespace\nmetadata: { name: shop }'));
  t.deepEqual(at(ns, 'status'), { phase: 'Active' });
  const terminating = applyDefaults(
    y('apiVersion: v1\nkind: Namespace\nmetadata: { name: shop }\nstatus: { phase: Terminating }'),
  );
  t.is(at(terminating, 'status.phase'), 'Terminating');

  const ev = applyDefaults(
    y('apiVersion: v1\nkind: Event\nmetadata: { name: e }\ninvolvedObject: { kind: Pod, name: p }'),
  );
  t.is(at(ev, 'type'), 'Normal');

  const node = applyDefaults(
    y('apiVersion: v1\nkind: Node\nmetadata: { name: n }\nstatus: { capacity: { cpu: "4" } }'),
  );
  t.deepEqual(at(node, 'status.allocatable'), { cpu: '4' });

  const pod = applyDefaults(
    y(
      'apiVersion: v1\nkind: Pod\nmetadata: { name: p }\nspec: { containers: [{ name: c, image: x, env: [{ name: N, valueFrom: { fieldRef: { fieldPath: metadata.name } } }] }] }',
    ),
  );
  t.deepEqual(at(pod, 'spec.containers[0].env[0].valueFrom.fieldRef'), {
    fieldPath: 'metadata.name',
    apiVersion: 'v1',
  });
});

test('secret: type Opaque, stringData merged into data and removed', (t) => {
  const input = y(`
apiVersion: v1
kind: Secret
metadata: { name: db }
data: { username: YWRtaW4=, password: b2xk }
stringData: { password: "s3cr3t", url: "postgres://db:5432/app" }
`);
  const s = applyDefaults(input);
  t.is(at(s, 'type'), 'Opaque');
  t.is(at(s, 'stringData'), undefined);
  t.false(Object.hasOwn(s, 'stringData'));
  t.deepEqual(at(s, 'data'), {
    username: 'YWRtaW4=',
    password: Buffer.from('s3cr3t').toString('base64'),
    url: Buffer.from('postgres://db:5432/app').toString('base64'),
  });
  t.truthy(at(input, 'stringData'), 'input untouched');
  const tls = applyDefaults(
    y(
      'apiVersion: v1\nkind: Secret\nmetadata: { name: t }\ntype: kubernetes.io/tls\nstringData: { tls.crt: c, tls.key: k }',
    ),
  );
  t.is(at(tls, 'type'), 'kubernetes.io/tls');
  t.deepEqual(Object.keys(at(tls, 'data') as object), ['tls.crt', 'tls.key']);
});

test('image pull policy rule', (t) => {
  t.is(defaultPullPolicy('nginx'), 'Always');
  t.is(defaultPullPolicy('nginx:latest'), 'Always');
  t.is(defaultPullPolicy('localhost:5000/nginx'), 'Always');
  t.is(defaultPullPolicy('localhost:5000/nginx:1.27'), 'IfNotPresent');
  t.is(defaultPullPolicy('nginx@sha256:abc'), 'IfNotPresent');
});

test('quantities', (t) => {
  const cases: [string, number][] = [
    ['100m', 0.1],
    ['1', 1],
    ['0.5', 0.5],
    ['.5', 0.5],
    ['2500m', 2.5],
    ['1Gi', 1073741824],
    ['128Mi', 134217728],
    ['1Ki', 1024],
    ['1k', 1000],
    ['1M', 1e6],
    ['1G', 1e9],
    ['1e3', 1000],
    ['1E3', 1000],
    ['1E', 1e18],
    ['5e-3', 0.005],
    ['100n', 1e-7],
    ['+1', 1],
    ['-1', -1],
  ];
  for (const [s, v] of cases)
    t.true(Math.abs(parseQuantity(s) - v) <= Math.abs(v) * 1e-12, `${s} -> ${parseQuantity(s)}`);
  for (const bad of ['', 'm', '1K', '1kb', '1 Gi', 'abc', '1.2.3', '1Gi ', '1e', '0x10', 'Infinity', 'NaN']) {
    t.throws(() => parseQuantity(bad), undefined, bad);
    t.is(tryParseQuantity(bad), undefined, bad);
  }
  t.is(tryParseQuantity(2), 2);
  t.is(tryParseQuantity(Number.NaN), undefined);
  t.is(tryParseQuantity({}), undefined);
});

test('int or percent', (t) => {
  t.deepEqual(parseIntOrPercent(3), { value: 3, percent: false });
  t.deepEqual(parseIntOrPercent('25%'), { value: 25, percent: true });
  t.is(parseIntOrPercent('25'), undefined);
  t.is(parseIntOrPercent(1.5), undefined);
  t.is(scaledValue('25%', 10, true), 3);
  t.is(scaledValue('25%', 10, false), 2);
  t.is(scaledValue(4, 10, false), 4);
  t.throws(() => scaledValue('x', 10, true));
});
