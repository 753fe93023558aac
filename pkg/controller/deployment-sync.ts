// One reconcile of one Deployment (Kubernetes' deployment/sync.go and progress.go): finding
// or creating the new ReplicaSet and syncing revisions, scaling a ReplicaSet with its
// replica annotations and an event, pruning history, and the status with its Progressing
// and Available conditions. `d` is the Deployment as last written, so each write starts from
// the version the previous one produced.

import { ApiError, ApiErrorCode } from '../api/errors.js';
import { jsonEqual } from '../api/merge.js';
import { EventReason } from '../api/server/events.js';
import type { ApiObject, JsonObject } from '../api/types.js';
import {
  availableReplicas,
  byCreation,
  byRevision,
  computeHash,
  DeploymentCondition,
  DeploymentReason,
  deploymentSpec,
  equalIgnoreHash,
  getCondition,
  maxRevision,
  maxSurgeOf,
  maxUnavailableOf,
  newCondition,
  newRSNewReplicas,
  POD_TEMPLATE_HASH,
  REVISION,
  readyReplicas,
  removeCondition,
  replicasAnnotationsNeedUpdate,
  revisionOf,
  setCondition,
  setNewReplicaSetAnnotations,
  setReplicasAnnotations,
  specReplicas,
  statusReplicas,
  sum,
} from './deployment-util.js';
import type { ControllerContext } from './manager.js';
import { rsSpec } from './replicaset.js';
import { type Condition, controllerOf, controllerRefTo } from './replicaset-pods.js';

/** Kubernetes' "no deadline" value of progressDeadlineSeconds. */
const NO_DEADLINE = 2147483647;

export interface DeploymentStatusView {
  observedGeneration?: number;
  replicas?: number;
  updatedReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  unavailableReplicas?: number;
  conditions?: Condition[];
  collisionCount?: number;
}

const isCode = (err: unknown, code: string) => err instanceof ApiError && err.code === code;

/** Kubernetes' DeploymentComplete: every replica updated and available, generation observed. */
export function deploymentComplete(d: ApiObject, status: DeploymentStatusView): boolean {
  const n = deploymentSpec(d).replicas;
  return (
    (status.updatedReplicas ?? 0) === n &&
    (status.replicas ?? 0) === n &&
    (status.availableReplicas ?? 0) === n &&
    (status.observedGeneration ?? 0) >= (d.metadata.generation ?? 0)
  );
}

export class DeploymentSync {
  d: ApiObject;
  /** Set when the progress deadline needs a later look. */
  requeueAfterMs: number | undefined;
  /** ReplicaSets as this reconcile wrote them (by uid): newer than the cache. */
  private readonly written = new Map<string, ApiObject>();

  constructor(
    private readonly ctx: ControllerContext,
    d: ApiObject,
  ) {
    this.d = structuredClone(d);
  }

  get spec() {
    return deploymentSpec(this.d);
  }

  get status(): DeploymentStatusView {
    return (this.d.status ?? {}) as DeploymentStatusView;
  }

  private get hasProgressDeadline(): boolean {
    const p = this.spec.progressDeadlineSeconds;
    return p !== undefined && p !== NO_DEADLINE;
  }

  async updateStatus(status: DeploymentStatusView): Promise<void> {
    this.d = await this.ctx.api.update({ ...this.d, status: status as unknown as JsonObject }, {}, true);
  }

  private async setCondition(c: Condition): Promise<void> {
    await this.updateStatus({ ...this.status, conditions: setCondition(this.status.conditions ?? [], c) });
  }

  /** The revision annotation of the Deployment itself (metadata: an ordinary update). */
  private async setRevision(revision: number): Promise<void> {
    if (this.d.metadata.annotations?.[REVISION] === String(revision)) return;
    const annotations = { ...this.d.metadata.annotations, [REVISION]: String(revision) };
    this.d = await this.ctx.api.update({ ...this.d, metadata: { ...this.d.metadata, annotations } });
  }

  /** The new RS (created when asked and missing) and every other RS, revisions synced. */
  async getAllReplicaSetsAndSyncRevision(
    rsList: ApiObject[],
    create: boolean,
  ): Promise<{ newRS: ApiObject | undefined; oldRSs: ApiObject[] }> {
    rsList = rsList.map((rs) => this.written.get(rs.metadata.uid as string) ?? rs);
    const found = [...rsList]
      .sort(byCreation)
      .find((rs) => equalIgnoreHash(rsSpec(rs).template, this.spec.template));
    const oldRSs = rsList.filter((rs) => rs !== found);
    const newRS = await this.getNewReplicaSet(found, oldRSs, create);
    return { newRS, oldRSs };
  }

  private async getNewReplicaSet(
    existing: ApiObject | undefined,
    oldRSs: ApiObject[],
    create: boolean,
  ): Promise<ApiObject | undefined> {
    const spec = this.spec;
    const newRevision = maxRevision(oldRSs) + 1;
    if (existing) {
      // A rollback lands here too: the old RS becomes new and gets the next revision.
      const copy = structuredClone(existing);
      const annotationsChanged = setNewReplicaSetAnnotations(this.d, copy, newRevision, true);
      if (annotationsChanged || (rsSpec(copy).minReadySeconds ?? 0) !== spec.minReadySeconds) {
        copy.spec = { ...copy.spec, minReadySeconds: spec.minReadySeconds };
        return this.remember(await this.ctx.api.update(copy));
      }
      await this.setRevision(revisionOf(copy));
      if (
        this.hasProgressDeadline &&
        !getCondition(this.status.conditions ?? [], DeploymentCondition.Progressing)
      ) {
        const msg = `Found new replica set "${copy.metadata.name}"`;
        await this.setCondition(this.condition('True', DeploymentReason.FoundNewReplicaSet, msg));
      }
      return copy;
    }
    if (!create) return undefined;

    const hash = computeHash(spec.template, this.status.collisionCount);
    const template = structuredClone(spec.template);
    template.metadata = {
      ...template.metadata,
      labels: { ...template.metadata?.labels, [POD_TEMPLATE_HASH]: hash },
    };
    const selector = structuredClone(spec.selector ?? {});
    selector.matchLabels = { ...selector.matchLabels, [POD_TEMPLATE_HASH]: hash };
    const name = `${this.d.metadata.name}-${hash}`;
    const newRS: ApiObject = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name,
        namespace: this.d.metadata.namespace,
        labels: { ...template.metadata.labels },
        ownerReferences: [controllerRefTo(this.d)],
      },
      spec: {
        replicas: 0,
        minReadySeconds: spec.minReadySeconds,
        selector,
        template,
      } as unknown as JsonObject,
    };
    const replicas = newRSNewReplicas(this.d, [...oldRSs, newRS], newRS);
    newRS.spec = { ...newRS.spec, replicas };
    setNewReplicaSetAnnotations(this.d, newRS, newRevision, false);

    let created: ApiObject;
    let alreadyExisted = false;
    try {
      created = await this.ctx.api.create(newRS);
    } catch (err) {
      if (isCode(err, ApiErrorCode.AlreadyExists)) {
        // Ours, made by an earlier attempt the cache has not shown yet, or a hash collision.
        const rs = await this.ctx.api.get('replicasets', this.d.metadata.namespace, name);
        if (
          controllerOf(rs)?.uid === this.d.metadata.uid &&
          equalIgnoreHash(spec.template, rsSpec(rs).template)
        ) {
          created = rs;
          alreadyExisted = true;
        } else {
          await this.updateStatus({ ...this.status, collisionCount: (this.status.collisionCount ?? 0) + 1 });
          throw err;
        }
      } else {
        const msg = `Failed to create new replica set "${name}": ${(err as Error).message}`;
        if (this.hasProgressDeadline && !isCode(err, ApiErrorCode.Forbidden)) {
          await this.setCondition(this.condition('False', DeploymentReason.FailedReplicaSetCreate, msg));
        }
        this.ctx.events.recordQuietly(this.d, 'Warning', 'FailedCreate', msg);
        throw err;
      }
    }
    if (!alreadyExisted && replicas > 0) this.scalingEvent('up', name, replicas);
    await this.setRevision(newRevision);
    if (!alreadyExisted && this.hasProgressDeadline) {
      const msg = `Created new replica set "${name}"`;
      await this.setCondition(this.condition('True', DeploymentReason.NewReplicaSetCreated, msg));
    }
    return created;
  }

  private remember(rs: ApiObject): ApiObject {
    this.written.set(rs.metadata.uid as string, rs);
    return rs;
  }

  private condition(status: Condition['status'], reason: string, message: string): Condition {
    return newCondition(DeploymentCondition.Progressing, status, reason, message, this.ctx.now());
  }

  private scalingEvent(op: string, name: string, to: number): void {
    this.ctx.events.recordQuietly(
      this.d,
      'Normal',
      EventReason.ScalingReplicaSet,
      `Scaled ${op} replica set ${name} to ${to}`,
    );
  }

  async scaleReplicaSetAndRecordEvent(
    rs: ApiObject,
    newScale: number,
  ): Promise<{ scaled: boolean; rs: ApiObject }> {
    if (specReplicas(rs) === newScale) return { scaled: false, rs };
    return this.scaleReplicaSet(rs, newScale, specReplicas(rs) < newScale ? 'up' : 'down');
  }

  /** Set the size and the replica annotations; an event when the size changed. */
  async scaleReplicaSet(
    rs: ApiObject,
    newScale: number,
    op: string,
  ): Promise<{ scaled: boolean; rs: ApiObject }> {
    const resize = specReplicas(rs) !== newScale;
    const desired = this.spec.replicas;
    const max = desired + maxSurgeOf(this.d);
    if (!resize && !replicasAnnotationsNeedUpdate(rs, desired, max)) return { scaled: false, rs };
    const copy = structuredClone(rs);
    copy.spec = { ...copy.spec, replicas: newScale };
    setReplicasAnnotations(copy, desired, max);
    const updated = this.remember(await this.ctx.api.update(copy));
    if (resize) this.scalingEvent(op, rs.metadata.name as string, newScale);
    return { scaled: resize, rs: updated };
  }

  /** Delete the oldest scaled-down old ReplicaSets beyond revisionHistoryLimit. */
  async cleanupDeployment(oldRSs: ApiObject[]): Promise<void> {
    const limit = this.spec.revisionHistoryLimit;
    if (limit === undefined) return;
    const cleanable = oldRSs.filter((rs) => !rs.metadata.deletionTimestamp).sort(byRevision);
    const diff = cleanable.length - limit;
    for (const rs of cleanable.slice(0, Math.max(0, diff))) {
      const observed = Number(rs.status?.observedGeneration ?? 0);
      if (statusReplicas(rs) !== 0 || specReplicas(rs) !== 0 || (rs.metadata.generation ?? 0) > observed)
        continue;
      await this.ctx.api
        .delete('replicasets', rs.metadata.namespace, rs.metadata.name as string, {
          preconditions: { uid: rs.metadata.uid as string },
        })
        .catch((err) => {
          if (!isCode(err, ApiErrorCode.NotFound)) throw err;
        });
    }
  }

  calculateStatus(allRSs: ApiObject[], newRS: ApiObject | undefined): DeploymentStatusView {
    const available = sum(allRSs, availableReplicas);
    const status: DeploymentStatusView = {
      observedGeneration: this.d.metadata.generation ?? 0,
      replicas: sum(allRSs, statusReplicas),
      updatedReplicas: newRS ? statusReplicas(newRS) : 0,
      readyReplicas: sum(allRSs, readyReplicas),
      availableReplicas: available,
      unavailableReplicas: Math.max(0, sum(allRSs, specReplicas) - available),
      conditions: [...(this.status.conditions ?? [])],
    };
    if (this.status.collisionCount !== undefined) status.collisionCount = this.status.collisionCount;
    const now = this.ctx.now();
    const cond =
      available >= this.spec.replicas - maxUnavailableOf(this.d)
        ? newCondition(
            'Available',
            'True',
            DeploymentReason.MinimumReplicasAvailable,
            'Deployment has minimum availability.',
            now,
          )
        : newCondition(
            'Available',
            'False',
            DeploymentReason.MinimumReplicasUnavailable,
            'Deployment does not have minimum availability.',
            now,
          );
    status.conditions = setCondition(status.conditions ?? [], cond);
    return status;
  }

  /** Status without rollout conditions (paused, scaling, deleting). */
  async syncDeploymentStatus(allRSs: ApiObject[], newRS: ApiObject | undefined): Promise<void> {
    const next = this.calculateStatus(allRSs, newRS);
    if (!jsonEqual(this.status, next)) await this.updateStatus(next);
  }

  /** Status with the Progressing condition: progress, completion, or the deadline passed. */
  async syncRolloutStatus(allRSs: ApiObject[], newRS: ApiObject | undefined): Promise<void> {
    const next = this.calculateStatus(allRSs, newRS);
    const conds = () => next.conditions ?? [];
    if (!this.hasProgressDeadline)
      next.conditions = removeCondition(conds(), DeploymentCondition.Progressing);
    const current = getCondition(this.status.conditions ?? [], DeploymentCondition.Progressing);
    const complete =
      next.replicas === next.updatedReplicas && current?.reason === DeploymentReason.NewReplicaSetAvailable;
    const rsName = newRS?.metadata.name ?? '';
    if (this.hasProgressDeadline && !complete) {
      if (deploymentComplete(this.d, next)) {
        const msg = `ReplicaSet "${rsName}" has successfully progressed.`;
        next.conditions = setCondition(
          conds(),
          this.condition('True', DeploymentReason.NewReplicaSetAvailable, msg),
        );
      } else if (this.progressing(next)) {
        // Progress moves lastUpdateTime: that is what the deadline is measured from.
        const c = this.condition(
          'True',
          DeploymentReason.ReplicaSetUpdated,
          `ReplicaSet "${rsName}" is progressing.`,
        );
        if (current?.status === 'True') c.lastTransitionTime = current.lastTransitionTime;
        next.conditions = [...removeCondition(conds(), DeploymentCondition.Progressing), c];
      } else if (this.timedOut(next)) {
        const msg = `ReplicaSet "${rsName}" has timed out progressing.`;
        next.conditions = setCondition(
          conds(),
          this.condition('False', DeploymentReason.ProgressDeadlineExceeded, msg),
        );
      }
    }
    const failure = this.replicaFailure(allRSs, newRS);
    next.conditions = failure
      ? setCondition(conds(), failure)
      : removeCondition(conds(), DeploymentCondition.ReplicaFailure);
    if (jsonEqual(this.status, next)) {
      this.requeueAfterMs = this.msUntilDeadline(next);
      return;
    }
    await this.updateStatus(next);
  }

  private progressing(next: DeploymentStatusView): boolean {
    const old = this.status;
    const oldOld = (old.replicas ?? 0) - (old.updatedReplicas ?? 0);
    const newOld = (next.replicas ?? 0) - (next.updatedReplicas ?? 0);
    return (
      (next.updatedReplicas ?? 0) > (old.updatedReplicas ?? 0) ||
      newOld < oldOld ||
      (next.readyReplicas ?? 0) > (old.readyReplicas ?? 0) ||
      (next.availableReplicas ?? 0) > (old.availableReplicas ?? 0)
    );
  }

  private timedOut(next: DeploymentStatusView): boolean {
    const c = getCondition(next.conditions ?? [], DeploymentCondition.Progressing);
    if (!c || c.reason === DeploymentReason.NewReplicaSetAvailable) return false;
    if (c.reason === DeploymentReason.ProgressDeadlineExceeded) return true;
    const from = Date.parse(c.lastUpdateTime ?? '');
    return from + (this.spec.progressDeadlineSeconds ?? 0) * 1000 < this.ctx.now();
  }

  /** Kubernetes' requeueStuckDeployment: look again when the deadline would pass. */
  private msUntilDeadline(next: DeploymentStatusView): number | undefined {
    const c = getCondition(this.status.conditions ?? [], DeploymentCondition.Progressing);
    if (!this.hasProgressDeadline || !c || deploymentComplete(this.d, next)) return undefined;
    if (c.reason === DeploymentReason.ProgressDeadlineExceeded) return undefined;
    const after =
      Date.parse(c.lastUpdateTime ?? '') + (this.spec.progressDeadlineSeconds ?? 0) * 1000 - this.ctx.now();
    return after < 1000 ? 1000 : after + 1000;
  }

  private replicaFailure(allRSs: ApiObject[], newRS: ApiObject | undefined): Condition | undefined {
    const ordered = newRS ? [newRS, ...allRSs.filter((rs) => rs !== newRS)] : allRSs;
    for (const rs of ordered) {
      const c = ((rs.status?.conditions ?? []) as unknown as Condition[]).find(
        (x) => x.type === 'ReplicaFailure',
      );
      if (c) {
        const at = c.lastTransitionTime ?? '';
        return { ...c, lastUpdateTime: at, lastTransitionTime: at };
      }
    }
    return undefined;
  }

  /** Kubernetes' checkPausedConditions: Progressing says paused or resumed. */
  async checkPausedConditions(): Promise<void> {
    if (!this.hasProgressDeadline) return;
    const c = getCondition(this.status.conditions ?? [], DeploymentCondition.Progressing);
    if (c?.reason === DeploymentReason.ProgressDeadlineExceeded) return;
    const pausedShown = c?.reason === DeploymentReason.DeploymentPaused;
    if (this.spec.paused && !pausedShown) {
      await this.setCondition(
        this.condition('Unknown', DeploymentReason.DeploymentPaused, 'Deployment is paused'),
      );
    } else if (!this.spec.paused && pausedShown) {
      await this.setCondition(
        this.condition('Unknown', DeploymentReason.DeploymentResumed, 'Deployment is resumed'),
      );
    }
  }
}
