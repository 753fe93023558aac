// The scheduler's filters, each with Kubernetes' reason string, and the summary message.
import test from 'ava';
import {
  createScheduler,
  type ScheduleResult,
  type SchedulingNode,
  type SchedulingPod,
  Snapshot,
  summarize,
} from '../../pkg/scheduler/index.js';

type NodeOpts = {
  cpu?: string;
  memory?: string;
  pods?: string;
  labels?: Record<string, string>;
  ready?: boolean;
  spec?: SchedulingNode['spec'];
};
const node = (name: string, o: NodeOpts = {}): SchedulingNode => ({
  metadata: { name, labels: { 'kubernetes.io/hostname': name, ...o.labels } },
  spec: o.spec ?? {},
  status: {
    allocatable: { cpu: o.cpu ?? '4', memory: o.memory ?? '8Gi', pods: o.pods ?? '110' },
    conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
  },
});
const pod = (name: string, spec: Partial<SchedulingPod['spec']> = {}, labels: Record<string, string> = {}) =>
  ({
    metadata: { name, namespace: 'default', uid: `uid-${name}`, labels },
    spec: { containers: [{ name: 'c', image: 'x' }], ...spec },
  }) as SchedulingPod;
const requests = (cpu: string, memory: string) => ({
  containers: [{ name: 'c', image: 'x', resources: { requests: { cpu, memory } } }],
});
const snap = (...nodes: SchedulingNode[]) => {
  const s = new Snapshot();
  for (const n of nodes) s.addNode(n);
  return s;
};
const run = (p: SchedulingPod, s: Snapshot): ScheduleResult => createScheduler({ seed: 1 }).schedule(p, s);

test('not ready and cordoned nodes are filtered; a toleration of the unschedulable taint passes', (t) => {
  const s = snap(node('a', { ready: false }), node('b', { spec: { unschedulable: true } }));
  const r = run(pod('p'), s);
  t.deepEqual(r.filtered, { a: ['node(s) were not ready'], b: ['node(s) were unschedulable'] });
  const tolerant = pod('q', {
    tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists' }],
  });
  t.is(run(tolerant, s).node, 'b');
});

test('resources: requests must fit allocatable minus what bound pods request', (t) => {
  const s = snap(node('a', { cpu: '1', memory: '1Gi', pods: '2' }));
  t.is(run(pod('p', requests('600m', '512Mi')), s).node, 'a');
  s.addPod({
    ...pod('bound', requests('600m', '600Mi')),
    spec: { ...requests('600m', '600Mi'), nodeName: 'a' },
  });
  t.deepEqual(run(pod('p', requests('600m', '512Mi')), s).filtered.a, [
    'Insufficient cpu',
    'Insufficient memory',
  ]);
  s.addPod({ ...pod('tiny'), spec: { containers: [{ name: 'c', image: 'x' }], nodeName: 'a' } });
  t.deepEqual(run(pod('p'), s).filtered.a, ['Too many pods']);
  // A finished pod frees what it requested.
  s.addPod({
    ...pod('bound'),
    spec: { ...requests('600m', '600Mi'), nodeName: 'a' },
    status: { phase: 'Failed' },
  });
  s.removePod(pod('tiny'));
  t.is(run(pod('p', requests('600m', '512Mi')), s).node, 'a');
});

test('resources: containers are summed, init containers count as their maximum', (t) => {
  const s = snap(node('a', { cpu: '2' }));
  const c = (cpu: string) => ({ name: 'c', image: 'x', resources: { requests: { cpu } } });
  t.is(run(pod('p', { containers: [c('1'), c('1')] }), s).node, 'a');
  t.deepEqual(run(pod('p', { containers: [c('1'), c('1001m')] }), s).filtered.a, ['Insufficient cpu']);
  t.is(run(pod('p', { containers: [c('100m')], initContainers: [c('2'), c('1')] }), s).node, 'a');
  t.deepEqual(run(pod('p', { containers: [c('100m')], initContainers: [c('2100m')] }), s).filtered.a, [
    'Insufficient cpu',
  ]);
});

test('nodeSelector and required node affinity (terms ORed, expressions ANDed, matchFields)', (t) => {
  const s = snap(
    node('a', { labels: { zone: 'z1', disk: 'ssd', gen: '3' } }),
    node('b', { labels: { zone: 'z2', gen: '5' } }),
  );
  const reason = "node(s) didn't match Pod's node affinity/selector";
  const r = run(pod('p', { nodeSelector: { zone: 'z1' } }), s);
  t.is(r.node, 'a');
  t.deepEqual(r.filtered, { b: [reason] });
  const affinity = (...terms: object[]) => ({
    affinity: {
      nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } },
    },
  });
  const only = (spec: object) => {
    const x = run(pod('p', spec as SchedulingPod['spec']), s);
    return x.node ?? x.unschedulable;
  };
  t.is(only(affinity({ matchExpressions: [{ key: 'gen', operator: 'Gt', values: ['4'] }] })), 'b');
  t.is(only(affinity({ matchExpressions: [{ key: 'gen', operator: 'Lt', values: ['4'] }] })), 'a');
  t.is(only(affinity({ matchExpressions: [{ key: 'disk', operator: 'DoesNotExist' }] })), 'b');
  t.is(only(affinity({ matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['z1'] }] })), 'b');
  t.is(
    only(
      affinity({
        matchExpressions: [
          { key: 'disk', operator: 'Exists' },
          { key: 'zone', operator: 'In', values: ['z2'] },
        ],
      }),
    ),
    `0/2 nodes are available: 2 ${reason}.`,
  );
  t.is(only(affinity({ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['b'] }] })), 'b');
  // An empty term matches nothing; ORed with one that matches, the pod fits.
  t.is(only(affinity({})), `0/2 nodes are available: 2 ${reason}.`);
  t.is(only(affinity({}, { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] })), 'a');
});

test('taints: NoSchedule and NoExecute must be tolerated, PreferNoSchedule does not filter', (t) => {
  const s = snap(
    node('a', { spec: { taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] } }),
    node('b', { spec: { taints: [{ key: 'gone', effect: 'NoExecute' }] } }),
    node('c', { spec: { taints: [{ key: 'soft', value: 'x', effect: 'PreferNoSchedule' }] } }),
  );
  const r = run(pod('p'), s);
  t.is(r.node, 'c');
  t.deepEqual(r.filtered, {
    a: ['node(s) had untolerated taint {dedicated: db}'],
    b: ['node(s) had untolerated taint {gone: }'],
  });
  const feasible = (tolerations: SchedulingPod['spec']['tolerations']) =>
    run(pod('p', { tolerations }), s)
      .scores.map((x) => x.node)
      .sort();
  t.deepEqual(feasible([{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' }]), [
    'a',
    'c',
  ]);
  t.deepEqual(feasible([{ key: 'dedicated', value: 'web', effect: 'NoSchedule' }]), ['c']);
  t.deepEqual(feasible([{ key: 'dedicated', operator: 'Exists' }]), ['a', 'c']);
  t.deepEqual(feasible([{ key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }]), ['c']);
  t.deepEqual(feasible([{ operator: 'Exists' }]), ['a', 'b', 'c']);
});

test('host ports: same port and protocol conflict on a shared or wildcard address', (t) => {
  const s = snap(node('a'));
  const ports = (hostPort: number, protocol?: 'TCP' | 'UDP', hostIP?: string) => ({
    containers: [{ name: 'c', image: 'x', ports: [{ containerPort: 80, hostPort, protocol, hostIP }] }],
  });
  s.addPod({ ...pod('web'), spec: { ...ports(8080, 'TCP', '10.0.0.1'), nodeName: 'a' } });
  const reason = "node(s) didn't have free ports for the requested pod ports";
  t.deepEqual(run(pod('p', ports(8080)), s).filtered.a, [reason]);
  t.deepEqual(run(pod('p', ports(8080, 'TCP', '10.0.0.1')), s).filtered.a, [reason]);
  t.is(run(pod('p', ports(8080, 'TCP', '10.0.0.2')), s).node, 'a');
  t.is(run(pod('p', ports(8080, 'UDP')), s).node, 'a');
  t.is(run(pod('p', ports(8081)), s).node, 'a');
});

const antiAffinity = (app: string) => ({
  affinity: {
    podAntiAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { labelSelector: { matchLabels: { app } }, topologyKey: 'kubernetes.io/hostname' },
      ],
    },
  },
});

test("pod anti-affinity: the new pod's own terms", (t) => {
  const s = snap(node('a'), node('b'));
  s.addPod({ ...pod('db-0', { nodeName: 'a' }, { app: 'db' }) });
  const r = run(pod('db-1', antiAffinity('db'), { app: 'db' }), s);
  t.is(r.node, 'b');
  t.deepEqual(r.filtered, { a: ["node(s) didn't match pod anti-affinity rules"] });
  // Other namespaces do not count unless the term names them.
  const s2 = snap(node('a'));
  s2.addPod({
    ...pod('x', { nodeName: 'a' }, { app: 'db' }),
    metadata: { name: 'x', namespace: 'other', labels: { app: 'db' } },
  });
  t.is(run(pod('db-1', antiAffinity('db'), { app: 'db' }), s2).node, 'a');
});

test("pod anti-affinity: an existing pod's terms keep matching pods away (symmetry)", (t) => {
  const s = snap(node('a'), node('b'));
  s.addPod(pod('guard', { ...antiAffinity('noisy'), nodeName: 'a' }, { app: 'guard' }));
  const r = run(pod('n', {}, { app: 'noisy' }), s);
  t.is(r.node, 'b');
  t.deepEqual(r.filtered, { a: ["node(s) didn't satisfy existing pods anti-affinity rules"] });
  t.deepEqual(run(pod('q', {}, { app: 'quiet' }), s).filtered, {});
  s.removePod(pod('guard'));
  t.deepEqual(run(pod('n', {}, { app: 'noisy' }), s).filtered, {});
});

test('summary: counts grouped by reason, most first, then by text', (t) => {
  const s = snap(
    node('a', { memory: '1Gi' }),
    node('b', { memory: '1Gi' }),
    node('c', { spec: { taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] } }),
  );
  const r = run(pod('p', requests('100m', '2Gi')), s);
  t.is(
    r.unschedulable,
    '0/3 nodes are available: 2 Insufficient memory, 1 node(s) had untolerated taint {dedicated: db}.',
  );
  t.deepEqual(r.scores, []);
  t.is(
    summarize(12, {
      ...Object.fromEntries([...Array(10)].map((_, i) => [`n${i}`, ['Too many pods']])),
      x: ['b'],
      y: ['a'],
    }),
    '0/12 nodes are available: 10 Too many pods, 1 a, 1 b.',
  );
  t.is(run(pod('p'), new Snapshot()).unschedulable, 'no nodes available to schedule pods');
});
