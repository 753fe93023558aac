// The namespace controller: finishes what deleting a Namespace started. A Namespace with a
// deletionTimestamp (phase Terminating) has everything in it deleted, is looked at again
// until it is empty, then loses the `kubernetes` finalizer from spec.finalizers and goes
// (the server removes a terminating object left without metadata.finalizers, as
// deletion.ts does when its own in-process follow-up gets that far).
//
// Every step is an ordinary idempotent delete or a guarded update, read fresh from the API,
// so a new leader resumes a namespace the previous one (or a crashed follow-up) left half
// done. Pods on nodes take their grace period; this controller waits for them.

import { ApiError, ApiErrorCode } from '../api/errors.js';
import { KINDS } from '../api/kinds.js';
import { NAMESPACE_FINALIZER } from '../api/server/deletion.js';
import type { ApiObject, JsonObject } from '../api/types.js';
import type { Informer } from './informer.js';
import type { ControllerContext, ControllerDefinition } from './manager.js';
import type { ReconcileResult } from './runner.js';

/** How often a terminating namespace is looked at again while its contents go (ms). */
export const NAMESPACE_RECHECK_MS = 250;

function isGone(err: unknown): boolean {
  if (!(err instanceof ApiError)) return false;
  // Not found, or a uid precondition that failed: the object we meant is gone either way.
  return (
    err.code === ApiErrorCode.NotFound ||
    (err.code === ApiErrorCode.Conflict && /UID in precondition/.test(err.message))
  );
}

class NamespaceController {
  readonly name = 'namespace';
  private readonly namespaces: Informer;

  constructor(
    private readonly ctx: ControllerContext,
    enqueue: (key: string) => void,
  ) {
    this.namespaces = ctx.informers.get('namespaces');
    const onNs = (ns: ApiObject) => {
      if (ns.metadata.deletionTimestamp) enqueue(ns.metadata.name as string);
    };
    this.namespaces.on({ add: onNs, update: (_, ns) => onNs(ns) });
  }

  initialKeys(): string[] {
    return this.namespaces
      .list()
      .filter((ns) => ns.metadata.deletionTimestamp)
      .map((ns) => ns.metadata.name as string);
  }

  async reconcile(name: string): Promise<ReconcileResult | undefined> {
    const cached = this.namespaces.get(name);
    if (!cached?.metadata.deletionTimestamp) return undefined;
    let ns: ApiObject;
    try {
      ns = await this.ctx.api.get('namespaces', undefined, name);
    } catch (err) {
      if (isGone(err)) return undefined;
      throw err;
    }
    if (!ns.metadata.deletionTimestamp) return undefined;
    const remaining = await this.deleteContents(name);
    if (remaining > 0) {
      this.ctx.logger.debug({ namespace: name, remaining }, 'namespace still has objects; waiting');
      return { requeueAfterMs: NAMESPACE_RECHECK_MS };
    }
    await this.finish(ns);
    return undefined;
  }

  /** Delete every object in the namespace not yet terminating; resolves with how many are left. */
  private async deleteContents(namespace: string): Promise<number> {
    let remaining = 0;
    for (const kind of KINDS.filter((k) => k.namespaced)) {
      const { items } = await this.ctx.api.list(kind.resource, { namespace });
      remaining += items.length;
      for (const obj of items) {
        if (obj.metadata.deletionTimestamp) continue;
        try {
          await this.ctx.api.delete(kind.resource, namespace, obj.metadata.name as string, {
            preconditions: { uid: obj.metadata.uid as string },
          });
        } catch (err) {
          if (!isGone(err)) throw err;
        }
      }
    }
    return remaining;
  }

  /** Empty: drop our finalizer; the namespace goes once no other finalizer holds it. */
  private async finish(ns: ApiObject): Promise<void> {
    const name = ns.metadata.name as string;
    const specFinalizers = (ns.spec?.finalizers as string[] | undefined) ?? [];
    if (specFinalizers.includes(NAMESPACE_FINALIZER)) {
      const spec: JsonObject = {
        ...ns.spec,
        finalizers: specFinalizers.filter((f) => f !== NAMESPACE_FINALIZER),
      };
      this.ctx.logger.info({ namespace: name }, 'namespace is empty; removing it');
      // An update that leaves a terminating object without metadata.finalizers removes it.
      await this.ctx.api.update({ ...ns, spec });
      return;
    }
    if ((ns.metadata.finalizers ?? []).length > 0) return;
    // Terminating, no finalizer of any kind, still here (an update raced ours): remove it.
    const kind = this.ctx.api.resolve('namespaces');
    const gone = await this.ctx.api.store.delete(kind, ns, Number(ns.metadata.resourceVersion));
    if (gone === undefined) throw new Error(`namespace ${name} changed while being removed; trying again`);
  }
}

/** Watches Namespaces; keys are namespace names. */
export const namespaceController: ControllerDefinition = {
  name: 'namespace',
  create(ctx, enqueue) {
    return new NamespaceController(ctx, enqueue);
  },
};
