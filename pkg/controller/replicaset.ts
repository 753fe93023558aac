// The ReplicaSet controller, after Kubernetes' pkg/controller/replicaset: keeps
// spec.replicas active pods that match the selector. It claims pods (adopts matching
// orphans, releases owned pods that stopped matching), creates missing pods in slow-start
// batches (1, 2, 4, ...), deletes surplus pods in ActivePods order, and writes status.
// Expectations keep a slow watch from causing a second round of creates or deletes.
//
//   pod/RS event ─► key ─► reconcile: claim ─► (expectations met?) create/delete ─► status

import { ApiError, ApiErrorCode } from '../api/errors.js';
import { type LabelSelector, matches, type Selector, selectorFromLabelSelector } from '../api/labels.js';
import { jsonEqual } from '../api/merge.js';
import { EventReason } from '../api/server/events.js';
import { type ApiObject, type JsonObject, rfc3339 } from '../api/types.js';
import type { Informer } from './informer.js';
import { keyOf } from './informer.js';
import type { ControllerContext, ControllerDefinition } from './manager.js';
import {
  type Condition,
  claimObjects,
  compareForDeletion,
  controllerOf,
  controllerRefTo,
  Expectations,
  isPodActive,
  isPodAvailable,
  isPodReady,
  msUntilAvailable,
} from './replicaset-pods.js';
import type { ReconcileResult, Reconciler } from './runner.js';

/** Most pods created or deleted in one reconcile (Kubernetes' burstReplicas). */
export const BURST_REPLICAS = 500;
export const REPLICA_FAILURE = 'ReplicaFailure';
export const FAILED_CREATE = 'FailedCreate';
export const FAILED_DELETE = 'FailedDelete';
/** Informer index: objects by namespace (shared by the RS and Deployment controllers). */
export const NAMESPACE_INDEX = 'namespace';

export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string>; finalizers?: string[] };
  spec?: JsonObject;
}

interface ReplicaSetSpecView {
  replicas?: number;
  minReadySeconds?: number;
  selector?: LabelSelector;
  template?: PodTemplate;
}

export const rsSpec = (rs: ApiObject) => (rs.spec ?? {}) as unknown as ReplicaSetSpecView;

export function indexByNamespace(informer: Informer): void {
  informer.addIndex(NAMESPACE_INDEX, (o) => [o.metadata.namespace ?? '']);
}

/** The pod a ReplicaSet makes from its template (Kubernetes' GetPodFromTemplate). */
export function podFromTemplate(rs: ApiObject): ApiObject {
  const t = rsSpec(rs).template ?? {};
  const metadata: ApiObject['metadata'] = {
    generateName: `${rs.metadata.name}-`,
    namespace: rs.metadata.namespace,
    labels: { ...t.metadata?.labels },
    ownerReferences: [controllerRefTo(rs)],
  };
  if (t.metadata?.annotations) metadata.annotations = { ...t.metadata.annotations };
  if (t.metadata?.finalizers) metadata.finalizers = [...t.metadata.finalizers];
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec: structuredClone(t.spec ?? {}) };
}

/** Run `fn` `count` times in batches of 1, 2, 4, ...; stop after the first batch with a failure. */
export async function slowStartBatch(
  count: number,
  initial: number,
  fn: () => Promise<unknown>,
): Promise<{ successes: number; error?: unknown }> {
  let remaining = count;
  let successes = 0;
  for (let batch = Math.min(remaining, initial); batch > 0; batch = Math.min(2 * batch, remaining)) {
    const results = await Promise.allSettled(Array.from({ length: batch }, fn));
    successes += results.filter((r) => r.status === 'fulfilled').length;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) return { successes, error: failed.reason };
    remaining -= batch;
  }
  return { successes };
}

const isCode = (err: unknown, code: string) => err instanceof ApiError && err.code === code;

export class ReplicaSetReconciler implements Reconciler {
  readonly name = 'replicaset';
  readonly expectations: Expectations;
  private readonly sets: Informer;
  private readonly pods: Informer;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly enqueue: (key: string) => void,
  ) {
    this.expectations = new Expectations(ctx.now);
    this.sets = ctx.informers.get('replicasets');
    this.pods = ctx.informers.get('pods');
    indexByNamespace(this.sets);
    indexByNamespace(this.pods);
    this.sets.on({
      add: (rs) => enqueue(keyOf(rs)),
      update: (_old, rs) => enqueue(keyOf(rs)),
      delete: (rs) => {
        this.expectations.delete(keyOf(rs));
        enqueue(keyOf(rs));
      },
    });
    this.pods.on({
      add: (pod) => this.addPod(pod),
      update: (old, pod) => this.updatePod(old, pod),
      delete: (pod) => this.deletePod(pod),
    });
  }

  initialKeys(): string[] {
    return this.sets.list().map(keyOf);
  }

  private ownerOf(pod: ApiObject): ApiObject | undefined {
    const ref = controllerOf(pod);
    if (ref?.kind !== 'ReplicaSet') return undefined;
    const rs = this.sets.get(`${pod.metadata.namespace}/${ref.name}`);
    return rs?.metadata.uid === ref.uid ? rs : undefined;
  }

  /** The ReplicaSets an orphan pod could be adopted by. */
  private setsSelecting(pod: ApiObject): ApiObject[] {
    return this.sets.byIndex(NAMESPACE_INDEX, pod.metadata.namespace ?? '').filter((rs) => {
      try {
        const selector = selectorFromLabelSelector(rsSpec(rs).selector);
        return selector.length > 0 && matches(selector, pod.metadata.labels); // empty adopts nothing
      } catch {
        return false;
      }
    });
  }

  private addPod(pod: ApiObject): void {
    // A pod already terminating when first seen (a restart) is a deletion, not a creation.
    if (pod.metadata.deletionTimestamp) {
      this.deletePod(pod);
      return;
    }
    const rs = this.ownerOf(pod);
    if (rs) {
      this.expectations.creationObserved(keyOf(rs));
      this.enqueue(keyOf(rs));
    } else if (!controllerOf(pod)) {
      for (const s of this.setsSelecting(pod)) this.enqueue(keyOf(s));
    }
  }

  private updatePod(old: ApiObject, pod: ApiObject): void {
    const labelsChanged = JSON.stringify(old.metadata.labels) !== JSON.stringify(pod.metadata.labels);
    if (pod.metadata.deletionTimestamp) {
      this.deletePod(pod);
      if (labelsChanged) this.deletePod(old);
      return;
    }
    const oldRef = controllerOf(old);
    const ref = controllerOf(pod);
    const refChanged = JSON.stringify(oldRef) !== JSON.stringify(ref);
    if (refChanged && oldRef) {
      const prev = this.ownerOf(old);
      if (prev) this.enqueue(keyOf(prev));
    }
    if (ref) {
      const rs = this.ownerOf(pod);
      if (rs) this.enqueue(keyOf(rs));
      return;
    }
    if (labelsChanged || refChanged) for (const s of this.setsSelecting(pod)) this.enqueue(keyOf(s));
  }

  private deletePod(pod: ApiObject): void {
    const rs = this.ownerOf(pod);
    if (!rs) return;
    this.expectations.deletionObserved(keyOf(rs), keyOf(pod));
    this.enqueue(keyOf(rs));
  }

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const rs = this.sets.get(key);
    if (!rs) {
      this.expectations.delete(key);
      return undefined;
    }
    let selector: Selector;
    try {
      selector = selectorFromLabelSelector(rsSpec(rs).selector);
    } catch (err) {
      this.ctx.logger.warn({ err, key }, 'replicaset has an invalid selector; ignoring it');
      return undefined;
    }
    const needsSync = this.expectations.satisfied(key) && !rs.metadata.deletionTimestamp;
    const active = this.pods.byIndex(NAMESPACE_INDEX, rs.metadata.namespace ?? '').filter(isPodActive);
    const pods = await claimObjects({
      api: this.ctx.api,
      owner: rs,
      ownerResource: 'replicasets',
      selector,
      candidates: active,
    });
    let manageErr: unknown;
    const diff = pods.length - (rsSpec(rs).replicas ?? 1);
    if (needsSync) manageErr = await this.manageReplicas(pods, rs, key, diff);
    const now = this.ctx.now();
    await this.writeStatus(rs, this.calculateStatus(rs, pods, manageErr, diff, now));
    if (manageErr) throw manageErr;
    const waits = [this.expectations.msUntilExpiry(key)];
    const minReady = rsSpec(rs).minReadySeconds ?? 0;
    for (const p of pods) if (isPodReady(p)) waits.push(msUntilAvailable(p, minReady, now));
    const next = waits.filter((w): w is number => w !== undefined);
    return next.length > 0 ? { requeueAfterMs: Math.min(...next) } : undefined;
  }

  /** Create or delete the difference; the error (if any) is returned for status and retry. */
  private async manageReplicas(
    pods: ApiObject[],
    rs: ApiObject,
    key: string,
    diff: number,
  ): Promise<unknown> {
    if (diff < 0) {
      const n = Math.min(-diff, BURST_REPLICAS);
      this.expectations.expectCreations(key, n);
      const { successes, error } = await slowStartBatch(n, 1, () => this.createPod(rs));
      // Creates never attempted or failed will not be observed: stop expecting them.
      if (n - successes > 0) this.expectations.creationObserved(key, n - successes);
      return error;
    }
    if (diff > 0) {
      const victims = [...pods].sort(compareForDeletion).slice(0, Math.min(diff, BURST_REPLICAS));
      this.expectations.expectDeletions(key, victims.map(keyOf));
      const results = await Promise.allSettled(victims.map((p) => this.deletePodOf(rs, p, key)));
      return results.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason;
    }
    return undefined;
  }

  private async createPod(rs: ApiObject): Promise<void> {
    try {
      const pod = await this.ctx.api.create(podFromTemplate(rs));
      this.ctx.events.recordQuietly(
        rs,
        'Normal',
        EventReason.SuccessfulCreate,
        `Created pod: ${pod.metadata.name}`,
      );
    } catch (err) {
      this.ctx.events.recordQuietly(
        rs,
        'Warning',
        FAILED_CREATE,
        `Error creating: ${(err as Error).message}`,
      );
      throw err;
    }
  }

  private async deletePodOf(rs: ApiObject, pod: ApiObject, key: string): Promise<void> {
    const name = pod.metadata.name as string;
    try {
      await this.ctx.api.delete('pods', pod.metadata.namespace, name, {
        preconditions: { uid: pod.metadata.uid as string },
      });
      this.ctx.events.recordQuietly(rs, 'Normal', EventReason.SuccessfulDelete, `Deleted pod: ${name}`);
    } catch (err) {
      // This deletion will not be observed (or already was): do not wait for it.
      this.expectations.deletionObserved(key, keyOf(pod));
      if (isCode(err, ApiErrorCode.NotFound)) return;
      this.ctx.events.recordQuietly(
        rs,
        'Warning',
        FAILED_DELETE,
        `Error deleting: ${(err as Error).message}`,
      );
      throw err;
    }
  }

  private calculateStatus(
    rs: ApiObject,
    pods: ApiObject[],
    manageErr: unknown,
    diff: number,
    now: number,
  ): JsonObject {
    const spec = rsSpec(rs);
    const templateLabels = Object.entries(spec.template?.metadata?.labels ?? {});
    const minReady = spec.minReadySeconds ?? 0;
    const status: Record<string, unknown> = {
      ...rs.status,
      replicas: pods.length,
      fullyLabeledReplicas: pods.filter((p) => templateLabels.every(([k, v]) => p.metadata.labels?.[k] === v))
        .length,
      readyReplicas: pods.filter(isPodReady).length,
      availableReplicas: pods.filter((p) => isPodAvailable(p, minReady, now)).length,
      observedGeneration: rs.metadata.generation ?? 0,
    };
    let conditions = [...((rs.status?.conditions ?? []) as unknown as Condition[])];
    const failure = conditions.find((c) => c.type === REPLICA_FAILURE);
    if (manageErr && !failure) {
      conditions.push({
        type: REPLICA_FAILURE,
        status: 'True',
        reason: diff < 0 ? FAILED_CREATE : FAILED_DELETE,
        message: (manageErr as Error).message ?? String(manageErr),
        lastTransitionTime: rfc3339(now),
      });
    } else if (!manageErr && failure) {
      conditions = conditions.filter((c) => c.type !== REPLICA_FAILURE);
    }
    if (conditions.length > 0) status.conditions = conditions;
    else delete status.conditions;
    return status as JsonObject;
  }

  /** Write status when it changed; on a conflict read the RS again and retry once. */
  private async writeStatus(rs: ApiObject, status: JsonObject): Promise<void> {
    if (jsonEqual(rs.status ?? {}, status)) return;
    let current = rs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.ctx.api.update({ ...current, status }, {}, true);
        return;
      } catch (err) {
        if (!isCode(err, ApiErrorCode.Conflict) || attempt >= 2) throw err;
        current = await this.ctx.api.get('replicasets', rs.metadata.namespace, rs.metadata.name as string);
        if (current.metadata.uid !== rs.metadata.uid) return;
      }
    }
  }
}

export const replicaSetController: ControllerDefinition = {
  name: 'replicaset',
  create: (ctx, enqueue) => new ReplicaSetReconciler(ctx, enqueue),
};
