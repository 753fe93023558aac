import test from 'ava';
import type { Container, Pod } from '../../pkg/agent/container-spec.js';
import {
  computePodStatus,
  type JsonMap,
  type ObservedContainer,
  type ObservedPod,
  type ProbeStatus,
  qosClass,
  statusEqual,
} from '../../pkg/agent/pod-status.js';
import type { ContainerInfo } from '../../pkg/agent/runtime.js';
import { validateObject } from '../../pkg/api/validation.js';

const T0 = Date.parse('2026-11-26T13:00:00Z');

const mkPod = (containers: Container[], extra: Partial<Pod['spec']> = {}, status?: JsonMap): Pod => ({
  metadata: { name: 'web', namespace: 'default', uid: 'u1' },
  spec: { containers, nodeName: 'node-a', ...extra },
  status,
});

const c = (name: string, more: Partial<Container> = {}): Container => ({ name, image: 'busybox:1', ...more });

const info = (
  id: string,
  state: ContainerInfo['state'],
  more: Partial<ContainerInfo> = {},
): ContainerInfo => ({
  id,
  name: `berth_x_${id}`,
  image: 'busybox:1',
  imageId: 'sha256:abc',
  labels: {},
  state,
  startedAt: '2026-11-26T13:00:01.123456789Z',
  ...more,
});

const running = (id: string): ObservedContainer => ({ info: info(id, 'running'), restartCount: 0 });
const exited = (id: string, exitCode: number, restartCount = 0): ObservedContainer => ({
  info: info(id, 'exited', { exitCode, finishedAt: '2026-11-26T13:00:09.5Z' }),
  restartCount,
});

const observed = (containers: Record<string, ObservedContainer>): ObservedPod => ({
  containers,
  hostIP: '127.0.0.2',
  podIP: '172.17.0.9',
  ports: [{ containerPort: 80, protocol: 'TCP', hostIp: '127.0.0.2', hostPort: 40000 }],
});

const probes = (m: Record<string, ProbeStatus> = {}) => new Map(Object.entries(m));

type Status = {
  phase: string;
  conditions: {
    type: string;
    status: string;
    reason?: string;
    message?: string;
    lastTransitionTime: string;
  }[];
  containerStatuses: JsonMap[];
  [k: string]: unknown;
};
const compute = (pod: Pod, o: ObservedPod, p = probes(), now = T0) =>
  computePodStatus(pod, o, p, now) as Status;
const cond = (s: Status, type: string) => s.conditions.find((x) => x.type === type);

test('a running, ready pod: the full status, valid against the PodStatus schema', (t) => {
  const pod = mkPod([c('app', { ports: [{ name: 'http', containerPort: 80, protocol: 'TCP' }] })]);
  const s = compute(pod, observed({ app: running('abc123') }));
  t.is(s.phase, 'Running');
  t.deepEqual(
    s.conditions.map((x) => [x.type, x.status]),
    [
      ['Initialized', 'True'],
      ['Ready', 'True'],
      ['ContainersReady', 'True'],
      ['PodScheduled', 'True'],
    ],
  );
  t.deepEqual(s.containerStatuses, [
    {
      name: 'app',
      state: { running: { startedAt: '2026-11-26T13:00:01Z' } },
      lastState: {},
      ready: true,
      restartCount: 0,
      image: 'busybox:1',
      imageID: 'sha256:abc',
      containerID: 'docker://abc123',
      started: true,
    },
  ]);
  t.is(s.hostIP, '127.0.0.2');
  t.is(s.podIP, '172.17.0.9');
  t.deepEqual(s.podIPs, [{ ip: '172.17.0.9' }]);
  t.is(s.startTime, '2026-11-26T13:00:00Z');
  t.is(s.qosClass, 'BestEffort');
  t.deepEqual(s.endpoints, [
    { name: 'http', containerPort: 80, protocol: 'TCP', hostIP: '127.0.0.2', hostPort: 40000 },
  ]);
  const manifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', namespace: 'default' },
    spec: pod.spec,
    status: s,
  };
  t.deepEqual(validateObject(manifest), []);
  t.deepEqual(
    validateObject({ ...manifest, status: { ...s, endpoints: [{ containerPort: 80, bogus: 1 }] } }).length,
    1,
  );
});

test('Pending while any container is waiting; reasons pass through', (t) => {
  const pod = mkPod([c('a'), c('b'), c('d')]);
  const s = compute(
    pod,
    observed({
      a: running('1'),
      b: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "x"' }, restartCount: 0 },
    }),
  );
  t.is(s.phase, 'Pending');
  t.deepEqual(s.containerStatuses[1]?.state, {
    waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "x"' },
  });
  t.deepEqual(s.containerStatuses[2]?.state, { waiting: { reason: 'ContainerCreating' } });
  t.false(s.containerStatuses[2]?.ready);
  t.is(s.containerStatuses[2]?.imageID, '');
  t.false('containerID' in (s.containerStatuses[2] ?? {}));
  t.deepEqual(cond(s, 'Ready'), {
    type: 'Ready',
    status: 'False',
    reason: 'ContainersNotReady',
    message: 'containers with unready status: [b d]',
    lastTransitionTime: '2026-11-26T13:00:00Z',
  });
});

test('CrashLoopBackOff: waiting with lastState terminated, and the pod is Running', (t) => {
  const pod = mkPod([c('app')]);
  const o = exited('dead1', 1, 3);
  o.waiting = { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container=app pod=web' };
  const s = compute(pod, observed({ app: o }));
  t.is(s.phase, 'Running');
  const cs = s.containerStatuses[0] ?? {};
  t.is(cs.restartCount, 3);
  t.deepEqual(cs.lastState, {
    terminated: {
      exitCode: 1,
      reason: 'Error',
      startedAt: '2026-11-26T13:00:01Z',
      finishedAt: '2026-11-26T13:00:09Z',
      containerID: 'docker://dead1',
    },
  });
  t.false(cs.ready);
  t.false(cs.started);
});

test('phase by restart policy once every container terminated (getPhase)', (t) => {
  const both = (a: number, b: number) => observed({ a: exited('1', a), b: exited('2', b) });
  const phase = (policy: 'Always' | 'OnFailure' | 'Never', o: ObservedPod) =>
    compute(mkPod([c('a'), c('b')], { restartPolicy: policy }), o).phase;
  t.is(phase('Never', both(0, 0)), 'Succeeded');
  t.is(phase('Never', both(0, 1)), 'Failed');
  t.is(phase('OnFailure', both(0, 0)), 'Succeeded');
  t.is(phase('OnFailure', both(0, 2)), 'Running', 'the failed one restarts');
  t.is(phase('Always', both(0, 0)), 'Running', 'restarting');
  t.is(phase('Never', observed({ a: exited('1', 0), b: running('2') })), 'Running');
  const s = compute(mkPod([c('a')], { restartPolicy: 'Never' }), observed({ a: exited('1', 0) }));
  t.deepEqual(s.containerStatuses[0]?.state, {
    terminated: {
      exitCode: 0,
      reason: 'Completed',
      startedAt: '2026-11-26T13:00:01Z',
      finishedAt: '2026-11-26T13:00:09Z',
      containerID: 'docker://1',
    },
  });
  t.is(cond(s, 'Ready')?.reason, 'PodCompleted');
});

test('a terminal phase stays terminal', (t) => {
  const pod = mkPod([c('a')], { restartPolicy: 'Never' }, { phase: 'Failed' });
  t.is(compute(pod, observed({ a: running('x') })).phase, 'Failed');
});

test('probe states: readiness and startup decide ready and started', (t) => {
  const pod = mkPod([
    c('r', { readinessProbe: { tcpSocket: { port: 80 } } }),
    c('s', { startupProbe: { tcpSocket: { port: 80 } } }),
  ]);
  const o = observed({ r: running('1'), s: running('2') });
  let s = compute(pod, o);
  t.deepEqual(
    s.containerStatuses.map((x) => [x.ready, x.started]),
    [
      [false, true],
      [false, false],
    ],
    'without probe results: not ready, and not started behind a startup probe',
  );
  s = compute(pod, o, probes({ r: { ready: true, started: true }, s: { ready: true, started: true } }));
  t.deepEqual(
    s.containerStatuses.map((x) => [x.ready, x.started]),
    [
      [true, true],
      [true, true],
    ],
  );
  t.is(cond(s, 'ContainersReady')?.status, 'True');
});

test('lastTransitionTime is kept while a condition keeps its status', (t) => {
  const pod = mkPod([c('a')]);
  const first = compute(pod, observed({ a: running('1') }));
  const later = compute({ ...pod, status: first }, observed({ a: running('1') }), probes(), T0 + 60_000);
  t.true(statusEqual(first, later), 'nothing changed: equal, no write needed');
  const notReady = compute(
    { ...pod, status: first },
    observed({ a: running('1') }),
    probes({ a: { ready: false, started: true } }),
    T0 + 120_000,
  );
  t.is(cond(notReady, 'Ready')?.lastTransitionTime, '2026-11-26T13:02:00Z');
  t.is(cond(notReady, 'PodScheduled')?.lastTransitionTime, '2026-11-26T13:00:00Z');
  t.is(notReady.startTime, '2026-11-26T13:00:00Z', 'startTime is kept');
  t.false(statusEqual(first, notReady));
});

test('init containers: Initialized and Pending until they all succeed', (t) => {
  const pod = mkPod([c('app')], { initContainers: [c('setup')] });
  let s = compute(pod, observed({ setup: running('i1') }));
  t.is(s.phase, 'Pending');
  t.is(cond(s, 'Initialized')?.status, 'False');
  t.is(cond(s, 'Initialized')?.message, 'containers with incomplete status: [setup]');
  s = compute(pod, observed({ setup: exited('i1', 0), app: running('a1') }));
  t.is(s.phase, 'Running');
  t.is(cond(s, 'Initialized')?.status, 'True');
  t.is((s.initContainerStatuses as JsonMap[]).length, 1);
  const never = mkPod([c('app')], { initContainers: [c('setup')], restartPolicy: 'Never' });
  t.is(compute(never, observed({ setup: exited('i1', 2) })).phase, 'Failed');
});

test('qosClass: Kubernetes rules', (t) => {
  t.is(qosClass([c('a')]), 'BestEffort');
  t.is(
    qosClass([c('a', { resources: { limits: { cpu: '1', memory: '1Gi' } } })]),
    'Guaranteed',
    'requests default to limits',
  );
  t.is(
    qosClass([
      c('a', {
        resources: { limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '1000m', memory: '1Gi' } },
      }),
    ]),
    'Guaranteed',
  );
  t.is(
    qosClass([c('a', { resources: { limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '500m' } } })]),
    'Burstable',
  );
  t.is(qosClass([c('a', { resources: { limits: { cpu: '1' } } })]), 'Burstable', 'no memory limit');
  t.is(qosClass([c('a', { resources: { requests: { memory: '1Gi' } } })]), 'Burstable');
  t.is(
    qosClass([c('a', { resources: { limits: { cpu: '1', memory: '1Gi' } } }), c('b')]),
    'Burstable',
    'one container without limits',
  );
  t.is(
    qosClass([c('a', { resources: { requests: { 'example.com/gpu': '1' } } })]),
    'BestEffort',
    'only cpu and memory count',
  );
});

test('statusEqual ignores key order only', (t) => {
  t.true(statusEqual({ a: 1, b: { c: [1, { d: 2, e: 3 }] } }, { b: { c: [1, { e: 3, d: 2 }] }, a: 1 }));
  t.false(statusEqual({ a: [1, 2] }, { a: [2, 1] }));
  t.false(statusEqual({ a: 1 }, { a: 1, b: 2 }));
  t.false(statusEqual({ a: null }, {}));
});
