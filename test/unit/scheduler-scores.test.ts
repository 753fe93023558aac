// The scheduler's scores, the seeded tie-break, and batches placed with assume().
import test from 'ava';
import {
  createScheduler,
  type NodeScore,
  type SchedulingNode,
  type SchedulingPod,
  Snapshot,
} from '../../pkg/scheduler/index.js';

const node = (
  name: string,
  o: { cpu?: string; memory?: string; labels?: Record<string, string>; spec?: SchedulingNode['spec'] } = {},
): SchedulingNode => ({
  metadata: { name, labels: { 'kubernetes.io/hostname': name, ...o.labels } },
  spec: o.spec ?? {},
  status: {
    allocatable: { cpu: o.cpu ?? '4', memory: o.memory ?? '8Gi', pods: '110' },
    conditions: [{ type: 'Ready', status: 'True' }],
  },
});
const pod = (name: string, spec: Partial<SchedulingPod['spec']> = {}, owner?: string): SchedulingPod => ({
  metadata: {
    name,
    namespace: 'default',
    labels: { app: owner ?? name },
    ownerReferences: owner
      ? [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: owner, uid: owner, controller: true }]
      : [],
  },
  spec: {
    containers: [{ name: 'c', image: 'x', resources: { requests: { cpu: '1', memory: '1Gi' } } }],
    ...spec,
  },
});
const snap = (...nodes: SchedulingNode[]) => {
  const s = new Snapshot();
  for (const n of nodes) s.addNode(n);
  return s;
};
const byNode = (scores: NodeScore[]) => Object.fromEntries(scores.map((s) => [s.node, s]));

test('least allocated: the emptier node after placement scores higher', (t) => {
  const s = snap(node('small', { cpu: '2', memory: '4Gi' }), node('big', { cpu: '8', memory: '16Gi' }));
  const r = createScheduler({ seed: 1 }).schedule(pod('p'), s);
  const sc = byNode(r.scores);
  t.is(sc.small?.leastAllocated, 62); // cpu 50, memory 75
  t.is(sc.big?.leastAllocated, 90); // cpu 87, memory 93
  t.is(r.node, 'big');
});

test("owner spread: fewer of the same owner's replicas on a node scores higher", (t) => {
  const s = snap(node('a'), node('b'));
  s.assume(pod('rs-0', {}, 'rs'), 'a');
  s.assume(pod('other', {}, 'other'), 'b');
  const r = createScheduler({ seed: 1 }).schedule(pod('rs-1', {}, 'rs'), s);
  const sc = byNode(r.scores);
  t.is(sc.a?.ownerSpread, 0);
  t.is(sc.b?.ownerSpread, 100);
  t.is(r.node, 'b');
});

test('preferred node affinity: matching weights, normalised to the best node', (t) => {
  const s = snap(
    node('a', { labels: { disk: 'ssd' } }),
    node('b', { labels: { zone: 'z1', disk: 'ssd' } }),
    node('c'),
  );
  const term = (weight: number, key: string, value: string) => ({
    weight,
    preference: { matchExpressions: [{ key, operator: 'In' as const, values: [value] }] },
  });
  const spec = {
    affinity: {
      nodeAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [term(20, 'disk', 'ssd'), term(60, 'zone', 'z1')],
      },
    },
  };
  const r = createScheduler({ seed: 1 }).schedule(pod('p', spec), s);
  const sc = byNode(r.scores);
  t.deepEqual([sc.a?.nodeAffinity, sc.b?.nodeAffinity, sc.c?.nodeAffinity], [25, 100, 0]);
  t.is(r.node, 'b');
});

test('PreferNoSchedule: fewer untolerated taints score higher; tolerated ones do not count', (t) => {
  const soft = (key: string) => ({ key, effect: 'PreferNoSchedule' as const });
  const s = snap(
    node('a', { spec: { taints: [soft('x'), soft('y')] } }),
    node('b', { spec: { taints: [soft('x')] } }),
    node('c'),
  );
  const sc = byNode(createScheduler({ seed: 1 }).schedule(pod('p'), s).scores);
  t.deepEqual([sc.a?.taintToleration, sc.b?.taintToleration, sc.c?.taintToleration], [0, 50, 100]);
  const tolerant = pod('q', {
    tolerations: [
      { key: 'x', operator: 'Exists' },
      { key: 'y', operator: 'Exists' },
    ],
  });
  const sc2 = byNode(createScheduler({ seed: 1 }).schedule(tolerant, s).scores);
  t.deepEqual([sc2.a?.taintToleration, sc2.b?.taintToleration, sc2.c?.taintToleration], [100, 100, 100]);
});

test('weights: the total is the weighted sum of the scores', (t) => {
  const s = snap(node('a'));
  const weights = { leastAllocated: 3, ownerSpread: 0, nodeAffinity: 0, taintToleration: 1 };
  const [sc] = createScheduler({ seed: 1, weights }).schedule(pod('p'), s).scores;
  t.is(sc?.total, 3 * (sc?.leastAllocated ?? 0) + 100);
});

const identical = (n: number) => snap(...[...Array(n)].map((_, i) => node(`n${i}`)));
const choices = (seed: number, order: 'up' | 'down' = 'up') => {
  const names = [...Array(20)].map((_, i) => `n${i}`);
  const s = snap(...(order === 'up' ? names : names.reverse()).map((n) => node(n)));
  const sched = createScheduler({ seed });
  // Each pod alone on an empty cluster: every node ties, only the seed decides.
  return [...Array(10)].map((_, i) => sched.schedule(pod(`p${i}`), s).node);
};

test('ties: the same seed gives the same choices, whatever order nodes were added in', (t) => {
  t.deepEqual(choices(7), choices(7));
  t.deepEqual(choices(7), choices(7, 'down'));
  t.notDeepEqual(choices(7), choices(8));
  t.true(new Set(choices(7)).size > 1, 'ties are spread, not always the first node');
});

test('a batch with assume(): replicas spread and nodes are never overcommitted', (t) => {
  const s = identical(4); // 4 cpu each: 16 pods of 1 cpu fit exactly
  const sched = createScheduler({ seed: 3 });
  const placed: Record<string, number> = {};
  const results = [...Array(20)].map((_, i) => {
    const p = pod(`rs-${i}`, {}, 'rs');
    const r = sched.schedule(p, s);
    if (r.node !== undefined) {
      s.assume(p, r.node);
      placed[r.node] = (placed[r.node] ?? 0) + 1;
    }
    return r;
  });
  t.deepEqual(placed, { n0: 4, n1: 4, n2: 4, n3: 4 });
  // Spread: after the first 4 pods, every node has one.
  t.is(new Set(results.slice(0, 4).map((r) => r.node)).size, 4);
  t.is(results[16]?.unschedulable, '0/4 nodes are available: 4 Insufficient cpu.');
  for (const n of s.nodes()) t.true(n.reqCpu <= n.allocCpu && n.reqMemory <= n.allocMemory);
});

test('a batch with anti-affinity: one replica per node, then unschedulable', (t) => {
  const s = identical(3);
  const sched = createScheduler({ seed: 1 });
  const spec = {
    affinity: {
      podAntiAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [
          { labelSelector: { matchLabels: { app: 'db' } }, topologyKey: 'kubernetes.io/hostname' },
        ],
      },
    },
  };
  const nodes = [...Array(4)].map((_, i) => {
    const p = pod(`db-${i}`, spec, 'db');
    const r = sched.schedule(p, s);
    if (r.node) s.assume(p, r.node);
    return r.node ?? r.unschedulable;
  });
  t.deepEqual(nodes.slice(0, 3).sort(), ['n0', 'n1', 'n2']);
  // Both sides' terms select it; Kubernetes checks (and reports) the existing pods' first.
  t.is(nodes[3], "0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules.");
});

test('snapshot: the bound pod replaces the assumed one; a removed node keeps its pods until it returns', (t) => {
  const s = identical(1);
  const p = pod('p');
  s.assume(p, 'n0');
  s.addPod({ ...p, spec: { ...p.spec, nodeName: 'n0' } });
  t.is(s.node('n0')?.reqCpu, 1000);
  s.removeNode('n0');
  t.is(s.nodes().length, 0);
  s.addNode(node('n0'));
  t.is(s.node('n0')?.pods.size, 1);
  s.removePod(p);
  t.is(s.node('n0')?.reqCpu, 0);
});
