// What the ReplicaSet and Deployment controllers share: pod readiness and availability, the
// order pods are deleted in on scale-down, controller references and claiming (adopt orphans
// that match, release owned objects that no longer do), and expectations — Kubernetes'
// ControllerExpectations, which stop a controller from acting twice on writes its cache has
// not seen yet.

import { ApiError, ApiErrorCode } from '../api/errors.js';
import { matches, type Selector } from '../api/labels.js';
import type { ApiServer } from '../api/server/api-server.js';
import type { ApiObject, OwnerReference } from '../api/types.js';

/** Lower cost is deleted first (Kubernetes' controller.kubernetes.io/pod-deletion-cost). */
export const POD_DELETION_COST = 'controller.kubernetes.io/pod-deletion-cost';
/** Expectations older than this are given up on (a lost event must not stall a controller). */
export const EXPECTATIONS_TTL_MS = 60_000;

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastUpdateTime?: string;
  lastTransitionTime?: string;
}

interface PodStatusView {
  phase?: string;
  conditions?: Condition[];
  containerStatuses?: { restartCount?: number }[];
}

const podStatus = (pod: ApiObject) => (pod.status ?? {}) as unknown as PodStatusView;

/** Running or about to: not Succeeded/Failed and not terminating. */
export function isPodActive(pod: ApiObject): boolean {
  const phase = podStatus(pod).phase;
  return phase !== 'Succeeded' && phase !== 'Failed' && !pod.metadata.deletionTimestamp;
}

function readyCondition(pod: ApiObject): Condition | undefined {
  return podStatus(pod).conditions?.find((c) => c.type === 'Ready');
}

export function isPodReady(pod: ApiObject): boolean {
  return readyCondition(pod)?.status === 'True';
}

/** When the pod last turned Ready (ms), if it is Ready. */
export function podReadySince(pod: ApiObject): number | undefined {
  const c = readyCondition(pod);
  if (c?.status !== 'True' || !c.lastTransitionTime) return undefined;
  const t = Date.parse(c.lastTransitionTime);
  return Number.isNaN(t) ? undefined : t;
}

/** Ready for at least minReadySeconds at `now`. */
export function isPodAvailable(pod: ApiObject, minReadySeconds: number, now: number): boolean {
  if (!isPodReady(pod)) return false;
  if (minReadySeconds <= 0) return true;
  const since = podReadySince(pod);
  return since !== undefined && since + minReadySeconds * 1000 <= now;
}

/** Ms until a Ready pod becomes available; undefined when it is not Ready or already is. */
export function msUntilAvailable(pod: ApiObject, minReadySeconds: number, now: number): number | undefined {
  const since = podReadySince(pod);
  if (since === undefined || minReadySeconds <= 0) return undefined;
  const left = since + minReadySeconds * 1000 - now;
  return left > 0 ? left : undefined;
}

const PHASE_ORDINAL: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };
const timeOf = (s: string | undefined) => (s ? Date.parse(s) : 0);
const restarts = (pod: ApiObject) =>
  Math.max(0, ...(podStatus(pod).containerStatuses ?? []).map((c) => c.restartCount ?? 0));
const deletionCost = (pod: ApiObject) => {
  const v = Number(pod.metadata.annotations?.[POD_DELETION_COST] ?? 0);
  return Number.isFinite(v) ? v : 0;
};

/**
 * Kubernetes' ActivePods order: negative when `a` should be deleted before `b`. Unscheduled
 * before scheduled, Pending < Unknown < Running, not ready before ready, lower deletion cost,
 * ready for less time, more restarts, newer before older.
 */
export function compareForDeletion(a: ApiObject, b: ApiObject): number {
  const nodeA = Boolean(a.spec?.nodeName);
  const nodeB = Boolean(b.spec?.nodeName);
  if (nodeA !== nodeB) return nodeA ? 1 : -1;
  const phaseA = PHASE_ORDINAL[podStatus(a).phase ?? ''] ?? 0;
  const phaseB = PHASE_ORDINAL[podStatus(b).phase ?? ''] ?? 0;
  if (phaseA !== phaseB) return phaseA - phaseB;
  const readyA = isPodReady(a);
  if (readyA !== isPodReady(b)) return readyA ? 1 : -1;
  const cost = deletionCost(a) - deletionCost(b);
  if (cost !== 0) return cost;
  if (readyA) {
    const sinceA = podReadySince(a) ?? 0;
    const sinceB = podReadySince(b) ?? 0;
    if (sinceA !== sinceB) return sinceB - sinceA;
  }
  const r = restarts(b) - restarts(a);
  if (r !== 0) return r;
  const created = timeOf(b.metadata.creationTimestamp) - timeOf(a.metadata.creationTimestamp);
  if (created !== 0) return created;
  return (b.metadata.name ?? '').localeCompare(a.metadata.name ?? '');
}

export function controllerOf(obj: ApiObject): OwnerReference | undefined {
  return obj.metadata.ownerReferences?.find((r) => r.controller === true);
}

/** The controller reference a dependent of `owner` carries. */
export function controllerRefTo(owner: ApiObject): OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name as string,
    uid: owner.metadata.uid as string,
    controller: true,
    blockOwnerDeletion: true,
  };
}

const ignoreNotFound = (err: unknown) => {
  if (!(err instanceof ApiError && err.code === ApiErrorCode.NotFound)) throw err;
  return undefined;
};

export interface ClaimOptions {
  api: ApiServer;
  owner: ApiObject;
  /** The owner's resource (to re-read it before adopting) and the candidates' resource. */
  ownerResource: string;
  selector: Selector;
  candidates: ApiObject[];
}

/**
 * Kubernetes' ControllerRefManager: the candidates this owner controls after adopting
 * matching orphans and releasing owned objects that no longer match. Before the first
 * adoption the owner is read again: a deleted or re-created owner must not adopt.
 */
export async function claimObjects(o: ClaimOptions): Promise<ApiObject[]> {
  const uid = o.owner.metadata.uid;
  const ownerDeleting = Boolean(o.owner.metadata.deletionTimestamp);
  const claimed: ApiObject[] = [];
  let adoptChecked = false;
  for (const obj of o.candidates) {
    const ref = controllerOf(obj);
    const match = matches(o.selector, obj.metadata.labels);
    if (ref) {
      if (ref.uid !== uid) continue;
      if (match) claimed.push(obj);
      else if (!ownerDeleting) {
        const refs = (obj.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid);
        await o.api.update(withOwnerRefs(obj, refs)).catch(ignoreNotFound);
      }
      continue;
    }
    if (ownerDeleting || !match || obj.metadata.deletionTimestamp) continue;
    if (!adoptChecked) {
      const fresh = await o.api.get(
        o.ownerResource,
        o.owner.metadata.namespace,
        o.owner.metadata.name as string,
      );
      if (fresh.metadata.uid !== uid)
        throw new Error(`original ${o.owner.metadata.name} is gone: cannot adopt`);
      if (fresh.metadata.deletionTimestamp)
        throw new Error(`${o.owner.metadata.name} is being deleted: cannot adopt`);
      adoptChecked = true;
    }
    const refs = [...(obj.metadata.ownerReferences ?? []), controllerRefTo(o.owner)];
    const adopted = await o.api.update(withOwnerRefs(obj, refs)).catch(ignoreNotFound);
    if (adopted) claimed.push(adopted);
  }
  return claimed;
}

function withOwnerRefs(obj: ApiObject, refs: OwnerReference[]): ApiObject {
  const metadata = { ...obj.metadata, ownerReferences: refs };
  if (refs.length === 0) delete (metadata as { ownerReferences?: OwnerReference[] }).ownerReferences;
  return { ...obj, metadata };
}

interface Expectation {
  adds: number;
  dels: Set<string>;
  at: number;
}

/**
 * Creates and deletes a controller has made and not yet seen in its cache, per owner key.
 * While some are outstanding the owner is not resized again (its cache would count wrong);
 * they are given up after `ttlMs`.
 */
export class Expectations {
  private readonly items = new Map<string, Expectation>();

  constructor(
    private readonly now: () => number,
    private readonly ttlMs = EXPECTATIONS_TTL_MS,
  ) {}

  satisfied(key: string): boolean {
    const e = this.items.get(key);
    if (!e || (e.adds <= 0 && e.dels.size === 0)) return true;
    return this.now() - e.at > this.ttlMs;
  }

  /** Ms until outstanding expectations expire (undefined when none are outstanding). */
  msUntilExpiry(key: string): number | undefined {
    if (this.satisfied(key)) return undefined;
    const e = this.items.get(key) as Expectation;
    return Math.max(1, e.at + this.ttlMs - this.now() + 1);
  }

  expectCreations(key: string, n: number): void {
    this.items.set(key, { adds: n, dels: new Set(), at: this.now() });
  }

  expectDeletions(key: string, podKeys: string[]): void {
    this.items.set(key, { adds: 0, dels: new Set(podKeys), at: this.now() });
  }

  creationObserved(key: string, n = 1): void {
    const e = this.items.get(key);
    if (e) e.adds -= n;
  }

  deletionObserved(key: string, podKey: string): void {
    this.items.get(key)?.dels.delete(podKey);
  }

  delete(key: string): void {
    this.items.delete(key);
  }
}
