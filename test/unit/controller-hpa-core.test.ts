// The autoscaler's arithmetic (pkg/controller/hpa-core.ts), number by number, against what
// Kubernetes' replica_calculator.go and horizontal.go compute for the same inputs.
import test from 'ava';
import { defaultScalingRulesOf } from '../../pkg/api/schema/autoscaling.js';
import {
  type Behavior,
  calculateReplicas,
  computeReplicasForMetrics,
  decide,
  emptyHistory,
  type HpaHistory,
  type HpaPod,
  MetricError,
  normalizeWithBehaviors,
  type PodSample,
  type ResourceMetric,
  recordScaleEvent,
  scaleDownLimit,
  scaleUpLimit,
} from '../../pkg/controller/hpa-core.js';

const NOW = 10_000_000;
const HOUR = 3_600_000;
const DEFAULT_BEHAVIOR = {
  scaleUp: defaultScalingRulesOf('up'),
  scaleDown: defaultScalingRulesOf('down'),
} as Behavior;

/** A Running pod, Ready for an hour, with one container requesting `cpu` millicores. */
function pod(name: string, o: Partial<HpaPod> & { cpu?: number | null; memory?: number } = {}): HpaPod {
  const requests: HpaPod['containers'][number]['requests'] = {};
  if (o.cpu !== null) requests.cpu = o.cpu ?? 500;
  if (o.memory !== undefined) requests.memory = o.memory;
  return {
    name,
    phase: o.phase ?? 'Running',
    deleting: o.deleting ?? false,
    startTimeMs: o.startTimeMs ?? NOW - HOUR,
    ready: o.ready ?? { status: 'True', lastTransitionMs: NOW - HOUR },
    containers: o.containers ?? [{ name: 'app', requests }],
  };
}

function samples(usage: Record<string, number>, o: { memory?: boolean; timestampMs?: number } = {}) {
  return new Map<string, PodSample>(
    Object.entries(usage).map(([name, u]) => [
      name,
      {
        timestampMs: o.timestampMs ?? NOW,
        windowMs: 1000,
        cpuMillicores: o.memory ? 0 : u,
        memoryBytes: o.memory ? u : 0,
      },
    ]),
  );
}

const cpu = (averageUtilization: number): ResourceMetric => ({
  name: 'cpu',
  target: { type: 'Utilization', averageUtilization },
});
const MI = 2 ** 20;

test('ratio × ready pods, rounded up: 3 pods at 80% of their request, target 50% → 5', (t) => {
  const pods = ['a', 'b', 'c'].map((n) => pod(n));
  const p = calculateReplicas(cpu(50), 3, pods, samples({ a: 400, b: 400, c: 400 }), NOW);
  t.is(p.utilization, 80);
  t.is(p.averageValue, 400);
  t.is(p.replicas, 5); // ceil(1.6 × 3 = 4.8)
});

test('within the 10% tolerance nothing changes (54% against 50%); just outside it does', (t) => {
  const pods = ['a', 'b', 'c'].map((n) => pod(n));
  t.is(calculateReplicas(cpu(50), 3, pods, samples({ a: 270, b: 270, c: 270 }), NOW).replicas, 3);
  // 56% / 50% = 1.12: ceil(1.12 × 3) = 4.
  t.is(calculateReplicas(cpu(50), 3, pods, samples({ a: 280, b: 280, c: 280 }), NOW).replicas, 4);
  // 44% / 50% = 0.88: ceil(0.88 × 3) = 3; 30% → ceil(0.6 × 3) = 2.
  t.is(calculateReplicas(cpu(50), 3, pods, samples({ a: 150, b: 150, c: 150 }), NOW).replicas, 2);
});

test('utilization is rounded down to a whole percent before the ratio, as Kubernetes', (t) => {
  // 1099m of 2000m = 54.95% → 54%: 54/50 = 1.08, within tolerance.
  const pods = [pod('a', { cpu: 1000 }), pod('b', { cpu: 1000 })];
  const p = calculateReplicas(cpu(50), 2, pods, samples({ a: 550, b: 549 }), NOW);
  t.is(p.utilization, 54);
  t.is(p.replicas, 2);
});

test('missing pods count as 0 on a scale up', (t) => {
  // 3 of 4 measured at 80%: ratio 1.6. With d at 0: 1200/2000 = 60% → 1.2 → ceil(4.8) = 5.
  const pods = ['a', 'b', 'c', 'd'].map((n) => pod(n));
  const p = calculateReplicas(cpu(50), 4, pods, samples({ a: 400, b: 400, c: 400 }), NOW);
  t.is(p.utilization, 80);
  t.is(p.replicas, 5);
});

test('missing pods count as 100% of their request on a scale down', (t) => {
  // 3 of 4 at 20%: ratio 0.4 (would be ceil(1.2) = 2). With d at 100%: 800/2000 = 40% → 0.8 → 4.
  const pods = ['a', 'b', 'c', 'd'].map((n) => pod(n));
  t.is(calculateReplicas(cpu(50), 4, pods, samples({ a: 100, b: 100, c: 100 }), NOW).replicas, 4);
  // 6 pods, 3 at 10%, 3 missing: (150 + 1500) / 3000 = 55% → 1.1: the correction flips the
  // direction, so nothing changes.
  const six = ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => pod(n));
  t.is(calculateReplicas(cpu(50), 6, six, samples({ a: 50, b: 50, c: 50 }), NOW).replicas, 6);
});

test('unready pods are left out, and count as 0 on a scale up', (t) => {
  const notReady = { ready: { status: 'False', lastTransitionMs: NOW - HOUR + 1000 } };
  const pods = [pod('a'), pod('b'), pod('c', notReady), pod('d', { phase: 'Pending' })];
  // a, b at 100% (ratio 2); c, d at 0: 1000/2000 = 50% → 1.0: stays at 4.
  t.is(calculateReplicas(cpu(50), 4, pods, samples({ a: 500, b: 500, c: 900 }), NOW).replicas, 4);
  // a, b at 150% (ratio 3): (1500)/2000 = 75% → 1.5 → 6.
  t.is(calculateReplicas(cpu(50), 4, pods, samples({ a: 750, b: 750, c: 900 }), NOW).replicas, 6);
  // Scaling down, unready pods are just left out: a, b at 20% → ceil(0.4 × 2) = 1.
  t.is(calculateReplicas(cpu(50), 4, pods, samples({ a: 100, b: 100, c: 900 }), NOW).replicas, 1);
});

test('cpu of a pod in its first 5 minutes counts only after a full window since it became Ready', (t) => {
  const young = pod('b', {
    startTimeMs: NOW - 60_000,
    ready: { status: 'True', lastTransitionMs: NOW - 500 },
  });
  const pods = [pod('a'), young];
  // b's sample began before it was Ready (window 1 s, Ready 0.5 s ago): unready, left out.
  const p = calculateReplicas(cpu(50), 2, pods, samples({ a: 500, b: 1000 }), NOW);
  t.is(p.utilization, 100);
  t.is(p.replicas, 2); // ratio 2 with b at 0: 500/1000 = 50% → 1.0
  // Memory has no such rule.
  const mem: ResourceMetric = { name: 'memory', target: { type: 'AverageValue', averageValue: 100 * MI } };
  t.is(
    calculateReplicas(mem, 2, pods, samples({ a: 100 * MI, b: 300 * MI }, { memory: true }), NOW).replicas,
    4,
  );
});

test('deleted and failed pods are ignored', (t) => {
  const pods = [pod('a'), pod('b', { deleting: true }), pod('c', { phase: 'Failed' })];
  t.is(calculateReplicas(cpu(50), 3, pods, samples({ a: 500, b: 0, c: 0 }), NOW).replicas, 2);
});

test('utilization needs requests: a container without one is an error', (t) => {
  const pods = [pod('web-1', { cpu: null })];
  const err = t.throws(() => calculateReplicas(cpu(50), 1, pods, samples({ 'web-1': 100 }), NOW));
  t.true(err instanceof MetricError);
  t.is(err?.message, 'missing request for cpu in container app of Pod web-1');
  t.throws(() => calculateReplicas(cpu(50), 1, pods, new Map(), NOW), {
    message: 'no metrics returned from resource metrics API',
  });
});

test('AverageValue: the average per pod against the target (memory, 300Mi against 200Mi → 3 of 2)', (t) => {
  const metric: ResourceMetric = { name: 'memory', target: { type: 'AverageValue', averageValue: 200 * MI } };
  const pods = [pod('a', { cpu: null }), pod('b', { cpu: null })];
  const p = calculateReplicas(metric, 2, pods, samples({ a: 300 * MI, b: 300 * MI }, { memory: true }), NOW);
  t.is(p.utilization, undefined);
  t.is(p.averageValue, 300 * MI);
  t.is(p.replicas, 3);
});

test('several metrics: the largest proposal wins; an unreadable one stops only a scale down', (t) => {
  const pods = ['a', 'b'].map((n) => pod(n, { memory: 100 * MI }));
  const mem = (v: number): ResourceMetric => ({
    name: 'memory',
    target: { type: 'Utilization', averageUtilization: v },
  });
  const both = samples({ a: 500, b: 500 });
  for (const s of both.values()) s.memoryBytes = 50 * MI;
  const r = computeReplicasForMetrics([cpu(50), mem(50)], 2, pods, both, NOW);
  t.is(r.replicas, 4);
  t.is(r.metric, 'cpu resource utilization (percentage of request)');
  t.deepEqual(r.statuses, [
    { name: 'cpu', current: { averageUtilization: 100, averageValue: 500 } },
    { name: 'memory', current: { averageUtilization: 50, averageValue: 50 * MI } },
  ]);
  t.is(r.condition.reason, 'ValidMetricFound');

  const noRequests = ['a', 'b'].map((n) => pod(n, { cpu: null, memory: 100 * MI }));
  // cpu is unreadable; memory asks for a scale up: go ahead.
  const up = computeReplicasForMetrics([cpu(50), mem(25)], 2, noRequests, both, NOW);
  t.is(up.replicas, 4);
  // memory asks for a scale down: refuse, with the first error.
  const down = computeReplicasForMetrics([cpu(50), mem(100)], 2, noRequests, both, NOW);
  t.is(down.replicas, undefined);
  t.is(down.condition.status, 'False');
  t.is(down.condition.reason, 'FailedGetResourceMetric');
  t.is(
    down.condition.message,
    'the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu in container app of Pod a',
  );
  t.is(
    down.error,
    'invalid metrics (1 invalid out of 2), first error is: failed to get cpu utilization: missing request for cpu in container app of Pod a',
  );
});

test('scale-up policies: max(4 pods, 100%) per 15 s by default; Min and Disabled', (t) => {
  const h = emptyHistory();
  const up = defaultScalingRulesOf('up') as Behavior['scaleUp'];
  t.is(scaleUpLimit(2, h, up, NOW), 6); // 2 + 4 > 2 × 2
  t.is(scaleUpLimit(10, h, up, NOW), 20); // 10 × 2 > 10 + 4
  t.is(scaleUpLimit(10, h, { ...up, selectPolicy: 'Min' }, NOW), 14);
  t.is(scaleUpLimit(10, h, { ...up, selectPolicy: 'Disabled' }, NOW), 10);
  const down = defaultScalingRulesOf('down') as Behavior['scaleDown'];
  t.is(scaleDownLimit(10, h, down, NOW), 0); // 100% per 15 s
  const gentle = {
    ...down,
    policies: [
      { type: 'Pods' as const, value: 1, periodSeconds: 60 },
      { type: 'Percent' as const, value: 10, periodSeconds: 60 },
    ],
  };
  t.is(scaleDownLimit(30, h, gentle, NOW), 27); // Max: the larger change, 10% = 3 pods
  t.is(scaleDownLimit(30, h, { ...gentle, selectPolicy: 'Min' }, NOW), 29);
});

test('the policies count the changes already made in their period', (t) => {
  const up = defaultScalingRulesOf('up') as Behavior['scaleUp'];
  // 2 → 6 just now: the period started at 2, so 6 is all that is allowed until it ends.
  let h: HpaHistory = recordScaleEvent(emptyHistory(), DEFAULT_BEHAVIOR, 2, 6, NOW);
  t.is(scaleUpLimit(6, h, up, NOW + 5000), 6);
  // After 15 s the period starts at 6: max(10, 12).
  t.is(scaleUpLimit(6, h, up, NOW + 16_000), 12);
  // Scale downs in the period give their pods back: 10 → 8 leaves a start of 10.
  h = recordScaleEvent(emptyHistory(), DEFAULT_BEHAVIOR, 10, 8, NOW);
  t.is(scaleUpLimit(8, h, up, NOW + 1000), 20);
});

test('stabilization: a scale down waits for the highest recommendation of the window', (t) => {
  const base = {
    minReplicas: 1,
    maxReplicas: 20,
    behavior: DEFAULT_BEHAVIOR,
  };
  // First look: the window starts with the current count, so no scale down yet.
  let r = normalizeWithBehaviors({
    ...base,
    nowMs: NOW,
    currentReplicas: 10,
    desiredReplicas: 4,
    history: emptyHistory(),
  });
  t.is(r.replicas, 10);
  t.is(r.ableToScale.reason, 'ScaleDownStabilized');
  t.deepEqual(r.recommendations, [
    { timestampMs: NOW, replicas: 10 },
    { timestampMs: NOW, replicas: 4 },
  ]);
  // 200 s later, 6 is recommended: still 10 in the window.
  const at200 = normalizeWithBehaviors({
    ...base,
    nowMs: NOW + 200_000,
    currentReplicas: 10,
    desiredReplicas: 6,
    history: { ...emptyHistory(), recommendations: r.recommendations },
  });
  t.is(at200.replicas, 10);
  // 301 s after the first: the 10 left the window; the highest left is 6.
  r = normalizeWithBehaviors({
    ...base,
    nowMs: NOW + 301_000,
    currentReplicas: 10,
    desiredReplicas: 3,
    history: { ...emptyHistory(), recommendations: at200.recommendations },
  });
  t.is(r.replicas, 6);
  t.is(r.ableToScale.reason, 'ScaleDownStabilized');
  t.is(r.scalingLimited.status, 'False');
  t.deepEqual(
    r.recommendations.map((x) => x.replicas),
    [6, 3],
  );
});

test('stabilization up: with a window, a scale up takes the lowest recent recommendation', (t) => {
  const behavior = {
    ...DEFAULT_BEHAVIOR,
    scaleUp: { ...DEFAULT_BEHAVIOR.scaleUp, stabilizationWindowSeconds: 60 },
  };
  const history = { ...emptyHistory(), recommendations: [{ timestampMs: NOW - 30_000, replicas: 5 }] };
  const r = normalizeWithBehaviors({
    nowMs: NOW,
    currentReplicas: 4,
    desiredReplicas: 8,
    minReplicas: 1,
    maxReplicas: 20,
    behavior,
    history,
  });
  t.is(r.replicas, 5);
  t.is(r.ableToScale.reason, 'ScaleUpStabilized');
});

test('min/max and rate limits set ScalingLimited', (t) => {
  const base = {
    nowMs: NOW,
    minReplicas: 2,
    maxReplicas: 12,
    behavior: DEFAULT_BEHAVIOR,
    history: emptyHistory(),
  };
  let r = normalizeWithBehaviors({ ...base, currentReplicas: 10, desiredReplicas: 30 });
  t.is(r.replicas, 12);
  t.deepEqual([r.scalingLimited.status, r.scalingLimited.reason], ['True', 'TooManyReplicas']);
  r = normalizeWithBehaviors({ ...base, currentReplicas: 2, desiredReplicas: 11 });
  t.is(r.replicas, 6);
  t.deepEqual([r.scalingLimited.status, r.scalingLimited.reason], ['True', 'ScaleUpLimit']);
  const noWindow = {
    ...DEFAULT_BEHAVIOR,
    scaleDown: { ...DEFAULT_BEHAVIOR.scaleDown, stabilizationWindowSeconds: 0 },
  };
  r = normalizeWithBehaviors({ ...base, behavior: noWindow, currentReplicas: 5, desiredReplicas: 1 });
  t.is(r.replicas, 2);
  t.deepEqual([r.scalingLimited.status, r.scalingLimited.reason], ['True', 'TooFewReplicas']);
  r = normalizeWithBehaviors({ ...base, currentReplicas: 5, desiredReplicas: 7 });
  t.is(r.replicas, 7);
  t.deepEqual([r.scalingLimited.status, r.scalingLimited.reason], ['False', 'DesiredWithinRange']);
});

test('decide: a target at zero disables scaling; one outside min/max is brought back', (t) => {
  const spec = { minReplicas: 2, maxReplicas: 5, metrics: [cpu(50)], behavior: DEFAULT_BEHAVIOR };
  const base = { nowMs: NOW, spec, pods: [], samples: new Map(), history: emptyHistory() };
  const zero = decide({ ...base, currentReplicas: 0 });
  t.false(zero.rescale);
  t.like(zero.conditions[1], { type: 'ScalingActive', status: 'False', reason: 'ScalingDisabled' });
  const above = decide({ ...base, currentReplicas: 8 });
  t.true(above.rescale);
  t.is(above.desiredReplicas, 5);
  t.is(above.rescaleReason, 'Current number of replicas above Spec.MaxReplicas');
  t.deepEqual(above.history.scaleDownEvents, [{ timestampMs: NOW, change: 3 }]);
  const below = decide({ ...base, currentReplicas: 1 });
  t.is(below.desiredReplicas, 2);
  t.is(below.rescaleReason, 'Current number of replicas below Spec.MinReplicas');
});

test('decide: a scale up names the metric, as the SuccessfulRescale event does', (t) => {
  const spec = { minReplicas: 1, maxReplicas: 10, metrics: [cpu(50)], behavior: DEFAULT_BEHAVIOR };
  const pods = ['a', 'b'].map((n) => pod(n));
  const d = decide({
    nowMs: NOW,
    spec,
    currentReplicas: 2,
    pods,
    samples: samples({ a: 500, b: 500 }),
    history: emptyHistory(),
  });
  t.true(d.rescale);
  t.is(d.desiredReplicas, 4);
  t.is(d.rescaleReason, 'cpu resource utilization (percentage of request) above target');
  t.deepEqual(
    d.conditions.map((c) => [c.type, c.status, c.reason]),
    [
      ['AbleToScale', 'True', 'ReadyForNewScale'],
      ['ScalingActive', 'True', 'ValidMetricFound'],
      ['ScalingLimited', 'False', 'DesiredWithinRange'],
    ],
  );
  t.deepEqual(d.history.scaleUpEvents, [{ timestampMs: NOW, change: 2 }]);
  // The metrics source failed: nothing changes, and the reason is told.
  const failed = decide({
    nowMs: NOW,
    spec,
    currentReplicas: 2,
    pods,
    samples: new Map(),
    samplesError: 'node n1 did not answer',
    history: emptyHistory(),
  });
  t.false(failed.rescale);
  t.is(
    failed.conditions[1]?.message,
    'the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: node n1 did not answer',
  );
});
