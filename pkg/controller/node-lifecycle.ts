// The node lifecycle controller, Kubernetes' in seconds: a node whose Lease stops being
// renewed for options.nodeGracePeriodMs gets its conditions set to Unknown; taints follow
// the Ready condition (Unknown → unreachable, False → not-ready, True → none); pods on a
// node with a NoExecute taint are evicted once their toleration of it runs out.
//
//   Lease renewed ─► heartbeat seen at (leader's clock) ─► stale? conditions Unknown
//   Ready condition ─► managed taints ─► NoExecute taints × pod tolerations ─► force delete
//
// Staleness is judged by when this leader saw each renewTime change, not by the renewTime
// itself: clocks of nodes may differ, and a new leader gives every node a full grace period
// from the moment it first sees it. Pods evicted from an unreachable node are deleted with
// grace 0: its agent cannot finish a graceful delete; when it comes back it finds the pods
// gone and removes their containers. From a node that reports NotReady (its agent is there)
// they are deleted gracefully.

import { NODE_LEASE_NAMESPACE } from '../agent/node-registration.js';
import { ApiError, ApiErrorCode } from '../api/errors.js';
import { EventReason } from '../api/server/events.js';
import { type ApiObject, type JsonObject, rfc3339 } from '../api/types.js';
import type { Informer } from './informer.js';
import type { ControllerContext, ControllerDefinition } from './manager.js';
import type { ReconcileResult } from './runner.js';

export const TAINT_NODE_UNREACHABLE = 'node.kubernetes.io/unreachable';
export const TAINT_NODE_NOT_READY = 'node.kubernetes.io/not-ready';
/** Reason and message of the conditions this controller sets to Unknown. */
export const NODE_STATUS_UNKNOWN = 'NodeStatusUnknown';
export const NODE_STATUS_UNKNOWN_MESSAGE = 'Berth agent stopped posting node status.';
export const NODE_STATUS_NEVER_UPDATED = 'NodeStatusNeverUpdated';
/** How often evictions paused for a full disruption are looked at again (ms). */
const FULL_DISRUPTION_RECHECK_MS = 1000;

function isReady(node: ApiObject): boolean {
  const conditions = (node.status?.conditions as { type: string; status: string }[] | undefined) ?? [];
  return conditions.some((c) => c.type === 'Ready' && c.status === 'True');
}

/** The reason of the Event recorded on a pod evicted for a NoExecute taint. */
export const TAINT_MANAGER_EVICTION = 'TaintManagerEviction';

const MANAGED_TAINTS: readonly string[] = [TAINT_NODE_UNREACHABLE, TAINT_NODE_NOT_READY];
const POD_NODE_INDEX = 'node-lifecycle/nodeName';

export interface Taint {
  key: string;
  value?: string;
  effect: string;
  timeAdded?: string;
}

export interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
  tolerationSeconds?: number;
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastHeartbeatTime?: string;
  lastTransitionTime?: string;
}

/** Whether `tol` tolerates `taint`, as Kubernetes' Toleration.ToleratesTaint. */
export function tolerates(tol: Toleration, taint: Taint): boolean {
  if (tol.effect && tol.effect !== taint.effect) return false;
  if (tol.key && tol.key !== taint.key) return false;
  if (tol.operator === 'Exists') return true;
  return !!tol.key && (tol.value ?? '') === (taint.value ?? '');
}

/**
 * How long (ms) a pod with `tolerations` may stay after NoExecute `taint` was added;
 * undefined: forever. Untolerated node-health taints get `defaultMs` (the default
 * tolerations Kubernetes' admission adds); any other untolerated taint evicts at once.
 */
export function tolerationMs(tolerations: Toleration[], taint: Taint, defaultMs: number): number | undefined {
  const matching = tolerations.filter((t) => tolerates(t, taint));
  if (matching.length === 0) return MANAGED_TAINTS.includes(taint.key) ? defaultMs : 0;
  const seconds = matching.map((t) => t.tolerationSeconds).filter((s): s is number => typeof s === 'number');
  if (seconds.length === 0) return undefined;
  return Math.max(0, Math.min(...seconds)) * 1000;
}

function conditionsOf(node: ApiObject): Condition[] {
  return (node.status?.conditions as unknown as Condition[] | undefined) ?? [];
}

function taintsOf(node: ApiObject): Taint[] {
  return (node.spec?.taints as unknown as Taint[] | undefined) ?? [];
}

const taintId = (t: Taint) => `${t.key}\u0000${t.effect}\u0000${t.timeAdded ?? ''}`;

class NodeLifecycleController {
  readonly name = 'node-lifecycle';
  private readonly nodes: Informer;
  private readonly leases: Informer;
  private readonly pods: Informer;
  /** Per node: the last renewTime seen, and when (this leader's clock). */
  private readonly heartbeats = new Map<string, { renewTime: unknown; seenAt: number }>();
  /** Per node and taint: when its toleration clock started (ms). */
  private readonly taintStarts = new Map<string, Map<string, number>>();

  constructor(
    private readonly ctx: ControllerContext,
    enqueue: (key: string) => void,
  ) {
    this.nodes = ctx.informers.get('nodes');
    this.leases = ctx.informers.get('leases');
    this.pods = ctx.informers.get('pods');
    this.pods.addIndex(POD_NODE_INDEX, (p) => (p.spec?.nodeName ? [String(p.spec.nodeName)] : []));
    const nodeName = (o: ApiObject) => o.metadata.name as string;
    this.nodes.on({
      add: (n) => {
        this.sawHeartbeat(nodeName(n), undefined, false);
        enqueue(nodeName(n));
      },
      update: (_, n) => enqueue(nodeName(n)),
      delete: (n) => {
        this.heartbeats.delete(nodeName(n));
        this.taintStarts.delete(nodeName(n));
      },
    });
    const onLease = (l: ApiObject) => {
      if (l.metadata.namespace !== NODE_LEASE_NAMESPACE) return;
      this.sawHeartbeat(nodeName(l), l.spec?.renewTime, true);
      enqueue(nodeName(l));
    };
    this.leases.on({ add: onLease, update: (_, l) => onLease(l) });
    const onPod = (p: ApiObject) => {
      if (p.spec?.nodeName) enqueue(String(p.spec.nodeName));
    };
    this.pods.on({ add: onPod, update: (_, p) => onPod(p) });
  }

  initialKeys(): string[] {
    return this.nodes.list().map((n) => n.metadata.name as string);
  }

  /** A heartbeat counts from when this leader saw the renewTime change (or saw the node first). */
  private sawHeartbeat(name: string, renewTime: unknown, fromLease: boolean): void {
    const prev = this.heartbeats.get(name);
    if (prev && (!fromLease || prev.renewTime === renewTime)) return;
    // A leader that has just taken over gives every node a second grace period: heartbeats
    // that were in flight to the old leader may have stalled during the election.
    const seenAt = prev ? this.ctx.now() : this.ctx.now() + this.ctx.options.nodeGracePeriodMs;
    this.heartbeats.set(name, { renewTime, seenAt: Math.max(seenAt, prev?.seenAt ?? 0) });
  }

  async reconcile(name: string): Promise<ReconcileResult | undefined> {
    let node = this.nodes.get(name);
    if (!node) return undefined;
    const now = this.ctx.now();
    if (!this.heartbeats.has(name)) this.sawHeartbeat(name, undefined, false);
    const staleAt = (this.heartbeats.get(name)?.seenAt ?? now) + this.ctx.options.nodeGracePeriodMs;
    if (now >= staleAt) node = await this.markUnknown(node, now);
    node = await this.syncTaints(node, now);
    const nextEviction = await this.evictPods(node, now);
    const waits = [nextEviction, now < staleAt ? staleAt - now : undefined].filter(
      (w): w is number => w !== undefined,
    );
    return waits.length > 0 ? { requeueAfterMs: Math.min(...waits) + 1 } : undefined;
  }

  /** Every condition of a node that stopped heartbeating becomes Unknown. */
  private async markUnknown(cached: ApiObject, now: number): Promise<ApiObject> {
    const changed = (node: ApiObject): Condition[] | undefined => {
      const conditions = conditionsOf(node);
      const at = rfc3339(now);
      const next = conditions.map((c) =>
        c.status === 'Unknown'
          ? c
          : {
              ...c,
              status: 'Unknown',
              reason: NODE_STATUS_UNKNOWN,
              message: NODE_STATUS_UNKNOWN_MESSAGE,
              lastTransitionTime: at,
            },
      );
      if (!next.some((c) => c.type === 'Ready')) {
        next.push({
          type: 'Ready',
          status: 'Unknown',
          reason: NODE_STATUS_NEVER_UPDATED,
          message: 'Berth agent never posted node status.',
          lastHeartbeatTime: at,
          lastTransitionTime: at,
        });
      }
      return next.some((c, i) => c !== conditions[i]) ? next : undefined;
    };
    if (!changed(cached)) return cached;
    const node = await this.ctx.api.get('nodes', undefined, cached.metadata.name as string);
    const conditions = changed(node);
    if (!conditions) return node;
    this.ctx.logger.info(
      { node: node.metadata.name },
      'node stopped heartbeating; its status is now Unknown',
    );
    const status = { ...node.status, conditions: conditions as unknown as JsonObject[] };
    return this.ctx.api.update({ ...node, status }, {}, true);
  }

  /** The node-health taints the Ready condition calls for; other taints are left as they are. */
  private wantedTaints(node: ApiObject, now: number): Taint[] {
    const ready = conditionsOf(node).find((c) => c.type === 'Ready');
    const key =
      ready?.status === 'Unknown'
        ? TAINT_NODE_UNREACHABLE
        : ready?.status === 'False'
          ? TAINT_NODE_NOT_READY
          : undefined;
    const taints = taintsOf(node);
    const kept = taints.filter((t) => !MANAGED_TAINTS.includes(t.key) || t.key === key);
    if (!key) return kept;
    for (const effect of ['NoSchedule', 'NoExecute']) {
      if (!kept.some((t) => t.key === key && t.effect === effect)) {
        kept.push(effect === 'NoExecute' ? { key, effect, timeAdded: rfc3339(now) } : { key, effect });
      }
    }
    return kept;
  }

  private async syncTaints(cached: ApiObject, now: number): Promise<ApiObject> {
    if (sameTaints(taintsOf(cached), this.wantedTaints(cached, now))) return cached;
    const node = await this.ctx.api.get('nodes', undefined, cached.metadata.name as string);
    const before = taintsOf(node);
    const taints = this.wantedTaints(node, now);
    if (sameTaints(before, taints)) return node;
    const spec: JsonObject = { ...node.spec, taints: taints as unknown as JsonObject[] };
    if (taints.length === 0) delete spec.taints;
    const written = await this.ctx.api.update({ ...node, spec });
    const name = node.metadata.name as string;
    for (const t of taints) {
      if (!before.some((b) => taintId(b) === taintId(t))) this.startsOf(name).set(taintId(t), now);
    }
    const wasHealthy = !before.some((t) => MANAGED_TAINTS.includes(t.key));
    const isHealthy = !taints.some((t) => MANAGED_TAINTS.includes(t.key));
    if (wasHealthy !== isHealthy) {
      const reason = isHealthy ? EventReason.NodeReady : EventReason.NodeNotReady;
      this.ctx.logger.info({ node: name, taints }, isHealthy ? 'node is ready again' : 'node is not ready');
      this.ctx.events.recordQuietly(written, 'Normal', reason, `Node ${name} status is now: ${reason}`);
    }
    return written;
  }

  private startsOf(node: string): Map<string, number> {
    let m = this.taintStarts.get(node);
    if (!m) {
      m = new Map();
      this.taintStarts.set(node, m);
    }
    return m;
  }

  /**
   * When a taint's toleration clock started: exact if this leader added or first saw it,
   * else the end of its timeAdded second (never early; at most a second late).
   */
  private taintStart(node: string, taint: Taint, now: number): number {
    const starts = this.startsOf(node);
    const id = taintId(taint);
    let at = starts.get(id);
    if (at === undefined) {
      const added = taint.timeAdded ? Date.parse(taint.timeAdded) : Number.NaN;
      at = Number.isFinite(added) ? Math.min(now, added + 999) : now;
      starts.set(id, at);
    }
    return at;
  }

  /** Evict the pods whose tolerations ran out; resolves with the ms until the next deadline. */
  private async evictPods(node: ApiObject, now: number): Promise<number | undefined> {
    const name = node.metadata.name as string;
    const noExecute = taintsOf(node).filter((t) => t.effect === 'NoExecute');
    const live = new Set(noExecute.map(taintId));
    const starts = this.startsOf(name);
    for (const id of [...starts.keys()]) if (!live.has(id)) starts.delete(id);
    if (noExecute.length === 0) return undefined;
    // Full disruption (Kubernetes' rule): when no node is Ready, the likelier fault is the
    // control plane's view, not every machine; evicting would only empty the cluster.
    const all = this.nodes.list();
    if (all.length > 0 && all.every((n) => !isReady(n))) {
      this.ctx.logger.warn({ node: name }, 'no node is Ready: evictions paused (full disruption)');
      return FULL_DISRUPTION_RECHECK_MS;
    }
    const unreachable = noExecute.some((t) => t.key === TAINT_NODE_UNREACHABLE);
    let next: number | undefined;
    for (const pod of this.pods.byIndex(POD_NODE_INDEX, name)) {
      const tolerations = (pod.spec?.tolerations as unknown as Toleration[] | undefined) ?? [];
      let deadline: number | undefined;
      for (const taint of noExecute) {
        const ms = tolerationMs(tolerations, taint, this.ctx.options.podEvictionTimeoutMs);
        if (ms !== undefined)
          deadline = Math.min(deadline ?? Infinity, this.taintStart(name, taint, now) + ms);
      }
      // A pod deleted gracefully on an unreachable node would wait forever for its agent.
      const deleting = pod.metadata.deletionTimestamp
        ? Date.parse(pod.metadata.deletionTimestamp)
        : Number.NaN;
      if (unreachable && Number.isFinite(deleting)) deadline = Math.min(deadline ?? Infinity, deleting);
      // A reachable agent finishes a pod already terminating; deleting it again would only loop.
      else if (pod.metadata.deletionTimestamp) continue;
      if (deadline === undefined) continue;
      if (deadline <= now) await this.evict(pod, name, unreachable);
      else next = Math.min(next ?? Infinity, deadline - now);
    }
    return next;
  }

  /**
   * Delete an evicted pod: at once (grace 0) from an unreachable node, whose agent cannot
   * finish a graceful delete; with the pod's own grace period from a reachable one.
   */
  private async evict(pod: ApiObject, node: string, force: boolean): Promise<void> {
    const { namespace, name, uid } = pod.metadata;
    this.ctx.logger.info(
      { pod: `${namespace}/${name}`, node, force },
      'evicting a pod from a NoExecute-tainted node',
    );
    this.ctx.events.recordQuietly(
      pod,
      'Normal',
      TAINT_MANAGER_EVICTION,
      `Marking for deletion Pod ${namespace}/${name}`,
    );
    try {
      await this.ctx.api.delete('pods', namespace, name as string, {
        ...(force ? { gracePeriodSeconds: 0 } : {}),
        preconditions: { uid: uid as string },
      });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.code === ApiErrorCode.NotFound) return;
      // A uid precondition that fails means the pod was replaced: ours is gone.
      if (err.code === ApiErrorCode.Conflict && /UID in precondition/.test(err.message)) return;
      throw err;
    }
  }
}

function sameTaints(a: Taint[], b: Taint[]): boolean {
  return a.length === b.length && a.every((t, i) => b[i] !== undefined && taintId(t) === taintId(b[i]));
}

/**
 * Watches Nodes, node Leases and Pods; keys are node names. Needs options.nodeGracePeriodMs
 * and options.podEvictionTimeoutMs; re-checks deadlines with requeueAfterMs.
 */
export const nodeLifecycleController: ControllerDefinition = {
  name: 'node-lifecycle',
  create(ctx, enqueue) {
    return new NodeLifecycleController(ctx, enqueue);
  },
};
