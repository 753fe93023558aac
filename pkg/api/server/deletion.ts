// Deleting objects, Kubernetes' way.
//
// - An object with finalizers, a pod bound to a node (given its grace period), a Foreground
//   delete and a Namespace are not removed at once: they get metadata.deletionTimestamp and
//   stay until the finalizers are gone (the agent deletes a terminating pod when its
//   containers have stopped; this file removes its own finalizers once their work is done).
// - Propagation: Background removes the object, then its dependents (objects whose
//   ownerReferences name its uid); Foreground removes the dependents first (finalizer
//   `foregroundDeletion`); Orphan removes the owner reference from the dependents and keeps
//   them.
// - A Namespace turns Terminating, everything in it is deleted, then the Namespace goes.
//
// The follow-up work (dependents, namespace contents) runs in the node that took the
// request, after the answer; each step is an ordinary idempotent delete, so a repeated
// delete resumes work a crash interrupted.

import { ApiError, ApiErrorCode, badRequest, conflict, notFound, preconditionFailed } from '../errors.js';
import { KINDS, type KindInfo } from '../kinds.js';
import { type ApiObject, rfc3339 } from '../types.js';
import type { ApiServer } from './api-server.js';
import { refOf, SYSTEM_NAMESPACES } from './names.js';

export type PropagationPolicy = 'Background' | 'Foreground' | 'Orphan';
export const PROPAGATION_POLICIES: readonly PropagationPolicy[] = ['Background', 'Foreground', 'Orphan'];

export interface DeleteOptions {
  propagationPolicy?: PropagationPolicy;
  /** Seconds a pod gets to stop; 0 deletes at once. Absent: the pod's own. */
  gracePeriodSeconds?: number;
  dryRun?: boolean;
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface DeleteResult {
  /** The object as deleted, or as it is now while it terminates. */
  object: ApiObject;
  /** False while the object terminates (finalizers, grace period). */
  deleted: boolean;
}

export const FOREGROUND_FINALIZER = 'foregroundDeletion';
export const NAMESPACE_FINALIZER = 'kubernetes';
const DEFAULT_POD_GRACE_SECONDS = 30;
const UPDATE_ATTEMPTS = 5;

export class Deleter {
  constructor(private readonly api: ApiServer) {}

  async delete(
    kind: KindInfo,
    namespace: string | undefined,
    name: string,
    options: DeleteOptions,
  ): Promise<DeleteResult> {
    const policy = options.propagationPolicy ?? 'Background';
    if (!PROPAGATION_POLICIES.includes(policy)) {
      throw badRequest(
        `propagationPolicy must be one of ${PROPAGATION_POLICIES.join(', ')}, got "${policy}"`,
      );
    }
    if (options.gracePeriodSeconds !== undefined && options.gracePeriodSeconds < 0) {
      throw badRequest(`gracePeriodSeconds must be >= 0, got ${options.gracePeriodSeconds}`);
    }
    if (kind.kind === 'Namespace' && (SYSTEM_NAMESPACES as readonly string[]).includes(name)) {
      throw new ApiError(
        ApiErrorCode.Forbidden,
        `namespace "${name}" is a system namespace and may not be deleted`,
      );
    }
    for (let attempt = 1; ; attempt++) {
      const found = await this.api.store.get(kind, namespace, name);
      if (!found) throw notFound(refOf(kind, name));
      const { object, revision } = found;
      this.checkPreconditions(kind, object, options);
      if (options.dryRun) return { object, deleted: !this.mustWait(kind, object, options, policy) };
      try {
        return await this.deleteOnce(kind, object, revision, options, policy);
      } catch (err) {
        if (!(err instanceof ApiError && err.code === ApiErrorCode.Conflict) || attempt >= UPDATE_ATTEMPTS)
          throw err;
      }
    }
  }

  private checkPreconditions(kind: KindInfo, object: ApiObject, options: DeleteOptions): void {
    const p = options.preconditions;
    const ref = refOf(kind, object.metadata.name as string);
    if (p?.uid && p.uid !== object.metadata.uid) {
      throw preconditionFailed(
        ref,
        `Precondition failed: UID in precondition: ${p.uid}, UID in object meta: ${object.metadata.uid}`,
      );
    }
    if (p?.resourceVersion && p.resourceVersion !== object.metadata.resourceVersion) {
      throw preconditionFailed(
        ref,
        `Precondition failed: ResourceVersion in precondition: ${p.resourceVersion}, ResourceVersion in object meta: ${object.metadata.resourceVersion}`,
      );
    }
  }

  /** Whether the object terminates first instead of going at once. */
  private mustWait(
    kind: KindInfo,
    object: ApiObject,
    options: DeleteOptions,
    policy: PropagationPolicy,
  ): boolean {
    if (kind.kind === 'Namespace' || policy === 'Foreground') return true;
    if ((object.metadata.finalizers ?? []).length > 0) return true;
    return podGraceSeconds(kind, object, options) > 0;
  }

  private async deleteOnce(
    kind: KindInfo,
    object: ApiObject,
    revision: number,
    options: DeleteOptions,
    policy: PropagationPolicy,
  ): Promise<DeleteResult> {
    if (policy === 'Orphan') await this.orphanDependents(object);
    if (!this.mustWait(kind, object, options, policy)) {
      const gone = await this.api.store.delete(kind, object, revision);
      if (gone === undefined) throw conflict(refOf(kind, object.metadata.name as string));
      if (policy === 'Background') this.later(() => this.deleteDependents(object));
      return { object, deleted: true };
    }
    const marked = this.markTerminating(kind, object, options, policy);
    const written = await this.api.store.update(kind, marked, revision);
    if (written === undefined) throw conflict(refOf(kind, object.metadata.name as string));
    const now = { ...marked, metadata: { ...marked.metadata, resourceVersion: String(written) } };
    if (kind.kind === 'Namespace') this.later(() => this.emptyNamespace(now));
    else if (policy === 'Foreground') this.later(() => this.finishForeground(kind, now));
    else if (policy === 'Background') this.later(() => this.deleteDependents(now));
    return { object: now, deleted: false };
  }

  /** The object with deletionTimestamp set (once) and the finalizers this delete needs. */
  private markTerminating(
    kind: KindInfo,
    object: ApiObject,
    options: DeleteOptions,
    policy: PropagationPolicy,
  ): ApiObject {
    const metadata = { ...object.metadata };
    const nowMs = this.api.now();
    const grace = podGraceSeconds(kind, object, options);
    if (!metadata.deletionTimestamp) metadata.deletionTimestamp = rfc3339(nowMs + grace * 1000);
    if (kind.kind === 'Pod') {
      // A shorter grace period on a second delete shortens the wait; a longer one does not lengthen it.
      const previous = metadata.deletionGracePeriodSeconds;
      metadata.deletionGracePeriodSeconds = previous === undefined ? grace : Math.min(previous, grace);
    }
    const finalizers = [...(metadata.finalizers ?? [])];
    if (policy === 'Foreground' && !finalizers.includes(FOREGROUND_FINALIZER))
      finalizers.push(FOREGROUND_FINALIZER);
    if (finalizers.length > 0) metadata.finalizers = finalizers;
    const next: ApiObject = { ...object, metadata };
    if (kind.kind === 'Namespace') {
      next.spec = { ...object.spec, finalizers: [NAMESPACE_FINALIZER] };
      next.status = { ...object.status, phase: 'Terminating' };
    }
    return next;
  }

  /**
   * Called by an update that leaves a terminating object without finalizers: remove it.
   * Pods still in their grace period stay until the agent (or a delete with grace 0) ends it.
   */
  async finishIfReady(kind: KindInfo, next: ApiObject, revision: number): Promise<boolean> {
    if (kind.kind === 'Pod' && (next.metadata.deletionGracePeriodSeconds ?? 0) > 0) return false;
    const gone = await this.api.store.delete(kind, next, revision);
    if (gone === undefined) throw conflict(refOf(kind, next.metadata.name as string));
    return true;
  }

  // ---- follow-up work, after the answer ----

  private later(work: () => Promise<void>): void {
    setImmediate(() => {
      work().catch((err) =>
        this.api.logger.warn({ err }, 'deletion follow-up failed; deleting the object again resumes it'),
      );
    });
  }

  /** Objects that name `owner` in their ownerReferences (same namespace, or cluster-scoped). */
  async dependentsOf(owner: ApiObject): Promise<{ kind: KindInfo; object: ApiObject }[]> {
    const uid = owner.metadata.uid;
    const out: { kind: KindInfo; object: ApiObject }[] = [];
    for (const kind of KINDS) {
      if (kind.kind === 'Event' || kind.kind === 'Namespace') continue;
      if (kind.namespaced && owner.metadata.namespace === undefined) continue;
      const { items } = await this.api.store.list(
        kind,
        kind.namespaced ? owner.metadata.namespace : undefined,
      );
      for (const object of items) {
        if (object.metadata.ownerReferences?.some((r) => r.uid === uid)) out.push({ kind, object });
      }
    }
    return out;
  }

  private async deleteDependents(owner: ApiObject): Promise<void> {
    for (const { kind, object } of await this.dependentsOf(owner)) {
      const others = (object.metadata.ownerReferences ?? []).filter((r) => r.uid !== owner.metadata.uid);
      if (others.length > 0) {
        await this.updateOwnerRefs(kind, object, others);
        continue;
      }
      await this.deleteQuietly(kind, object);
    }
  }

  private async orphanDependents(owner: ApiObject): Promise<void> {
    for (const { kind, object } of await this.dependentsOf(owner)) {
      const rest = (object.metadata.ownerReferences ?? []).filter((r) => r.uid !== owner.metadata.uid);
      await this.updateOwnerRefs(kind, object, rest);
    }
  }

  private async updateOwnerRefs(
    kind: KindInfo,
    object: ApiObject,
    refs: ApiObject['metadata']['ownerReferences'],
  ) {
    for (let attempt = 1; attempt <= UPDATE_ATTEMPTS; attempt++) {
      const found = await this.api.store.get(kind, object.metadata.namespace, object.metadata.name as string);
      if (!found) return;
      const metadata = { ...found.object.metadata, ownerReferences: refs };
      if (!refs || refs.length === 0) delete metadata.ownerReferences;
      if ((await this.api.store.update(kind, { ...found.object, metadata }, found.revision)) !== undefined)
        return;
    }
  }

  private async deleteQuietly(kind: KindInfo, object: ApiObject, options: DeleteOptions = {}): Promise<void> {
    try {
      await this.delete(kind, object.metadata.namespace, object.metadata.name as string, {
        ...options,
        preconditions: { uid: object.metadata.uid as string },
      });
    } catch (err) {
      const gone =
        err instanceof ApiError && (err.code === ApiErrorCode.NotFound || err.code === ApiErrorCode.Conflict);
      if (!gone) throw err;
    }
  }

  private async finishForeground(kind: KindInfo, owner: ApiObject): Promise<void> {
    await this.deleteDependents(owner);
    await this.waitUntil(async () => (await this.dependentsOf(owner)).length === 0);
    await this.removeFinalizer(kind, owner, FOREGROUND_FINALIZER);
  }

  private async emptyNamespace(ns: ApiObject): Promise<void> {
    const name = ns.metadata.name as string;
    const contents = KINDS.filter((k) => k.namespaced);
    const remaining = async () => {
      let n = 0;
      for (const kind of contents) n += (await this.api.store.list(kind, name)).items.length;
      return n;
    };
    for (const kind of contents) {
      for (const object of (await this.api.store.list(kind, name)).items)
        await this.deleteQuietly(kind, object);
    }
    await this.waitUntil(async () => (await remaining()) === 0);
    const nsKind = KINDS.find((k) => k.kind === 'Namespace') as KindInfo;
    const found = await this.api.store.get(nsKind, undefined, name);
    if (!found || found.object.metadata.uid !== ns.metadata.uid) return;
    const finalizers = found.object.metadata.finalizers ?? [];
    if (finalizers.length === 0) await this.api.store.delete(nsKind, found.object, found.revision);
  }

  private async removeFinalizer(kind: KindInfo, object: ApiObject, finalizer: string): Promise<void> {
    for (let attempt = 1; attempt <= UPDATE_ATTEMPTS; attempt++) {
      const found = await this.api.store.get(kind, object.metadata.namespace, object.metadata.name as string);
      if (!found || found.object.metadata.uid !== object.metadata.uid) return;
      const finalizers = (found.object.metadata.finalizers ?? []).filter((f) => f !== finalizer);
      const next: ApiObject = { ...found.object, metadata: { ...found.object.metadata, finalizers } };
      if (finalizers.length === 0) delete next.metadata.finalizers;
      try {
        await this.api.write(kind, next, found.object, found.revision, false);
        return;
      } catch (err) {
        if (!(err instanceof ApiError && err.code === ApiErrorCode.Conflict)) throw err;
      }
    }
  }

  /** Polls `done` (terminating pods may take their grace period); gives up after 10 minutes. */
  private async waitUntil(done: () => Promise<boolean>): Promise<void> {
    const deadline = this.api.now() + 10 * 60_000;
    while (!(await done())) {
      if (this.api.now() > deadline) throw new Error('dependents still exist after 10 minutes');
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** The grace period a pod bound to a node gets; 0 for everything else (deleted at once). */
function podGraceSeconds(kind: KindInfo, object: ApiObject, options: DeleteOptions): number {
  if (kind.kind !== 'Pod' || !object.spec?.nodeName) return 0;
  if (options.gracePeriodSeconds !== undefined) return options.gracePeriodSeconds;
  const own = object.spec.terminationGracePeriodSeconds;
  return typeof own === 'number' ? own : DEFAULT_POD_GRACE_SECONDS;
}
