// The HorizontalPodAutoscaler's arithmetic, after Kubernetes' pkg/controller/podautoscaler
// (replica_calculator.go and horizontal.go), with no I/O: the caller passes the pods, their
// samples, the time and the autoscaler's history, and gets back the replica count, the
// status and the new history. Units: cpu in millicores, memory in bytes.
//
//   per metric: group pods (ready / unready / missing / ignored) ─► usage ratio ─► proposal
//   max over the metrics ─► stabilization window ─► behavior policies (rate) ─► min/max
//
// Kubernetes rules kept as they are:
// - No change while the usage ratio is within the tolerance (0.9-1.1).
// - cpu only: a pod not Ready, or in its first 5 minutes and not yet measured for a full
//   window since it became Ready, is "unready"; its sample is left out. On a scale up the
//   unready pods then count as using 0.
// - A pod without a sample ("missing") counts on a scale down as using max(100%, target) of
//   its request (AverageValue: the target), on a scale up as using 0; if that reverses the
//   direction, or brings the ratio within the tolerance, nothing changes.
// - Utilization is of the pods' requests: a container without a request for the resource
//   makes the metric invalid ("missing request for cpu in container app of Pod web-1").

export const DEFAULT_TOLERANCE = 0.1;
/** Kubernetes' --horizontal-pod-autoscaler-cpu-initialization-period. */
export const CPU_INITIALIZATION_PERIOD_MS = 5 * 60_000;
/** Kubernetes' --horizontal-pod-autoscaler-initial-readiness-delay. */
export const INITIAL_READINESS_DELAY_MS = 30_000;

// Condition types and reasons, as Kubernetes writes them.
export const ABLE_TO_SCALE = 'AbleToScale';
export const SCALING_ACTIVE = 'ScalingActive';
export const SCALING_LIMITED = 'ScalingLimited';
export const REASON_SUCCEEDED_GET_SCALE = 'SucceededGetScale';
export const REASON_FAILED_GET_SCALE = 'FailedGetScale';
export const REASON_SUCCEEDED_RESCALE = 'SucceededRescale';
export const REASON_FAILED_UPDATE_SCALE = 'FailedUpdateScale';
export const REASON_READY_FOR_NEW_SCALE = 'ReadyForNewScale';
export const REASON_SCALE_UP_STABILIZED = 'ScaleUpStabilized';
export const REASON_SCALE_DOWN_STABILIZED = 'ScaleDownStabilized';
export const REASON_VALID_METRIC_FOUND = 'ValidMetricFound';
export const REASON_FAILED_GET_RESOURCE_METRIC = 'FailedGetResourceMetric';
export const REASON_SCALING_DISABLED = 'ScalingDisabled';
export const REASON_DESIRED_WITHIN_RANGE = 'DesiredWithinRange';
export const REASON_TOO_MANY_REPLICAS = 'TooManyReplicas';
export const REASON_TOO_FEW_REPLICAS = 'TooFewReplicas';
export const REASON_SCALE_UP_LIMIT = 'ScaleUpLimit';
export const REASON_SCALE_DOWN_LIMIT = 'ScaleDownLimit';
export const REASON_FAILED_COMPUTE_METRICS_REPLICAS = 'FailedComputeMetricsReplicas';

export type ResourceName = 'cpu' | 'memory';

export interface MetricTarget {
  type: 'Utilization' | 'AverageValue';
  /** Percent of the request (Utilization). */
  averageUtilization?: number;
  /** Per pod, millicores or bytes (AverageValue). */
  averageValue?: number;
}

export interface ResourceMetric {
  name: ResourceName;
  target: MetricTarget;
}

export interface ScalingPolicy {
  type: 'Pods' | 'Percent';
  value: number;
  periodSeconds: number;
}

export interface ScalingRules {
  stabilizationWindowSeconds: number;
  selectPolicy: 'Max' | 'Min' | 'Disabled';
  policies: ScalingPolicy[];
}

export interface Behavior {
  scaleUp: ScalingRules;
  scaleDown: ScalingRules;
}

/** What the arithmetic needs of a pod. */
export interface HpaPod {
  name: string;
  phase: string;
  deleting: boolean;
  startTimeMs?: number;
  /** The Ready condition, if the pod has one. */
  ready?: { status: string; lastTransitionMs: number };
  /** Each container's requests (millicores, bytes); undefined where there is none. */
  containers: { name: string; requests: Partial<Record<ResourceName, number>> }[];
}

/** One pod's sample: the sum over its containers, taken at `timestampMs` over `windowMs`. */
export interface PodSample {
  timestampMs: number;
  windowMs: number;
  cpuMillicores: number;
  memoryBytes: number;
}

export interface CalculatorOptions {
  tolerance: number;
  cpuInitializationPeriodMs: number;
  initialReadinessDelayMs: number;
}

export const DEFAULT_CALCULATOR_OPTIONS: CalculatorOptions = {
  tolerance: DEFAULT_TOLERANCE,
  cpuInitializationPeriodMs: CPU_INITIALIZATION_PERIOD_MS,
  initialReadinessDelayMs: INITIAL_READINESS_DELAY_MS,
};

export interface ReplicaProposal {
  replicas: number;
  /** Utilization: percent of the requests (rounded down, as Kubernetes). */
  utilization?: number;
  /** The average per pod (millicores, bytes) of the pods measured. */
  averageValue: number;
  /** The oldest sample used. */
  timestampMs: number;
}

export class MetricError extends Error {}

const usageOf = (s: PodSample, r: ResourceName) => (r === 'cpu' ? s.cpuMillicores : s.memoryBytes);

interface Groups {
  readyCount: number;
  unready: Set<string>;
  missing: Set<string>;
  ignored: Set<string>;
}

/** Kubernetes' groupPods. */
export function groupPods(
  pods: readonly HpaPod[],
  samples: ReadonlyMap<string, PodSample>,
  resource: ResourceName,
  nowMs: number,
  o: CalculatorOptions,
): Groups {
  const g: Groups = { readyCount: 0, unready: new Set(), missing: new Set(), ignored: new Set() };
  for (const pod of pods) {
    if (pod.deleting || pod.phase === 'Failed' || pod.phase === 'Succeeded') {
      g.ignored.add(pod.name);
      continue;
    }
    if (pod.phase === 'Pending') {
      g.unready.add(pod.name);
      continue;
    }
    const sample = samples.get(pod.name);
    if (!sample) {
      g.missing.add(pod.name);
      continue;
    }
    if (resource === 'cpu') {
      let unready: boolean;
      const ready = pod.ready;
      if (ready === undefined || pod.startTimeMs === undefined) unready = true;
      else if (pod.startTimeMs + o.cpuInitializationPeriodMs > nowMs) {
        // Starting up: its cpu is not a fair sample until it is Ready and was measured for a
        // whole window after that.
        unready = ready.status === 'False' || sample.timestampMs < ready.lastTransitionMs + sample.windowMs;
      } else {
        // Past the initialization period: left out only if it has never been Ready.
        unready =
          ready.status === 'False' && pod.startTimeMs + o.initialReadinessDelayMs > ready.lastTransitionMs;
      }
      if (unready) {
        g.unready.add(pod.name);
        continue;
      }
    }
    g.readyCount++;
  }
  return g;
}

/** Each pod's summed request of `resource`; throws MetricError for a container without one. */
export function podRequests(pods: readonly HpaPod[], resource: ResourceName): Map<string, number> {
  const out = new Map<string, number>();
  for (const pod of pods) {
    let sum = 0;
    for (const c of pod.containers) {
      const r = c.requests[resource];
      if (r === undefined)
        throw new MetricError(`missing request for ${resource} in container ${c.name} of Pod ${pod.name}`);
      sum += r;
    }
    out.set(pod.name, sum);
  }
  return out;
}

/** GetResourceUtilizationRatio: over the pods that have both a sample and a request. */
function utilizationRatio(
  usage: ReadonlyMap<string, number>,
  requests: ReadonlyMap<string, number>,
  target: number,
) {
  let usageTotal = 0;
  let requestTotal = 0;
  let n = 0;
  for (const [pod, u] of usage) {
    const r = requests.get(pod);
    if (r === undefined) continue;
    usageTotal += u;
    requestTotal += r;
    n++;
  }
  if (n === 0 || requestTotal === 0) throw new MetricError('no metrics returned matched known pods');
  const utilization = Math.floor((usageTotal * 100) / requestTotal);
  return { ratio: utilization / target, utilization, average: Math.floor(usageTotal / n) };
}

/** GetMetricUsageRatio: the average per pod against the target. */
function averageRatio(usage: ReadonlyMap<string, number>, target: number) {
  let total = 0;
  for (const u of usage.values()) total += u;
  const average = usage.size === 0 ? 0 : Math.floor(total / usage.size);
  return { ratio: average / target, average };
}

/**
 * The replica count one resource metric asks for (Kubernetes' GetResourceReplicas and
 * GetRawResourceReplicas). Throws MetricError when it cannot tell.
 */
export function calculateReplicas(
  metric: ResourceMetric,
  currentReplicas: number,
  pods: readonly HpaPod[],
  samples: ReadonlyMap<string, PodSample>,
  nowMs: number,
  o: CalculatorOptions = DEFAULT_CALCULATOR_OPTIONS,
  samplesError?: string,
): ReplicaProposal {
  const resource = metric.name;
  if (samplesError !== undefined)
    throw new MetricError(`unable to get metrics for resource ${resource}: ${samplesError}`);
  if (samples.size === 0) throw new MetricError('no metrics returned from resource metrics API');
  if (pods.length === 0)
    throw new MetricError('no pods returned by selector while calculating replica count');
  const g = groupPods(pods, samples, resource, nowMs, o);
  const usage = new Map<string, number>();
  let oldest = Number.POSITIVE_INFINITY;
  for (const pod of pods) {
    const s = samples.get(pod.name);
    if (!s || g.ignored.has(pod.name) || g.unready.has(pod.name)) continue;
    usage.set(pod.name, usageOf(s, resource));
    oldest = Math.min(oldest, s.timestampMs);
  }
  if (usage.size === 0)
    throw new MetricError('did not receive metrics for targeted pods (pods might be unready)');

  const utilizationTarget = metric.target.type === 'Utilization';
  const target = utilizationTarget
    ? (metric.target.averageUtilization ?? 0)
    : (metric.target.averageValue ?? 0);
  if (!(target > 0)) throw new MetricError(`invalid target for ${resource}`);
  const requests = utilizationTarget ? podRequests(pods, resource) : new Map<string, number>();
  const measure = (u: ReadonlyMap<string, number>) => {
    if (utilizationTarget) return utilizationRatio(u, requests, target);
    const r = averageRatio(u, target);
    return { ...r, utilization: undefined };
  };
  const first = measure(usage);
  const result = (replicas: number): ReplicaProposal => ({
    replicas,
    ...(first.utilization !== undefined ? { utilization: first.utilization } : {}),
    averageValue: first.average,
    timestampMs: oldest,
  });

  const scaleUpWithUnready = g.unready.size > 0 && first.ratio > 1;
  if (!scaleUpWithUnready && g.missing.size === 0) {
    if (Math.abs(1 - first.ratio) <= o.tolerance) return result(currentReplicas);
    return result(Math.ceil(first.ratio * g.readyCount));
  }
  // Fill in the pods not measured, in the direction that damps the change.
  if (g.missing.size > 0) {
    for (const pod of g.missing) {
      if (first.ratio < 1) {
        const fallback = utilizationTarget
          ? ((requests.get(pod) ?? 0) * Math.max(100, target)) / 100
          : target;
        usage.set(pod, fallback);
      } else if (first.ratio > 1) usage.set(pod, 0);
    }
  }
  if (scaleUpWithUnready) for (const pod of g.unready) usage.set(pod, 0);
  const second = measure(usage);
  if (
    Math.abs(1 - second.ratio) <= o.tolerance ||
    (first.ratio < 1 && second.ratio > 1) ||
    (first.ratio > 1 && second.ratio < 1)
  )
    return result(currentReplicas);
  const replicas = Math.ceil(second.ratio * usage.size);
  // The corrections may not turn a scale down into a scale up or the reverse.
  if ((second.ratio < 1 && replicas > currentReplicas) || (second.ratio > 1 && replicas < currentReplicas))
    return result(currentReplicas);
  return result(replicas);
}

/** How Kubernetes names a metric in messages: `cpu resource utilization (percentage of request)`. */
export function metricDescription(m: ResourceMetric): string {
  return m.target.type === 'Utilization'
    ? `${m.name} resource utilization (percentage of request)`
    : `${m.name} resource`;
}

export interface ConditionInput {
  type: string;
  status: 'True' | 'False';
  reason: string;
  message: string;
}

export interface MetricStatusOut {
  name: ResourceName;
  /** Undefined when the metric could not be read. */
  current?: { averageUtilization?: number; averageValue: number };
}

export interface MetricsResult {
  /** Undefined when the metrics do not allow a decision (see `error`). */
  replicas?: number;
  /** The metric that asked for the most replicas. */
  metric?: string;
  statuses: MetricStatusOut[];
  condition: ConditionInput;
  error?: string;
}

/**
 * Kubernetes' computeReplicasForMetrics: the largest proposal wins; the metrics that cannot be
 * read stop the autoscaler if they are all of them, or if the others would scale down.
 */
export function computeReplicasForMetrics(
  metrics: readonly ResourceMetric[],
  currentReplicas: number,
  pods: readonly HpaPod[],
  samples: ReadonlyMap<string, PodSample>,
  nowMs: number,
  o: CalculatorOptions = DEFAULT_CALCULATOR_OPTIONS,
  samplesError?: string,
): MetricsResult {
  let replicas: number | undefined;
  let chosen = '';
  let invalid = 0;
  let firstError: { condition: ConditionInput; message: string } | undefined;
  const statuses: MetricStatusOut[] = [];
  for (const m of metrics) {
    try {
      const p = calculateReplicas(m, currentReplicas, pods, samples, nowMs, o, samplesError);
      statuses.push({
        name: m.name,
        current: {
          ...(p.utilization !== undefined ? { averageUtilization: p.utilization } : {}),
          averageValue: p.averageValue,
        },
      });
      if (replicas === undefined || p.replicas > replicas) {
        replicas = p.replicas;
        chosen = metricDescription(m);
      }
    } catch (err) {
      if (!(err instanceof MetricError)) throw err;
      statuses.push({ name: m.name });
      invalid++;
      if (!firstError) {
        const what =
          m.target.type === 'Utilization' ? `${m.name} utilization` : `${m.name} resource metric value`;
        const message = `failed to get ${what}: ${err.message}`;
        firstError = {
          message,
          condition: {
            type: SCALING_ACTIVE,
            status: 'False',
            reason: REASON_FAILED_GET_RESOURCE_METRIC,
            message: `the HPA was unable to compute the replica count: ${message}`,
          },
        };
      }
    }
  }
  if (firstError && (invalid >= metrics.length || (replicas !== undefined && replicas < currentReplicas))) {
    return {
      statuses,
      condition: firstError.condition,
      error: `invalid metrics (${invalid} invalid out of ${metrics.length}), first error is: ${firstError.message}`,
    };
  }
  return {
    replicas: replicas ?? currentReplicas,
    metric: chosen,
    statuses,
    condition: {
      type: SCALING_ACTIVE,
      status: 'True',
      reason: REASON_VALID_METRIC_FOUND,
      message: `the HPA was able to successfully calculate a replica count from ${chosen}`,
    },
  };
}

// ---- stabilization and rate limits (horizontal.go, behavior path) ----

export interface TimedRecommendation {
  timestampMs: number;
  replicas: number;
}

export interface ScaleEvent {
  timestampMs: number;
  change: number;
}

/** What the autoscaler remembers of one HPA between reconciles (in memory, as Kubernetes). */
export interface HpaHistory {
  recommendations: TimedRecommendation[];
  scaleUpEvents: ScaleEvent[];
  scaleDownEvents: ScaleEvent[];
}

export const emptyHistory = (): HpaHistory => ({
  recommendations: [],
  scaleUpEvents: [],
  scaleDownEvents: [],
});

/** Replicas added (or removed) within the last `periodSeconds`. */
function changeInPeriod(events: readonly ScaleEvent[], periodSeconds: number, nowMs: number): number {
  const cutoff = nowMs - periodSeconds * 1000;
  return events.reduce((sum, e) => (e.timestampMs > cutoff ? sum + e.change : sum), 0);
}

/** The replica count at the start of a policy's period: now, minus what changed since. */
function replicasAtPeriodStart(
  current: number,
  history: HpaHistory,
  periodSeconds: number,
  nowMs: number,
): number {
  return (
    current -
    changeInPeriod(history.scaleUpEvents, periodSeconds, nowMs) +
    changeInPeriod(history.scaleDownEvents, periodSeconds, nowMs)
  );
}

/** calculateScaleUpLimitWithScalingRules: the most replicas the policies allow now. */
export function scaleUpLimit(
  current: number,
  history: HpaHistory,
  rules: ScalingRules,
  nowMs: number,
): number {
  if (rules.selectPolicy === 'Disabled') return current;
  const pick = rules.selectPolicy === 'Min' ? Math.min : Math.max;
  let result = rules.selectPolicy === 'Min' ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  for (const p of rules.policies) {
    const start = replicasAtPeriodStart(current, history, p.periodSeconds, nowMs);
    const proposed = p.type === 'Pods' ? start + p.value : Math.ceil(start * (1 + p.value / 100));
    result = pick(result, proposed);
  }
  return Number.isFinite(result) ? result : current;
}

/** calculateScaleDownLimitWithBehaviors: the fewest replicas the policies allow now. */
export function scaleDownLimit(
  current: number,
  history: HpaHistory,
  rules: ScalingRules,
  nowMs: number,
): number {
  if (rules.selectPolicy === 'Disabled') return current;
  // Max means the policy allowing the biggest change: the lowest floor.
  const pick = rules.selectPolicy === 'Min' ? Math.max : Math.min;
  let result = rules.selectPolicy === 'Min' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  for (const p of rules.policies) {
    const start = replicasAtPeriodStart(current, history, p.periodSeconds, nowMs);
    const proposed = p.type === 'Pods' ? start - p.value : Math.trunc(start * (1 - p.value / 100));
    result = pick(result, proposed);
  }
  return Number.isFinite(result) ? result : current;
}

export interface NormalizeInput {
  nowMs: number;
  currentReplicas: number;
  /** The metrics' proposal. */
  desiredReplicas: number;
  minReplicas: number;
  maxReplicas: number;
  behavior: Behavior;
  history: HpaHistory;
}

export interface NormalizeResult {
  replicas: number;
  ableToScale: ConditionInput;
  scalingLimited: ConditionInput;
  /** The recommendations to keep (this one appended, those out of both windows dropped). */
  recommendations: TimedRecommendation[];
}

/**
 * normalizeDesiredReplicasWithBehaviors: stabilize over the windows (up: the lowest recent
 * recommendation, down: the highest), then hold the change to the policies and min/max.
 */
export function normalizeWithBehaviors(a: NormalizeInput): NormalizeResult {
  const { nowMs, currentReplicas: current, desiredReplicas: desired, behavior } = a;
  let recs = a.history.recommendations;
  // A new autoscaler (or one after a leader change) starts its scale-down window with the
  // current count, so it does not scale down at once.
  if (recs.length === 0 && behavior.scaleDown.stabilizationWindowSeconds > 0)
    recs = [{ timestampMs: nowMs, replicas: current }];
  const upCutoff = nowMs - behavior.scaleUp.stabilizationWindowSeconds * 1000;
  const downCutoff = nowMs - behavior.scaleDown.stabilizationWindowSeconds * 1000;
  let up = desired;
  let down = desired;
  for (const r of recs) {
    if (r.timestampMs > upCutoff) up = Math.min(up, r.replicas);
    if (r.timestampMs > downCutoff) down = Math.max(down, r.replicas);
  }
  let stabilized = current;
  if (stabilized < up) stabilized = up;
  if (stabilized > down) stabilized = down;
  const kept = recs.filter((r) => r.timestampMs > upCutoff || r.timestampMs > downCutoff);
  kept.push({ timestampMs: nowMs, replicas: desired });

  let ableToScale: ConditionInput;
  if (stabilized === desired)
    ableToScale = {
      type: ABLE_TO_SCALE,
      status: 'True',
      reason: REASON_READY_FOR_NEW_SCALE,
      message: 'recommended size matches current size',
    };
  else if (stabilized < desired)
    ableToScale = {
      type: ABLE_TO_SCALE,
      status: 'True',
      reason: REASON_SCALE_UP_STABILIZED,
      message:
        'recent recommendations were lower than current one, applying the lowest recent recommendation',
    };
  else
    ableToScale = {
      type: ABLE_TO_SCALE,
      status: 'True',
      reason: REASON_SCALE_DOWN_STABILIZED,
      message:
        'recent recommendations were higher than current one, applying the highest recent recommendation',
    };

  const limited = rateLimit({ ...a, desiredReplicas: stabilized });
  return {
    replicas: limited.replicas,
    ableToScale,
    scalingLimited: {
      type: SCALING_LIMITED,
      status: limited.replicas === stabilized ? 'False' : 'True',
      reason: limited.reason,
      message: limited.message,
    },
    recommendations: kept,
  };
}

/** convertDesiredReplicasWithBehaviorRate: the policies' limits, then min/max. */
function rateLimit(a: NormalizeInput): { replicas: number; reason: string; message: string } {
  const { currentReplicas: current, desiredReplicas: desired } = a;
  if (desired > current) {
    const limit = Math.max(current, scaleUpLimit(current, a.history, a.behavior.scaleUp, a.nowMs));
    const [max, reason, message] =
      a.maxReplicas > limit
        ? [
            limit,
            REASON_SCALE_UP_LIMIT,
            'the desired replica count is increasing faster than the maximum scale rate',
          ]
        : [
            a.maxReplicas,
            REASON_TOO_MANY_REPLICAS,
            'the desired replica count is more than the maximum replica count',
          ];
    if (desired > max) return { replicas: max, reason, message };
  } else if (desired < current) {
    const limit = Math.min(current, scaleDownLimit(current, a.history, a.behavior.scaleDown, a.nowMs));
    const [min, reason, message] =
      a.minReplicas < limit
        ? [
            limit,
            REASON_SCALE_DOWN_LIMIT,
            'the desired replica count is decreasing faster than the maximum scale rate',
          ]
        : [
            a.minReplicas,
            REASON_TOO_FEW_REPLICAS,
            'the desired replica count is less than the minimum replica count',
          ];
    if (desired < min) return { replicas: min, reason, message };
  }
  return {
    replicas: desired,
    reason: REASON_DESIRED_WITHIN_RANGE,
    message: 'the desired count is within the acceptable range',
  };
}

/** The history after a rescale from `from` to `to` (events older than every period dropped). */
export function recordScaleEvent(
  history: HpaHistory,
  behavior: Behavior,
  from: number,
  to: number,
  nowMs: number,
): HpaHistory {
  const longest = (r: ScalingRules) => Math.max(0, ...r.policies.map((p) => p.periodSeconds)) * 1000;
  const upCut = nowMs - longest(behavior.scaleUp);
  const downCut = nowMs - longest(behavior.scaleDown);
  const scaleUpEvents = history.scaleUpEvents.filter((e) => e.timestampMs > upCut);
  const scaleDownEvents = history.scaleDownEvents.filter((e) => e.timestampMs > downCut);
  if (to > from) scaleUpEvents.push({ timestampMs: nowMs, change: to - from });
  else if (to < from) scaleDownEvents.push({ timestampMs: nowMs, change: from - to });
  return { ...history, scaleUpEvents, scaleDownEvents };
}

// ---- one reconcile's decision ----

export interface HpaSpecCore {
  minReplicas: number;
  maxReplicas: number;
  metrics: ResourceMetric[];
  behavior: Behavior;
}

export interface DecideInput {
  nowMs: number;
  spec: HpaSpecCore;
  /** The target's spec.replicas. */
  currentReplicas: number;
  pods: readonly HpaPod[];
  samples: ReadonlyMap<string, PodSample>;
  /** Why there are no samples, when the metrics source failed. */
  samplesError?: string;
  history: HpaHistory;
  options?: CalculatorOptions;
}

export interface Decision {
  desiredReplicas: number;
  /** Write the new count to the target. */
  rescale: boolean;
  /** For the SuccessfulRescale event: `cpu resource utilization (percentage of request) above target`. */
  rescaleReason: string;
  statuses: MetricStatusOut[];
  /** Conditions to set (AbleToScale, ScalingActive, ScalingLimited as they apply). */
  conditions: ConditionInput[];
  /** Set when the metrics allowed no decision: a Warning event's message. */
  error?: string;
  history: HpaHistory;
}

/** Kubernetes' reconcileAutoscaler after the scale was read, up to the scale update. */
export function decide(input: DecideInput): Decision {
  const { spec, currentReplicas: current, nowMs, history } = input;
  const gotScale: ConditionInput = {
    type: ABLE_TO_SCALE,
    status: 'True',
    reason: REASON_SUCCEEDED_GET_SCALE,
    message: "the HPA controller was able to get the target's current scale",
  };
  if (current === 0 && spec.minReplicas !== 0) {
    return {
      desiredReplicas: 0,
      rescale: false,
      rescaleReason: '',
      statuses: [],
      conditions: [
        gotScale,
        {
          type: SCALING_ACTIVE,
          status: 'False',
          reason: REASON_SCALING_DISABLED,
          message: 'scaling is disabled since the replica count of the target is zero',
        },
      ],
      history,
    };
  }
  if (current > spec.maxReplicas || current < spec.minReplicas) {
    const above = current > spec.maxReplicas;
    const desired = above ? spec.maxReplicas : spec.minReplicas;
    return {
      desiredReplicas: desired,
      rescale: true,
      rescaleReason: above
        ? 'Current number of replicas above Spec.MaxReplicas'
        : 'Current number of replicas below Spec.MinReplicas',
      statuses: [],
      conditions: [gotScale],
      history: recordScaleEvent(history, spec.behavior, current, desired, nowMs),
    };
  }
  const m = computeReplicasForMetrics(
    spec.metrics,
    current,
    input.pods,
    input.samples,
    nowMs,
    input.options,
    input.samplesError,
  );
  if (m.replicas === undefined) {
    return {
      desiredReplicas: current,
      rescale: false,
      rescaleReason: '',
      statuses: m.statuses,
      conditions: [gotScale, m.condition],
      ...(m.error !== undefined ? { error: m.error } : {}),
      history,
    };
  }
  const n = normalizeWithBehaviors({
    nowMs,
    currentReplicas: current,
    desiredReplicas: m.replicas,
    minReplicas: spec.minReplicas,
    maxReplicas: spec.maxReplicas,
    behavior: spec.behavior,
    history,
  });
  const rescale = n.replicas !== current;
  const withRecs = { ...history, recommendations: n.recommendations };
  return {
    desiredReplicas: n.replicas,
    rescale,
    rescaleReason: n.replicas > current ? `${m.metric} above target` : 'All metrics below target',
    statuses: m.statuses,
    conditions: [n.ableToScale, m.condition, n.scalingLimited],
    history: rescale ? recordScaleEvent(withRecs, spec.behavior, current, n.replicas, nowMs) : withRecs,
  };
}
