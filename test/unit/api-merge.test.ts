import test from 'ava';
import { jsonEqual, LAST_APPLIED, lastAppliedOf, MERGE_KEYS, threeWayMerge } from '../../pkg/api/merge.js';
import type { ApiObject, JsonObject, JsonValue } from '../../pkg/api/types.js';

// What the server does on apply: merge, with last-applied read back from the live object.
const apply = (applied: JsonObject, live: JsonObject): JsonObject =>
  threeWayMerge(lastAppliedOf(live as unknown as ApiObject), applied, live);

const at = (o: JsonValue | undefined, ...path: (string | number)[]): JsonValue | undefined => {
  let cur: JsonValue | undefined = o;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object' || cur === undefined) return undefined;
    cur = (cur as Record<string, JsonValue>)[p];
  }
  return cur;
};

const deployment = (
  containers: JsonValue[],
  labels: Record<string, string> = { app: 'web' },
): JsonObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'default', labels },
  spec: {
    replicas: 2,
    selector: { matchLabels: { app: 'web' } },
    template: { metadata: { labels: { app: 'web' } }, spec: { containers } },
  },
});

// What the server and controllers add to a stored object.
const stored = (manifest: JsonObject): JsonObject => {
  const live = structuredClone(manifest);
  const meta = live.metadata as JsonObject;
  Object.assign(meta, {
    uid: 'u-1',
    resourceVersion: '7',
    generation: 1,
    creationTimestamp: '2026-01-01T00:00:00Z',
  });
  live.status = { replicas: 2, readyReplicas: 2 };
  return live;
};

const containersOf = (o: JsonObject) => at(o, 'spec', 'template', 'spec', 'containers') as JsonObject[];

// The item at i of a list the test built itself; throws rather than asserting non-null.
const item = (list: JsonValue | undefined, i: number): JsonObject => {
  const v = Array.isArray(list) ? list[i] : undefined;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`no object at [${i}]`);
  return v;
};

test('first apply (no last-applied) keeps live-only fields and records the manifest', (t) => {
  const manifest = deployment([{ name: 'a', image: 'nginx:1' }]);
  const live = stored(manifest);
  (live.spec as JsonObject).progressDeadlineSeconds = 600; // a default the server filled in
  const out = threeWayMerge(undefined, manifest, live);
  t.deepEqual(out.status, { replicas: 2, readyReplicas: 2 });
  t.is(at(out, 'metadata', 'uid'), 'u-1');
  t.is(at(out, 'spec', 'progressDeadlineSeconds'), 600);
  t.deepEqual(JSON.parse(at(out, 'metadata', 'annotations', LAST_APPLIED) as string), manifest);
  t.deepEqual(lastAppliedOf(out as unknown as ApiObject), manifest);
});

test('removing a label removes it, and only it', (t) => {
  const v1 = deployment([{ name: 'a', image: 'nginx:1' }], { app: 'web', tier: 'front' });
  const live = stored(threeWayMerge(undefined, v1, stored(v1)));
  (live.metadata as JsonObject).labels = { app: 'web', tier: 'front', team: 'ops' }; // set by kubectl label
  const out = apply(deployment([{ name: 'a', image: 'nginx:1' }], { app: 'web' }), live);
  t.deepEqual(at(out, 'metadata', 'labels'), { app: 'web', team: 'ops' });
});

test('removing an env var from a container removes only that one', (t) => {
  const c = (env: JsonValue[]) => deployment([{ name: 'a', image: 'nginx:1', env }]);
  let live = stored(
    threeWayMerge(
      undefined,
      c([
        { name: 'A', value: '1' },
        { name: 'B', value: '2' },
      ]),
      stored(c([])),
    ),
  );
  // Someone else added C to the live object.
  (item(containersOf(live), 0).env as JsonValue[]).push({ name: 'C', value: '3' });
  live = apply(c([{ name: 'A', value: '1' }]), live);
  t.deepEqual(containersOf(live)[0]?.env, [
    { name: 'A', value: '1' },
    { name: 'C', value: '3' },
  ]);
});

test('controller-set fields survive: status, spec.nodeName, others annotations', (t) => {
  const manifest: JsonObject = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', annotations: { mine: 'x' } },
    spec: { containers: [{ name: 'a', image: 'nginx:1' }] },
  };
  const live = threeWayMerge(undefined, manifest, manifest);
  (live.spec as JsonObject).nodeName = 'n1';
  (live.spec as JsonObject).restartPolicy = 'Always';
  (live.metadata as JsonObject).annotations = {
    ...(at(live, 'metadata', 'annotations') as JsonObject),
    'deployment.kubernetes.io/revision': '3',
  };
  live.status = { phase: 'Running', podIP: '10.0.0.2' };
  const next = structuredClone(manifest);
  (next.metadata as JsonObject).annotations = {};
  const out = apply(next, live);
  t.is(at(out, 'spec', 'nodeName'), 'n1');
  t.is(at(out, 'spec', 'restartPolicy'), 'Always');
  t.deepEqual(out.status, { phase: 'Running', podIP: '10.0.0.2' });
  const annotations = at(out, 'metadata', 'annotations') as JsonObject;
  t.is(annotations['deployment.kubernetes.io/revision'], '3');
  t.false('mine' in annotations);
  t.deepEqual(lastAppliedOf(out as unknown as ApiObject), next);
});

test('dropping the whole annotations map from the manifest keeps others annotations', (t) => {
  const manifest: JsonObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'c', annotations: { a: '1' } },
  };
  const live = threeWayMerge(undefined, manifest, manifest);
  (live.metadata as JsonObject).annotations = {
    ...(at(live, 'metadata', 'annotations') as JsonObject),
    other: '2',
  };
  const out = apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }, live);
  const annotations = at(out, 'metadata', 'annotations') as JsonObject;
  t.deepEqual(Object.keys(annotations).sort(), [LAST_APPLIED, 'other'].sort());
});

test('changing the image of container b of two changes only b', (t) => {
  const v1 = deployment([
    { name: 'a', image: 'nginx:1' },
    { name: 'b', image: 'redis:6' },
  ]);
  const live = stored(threeWayMerge(undefined, v1, stored(v1)));
  // Defaults filled in by the server.
  for (const c of containersOf(live)) c.imagePullPolicy = 'IfNotPresent';
  const out = apply(
    deployment([
      { name: 'a', image: 'nginx:1' },
      { name: 'b', image: 'redis:7' },
    ]),
    live,
  );
  t.deepEqual(containersOf(out), [
    { name: 'a', image: 'nginx:1', imagePullPolicy: 'IfNotPresent' },
    { name: 'b', image: 'redis:7', imagePullPolicy: 'IfNotPresent' },
  ]);
});

test('reordering containers follows the manifest; live-only items go last', (t) => {
  const v1 = deployment([
    { name: 'a', image: 'i:a' },
    { name: 'b', image: 'i:b' },
  ]);
  const live = stored(threeWayMerge(undefined, v1, stored(v1)));
  containersOf(live).push({ name: 'sidecar', image: 'i:s' }); // injected by someone else
  item(containersOf(live), 0).imagePullPolicy = 'Always';
  const out = apply(
    deployment([
      { name: 'b', image: 'i:b' },
      { name: 'a', image: 'i:a' },
    ]),
    live,
  );
  t.deepEqual(
    containersOf(out).map((c) => c.name),
    ['b', 'a', 'sidecar'],
  );
  t.is(containersOf(out)[1]?.imagePullPolicy, 'Always');
});

test('removing a container removes it; never-applied ones stay', (t) => {
  const v1 = deployment([
    { name: 'a', image: 'i:a' },
    { name: 'b', image: 'i:b' },
  ]);
  const live = stored(threeWayMerge(undefined, v1, stored(v1)));
  containersOf(live).push({ name: 'sidecar', image: 'i:s' });
  const out = apply(deployment([{ name: 'a', image: 'i:a' }]), live);
  t.deepEqual(
    containersOf(out).map((c) => c.name),
    ['a', 'sidecar'],
  );
});

test('a field set to null is removed', (t) => {
  const v1 = deployment([{ name: 'a', image: 'i:a' }]);
  const live = stored(threeWayMerge(undefined, v1, stored(v1)));
  (live.spec as JsonObject).paused = true; // set by someone else, never applied
  const next = deployment([{ name: 'a', image: 'i:a', command: null }]);
  (next.spec as JsonObject).replicas = null;
  (next.spec as JsonObject).paused = null;
  const out = apply(next, live);
  t.false('replicas' in (out.spec as JsonObject));
  t.false('paused' in (out.spec as JsonObject));
  t.false('command' in (containersOf(out)[0] as JsonObject));
  t.deepEqual(out.status, { replicas: 2, readyReplicas: 2 });
});

test('applying the same manifest twice is idempotent', (t) => {
  const manifest = deployment([
    { name: 'a', image: 'i:a', env: [{ name: 'X', value: '1' }], ports: [{ containerPort: 80 }] },
    { name: 'b', image: 'i:b' },
  ]);
  const live = stored(manifest);
  containersOf(live).push({ name: 'sidecar', image: 'i:s' });
  const once = threeWayMerge(undefined, manifest, live);
  const twice = apply(manifest, once);
  const thrice = apply(structuredClone(manifest), twice);
  t.true(jsonEqual(once, twice));
  t.true(jsonEqual(twice, thrice));
});

test('service ports merge by port; container ports by containerPort; volumeMounts by mountPath', (t) => {
  const svc = (ports: JsonValue[]): JsonObject => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 's' },
    spec: { selector: { app: 'web' }, ports },
  });
  const v1 = svc([
    { port: 80, targetPort: 8080 },
    { port: 443, targetPort: 8443 },
  ]);
  const live = threeWayMerge(undefined, v1, v1);
  Object.assign(live.spec as JsonObject, { clusterIP: '10.96.0.10' });
  for (const p of at(live, 'spec', 'ports') as JsonObject[]) p.protocol = 'TCP';
  const out = apply(svc([{ port: 80, targetPort: 9090 }]), live);
  t.deepEqual(at(out, 'spec', 'ports'), [{ port: 80, targetPort: 9090, protocol: 'TCP' }]);
  t.is(at(out, 'spec', 'clusterIP'), '10.96.0.10');

  const pod = (c: JsonObject): JsonObject => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p' },
    spec: { containers: [c], volumes: [{ name: 'data', emptyDir: {} }] },
  });
  const p1 = pod({
    name: 'a',
    ports: [{ containerPort: 80, name: 'http' }],
    volumeMounts: [{ mountPath: '/data', name: 'data' }],
  });
  const livePod = threeWayMerge(undefined, p1, p1);
  const c0 = at(livePod, 'spec', 'containers', 0) as JsonObject;
  item(c0.ports, 0).protocol = 'TCP';
  (c0.volumeMounts as JsonObject[]).push({ mountPath: '/var/run/secrets', name: 'token' });
  const outPod = apply(
    pod({
      name: 'a',
      ports: [{ containerPort: 80, name: 'web' }],
      volumeMounts: [{ mountPath: '/data', name: 'data', readOnly: true }],
    }),
    livePod,
  );
  const oc = at(outPod, 'spec', 'containers', 0) as JsonObject;
  t.deepEqual(oc.ports, [{ containerPort: 80, name: 'web', protocol: 'TCP' }]);
  t.deepEqual(oc.volumeMounts, [
    { mountPath: '/data', name: 'data', readOnly: true },
    { mountPath: '/var/run/secrets', name: 'token' },
  ]);
});

test('tolerations and other unkeyed lists replace as a whole', (t) => {
  const pod = (tolerations: JsonValue[], args: JsonValue[]): JsonObject => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p' },
    spec: { tolerations, containers: [{ name: 'a', image: 'i', args }] },
  });
  const v1 = pod([{ key: 'a', operator: 'Exists' }], ['x', 'y']);
  const live = threeWayMerge(undefined, v1, v1);
  (at(live, 'spec', 'tolerations') as JsonValue[]).push({
    key: 'node.kubernetes.io/not-ready',
    operator: 'Exists',
  });
  const out = apply(pod([{ key: 'b', operator: 'Exists' }], ['z']), live);
  t.deepEqual(at(out, 'spec', 'tolerations'), [{ key: 'b', operator: 'Exists' }]);
  t.deepEqual(at(out, 'spec', 'containers', 0, 'args'), ['z']);
});

test('ports of a non-Service spec.ports list replace (the Service rule is per kind)', (t) => {
  const o = (ports: JsonValue[]): JsonObject => ({
    apiVersion: 'x/v1',
    kind: 'Other',
    metadata: { name: 'o' },
    spec: { ports },
  });
  const live = threeWayMerge(undefined, o([{ port: 1 }]), o([{ port: 1, extra: true }, { port: 2 }]));
  t.deepEqual(at(live, 'spec', 'ports'), [{ port: 1 }]);
  t.true(MERGE_KEYS.some((r) => r.key === 'port'));
});

test('type changes: applied wins', (t) => {
  const live: JsonObject = {
    kind: 'X',
    metadata: { name: 'x' },
    spec: { a: { deep: 1 }, b: 'str', c: [1, 2], d: { k: 1 } },
  };
  const out = threeWayMerge(
    undefined,
    { kind: 'X', metadata: { name: 'x' }, spec: { a: 'now a string', b: { x: 1 }, c: { y: 2 }, d: [3] } },
    live,
  );
  t.deepEqual(out.spec, { a: 'now a string', b: { x: 1 }, c: { y: 2 }, d: [3] });
  // A keyed list whose live value is not a list, or malformed items, is replaced.
  const pod = threeWayMerge(
    undefined,
    { kind: 'Pod', metadata: {}, spec: { containers: [{ name: 'a' }] } },
    { kind: 'Pod', metadata: {}, spec: { containers: 'oops' } },
  );
  t.deepEqual(at(pod, 'spec', 'containers'), [{ name: 'a' }]);
  const dup = threeWayMerge(
    undefined,
    { kind: 'Pod', metadata: {}, spec: { containers: [{ name: 'a' }, { name: 'a', image: 'x' }] } },
    { kind: 'Pod', metadata: {}, spec: { containers: [{ name: 'b' }] } },
  );
  t.deepEqual(at(dup, 'spec', 'containers'), [{ name: 'a' }, { name: 'a', image: 'x' }]);
});

test('__proto__ keys are data and never pollute prototypes', (t) => {
  const applied = JSON.parse(
    '{"kind":"ConfigMap","metadata":{"name":"c","labels":{"__proto__":"x"}},"data":{"__proto__":{"polluted":"yes"},"constructor":"c"}}',
  ) as JsonObject;
  const live = JSON.parse(
    '{"kind":"ConfigMap","metadata":{"name":"c","__proto__":{"polluted":"live"}}}',
  ) as JsonObject;
  const last = JSON.parse('{"metadata":{"__proto__":{"polluted":"last"}}}') as JsonObject;
  const out = threeWayMerge(last, applied, live);
  t.is(({} as Record<string, unknown>).polluted, undefined);
  t.is(Object.getPrototypeOf(out.data), Object.prototype);
  t.true(Object.hasOwn(out.data as object, '__proto__'));
  t.deepEqual(Object.getOwnPropertyDescriptor(out.data, '__proto__')?.value, { polluted: 'yes' });
  t.is((out.data as JsonObject).polluted, undefined);
  t.true(Object.hasOwn(at(out, 'metadata', 'labels') as object, '__proto__'));
  // metadata.__proto__ was in last and not in applied: removed, like any other field.
  t.false(Object.hasOwn(out.metadata as object, '__proto__'));
  // The result survives a JSON round trip unchanged.
  t.true(jsonEqual(JSON.parse(JSON.stringify(out)), out));
});

test('inputs are never mutated', (t) => {
  const last = deployment([{ name: 'a', image: 'i:1', env: [{ name: 'X', value: '1' }] }], {
    app: 'web',
    old: 'x',
  });
  const applied = deployment([{ name: 'a', image: 'i:2', command: null }]);
  const live = stored(last);
  const copies = structuredClone([last, applied, live]);
  const out = threeWayMerge(last, applied, live);
  t.deepEqual([last, applied, live], copies);
  // And the output shares nothing with them.
  (out.status as JsonObject).replicas = 99;
  item(containersOf(out), 0).image = 'changed';
  t.deepEqual([last, applied, live], copies);
});

test('the last-applied annotation holds applied without itself', (t) => {
  const manifest = deployment([{ name: 'a', image: 'i' }]);
  const withStale = structuredClone(manifest);
  (withStale.metadata as JsonObject).annotations = { [LAST_APPLIED]: '{"stale":true}' };
  const out = threeWayMerge(undefined, withStale, {});
  t.deepEqual(lastAppliedOf(out as unknown as ApiObject), manifest);
  const text = at(out, 'metadata', 'annotations', LAST_APPLIED) as string;
  t.false(text.includes('stale'));
});

test('lastAppliedOf: absent, unparseable or non-object is undefined', (t) => {
  const obj = (annotations?: Record<string, string>): ApiObject => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: annotations === undefined ? { name: 'c' } : { name: 'c', annotations },
  });
  t.is(lastAppliedOf(obj()), undefined);
  t.is(lastAppliedOf(obj({})), undefined);
  t.is(lastAppliedOf(obj({ [LAST_APPLIED]: '{not json' })), undefined);
  t.is(lastAppliedOf(obj({ [LAST_APPLIED]: '[1,2]' })), undefined);
  t.is(lastAppliedOf(obj({ [LAST_APPLIED]: 'null' })), undefined);
  t.deepEqual(lastAppliedOf(obj({ [LAST_APPLIED]: '{"a":1}' })), { a: 1 });
});

test('jsonEqual ignores key order but not list order', (t) => {
  t.true(jsonEqual({ a: 1, b: { c: [1, { d: 2, e: 3 }] } }, { b: { c: [1, { e: 3, d: 2 }] }, a: 1 }));
  t.false(jsonEqual([1, 2], [2, 1]));
  t.false(jsonEqual({ a: 1 }, { a: 1, b: 2 }));
  t.false(jsonEqual({ a: 1, b: 2 }, { a: 1, c: 2 }));
  t.false(jsonEqual({ a: [] }, { a: {} }));
  t.false(jsonEqual(null, {}));
  t.false(jsonEqual('1', 1));
  t.true(jsonEqual({ a: undefined }, {}));
  t.true(jsonEqual(null, null));
  t.false(jsonEqual({}, JSON.parse('{"__proto__":{}}')));
});
