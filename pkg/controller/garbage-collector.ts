// The garbage collector: the level-triggered sweep behind deletion.ts's one-shot follow-ups
// (which run once, in the node that took the delete, and die with it).
//
// - A dependent (an object with ownerReferences) none of whose owners exists any more is
//   deleted (Background); one that keeps some owners loses the references to the gone ones.
//   An owner "exists" when an object of its kind and name is in the dependent's namespace
//   (or cluster-scoped) with the referenced uid: same name, other uid is another object.
// - An owner terminating with the `foregroundDeletion` finalizer gets its dependents
//   deleted; once none is left the finalizer goes, and with it the owner.
// - An owner terminating with the `orphan` finalizer: its references are stripped from its
//   dependents, then the finalizer goes.
//
// Caches only decide that there may be work; before anything irreversible (deleting a
// dependent, dropping a reference, removing a finalizer) the owner or the dependents are
// read again from the API. Keys are `resource:namespace/name` (`resource:name`).

import { ApiError, ApiErrorCode } from '../api/errors.js';
import { kindOf } from '../api/kinds.js';
import { FOREGROUND_FINALIZER } from '../api/server/deletion.js';
import type { ApiObject, ObjectMeta, OwnerReference } from '../api/types.js';
import { type Informer, keyOf } from './informer.js';
import type { ControllerContext, ControllerDefinition } from './manager.js';
import type { ReconcileResult } from './runner.js';

export const ORPHAN_FINALIZER = 'orphan';
/** The kinds whose objects can have owners (and so are watched). */
export const GC_RESOURCES = [
  'pods',
  'replicasets',
  'configmaps',
  'secrets',
  'services',
  'endpoints',
  'deployments',
] as const;

const OWNER_UID_INDEX = 'garbage-collector/owner-uid';

type Owner = 'present' | 'absent' | 'unknown';

function isGone(err: unknown): boolean {
  return err instanceof ApiError && err.code === ApiErrorCode.NotFound;
}

class GarbageCollector {
  readonly name = 'garbage-collector';
  private readonly informers = new Map<string, Informer>();

  constructor(
    private readonly ctx: ControllerContext,
    private readonly enqueue: (key: string) => void,
  ) {
    for (const resource of GC_RESOURCES) {
      const inf = ctx.informers.get(resource);
      this.informers.set(resource, inf);
      inf.addIndex(OWNER_UID_INDEX, (o) => (o.metadata.ownerReferences ?? []).map((r) => r.uid));
      inf.on({
        add: (o) => this.changed(resource, o),
        update: (old, o) => {
          if (old.metadata.uid !== o.metadata.uid) this.gone(old);
          this.changed(resource, o);
          this.enqueueOwners(old);
        },
        delete: (o) => {
          this.gone(o);
          this.enqueueOwners(o);
        },
      });
    }
  }

  initialKeys(): string[] {
    const keys: string[] = [];
    for (const [resource, inf] of this.informers) {
      for (const o of inf.list()) if (this.interesting(o)) keys.push(`${resource}:${keyOf(o)}`);
    }
    return keys;
  }

  private interesting(o: ApiObject): boolean {
    return (o.metadata.ownerReferences ?? []).length > 0 || o.metadata.deletionTimestamp !== undefined;
  }

  private changed(resource: string, o: ApiObject): void {
    if (this.interesting(o)) this.enqueue(`${resource}:${keyOf(o)}`);
    this.enqueueOwners(o);
  }

  /** An object went: its dependents may be orphans now. */
  private gone(o: ApiObject): void {
    for (const d of this.dependentsInCache(o)) this.enqueue(`${d.resource}:${keyOf(d.object)}`);
  }

  /** A dependent changed or went: owners waiting on their dependents look again. */
  private enqueueOwners(o: ApiObject): void {
    for (const ref of o.metadata.ownerReferences ?? []) {
      const kind = kindOf(ref.apiVersion, ref.kind);
      if (!kind || !this.informers.has(kind.resource)) continue;
      const ns = kind.namespaced ? o.metadata.namespace : undefined;
      this.enqueue(`${kind.resource}:${ns ? `${ns}/` : ''}${ref.name}`);
    }
  }

  private dependentsInCache(owner: ApiObject): { resource: string; object: ApiObject }[] {
    const uid = owner.metadata.uid;
    if (!uid) return [];
    const out: { resource: string; object: ApiObject }[] = [];
    for (const [resource, inf] of this.informers) {
      for (const object of inf.byIndex(OWNER_UID_INDEX, uid)) {
        if (owner.metadata.namespace === undefined || object.metadata.namespace === owner.metadata.namespace)
          out.push({ resource, object });
      }
    }
    return out;
  }

  /** Dependents as the API has them now (the last word before a finalizer goes). */
  private async dependentsNow(owner: ApiObject): Promise<{ resource: string; object: ApiObject }[]> {
    const out: { resource: string; object: ApiObject }[] = [];
    for (const resource of GC_RESOURCES) {
      const { items } = await this.ctx.api.list(resource, { namespace: owner.metadata.namespace });
      for (const object of items) {
        if (object.metadata.ownerReferences?.some((r) => r.uid === owner.metadata.uid))
          out.push({ resource, object });
      }
    }
    return out;
  }

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const colon = key.indexOf(':');
    const resource = key.slice(0, colon);
    const obj = this.informers.get(resource)?.get(key.slice(colon + 1));
    if (!obj) return undefined;
    const finalizers = obj.metadata.finalizers ?? [];
    if (obj.metadata.deletionTimestamp && finalizers.includes(FOREGROUND_FINALIZER)) {
      await this.finishForeground(resource, obj);
    }
    if (obj.metadata.deletionTimestamp && finalizers.includes(ORPHAN_FINALIZER)) {
      await this.finishOrphan(resource, obj);
    }
    if ((obj.metadata.ownerReferences ?? []).length > 0) await this.collect(resource, obj);
    return undefined;
  }

  /** Whether `ref`'s owner exists: the cache may say yes; only the API may say no. */
  private async ownerState(dependent: ApiObject, ref: OwnerReference): Promise<Owner> {
    const kind = kindOf(ref.apiVersion, ref.kind);
    if (!kind) return 'unknown';
    const ns = kind.namespaced ? dependent.metadata.namespace : undefined;
    const cached = this.informers.get(kind.resource)?.get(ns ? `${ns}/${ref.name}` : ref.name);
    if (cached?.metadata.uid === ref.uid) return 'present';
    try {
      const fresh = await this.ctx.api.get(kind.resource, ns, ref.name);
      return fresh.metadata.uid === ref.uid ? 'present' : 'absent';
    } catch (err) {
      if (isGone(err)) return 'absent';
      throw err;
    }
  }

  private async collect(resource: string, obj: ApiObject): Promise<void> {
    const refs = obj.metadata.ownerReferences ?? [];
    const absent: string[] = [];
    for (const ref of refs) if ((await this.ownerState(obj, ref)) === 'absent') absent.push(ref.uid);
    if (absent.length === 0) return;
    const { namespace, name } = obj.metadata;
    if (absent.length === refs.length) {
      if (obj.metadata.deletionTimestamp) return;
      this.ctx.logger.info({ resource, namespace, name }, 'deleting an object whose owners are gone');
      // Guarded by the version read: a dependent re-owned meanwhile is looked at again instead.
      await this.deleteDependent(resource, obj, false, obj.metadata.resourceVersion);
      return;
    }
    this.ctx.logger.info({ resource, namespace, name, owners: absent }, 'dropping references to gone owners');
    await this.updateRefs(resource, obj, (r) => !absent.includes(r.uid));
  }

  private async finishForeground(resource: string, owner: ApiObject): Promise<void> {
    const uid = owner.metadata.uid as string;
    for (const d of this.dependentsInCache(owner)) {
      const others = (d.object.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid);
      if (others.length > 0) await this.updateRefs(d.resource, d.object, (r) => r.uid !== uid);
      else if (!d.object.metadata.deletionTimestamp) {
        const blocking = d.object.metadata.ownerReferences?.some(
          (r) => r.uid === uid && r.blockOwnerDeletion,
        );
        await this.deleteDependent(d.resource, d.object, blocking === true);
      }
    }
    // Dependents still terminating: their deletion events bring this owner back.
    if (this.dependentsInCache(owner).length > 0) return;
    if ((await this.dependentsNow(owner)).length > 0) return;
    await this.removeFinalizer(resource, owner, FOREGROUND_FINALIZER);
  }

  private async finishOrphan(resource: string, owner: ApiObject): Promise<void> {
    const uid = owner.metadata.uid as string;
    for (const d of this.dependentsInCache(owner))
      await this.updateRefs(d.resource, d.object, (r) => r.uid !== uid);
    for (const d of await this.dependentsNow(owner))
      await this.updateRefs(d.resource, d.object, (r) => r.uid !== uid);
    await this.removeFinalizer(resource, owner, ORPHAN_FINALIZER);
  }

  private async deleteDependent(
    resource: string,
    obj: ApiObject,
    foreground: boolean,
    resourceVersion?: string,
  ): Promise<void> {
    const { namespace, name, uid } = obj.metadata;
    try {
      await this.ctx.api.delete(resource, namespace, name as string, {
        propagationPolicy: foreground ? 'Foreground' : 'Background',
        preconditions: { uid: uid as string, ...(resourceVersion ? { resourceVersion } : {}) },
      });
    } catch (err) {
      if (isGone(err)) return;
      if (
        err instanceof ApiError &&
        err.code === ApiErrorCode.Conflict &&
        /UID in precondition/.test(err.message)
      )
        return;
      throw err;
    }
  }

  /** Keep the references `keep` accepts, on the object as it is now (same uid). */
  private async updateRefs(
    resource: string,
    obj: ApiObject,
    keep: (r: OwnerReference) => boolean,
  ): Promise<void> {
    let fresh: ApiObject;
    try {
      fresh = await this.ctx.api.get(resource, obj.metadata.namespace, obj.metadata.name as string);
    } catch (err) {
      if (isGone(err)) return;
      throw err;
    }
    if (fresh.metadata.uid !== obj.metadata.uid) return;
    const refs = fresh.metadata.ownerReferences ?? [];
    const kept = refs.filter(keep);
    if (kept.length === refs.length) return;
    const metadata: ObjectMeta = { ...fresh.metadata, ownerReferences: kept };
    if (kept.length === 0) delete metadata.ownerReferences;
    await this.ctx.api.update({ ...fresh, metadata });
  }

  private async removeFinalizer(resource: string, obj: ApiObject, finalizer: string): Promise<void> {
    let fresh: ApiObject;
    try {
      fresh = await this.ctx.api.get(resource, obj.metadata.namespace, obj.metadata.name as string);
    } catch (err) {
      if (isGone(err)) return;
      throw err;
    }
    if (fresh.metadata.uid !== obj.metadata.uid) return;
    const finalizers = (fresh.metadata.finalizers ?? []).filter((f) => f !== finalizer);
    if (finalizers.length === (fresh.metadata.finalizers ?? []).length) return;
    const metadata: ObjectMeta = { ...fresh.metadata, finalizers };
    if (finalizers.length === 0) delete metadata.finalizers;
    this.ctx.logger.info(
      { resource, namespace: fresh.metadata.namespace, name: fresh.metadata.name, finalizer },
      'removing a finalizer',
    );
    // The server removes a terminating object whose last finalizer goes.
    await this.ctx.api.update({ ...fresh, metadata });
  }
}

/** Watches GC_RESOURCES; keys are `resource:namespace/name`. */
export const garbageCollectorController: ControllerDefinition = {
  name: 'garbage-collector',
  create(ctx, enqueue) {
    return new GarbageCollector(ctx, enqueue);
  },
};
