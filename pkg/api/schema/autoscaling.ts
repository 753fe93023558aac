// HorizontalPodAutoscaler (autoscaling/v2): field names, defaults and validation follow
// Kubernetes' pkg/apis/autoscaling (v2 defaults, validation.go). Berth measures only what
// its agents report (`berthctl top`): Resource metrics on cpu and memory. Other metric
// types are refused at admission rather than accepted and never acted on.

import {
  arr,
  asArr,
  asInt,
  asObj,
  asStr,
  enumOf,
  type Issues,
  int,
  invalid,
  type Mutable,
  obj,
  own,
  quantity,
  ref,
  required,
  str,
} from './dsl.js';
import { condition } from './meta.js';
import { tryParseQuantity } from './quantity.js';

export const METRIC_TYPE_RESOURCE = 'Resource';
/** Kubernetes' other metric source types: known, named in the refusal, not supported. */
export const UNSUPPORTED_METRIC_TYPES = ['ContainerResource', 'Pods', 'Object', 'External'] as const;
export const HPA_RESOURCES = ['cpu', 'memory'] as const;
export const TARGET_UTILIZATION = 'Utilization';
export const TARGET_AVERAGE_VALUE = 'AverageValue';
export const SCALING_POLICY_PODS = 'Pods';
export const SCALING_POLICY_PERCENT = 'Percent';
export const SELECT_POLICIES = ['Max', 'Min', 'Disabled'] as const;
export const SCALE_TARGET_KINDS = ['Deployment', 'ReplicaSet'] as const;

/** Kubernetes' limits on behavior (validation.go). */
export const MAX_STABILIZATION_WINDOW_SECONDS = 3600;
export const MAX_PERIOD_SECONDS = 1800;
/** The default cpu target when spec.metrics is empty (SetDefaults_HorizontalPodAutoscaler). */
export const DEFAULT_CPU_UTILIZATION = 80;

const CrossVersionObjectReference = obj(
  'CrossVersionObjectReference',
  'The object whose scale the autoscaler sets: a Deployment or a ReplicaSet in the same namespace.',
  {
    apiVersion: str('API version of the referent (apps/v1).'),
    kind: required(
      str('Kind of the referent: Deployment or ReplicaSet.', {
        format: (s) =>
          (SCALE_TARGET_KINDS as readonly string[]).includes(s)
            ? undefined
            : `not supported: Berth scales ${SCALE_TARGET_KINDS.join(' and ')} only`,
      }),
    ),
    name: required(str('Name of the referent.')),
  },
);

const MetricTarget = obj(
  'MetricTarget',
  'The target value of a metric: an average utilization (percent of the request) or an average value.',
  {
    type: required(
      enumOf(
        [TARGET_UTILIZATION, TARGET_AVERAGE_VALUE],
        "Utilization (averageUtilization: percent of the pods' requests) or AverageValue (averageValue: a quantity per pod). Value is not supported for Resource metrics.",
      ),
    ),
    averageUtilization: int(
      "Target value of the average of the resource metric across all relevant pods, as a percentage of the pods' requested value of the resource. For type Utilization.",
    ),
    averageValue: quantity(
      'Target value of the average of the metric across all relevant pods (a quantity). For type AverageValue.',
    ),
  },
  {
    check: (v: Record<string, unknown>, path: string, out: Issues) => {
      const type = own(v, 'type');
      const util = own(v, 'averageUtilization');
      const avg = own(v, 'averageValue');
      if (type === TARGET_UTILIZATION) {
        if (util == null)
          out.add(
            `${path}.averageUtilization`,
            'Required value: must set averageUtilization for type Utilization',
          );
        else if (typeof util === 'number' && util < 1)
          out.add(`${path}.averageUtilization`, invalid(util, 'must be greater than 0'));
        if (avg != null) out.add(`${path}.averageValue`, 'Forbidden: may not be set for type Utilization');
      } else if (type === TARGET_AVERAGE_VALUE) {
        const q = tryParseQuantity(avg);
        if (avg == null)
          out.add(`${path}.averageValue`, 'Required value: must set averageValue for type AverageValue');
        else if (q !== undefined && q <= 0) out.add(`${path}.averageValue`, invalid(avg, 'must be positive'));
        if (util != null)
          out.add(`${path}.averageUtilization`, 'Forbidden: may not be set for type AverageValue');
      }
    },
  },
);

const ResourceMetricSource = obj(
  'ResourceMetricSource',
  'A resource (cpu, memory) of the pods the target selects, as the agents measure it (what `berthctl top` shows), averaged over the pods and compared with the target.',
  {
    name: required(enumOf(HPA_RESOURCES, 'Name of the resource: cpu or memory.')),
    target: required(ref(MetricTarget, 'The target value of the metric.')),
  },
);

function checkMetricSpec(v: Record<string, unknown>, path: string, out: Issues): void {
  const type = own(v, 'type');
  if (typeof type !== 'string') return;
  if (type !== METRIC_TYPE_RESOURCE) {
    const why = (UNSUPPORTED_METRIC_TYPES as readonly string[]).includes(type)
      ? 'not supported: Berth autoscales on Resource metrics (cpu, memory) only'
      : 'must be Resource (ContainerResource, Pods, Object and External are not supported)';
    out.add(`${path}.type`, invalid(type, why));
    return;
  }
  if (own(v, 'resource') == null)
    out.add(`${path}.resource`, 'Required value: must populate information for the given metric source');
}

const MetricSpec = obj(
  'MetricSpec',
  'A metric to scale on. Only type Resource is supported.',
  {
    type: required(
      str(
        "Type of metric source: Resource. (Kubernetes' ContainerResource, Pods, Object and External are refused.)",
      ),
    ),
    resource: ref(
      ResourceMetricSource,
      'A resource metric (cpu, memory) of the pods. Required for type Resource.',
    ),
  },
  { check: checkMetricSpec },
);

const HPAScalingPolicy = obj(
  'HPAScalingPolicy',
  'A single policy which must hold true for a specified past interval.',
  {
    type: required(
      enumOf(
        [SCALING_POLICY_PODS, SCALING_POLICY_PERCENT],
        'Pods (an absolute number of pods) or Percent (a percentage of the pods at the start of the period).',
      ),
    ),
    value: required(int('The amount of change the policy permits; greater than zero.', { min: 1 })),
    periodSeconds: required(
      int('The window the policy holds over (1-1800 seconds).', { min: 1, max: MAX_PERIOD_SECONDS }),
    ),
  },
);

const HPAScalingRules = obj(
  'HPAScalingRules',
  'Scaling behavior in one direction: a stabilization window, and policies that limit the change per period.',
  {
    stabilizationWindowSeconds: int(
      'Seconds of past recommendations considered while scaling: scaling up uses the lowest, scaling down the highest recommendation in the window (0-3600).',
      { min: 0, max: MAX_STABILIZATION_WINDOW_SECONDS },
    ),
    selectPolicy: enumOf(
      SELECT_POLICIES,
      'Which policy applies: Max (the largest change), Min (the smallest), or Disabled (no scaling in this direction).',
    ),
    policies: arr(HPAScalingPolicy, 'Policies that limit the change; at least one.'),
  },
  {
    check: (v: Record<string, unknown>, path: string, out: Issues) => {
      const policies = asArr(own(v, 'policies'));
      if (policies !== undefined && policies.length === 0)
        out.add(`${path}.policies`, 'Required value: must specify at least one Policy');
    },
  },
);

const HorizontalPodAutoscalerBehavior = obj(
  'HorizontalPodAutoscalerBehavior',
  'Scaling behavior up and down. Absent parts get the defaults: up, no window and max(100%, 4 pods) per 15 s; down, a 300 s window and 100% per 15 s.',
  {
    scaleUp: ref(
      HPAScalingRules,
      'Scaling up: window 0, policies [Pods 4 / 15 s, Percent 100 / 15 s], selectPolicy Max by default.',
    ),
    scaleDown: ref(
      HPAScalingRules,
      'Scaling down: window 300 s, policies [Percent 100 / 15 s], selectPolicy Max by default.',
    ),
  },
);

export const HorizontalPodAutoscalerSpec = obj(
  'HorizontalPodAutoscalerSpec',
  'The desired functionality of the autoscaler.',
  {
    scaleTargetRef: required(
      ref(
        CrossVersionObjectReference,
        'The target whose spec.replicas is set: a Deployment or a ReplicaSet.',
      ),
    ),
    minReplicas: int('Lower limit of the replicas the autoscaler can scale down to. Defaults to 1.', {
      default: 1,
      min: 1,
    }),
    maxReplicas: required(
      int('Upper limit of the replicas the autoscaler can scale up to; not below minReplicas.', { min: 1 }),
    ),
    metrics: arr(
      MetricSpec,
      'The metrics to scale on; the largest replica count any of them asks for wins. Defaults to cpu at 80% average utilization.',
    ),
    behavior: ref(HorizontalPodAutoscalerBehavior, "Scaling behavior up and down (default: Kubernetes')."),
  },
  {
    check: (v: Record<string, unknown>, path: string, out: Issues) => {
      const min = asInt(own(v, 'minReplicas')) ?? 1;
      const max = asInt(own(v, 'maxReplicas'));
      if (max !== undefined && max >= 1 && max < min)
        out.add(`${path}.maxReplicas`, invalid(max, 'must be greater than or equal to `minReplicas`'));
      const ref = asObj(own(v, 'scaleTargetRef'));
      const apiVersion = asStr(own(ref, 'apiVersion'));
      if (apiVersion !== undefined && apiVersion !== '' && apiVersion !== 'apps/v1')
        out.add(`${path}.scaleTargetRef.apiVersion`, invalid(apiVersion, 'not supported: must be apps/v1'));
    },
    defaults: (s: Mutable) => {
      if (!Array.isArray(s.metrics) || s.metrics.length === 0)
        s.metrics = [
          {
            type: METRIC_TYPE_RESOURCE,
            resource: {
              name: 'cpu',
              target: { type: TARGET_UTILIZATION, averageUtilization: DEFAULT_CPU_UTILIZATION },
            },
          },
        ];
      const b = asObj(s.behavior);
      // As Kubernetes: a behavior given is completed with the defaults; none stays none
      // (the controller then uses the same defaults).
      if (b !== undefined) {
        b.scaleUp = defaultScalingRules(asObj(b.scaleUp), 'up');
        b.scaleDown = defaultScalingRules(asObj(b.scaleDown), 'down');
      }
    },
  },
);

/** Kubernetes' default scaling rules of one direction (GenerateHPAScaleUpRules/ScaleDownRules). */
export function defaultScalingRulesOf(direction: 'up' | 'down') {
  return direction === 'up'
    ? {
        stabilizationWindowSeconds: 0,
        selectPolicy: 'Max',
        policies: [
          { type: SCALING_POLICY_PODS, value: 4, periodSeconds: 15 },
          { type: SCALING_POLICY_PERCENT, value: 100, periodSeconds: 15 },
        ],
      }
    : {
        stabilizationWindowSeconds: 300,
        selectPolicy: 'Max',
        policies: [{ type: SCALING_POLICY_PERCENT, value: 100, periodSeconds: 15 }],
      };
}

function defaultScalingRules(r: Record<string, unknown> | undefined, direction: 'up' | 'down'): Mutable {
  const d = defaultScalingRulesOf(direction);
  const out: Mutable = { ...(r ?? {}) };
  if (out.stabilizationWindowSeconds == null) out.stabilizationWindowSeconds = d.stabilizationWindowSeconds;
  if (out.selectPolicy == null) out.selectPolicy = d.selectPolicy;
  if (out.policies == null) out.policies = d.policies;
  return out;
}

const MetricValueStatus = obj('MetricValueStatus', 'The current value of a metric.', {
  averageUtilization: int("Current average utilization, percent of the pods' requests."),
  averageValue: quantity('Current average value per pod (a quantity).'),
});

const MetricStatus = obj('MetricStatus', 'The last read state of a metric.', {
  type: required(str('Type of metric source: Resource.')),
  resource: obj('ResourceMetricStatus', 'The current value of a resource metric.', {
    name: required(str('Name of the resource: cpu or memory.')),
    current: required(ref(MetricValueStatus, 'The current value of the metric.')),
  }),
});

export const HorizontalPodAutoscalerStatus = obj(
  'HorizontalPodAutoscalerStatus',
  'The current status of the autoscaler.',
  {
    observedGeneration: int('The most recent generation observed by this autoscaler.', {
      int64: true,
      min: 0,
    }),
    lastScaleTime: str('Last time the autoscaler scaled the number of pods (RFC 3339).'),
    currentReplicas: int('Current number of replicas of pods managed by this autoscaler.', { min: 0 }),
    desiredReplicas: int('Desired number of replicas, as last calculated by the autoscaler.', { min: 0 }),
    currentMetrics: arr(MetricStatus, 'The last read state of the metrics used by this autoscaler.'),
    conditions: arr(
      condition(
        'HorizontalPodAutoscalerCondition',
        'A condition of the autoscaler: AbleToScale, ScalingActive, ScalingLimited.',
        {
          lastTransitionTime: 'Last time the condition transitioned from one status to another.',
        },
      ),
      'Conditions the autoscaler needs to scale its target, and whether they hold.',
    ),
  },
);

/** The root rules: a status is always there (`{}`), as for the other kinds with one. */
export function defaultHorizontalPodAutoscaler(o: Mutable): void {
  if (o.status == null) o.status = {};
}

export function checkHorizontalPodAutoscaler(v: Record<string, unknown>, _path: string, out: Issues): void {
  if (own(v, 'spec') == null) out.add('spec', 'Required value');
}
