// The HorizontalPodAutoscaler controller, after Kubernetes' pkg/controller/podautoscaler:
// every sync period (15 s; ControllerOptions.hpaSyncPeriodMs) and on each spec change, an
// autoscaler reads its target's scale (a Deployment's or ReplicaSet's spec.replicas and
// selector) from the cache, the selected pods, and their usage from the PodMetricsSource;
// hpa-core.ts decides; the target's spec.replicas is written (guarded by resourceVersion)
// and the autoscaler's status with it.
//
//   hpa add / spec change ─► key         every key ─► again after the sync period
//   reconcile: target ─► pods + samples ─► decide() ─► update target ─► event ─► UpdateStatus
//
// The recommendations and scale events behind the stabilization window and the rate
// policies live in memory, as in Kubernetes: a new leader starts them afresh (and its
// scale-down window with the current count, so a leader change does not scale down).

import { type LabelSelector, matches, type Selector, selectorFromLabelSelector } from '../api/labels.js';
import { jsonEqual } from '../api/merge.js';
import { defaultScalingRulesOf } from '../api/schema/autoscaling.js';
import { tryParseQuantity } from '../api/schema/quantity.js';
import type { ApiObject, JsonObject, JsonValue } from '../api/types.js';
import { rfc3339 } from '../api/types.js';
import {
  ABLE_TO_SCALE,
  type Behavior,
  type ConditionInput,
  type Decision,
  decide,
  emptyHistory,
  type HpaHistory,
  type HpaPod,
  type HpaSpecCore,
  type MetricStatusOut,
  type PodSample,
  REASON_FAILED_COMPUTE_METRICS_REPLICAS,
  REASON_FAILED_GET_SCALE,
  REASON_FAILED_UPDATE_SCALE,
  REASON_SUCCEEDED_RESCALE,
  type ResourceMetric,
  type ResourceName,
  type ScalingRules,
} from './hpa-core.js';
import { type Informer, keyOf } from './informer.js';
import type { ControllerContext, ControllerDefinition } from './manager.js';
import type { PodMetricsSource } from './pod-metrics.js';
import { indexByNamespace, NAMESPACE_INDEX } from './replicaset.js';
import type { ReconcileResult, Reconciler } from './runner.js';

export const DEFAULT_HPA_SYNC_PERIOD_MS = 15_000;
export const EVENT_SUCCESSFUL_RESCALE = 'SuccessfulRescale';

const TARGET_RESOURCES: Readonly<Record<string, string>> = {
  Deployment: 'deployments',
  ReplicaSet: 'replicasets',
};

type Obj = Record<string, unknown>;
const asObj = (v: unknown): Obj =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {};
const asList = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const timeMs = (v: unknown): number | undefined => {
  const t = typeof v === 'string' ? Date.parse(v) : Number.NaN;
  return Number.isNaN(t) ? undefined : t;
};

/** A quantity in the core's units: millicores for cpu, bytes for memory. */
function amount(resource: ResourceName, q: unknown): number | undefined {
  const v = tryParseQuantity(q);
  if (v === undefined) return undefined;
  return resource === 'cpu' ? v * 1000 : v;
}

function rulesOf(v: unknown, direction: 'up' | 'down'): ScalingRules {
  const d = defaultScalingRulesOf(direction);
  const r = asObj(v);
  return {
    stabilizationWindowSeconds:
      typeof r.stabilizationWindowSeconds === 'number'
        ? r.stabilizationWindowSeconds
        : d.stabilizationWindowSeconds,
    selectPolicy: (typeof r.selectPolicy === 'string'
      ? r.selectPolicy
      : d.selectPolicy) as ScalingRules['selectPolicy'],
    policies: (Array.isArray(r.policies) ? r.policies : d.policies) as ScalingRules['policies'],
  };
}

/** The stored spec (validated and defaulted by the API server) in the core's terms. */
export function hpaSpecOf(hpa: ApiObject): HpaSpecCore {
  const spec = asObj(hpa.spec);
  const metrics: ResourceMetric[] = [];
  for (const m of asList(spec.metrics)) {
    const r = asObj(asObj(m).resource);
    const name = r.name === 'memory' ? 'memory' : 'cpu';
    const t = asObj(r.target);
    const value = amount(name, t.averageValue);
    metrics.push({
      name,
      target:
        t.type === 'AverageValue'
          ? { type: 'AverageValue', ...(value !== undefined ? { averageValue: value } : {}) }
          : { type: 'Utilization', averageUtilization: Number(t.averageUtilization) },
    });
  }
  const behavior = asObj(spec.behavior);
  const b: Behavior = {
    scaleUp: rulesOf(behavior.scaleUp, 'up'),
    scaleDown: rulesOf(behavior.scaleDown, 'down'),
  };
  return {
    minReplicas: typeof spec.minReplicas === 'number' ? spec.minReplicas : 1,
    maxReplicas: typeof spec.maxReplicas === 'number' ? spec.maxReplicas : 1,
    metrics,
    behavior: b,
  };
}

/** What the calculator needs of a pod. */
export function hpaPodOf(pod: ApiObject): HpaPod {
  const status = asObj(pod.status);
  const ready = asList(status.conditions)
    .map(asObj)
    .find((c) => c.type === 'Ready');
  const start = timeMs(status.startTime);
  const containers = asList(asObj(pod.spec).containers).map((c) => {
    const requests = asObj(asObj(asObj(c).resources).requests);
    const cpu = amount('cpu', requests.cpu);
    const memory = amount('memory', requests.memory);
    return {
      name: String(asObj(c).name ?? ''),
      requests: { ...(cpu !== undefined ? { cpu } : {}), ...(memory !== undefined ? { memory } : {}) },
    };
  });
  return {
    name: pod.metadata.name ?? '',
    phase: typeof status.phase === 'string' ? status.phase : 'Pending',
    deleting: pod.metadata.deletionTimestamp !== undefined,
    ...(start !== undefined ? { startTimeMs: start } : {}),
    ...(ready
      ? {
          ready: {
            status: String(ready.status ?? 'Unknown'),
            lastTransitionMs: timeMs(ready.lastTransitionTime) ?? 0,
          },
        }
      : {}),
    containers,
  };
}

/** A quantity as Kubernetes prints it: `250m` of cpu, `128Mi` or bytes of memory. */
export function formatAmount(resource: ResourceName, v: number): string {
  if (resource === 'cpu') return `${Math.round(v)}m`;
  const bytes = Math.round(v);
  if (bytes !== 0 && bytes % 2 ** 20 === 0) return `${bytes / 2 ** 20}Mi`;
  if (bytes !== 0 && bytes % 1024 === 0) return `${bytes / 1024}Ki`;
  return String(bytes);
}

function metricStatusJson(s: MetricStatusOut): JsonObject {
  const current: JsonObject = {};
  if (s.current?.averageUtilization !== undefined) current.averageUtilization = s.current.averageUtilization;
  if (s.current !== undefined) current.averageValue = formatAmount(s.name, s.current.averageValue);
  return { type: 'Resource', resource: { name: s.name, current } };
}

/** Conditions with `updates` applied; lastTransitionTime moves only when the status does. */
export function setConditions(
  existing: unknown,
  updates: readonly ConditionInput[],
  now: string,
): JsonObject[] {
  const out = asList(existing).map((c) => ({ ...asObj(c) }) as JsonObject);
  for (const u of updates) {
    const i = out.findIndex((c) => c.type === u.type);
    const prev = i >= 0 ? out[i] : undefined;
    const next: JsonObject = {
      type: u.type,
      status: u.status,
      lastTransitionTime: prev && prev.status === u.status ? (prev.lastTransitionTime as JsonValue) : now,
      reason: u.reason,
      message: u.message,
    };
    if (i >= 0) out[i] = next;
    else out.push(next);
  }
  const order = ['AbleToScale', 'ScalingActive', 'ScalingLimited'];
  const rank = (t: unknown) => {
    const r = order.indexOf(String(t));
    return r < 0 ? order.length : r;
  };
  return out.sort((a, b) => rank(a.type) - rank(b.type));
}

const sampleOf = (m: {
  timestamp: number;
  windowMs?: number;
  containers: { cpuMillicores: number; memoryBytes: number }[];
}): PodSample => ({
  timestampMs: m.timestamp,
  windowMs: m.windowMs ?? 0,
  cpuMillicores: m.containers.reduce((s, c) => s + c.cpuMillicores, 0),
  memoryBytes: m.containers.reduce((s, c) => s + c.memoryBytes, 0),
});

export class HorizontalPodAutoscalerReconciler implements Reconciler {
  readonly name = 'horizontal-pod-autoscaler';
  private readonly hpas: Informer;
  private readonly pods: Informer;
  private readonly targets: Record<string, Informer>;
  /** Per autoscaler uid: recommendations and scale events. */
  private readonly history = new Map<string, HpaHistory>();
  private readonly periodMs: number;
  private readonly metrics: PodMetricsSource | undefined;

  constructor(
    private readonly ctx: ControllerContext,
    enqueue: (key: string) => void,
  ) {
    this.periodMs = ctx.options.hpaSyncPeriodMs ?? DEFAULT_HPA_SYNC_PERIOD_MS;
    this.metrics = ctx.options.podMetrics;
    this.hpas = ctx.informers.get('horizontalpodautoscalers');
    this.pods = ctx.informers.get('pods');
    this.targets = {
      Deployment: ctx.informers.get('deployments'),
      ReplicaSet: ctx.informers.get('replicasets'),
    };
    indexByNamespace(this.pods);
    this.hpas.on({
      add: (h) => enqueue(keyOf(h)),
      // Our own status writes come back as updates: only a spec change is news.
      update: (old, h) => {
        if (old.metadata.generation !== h.metadata.generation) enqueue(keyOf(h));
      },
      delete: (h) => this.history.delete(h.metadata.uid ?? ''),
    });
  }

  initialKeys(): string[] {
    return this.hpas.list().map(keyOf);
  }

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const hpa = this.hpas.get(key);
    if (!hpa) return undefined;
    if (hpa.metadata.deletionTimestamp) return undefined;
    const again = { requeueAfterMs: this.periodMs };
    const nowMs = this.ctx.now();
    const now = rfc3339(nowMs);
    const ns = hpa.metadata.namespace ?? 'default';
    const ref = asObj(asObj(hpa.spec).scaleTargetRef);
    const kind = String(ref.kind ?? '');
    const targetName = String(ref.name ?? '');
    const target = this.targets[kind]?.get(`${ns}/${targetName}`);
    if (!target) {
      const resource = TARGET_RESOURCES[kind] ?? kind.toLowerCase();
      const message = `the HPA controller was unable to get the target's current scale: ${resource}${kind === 'Deployment' || kind === 'ReplicaSet' ? '.apps' : ''} "${targetName}" not found`;
      this.ctx.events.recordQuietly(hpa, 'Warning', REASON_FAILED_GET_SCALE, message);
      await this.writeStatus(hpa, {
        currentReplicas: 0,
        desiredReplicas: 0,
        conditions: setConditions(
          asObj(hpa.status).conditions,
          [{ type: ABLE_TO_SCALE, status: 'False', reason: REASON_FAILED_GET_SCALE, message }],
          now,
        ),
      });
      return again;
    }

    const spec = hpaSpecOf(hpa);
    const targetSpec = asObj(target.spec);
    const specReplicas = typeof targetSpec.replicas === 'number' ? targetSpec.replicas : 1;
    const statusReplicas = Number(asObj(target.status).replicas ?? 0);
    let selector: Selector;
    try {
      selector = selectorFromLabelSelector(targetSpec.selector as LabelSelector | undefined);
    } catch {
      selector = [];
    }
    const pods = this.pods
      .byIndex(NAMESPACE_INDEX, ns)
      .filter((p) => selector.length > 0 && matches(selector, p.metadata.labels));
    const samples = new Map<string, PodSample>();
    let samplesError: string | undefined;
    if (!this.metrics) samplesError = 'no pod metrics source is configured';
    else if (selector.length > 0) {
      try {
        for (const m of await this.metrics.podMetrics(ns, selector)) samples.set(m.pod, sampleOf(m));
      } catch (err) {
        samplesError = err instanceof Error ? err.message : String(err);
      }
    }

    const uid = hpa.metadata.uid ?? key;
    const decision = decide({
      nowMs,
      spec,
      currentReplicas: specReplicas,
      pods: pods.map(hpaPodOf),
      samples,
      ...(samplesError !== undefined ? { samplesError } : {}),
      history: this.history.get(uid) ?? emptyHistory(),
    });
    if (decision.error !== undefined) {
      const failed = decision.conditions.find((c) => c.status === 'False');
      if (failed)
        this.ctx.events.recordQuietly(
          hpa,
          'Warning',
          failed.reason,
          failed.message.replace(/^the HPA was unable to compute the replica count: /, ''),
        );
      this.ctx.events.recordQuietly(hpa, 'Warning', REASON_FAILED_COMPUTE_METRICS_REPLICAS, decision.error);
    }

    let conditions = setConditions(asObj(hpa.status).conditions, decision.conditions, now);
    let lastScaleTime = asObj(hpa.status).lastScaleTime as JsonValue | undefined;
    if (decision.rescale) {
      const ok = await this.rescale(hpa, target, decision);
      conditions = setConditions(conditions, [ok], now);
      if (ok.status === 'True') lastScaleTime = now;
      // A failed write made no scale event: keep the recommendation, not the event.
      const before = this.history.get(uid) ?? emptyHistory();
      this.history.set(
        uid,
        ok.status === 'True'
          ? decision.history
          : {
              ...decision.history,
              scaleUpEvents: before.scaleUpEvents,
              scaleDownEvents: before.scaleDownEvents,
            },
      );
    } else this.history.set(uid, decision.history);

    await this.writeStatus(hpa, {
      currentReplicas: statusReplicas,
      desiredReplicas: decision.desiredReplicas,
      ...(lastScaleTime !== undefined ? { lastScaleTime } : {}),
      ...(decision.statuses.length > 0 ? { currentMetrics: decision.statuses.map(metricStatusJson) } : {}),
      conditions,
    });
    return again;
  }

  /** Writes the target's spec.replicas; the AbleToScale condition that says how it went. */
  private async rescale(hpa: ApiObject, target: ApiObject, d: Decision): Promise<ConditionInput> {
    try {
      // The cached target carries its resourceVersion: a stale cache fails with a conflict.
      await this.ctx.api.update({ ...target, spec: { ...target.spec, replicas: d.desiredReplicas } });
    } catch (err) {
      const message = `the HPA controller was unable to update the target scale: ${err instanceof Error ? err.message : String(err)}`;
      this.ctx.events.recordQuietly(hpa, 'Warning', REASON_FAILED_UPDATE_SCALE, message);
      return { type: ABLE_TO_SCALE, status: 'False', reason: REASON_FAILED_UPDATE_SCALE, message };
    }
    this.ctx.events.recordQuietly(
      hpa,
      'Normal',
      EVENT_SUCCESSFUL_RESCALE,
      `New size: ${d.desiredReplicas}; reason: ${d.rescaleReason}`,
    );
    this.ctx.logger.info(
      { hpa: keyOf(hpa), target: keyOf(target), replicas: d.desiredReplicas, reason: d.rescaleReason },
      'rescaled',
    );
    return {
      type: ABLE_TO_SCALE,
      status: 'True',
      reason: REASON_SUCCEEDED_RESCALE,
      message: `the HPA controller was able to update the target scale to ${d.desiredReplicas}`,
    };
  }

  private async writeStatus(hpa: ApiObject, fields: JsonObject): Promise<void> {
    const status: JsonObject = {
      ...(hpa.metadata.generation !== undefined ? { observedGeneration: hpa.metadata.generation } : {}),
      ...fields,
    };
    if (jsonEqual(hpa.status ?? {}, status)) return;
    await this.ctx.api.update({ ...hpa, status }, {}, true);
  }
}

export const horizontalPodAutoscalerController: ControllerDefinition = {
  name: 'horizontal-pod-autoscaler',
  create: (ctx, enqueue) => new HorizontalPodAutoscalerReconciler(ctx, enqueue),
};
