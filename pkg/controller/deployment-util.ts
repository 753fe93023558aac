// Pure helpers of the Deployment controller, after Kubernetes' pkg/controller/deployment/util:
// the pod-template hash, revision and replica annotations, maxSurge/maxUnavailable
// fenceposts, conditions, and the orders ReplicaSets are walked in.

import type { LabelSelector } from '../api/labels.js';
import { jsonEqual, LAST_APPLIED } from '../api/merge.js';
import { scaledValue } from '../api/schema/int-or-percent.js';
import { type ApiObject, rfc3339 } from '../api/types.js';
import type { PodTemplate } from './replicaset.js';
import type { Condition } from './replicaset-pods.js';

export const POD_TEMPLATE_HASH = 'pod-template-hash';
export const REVISION = 'deployment.kubernetes.io/revision';
export const REVISION_HISTORY = 'deployment.kubernetes.io/revision-history';
export const DESIRED_REPLICAS = 'deployment.kubernetes.io/desired-replicas';
export const MAX_REPLICAS = 'deployment.kubernetes.io/max-replicas';
const ROLLBACK_TO = 'deprecated.deployment.rollback.to';

/** Condition types and reasons, as Kubernetes names them. */
export const DeploymentCondition = {
  Available: 'Available',
  Progressing: 'Progressing',
  ReplicaFailure: 'ReplicaFailure',
};
export const DeploymentReason = {
  NewReplicaSetCreated: 'NewReplicaSetCreated',
  FoundNewReplicaSet: 'FoundNewReplicaSet',
  ReplicaSetUpdated: 'ReplicaSetUpdated',
  NewReplicaSetAvailable: 'NewReplicaSetAvailable',
  ProgressDeadlineExceeded: 'ProgressDeadlineExceeded',
  FailedReplicaSetCreate: 'ReplicaSetCreateError',
  MinimumReplicasAvailable: 'MinimumReplicasAvailable',
  MinimumReplicasUnavailable: 'MinimumReplicasUnavailable',
  DeploymentPaused: 'DeploymentPaused',
  DeploymentResumed: 'DeploymentResumed',
} as const;

export interface DeploymentSpecView {
  replicas: number;
  minReadySeconds: number;
  revisionHistoryLimit?: number;
  progressDeadlineSeconds?: number;
  paused: boolean;
  recreate: boolean;
  maxSurge: number | string;
  maxUnavailable: number | string;
  selector?: LabelSelector;
  template: PodTemplate;
}

export function deploymentSpec(d: ApiObject): DeploymentSpecView {
  const s = (d.spec ?? {}) as Record<string, unknown>;
  const strategy = (s.strategy ?? {}) as { type?: string; rollingUpdate?: Record<string, number | string> };
  return {
    replicas: typeof s.replicas === 'number' ? s.replicas : 1,
    minReadySeconds: typeof s.minReadySeconds === 'number' ? s.minReadySeconds : 0,
    revisionHistoryLimit: typeof s.revisionHistoryLimit === 'number' ? s.revisionHistoryLimit : undefined,
    progressDeadlineSeconds:
      typeof s.progressDeadlineSeconds === 'number' ? s.progressDeadlineSeconds : undefined,
    paused: s.paused === true,
    recreate: strategy.type === 'Recreate',
    maxSurge: strategy.rollingUpdate?.maxSurge ?? '25%',
    maxUnavailable: strategy.rollingUpdate?.maxUnavailable ?? '25%',
    selector: s.selector as LabelSelector | undefined,
    template: (s.template ?? {}) as PodTemplate,
  };
}

// ---- ReplicaSet numbers

export const specReplicas = (rs: ApiObject) => Number(rs.spec?.replicas ?? 0);
const statusNumber = (rs: ApiObject, field: string) => Number(rs.status?.[field] ?? 0);
export const statusReplicas = (rs: ApiObject) => statusNumber(rs, 'replicas');
export const readyReplicas = (rs: ApiObject) => statusNumber(rs, 'readyReplicas');
export const availableReplicas = (rs: ApiObject) => statusNumber(rs, 'availableReplicas');
/**
 * Available pods the RS keeps: at most its spec, as its own surplus goes not-ready first.
 * Scale-down arithmetic uses this, so a status not yet caught up with a scale-down (still
 * counting pods about to go) cannot let old ReplicaSets shrink below minAvailable.
 */
export const keptAvailable = (rs: ApiObject) => Math.min(availableReplicas(rs), specReplicas(rs));
export const sum = (rss: ApiObject[], f: (rs: ApiObject) => number) => rss.reduce((n, rs) => n + f(rs), 0);
export const activeReplicaSets = (rss: ApiObject[]) => rss.filter((rs) => specReplicas(rs) > 0);

// ---- fenceposts

/** maxSurge rounds up, maxUnavailable down; both 0 means maxUnavailable 1. */
export function resolveFenceposts(
  maxSurge: number | string,
  maxUnavailable: number | string,
  desired: number,
): { surge: number; unavailable: number } {
  const surge = scaledValue(maxSurge, desired, true);
  const unavailable = scaledValue(maxUnavailable, desired, false);
  return surge === 0 && unavailable === 0 ? { surge, unavailable: 1 } : { surge, unavailable };
}

export function maxSurgeOf(d: ApiObject): number {
  const s = deploymentSpec(d);
  if (s.recreate) return 0;
  return resolveFenceposts(s.maxSurge, s.maxUnavailable, s.replicas).surge;
}

export function maxUnavailableOf(d: ApiObject): number {
  const s = deploymentSpec(d);
  if (s.recreate || s.replicas === 0) return 0;
  return Math.min(resolveFenceposts(s.maxSurge, s.maxUnavailable, s.replicas).unavailable, s.replicas);
}

/** How many replicas the new RS may have now (Kubernetes' NewRSNewReplicas). */
export function newRSNewReplicas(d: ApiObject, allRSs: ApiObject[], newRS: ApiObject): number {
  const s = deploymentSpec(d);
  if (s.recreate) return s.replicas;
  const current = sum(allRSs, specReplicas);
  const maxTotal = s.replicas + maxSurgeOf(d);
  if (current >= maxTotal) return specReplicas(newRS);
  const up = Math.min(maxTotal - current, s.replicas - specReplicas(newRS));
  return specReplicas(newRS) + up;
}

// ---- hashing and templates

/** JSON with sorted keys, so equal templates hash alike whatever their key order. */
export function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** Kubernetes' ComputeHash: FNV-1a 32 of the template (and collisionCount), safe-encoded. */
export function computeHash(template: PodTemplate, collisionCount?: number): string {
  const bytes = [...Buffer.from(stableStringify(template))];
  if (collisionCount !== undefined) {
    const c = Buffer.alloc(4);
    c.writeUInt32LE(collisionCount >>> 0);
    bytes.push(...c);
  }
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return [...String(h)].map((ch) => SAFE_ALPHABET[ch.charCodeAt(0) % SAFE_ALPHABET.length]).join('');
}

function withoutHash(t: PodTemplate | undefined): PodTemplate {
  const copy = structuredClone(t ?? {});
  if (copy.metadata?.labels) delete copy.metadata.labels[POD_TEMPLATE_HASH];
  return copy;
}

export function equalIgnoreHash(a: PodTemplate | undefined, b: PodTemplate | undefined): boolean {
  return jsonEqual(withoutHash(a), withoutHash(b));
}

// ---- annotations

export function revisionOf(obj: ApiObject): number {
  const n = Number(obj.metadata.annotations?.[REVISION] ?? 0);
  return Number.isSafeInteger(n) ? n : 0;
}

export const maxRevision = (rss: ApiObject[]) => Math.max(0, ...rss.map(revisionOf));

const SKIPPED = new Set([
  LAST_APPLIED,
  REVISION,
  REVISION_HISTORY,
  DESIRED_REPLICAS,
  MAX_REPLICAS,
  ROLLBACK_TO,
]);

/** Set replica annotations on `rs` (mutated); whether anything changed. */
export function setReplicasAnnotations(rs: ApiObject, desired: number, max: number): boolean {
  const a = { ...rs.metadata.annotations };
  const changed = a[DESIRED_REPLICAS] !== String(desired) || a[MAX_REPLICAS] !== String(max);
  a[DESIRED_REPLICAS] = String(desired);
  a[MAX_REPLICAS] = String(max);
  rs.metadata.annotations = a;
  return changed;
}

export function replicasAnnotationsNeedUpdate(rs: ApiObject, desired: number, max: number): boolean {
  const a = rs.metadata.annotations ?? {};
  return a[DESIRED_REPLICAS] !== String(desired) || a[MAX_REPLICAS] !== String(max);
}

/**
 * Kubernetes' SetNewReplicaSetAnnotations on `rs` (mutated): the deployment's own
 * annotations, the revision (only ever raised; the old one goes to revision-history) and,
 * for a new RS, the replica annotations.
 */
export function setNewReplicaSetAnnotations(
  d: ApiObject,
  rs: ApiObject,
  newRevision: number,
  exists: boolean,
): boolean {
  const a = { ...rs.metadata.annotations };
  let changed = false;
  for (const [k, v] of Object.entries(d.metadata.annotations ?? {})) {
    if (SKIPPED.has(k) || a[k] === v) continue;
    a[k] = v;
    changed = true;
  }
  const old = a[REVISION];
  const oldRevision = old === undefined ? 0 : Number(old);
  if (Number.isSafeInteger(oldRevision) && oldRevision < newRevision) {
    a[REVISION] = String(newRevision);
    changed = true;
    if (old !== undefined) a[REVISION_HISTORY] = a[REVISION_HISTORY] ? `${a[REVISION_HISTORY]},${old}` : old;
  }
  rs.metadata.annotations = a;
  if (!exists) {
    const s = deploymentSpec(d);
    if (setReplicasAnnotations(rs, s.replicas, s.replicas + maxSurgeOf(d))) changed = true;
  }
  return changed;
}

export function desiredReplicasAnnotation(rs: ApiObject): number | undefined {
  const v = rs.metadata.annotations?.[DESIRED_REPLICAS];
  const n = v === undefined ? Number.NaN : Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

export function maxReplicasAnnotation(rs: ApiObject): number | undefined {
  const v = rs.metadata.annotations?.[MAX_REPLICAS];
  const n = v === undefined ? Number.NaN : Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

// ---- conditions

export function newCondition(
  type: string,
  status: Condition['status'],
  reason: string,
  message: string,
  now: number,
): Condition {
  const at = rfc3339(now);
  return { type, status, reason, message, lastUpdateTime: at, lastTransitionTime: at };
}

export const getCondition = (conditions: Condition[], type: string) =>
  conditions.find((c) => c.type === type);

/** Kubernetes' SetDeploymentCondition: same status and reason is no change; same status keeps the transition time. */
export function setCondition(conditions: Condition[], c: Condition): Condition[] {
  const current = getCondition(conditions, c.type);
  if (current && current.status === c.status && current.reason === c.reason) return conditions;
  const next = { ...c };
  if (current && current.status === c.status) next.lastTransitionTime = current.lastTransitionTime;
  return [...conditions.filter((x) => x.type !== c.type), next];
}

export const removeCondition = (conditions: Condition[], type: string) =>
  conditions.filter((c) => c.type !== type);

// ---- orders

const created = (rs: ApiObject) => Date.parse(rs.metadata.creationTimestamp ?? '') || 0;
const byName = (a: ApiObject, b: ApiObject) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '');

/** Oldest first. */
export const byCreation = (a: ApiObject, b: ApiObject) => created(a) - created(b) || byName(a, b);
/** Lowest revision first. */
export const byRevision = (a: ApiObject, b: ApiObject) => revisionOf(a) - revisionOf(b) || byCreation(a, b);
/** Largest first, newer first among equals. */
export const bySizeNewer = (a: ApiObject, b: ApiObject) =>
  specReplicas(b) - specReplicas(a) || byCreation(b, a);
/** Largest first, older first among equals. */
export const bySizeOlder = (a: ApiObject, b: ApiObject) =>
  specReplicas(b) - specReplicas(a) || byCreation(a, b);
