// ReplicaSet and Deployment specs and statuses (apps/v1).

import {
  arr,
  asObj,
  bool,
  enumOf,
  type Issues,
  int,
  intOrString,
  invalid,
  type Mutable,
  type ObjectSchema,
  obj,
  own,
  ref,
  required,
} from './dsl.js';
import { percent } from './formats.js';
import { parseIntOrPercent } from './int-or-percent.js';
import { condition, LabelSelector, selectorIsEmpty, selectorMatches } from './meta.js';
import { PodTemplateSpec } from './pod.js';

/** spec.selector must select something and must match spec.template.metadata.labels. */
function checkSelectorMatchesTemplate(kind: string) {
  return (v: Record<string, unknown>, path: string, out: Issues): void => {
    const selector = own(v, 'selector');
    const template = asObj(own(v, 'template'));
    if (asObj(selector) !== undefined && selectorIsEmpty(selector))
      out.add(`${path}.selector`, invalid(selector, `empty selector is invalid for ${kind}`));
    if (asObj(selector) === undefined || template === undefined) return;
    const labels = asObj(own(asObj(own(template, 'metadata')), 'labels')) ?? {};
    if (!selectorIsEmpty(selector) && !selectorMatches(selector, labels))
      out.add(
        `${path}.template.metadata.labels`,
        invalid(labels, '`selector` does not match template `labels`'),
      );
    const policy = own(asObj(own(template, 'spec')), 'restartPolicy');
    if (policy != null && policy !== 'Always')
      out.add(
        `${path}.template.spec.restartPolicy`,
        `Unsupported value: ${JSON.stringify(policy)}: supported values: "Always"`,
      );
  };
}

const selector = required(
  ref(
    LabelSelector,
    'Label query over pods that should match the replica count. Must match the template labels. Immutable.',
  ),
);
const replicas = (d: string) => int(d, { min: 0, default: 1 });
const minReadySeconds = int(
  'Seconds a new ready pod must stay ready, without crashing, to be counted available.',
  { min: 0 },
);

export const ReplicaSetSpec = obj(
  'ReplicaSetSpec',
  'The specification of a ReplicaSet.',
  {
    replicas: replicas('Number of desired pods.'),
    minReadySeconds,
    selector,
    template: required(ref(PodTemplateSpec, 'The pods created when there are too few replicas.')),
  },
  { check: checkSelectorMatchesTemplate('replicaset') },
);

export const ReplicaSetStatus = obj(
  'ReplicaSetStatus',
  'The most recently observed status of a ReplicaSet.',
  {
    replicas: required(int('Most recently observed number of replicas.', { min: 0 })),
    fullyLabeledReplicas: int('Number of pods whose labels match the template labels.', { min: 0 }),
    readyReplicas: int('Number of pods with a Ready condition.', { min: 0 }),
    availableReplicas: int('Number of pods ready for at least minReadySeconds.', { min: 0 }),
    observedGeneration: int('The generation of the ReplicaSet this status was computed for.', {
      int64: true,
      min: 0,
    }),
    conditions: arr(
      condition('ReplicaSetCondition', 'A condition of a ReplicaSet, e.g. ReplicaFailure.', {
        lastTransitionTime: 'Last time the condition transitioned from one status to another.',
      }),
      'Observations of the replica set state.',
    ),
  },
);

function checkIntOrPercent(v: unknown, path: string, out: Issues): void {
  const p = parseIntOrPercent(v);
  if (p === undefined)
    out.add(
      path,
      invalid(v, "a valid percent string must be a numeric string followed by an ending '%' (e.g. '25%')"),
    );
  else if (p.value < 0) out.add(path, invalid(v, 'must be greater than or equal to 0'));
}

const isZero = (v: unknown) => v === 0 || (typeof v === 'string' && percent(v) === 0);

const RollingUpdateDeployment = obj(
  'RollingUpdateDeployment',
  'Spec to control the desired behavior of rolling update.',
  {
    maxSurge: intOrString(
      'Pods that can be scheduled above the desired count: a number or a percentage (25%).',
      {
        default: '25%',
        check: checkIntOrPercent,
      },
    ),
    maxUnavailable: intOrString(
      'Pods that can be unavailable during the update: a number or a percentage (25%).',
      {
        default: '25%',
        check: (v: unknown, path: string, out: Issues) => {
          checkIntOrPercent(v, path, out);
          const p = typeof v === 'string' ? percent(v) : undefined;
          if (p !== undefined && p > 100) out.add(path, invalid(v, 'must not be greater than 100%'));
        },
      },
    ),
  },
  {
    check: (v: Record<string, unknown>, path: string, out: Issues) => {
      if (isZero(own(v, 'maxSurge')) && isZero(own(v, 'maxUnavailable')))
        out.add(
          `${path}.maxUnavailable`,
          invalid(own(v, 'maxUnavailable'), 'may not be 0 when `maxSurge` is 0'),
        );
    },
  },
);

const DeploymentStrategy = obj(
  'DeploymentStrategy',
  'How to replace existing pods with new ones.',
  {
    type: enumOf(['Recreate', 'RollingUpdate'], 'Type of deployment: Recreate or RollingUpdate.', {
      default: 'RollingUpdate',
    }),
    rollingUpdate: ref(
      RollingUpdateDeployment,
      'Rolling update config params. Present only if type = RollingUpdate.',
    ),
  },
  {
    check: (v: Record<string, unknown>, path: string, out: Issues) => {
      if (own(v, 'type') === 'Recreate' && own(v, 'rollingUpdate') != null)
        out.add(
          `${path}.rollingUpdate`,
          "Forbidden: may not be specified when strategy `type` is 'Recreate'",
        );
    },
    defaults: (s: Mutable) => {
      if (s.type === 'RollingUpdate' && s.rollingUpdate == null) s.rollingUpdate = {};
    },
  },
);

const checkDeployment = checkSelectorMatchesTemplate('deployment');

export const DeploymentSpec: ObjectSchema = obj(
  'DeploymentSpec',
  'The specification of the desired behavior of the Deployment.',
  {
    replicas: replicas('Number of desired pods. Defaults to 1.'),
    selector,
    template: required(ref(PodTemplateSpec, 'Template describes the pods that will be created.')),
    strategy: ref(
      DeploymentStrategy,
      'The deployment strategy to use to replace existing pods with new ones.',
    ),
    minReadySeconds,
    revisionHistoryLimit: int('Number of old ReplicaSets to retain to allow rollback.', {
      min: 0,
      default: 10,
    }),
    progressDeadlineSeconds: int(
      'Seconds for the deployment to make progress before it is considered failed (ProgressDeadlineExceeded).',
      { min: 1, default: 600 },
    ),
    paused: bool('Indicates that the deployment is paused: template changes do not roll out.'),
  },
  {
    check: (v: Record<string, unknown>, path: string, out: Issues) => {
      checkDeployment(v, path, out);
      const min = own(v, 'minReadySeconds');
      const deadline = own(v, 'progressDeadlineSeconds') ?? 600;
      if (typeof min === 'number' && typeof deadline === 'number' && deadline <= min)
        out.add(`${path}.progressDeadlineSeconds`, invalid(deadline, 'must be greater than minReadySeconds'));
    },
    defaults: (s: Mutable) => {
      if (s.strategy == null) s.strategy = {};
    },
  },
);

export const DeploymentStatus = obj(
  'DeploymentStatus',
  'The most recently observed status of the Deployment.',
  {
    observedGeneration: int('The generation observed by the deployment controller.', { int64: true, min: 0 }),
    replicas: int('Total number of non-terminated pods targeted by this deployment.', { min: 0 }),
    updatedReplicas: int('Non-terminated pods that have the desired template spec.', { min: 0 }),
    readyReplicas: int('Pods with a Ready condition.', { min: 0 }),
    availableReplicas: int('Pods ready for at least minReadySeconds.', { min: 0 }),
    unavailableReplicas: int('Pods still needed for the deployment to have 100% available capacity.', {
      min: 0,
    }),
    conditions: arr(
      condition(
        'DeploymentCondition',
        'A condition of a deployment: Available, Progressing, ReplicaFailure.',
        {
          lastUpdateTime: 'The last time this condition was updated.',
          lastTransitionTime: 'Last time the condition transitioned from one status to another.',
        },
      ),
      'Latest available observations of the deployment state.',
    ),
    collisionCount: int('Count of hash collisions; used to make the name of the newest ReplicaSet unique.', {
      min: 0,
    }),
  },
);
