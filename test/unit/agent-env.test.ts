import test from 'ava';
import type { Container, Pod } from '../../pkg/agent/container-spec.js';
import { type ConfigLookups, expand, resolveEnv } from '../../pkg/agent/env.js';

const pod = (over: Partial<Pod['metadata']> = {}): Pod => ({
  metadata: {
    name: 'web-1',
    namespace: 'shop',
    uid: '0123456789abcdef',
    labels: { app: 'web' },
    annotations: { 'example.com/team': 'blue' },
    ...over,
  },
  spec: { containers: [], nodeName: 'node-a', serviceAccountName: 'default' },
  status: { podIP: '172.17.0.5', hostIP: '127.0.0.2' },
});

const container = (over: Partial<Container>): Container => ({ name: 'app', image: 'busybox:1', ...over });

function lookups(
  configMaps: Record<string, Record<string, string>>,
  secrets: Record<string, Record<string, string>> = {},
): ConfigLookups & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    async configMap(ns, name) {
      reads.push(`cm ${ns}/${name}`);
      return configMaps[`${ns}/${name}`];
    },
    async secret(ns, name) {
      reads.push(`secret ${ns}/${name}`);
      return secrets[`${ns}/${name}`];
    },
  };
}

test('expand: Kubernetes expansion rules', (t) => {
  const vars: Record<string, string> = { A: 'a', EMPTY: '' };
  const look = (n: string) => vars[n];
  t.is(expand('x$(A)y', look), 'xay');
  t.is(expand('$(A)$(A)', look), 'aa');
  t.is(expand('$$(A)', look), '$(A)', '$$ escapes');
  t.is(expand('$$$(A)', look), '$a');
  t.is(expand('$(MISSING)', look), '$(MISSING)', 'unknown references stay as written');
  t.is(expand('$(EMPTY)-', look), '-');
  t.is(expand('$(A', look), '$(A', 'unclosed reference');
  t.is(expand('$A', look), '$A', 'no parentheses: literal');
  t.is(expand('cost: 5$', look), 'cost: 5$', 'trailing $');
  t.is(expand('$()', look), '$()');
  t.is(expand('', look), '');
});

test('envFrom first, then env in order; later definitions win; expansion sees earlier vars', async (t) => {
  const l = lookups(
    { 'shop/cfg': { HOST: 'db', PORT: '5432', 'bad key': 'x', '1NUM': 'y' } },
    { 'shop/creds': { password: 's3cret' } },
  );
  const c = container({
    envFrom: [{ configMapRef: { name: 'cfg' } }, { prefix: 'DB_', secretRef: { name: 'creds' } }],
    env: [
      { name: 'URL', value: 'pg://$(HOST):$(PORT)/$(LATER)' },
      { name: 'PORT', value: '6543' },
      { name: 'LATER', value: 'x' },
      { name: 'URL2', value: '$(HOST):$(PORT)' },
    ],
  });
  const r = await resolveEnv(c, pod(), l);
  t.deepEqual(r.errors, []);
  t.deepEqual(r.env, [
    'HOST=db',
    'PORT=6543',
    'DB_password=s3cret',
    'URL=pg://db:5432/$(LATER)',
    'LATER=x',
    'URL2=db:6543',
  ]);
});

test('valueFrom configMapKeyRef / secretKeyRef, optional and not', async (t) => {
  const l = lookups({ 'shop/cfg': { mode: 'fast' } }, { 'shop/s': { token: 'abc' } });
  const c = container({
    env: [
      { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'mode' } } },
      { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 's', key: 'token' } } },
      { name: 'OPT1', valueFrom: { configMapKeyRef: { name: 'nope', key: 'k', optional: true } } },
      { name: 'OPT2', valueFrom: { secretKeyRef: { name: 's', key: 'nokey', optional: true } } },
      { name: 'ERR1', valueFrom: { configMapKeyRef: { name: 'x', key: 'k' } } },
      { name: 'ERR2', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
      { name: 'ERR3', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'k' } } },
    ],
  });
  const r = await resolveEnv(c, pod(), l);
  t.deepEqual(r.env, ['MODE=fast', 'TOKEN=abc']);
  t.deepEqual(r.errors, [
    'configmap "x" not found',
    'key "k" not found in secret "s"',
    'key "k" not found in configmap "cfg"',
  ]);
  // Each object is read once per call.
  t.is(l.reads.filter((x) => x === 'cm shop/cfg').length, 1);
});

test('envFrom: a missing source is an error unless optional', async (t) => {
  const l = lookups({});
  const r = await resolveEnv(
    container({ envFrom: [{ configMapRef: { name: 'a', optional: true } }, { secretRef: { name: 'b' } }] }),
    pod(),
    l,
  );
  t.deepEqual(r.env, []);
  t.deepEqual(r.errors, ['secret "b" not found']);
});

test('fieldRef: every supported field path', async (t) => {
  const paths = [
    'metadata.name',
    'metadata.namespace',
    'metadata.uid',
    "metadata.labels['app']",
    "metadata.labels['missing']",
    "metadata.annotations['example.com/team']",
    'spec.nodeName',
    'spec.serviceAccountName',
    'status.podIP',
    'status.hostIP',
    'status.podIPs',
  ];
  const c = container({
    env: paths.map((p, i) => ({ name: `V${i}`, valueFrom: { fieldRef: { fieldPath: p } } })),
  });
  const r = await resolveEnv(c, pod(), lookups({}));
  t.deepEqual(r.errors, []);
  t.deepEqual(
    r.env.map((e) => e.split('=')[1]),
    [
      'web-1',
      'shop',
      '0123456789abcdef',
      'web',
      '',
      'blue',
      'node-a',
      'default',
      '172.17.0.5',
      '127.0.0.2',
      '172.17.0.5',
    ],
  );
});

test('a literal value may reference a field-derived variable', async (t) => {
  const c = container({
    env: [
      { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'ID', value: '$(POD).$(NS)' },
    ],
  });
  const r = await resolveEnv(c, pod(), lookups({}));
  t.deepEqual(r.env, ['POD=web-1', 'ID=web-1.$(NS)']);
});
