// The agent's half of the local-path provisioner: a local-path PersistentVolume of this node
// that is being deleted keeps the finalizer berth.io/local-path-cleanup until its directory is
// gone. Level-triggered: each pass lists the volumes and finishes what is left, so a pass cut
// short (agent restart, conflict) is completed by the next one.
//
//   PV deleting, finalizer, local-path, node = me ─► rm -r <root>/<dir> (only directly under
//   this node's local-path root) ─► finalizer removed with a guarded update

import * as fs from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { ApiError, ApiErrorCode } from '../api/errors.js';
import type { ApiObject, ObjectMeta } from '../api/types.js';
import {
  isLocalPath,
  LOCAL_PATH_FINALIZER,
  type LocalNode,
  volumeFitsNode,
  volumePath,
} from './persistent-volumes.js';

/** The API calls a cleanup pass makes (an ApiServer has them). */
export interface VolumeApi {
  list(resource: 'persistentvolumes'): Promise<{ items: ApiObject[] }>;
  update(obj: ApiObject): Promise<ApiObject>;
}

export interface LocalPathCleanupOptions {
  api: VolumeApi;
  node: LocalNode;
  logger: Logger;
}

/** Whether this agent is to clean the PV up now. */
export function needsCleanup(pv: ApiObject, node: LocalNode): boolean {
  return (
    pv.metadata.deletionTimestamp !== undefined &&
    (pv.metadata.finalizers ?? []).includes(LOCAL_PATH_FINALIZER) &&
    isLocalPath(pv) &&
    volumeFitsNode(pv, node) &&
    // A PV without node affinity fits every node: only the node it names may clean it.
    (pv.spec as { nodeAffinity?: unknown } | undefined)?.nodeAffinity !== undefined
  );
}

/**
 * The directory to remove: the PV's path when it sits directly under the local-path root
 * (the provisioner's `<root>/pvc-<uid>_<ns>_<name>` layout); anything else is refused.
 */
export function cleanupTarget(pv: ApiObject, root: string): string | undefined {
  const path = volumePath(pv);
  if (!path) return undefined;
  const abs = resolve(path);
  const name = basename(abs);
  if (dirname(abs) !== resolve(root) || name === '' || name === '.' || name === '..') return undefined;
  return abs;
}

/** One pass: names of the volumes whose finalizer was removed. */
export async function cleanupLocalPathVolumes(o: LocalPathCleanupOptions): Promise<string[]> {
  const { items } = await o.api.list('persistentvolumes');
  const done: string[] = [];
  for (const pv of items) {
    if (!needsCleanup(pv, o.node)) continue;
    const name = pv.metadata.name as string;
    const target = cleanupTarget(pv, o.node.localPathRoot);
    if (!target) {
      // Never remove what is not ours: the finalizer stays for an administrator to judge.
      o.logger.warn(
        { pv: name, path: volumePath(pv), root: o.node.localPathRoot },
        "local-path volume is not under this node's local-path root; not removing it",
      );
      continue;
    }
    try {
      // rm does not follow a symlink planted at the target: it removes the link itself.
      await fs.rm(target, { recursive: true, force: true });
      const finalizers = (pv.metadata.finalizers ?? []).filter((f) => f !== LOCAL_PATH_FINALIZER);
      const metadata: ObjectMeta = { ...pv.metadata, finalizers };
      if (finalizers.length === 0) delete metadata.finalizers;
      // Guarded by the listed resourceVersion: a conflict waits for the next pass.
      await o.api.update({ ...pv, metadata });
      o.logger.info({ pv: name, path: target }, 'removed local-path volume');
      done.push(name);
    } catch (err) {
      if (
        err instanceof ApiError &&
        (err.code === ApiErrorCode.Conflict || err.code === ApiErrorCode.NotFound)
      )
        continue;
      o.logger.warn({ err, pv: name }, 'could not clean up local-path volume; retrying');
    }
  }
  return done;
}
