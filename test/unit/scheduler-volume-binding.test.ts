// The VolumeBinding filter: claims decide where a pod may run, with Kubernetes' reasons.
import test from 'ava';
import {
  createScheduler,
  type ScheduleResult,
  type SchedulingClaim,
  type SchedulingNode,
  type SchedulingPod,
  type SchedulingVolume,
  SELECTED_NODE_ANNOTATION,
  Snapshot,
} from '../../pkg/scheduler/index.js';

const node = (name: string, ready = true): SchedulingNode => ({
  metadata: { name, labels: { 'kubernetes.io/hostname': name } },
  spec: {},
  status: {
    allocatable: { cpu: '4', memory: '8Gi', pods: '110' },
    conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
  },
});
const pod = (name: string, ...claims: string[]): SchedulingPod => ({
  metadata: { name, namespace: 'default', uid: `uid-${name}` },
  spec: {
    containers: [{ name: 'c', image: 'x' }],
    volumes: claims.map((c) => ({ name: `v-${c}`, persistentVolumeClaim: { claimName: c } })),
  },
});
const claim = (
  name: string,
  o: { cls?: string; volume?: string; selected?: string } = {},
): SchedulingClaim => ({
  metadata: {
    name,
    namespace: 'default',
    ...(o.selected ? { annotations: { [SELECTED_NODE_ANNOTATION]: o.selected } } : {}),
  },
  spec: {
    ...(o.cls !== undefined ? { storageClassName: o.cls } : {}),
    ...(o.volume ? { volumeName: o.volume } : {}),
  },
  status: { phase: o.volume ? 'Bound' : 'Pending' },
});
const localPv = (name: string, onNode: string): SchedulingVolume => ({
  metadata: { name },
  spec: {
    nodeAffinity: {
      required: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [onNode] }] },
        ],
      },
    },
  },
});
const snap = (): Snapshot => {
  const s = new Snapshot();
  for (const n of ['a', 'b', 'c']) s.addNode(node(n));
  s.storage.setClass({
    metadata: { name: 'local-path', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: 'berth.io/local-path',
    volumeBindingMode: 'WaitForFirstConsumer',
  });
  s.storage.setClass({ metadata: { name: 'fast' }, provisioner: 'x', volumeBindingMode: 'Immediate' });
  return s;
};
const run = (p: SchedulingPod, s: Snapshot): ScheduleResult => createScheduler({ seed: 1 }).schedule(p, s);

test('a missing claim: no node fits, said once like a Kubernetes PreFilter', (t) => {
  const r = run(pod('p', 'data'), snap());
  t.is(r.unschedulable, '0/3 nodes are available: persistentvolumeclaim "data" not found.');
  t.deepEqual(r.filtered.a, ['persistentvolumeclaim "data" not found']);
});

test('a bound claim: only the nodes its volume is on', (t) => {
  const s = snap();
  s.storage.setClaim(claim('data', { volume: 'pv1' }));
  s.storage.setVolume(localPv('pv1', 'b'));
  const r = run(pod('p', 'data'), s);
  t.is(r.node, 'b');
  t.deepEqual(r.filtered, {
    a: ['node(s) had volume node affinity conflict'],
    c: ['node(s) had volume node affinity conflict'],
  });
  t.is(r.claimsToSelect, undefined);
});

test('the conflict counts with the other reasons in the summary', (t) => {
  const s = new Snapshot();
  s.addNode(node('a'));
  s.addNode(node('b', false));
  s.addNode(node('c'));
  s.storage.setClaim(claim('data', { volume: 'pv1' }));
  s.storage.setVolume(localPv('pv1', 'b'));
  t.is(
    run(pod('p', 'data'), s).unschedulable,
    '0/3 nodes are available: 2 node(s) had volume node affinity conflict, 1 node(s) were not ready.',
  );
});

test('a bound claim whose volume is not known: refused', (t) => {
  const s = snap();
  s.storage.setClaim(claim('data', { volume: 'pv9' }));
  t.is(run(pod('p', 'data'), s).unschedulable, '0/3 nodes are available: persistentvolume "pv9" not found.');
});

test('a volume without node affinity fits every node', (t) => {
  const s = snap();
  s.storage.setClaim(claim('data', { volume: 'pv1' }));
  s.storage.setVolume({ metadata: { name: 'pv1' }, spec: {} });
  t.truthy(run(pod('p', 'data'), s).node);
});

test('an unbound WaitForFirstConsumer claim (default class): any node, and the claim is to be marked', (t) => {
  const s = snap();
  s.storage.setClaim(claim('data'));
  const r = run(pod('p', 'data'), s);
  t.truthy(r.node);
  t.deepEqual(r.filtered, {});
  t.deepEqual(r.claimsToSelect, ['default/data']);
});

test('an unbound claim already given a node: only that node', (t) => {
  const s = snap();
  s.storage.setClaim(claim('data', { cls: 'local-path', selected: 'c' }));
  const r = run(pod('p', 'data'), s);
  t.is(r.node, 'c');
  t.deepEqual(r.filtered.a, ["node(s) didn't find available persistent volumes to bind"]);
  t.is(r.claimsToSelect, undefined);
});

test('an unbound Immediate claim, or one without a class: refused until the binder binds it', (t) => {
  const s = snap();
  s.storage.setClaim(claim('fast-data', { cls: 'fast' }));
  s.storage.setClaim(claim('no-class', { cls: '' }));
  for (const c of ['fast-data', 'no-class'])
    t.is(
      run(pod('p', c), s).unschedulable,
      '0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.',
    );
});

test('an unknown class is named', (t) => {
  const s = snap();
  s.storage.setClaim(claim('data', { cls: 'gold' }));
  t.is(
    run(pod('p', 'data'), s).unschedulable,
    '0/3 nodes are available: storageclass.storage.k8s.io "gold" not found.',
  );
});

test('a claim being deleted is refused', (t) => {
  const s = snap();
  const c = claim('data', { volume: 'pv1' });
  c.metadata.deletionTimestamp = '2026-01-01T00:00:00Z';
  s.storage.setClaim(c);
  s.storage.setVolume(localPv('pv1', 'a'));
  t.is(
    run(pod('p', 'data'), s).unschedulable,
    '0/3 nodes are available: persistentvolumeclaim "data" is being deleted.',
  );
});

test('several claims: every bound volume must be on the node', (t) => {
  const s = snap();
  s.storage.setClaim(claim('one', { volume: 'pv1' }));
  s.storage.setClaim(claim('two', { volume: 'pv2' }));
  s.storage.setClaim(claim('new'));
  s.storage.setVolume(localPv('pv1', 'a'));
  s.storage.setVolume(localPv('pv2', 'b'));
  t.is(
    run(pod('p', 'one', 'two', 'new'), s).unschedulable,
    '0/3 nodes are available: 3 node(s) had volume node affinity conflict.',
  );
  s.storage.setVolume(localPv('pv2', 'a'));
  const r = run(pod('p', 'one', 'two', 'new'), s);
  t.is(r.node, 'a');
  t.deepEqual(r.claimsToSelect, ['default/new']);
});

test('claims of other namespaces do not count', (t) => {
  const s = snap();
  s.storage.setClaim({ ...claim('data'), metadata: { name: 'data', namespace: 'other' } });
  t.regex(run(pod('p', 'data'), s).unschedulable ?? '', /persistentvolumeclaim "data" not found/);
});

test('removing a claim from the snapshot refuses the pod again', (t) => {
  const s = snap();
  const c = claim('data');
  s.storage.setClaim(c);
  t.truthy(run(pod('p', 'data'), s).node);
  s.storage.removeClaim(c);
  t.truthy(run(pod('p', 'data'), s).unschedulable);
});
