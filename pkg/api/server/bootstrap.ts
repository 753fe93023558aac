// What exists from the start: the system namespaces and the default StorageClass
// `local-path`. Every node creates them when it starts (an existing one is left alone),
// retrying until the cluster has a leader, so a cluster of any age has them without a
// separate setup step.

import type { Logger } from 'pino';
import { ApiError, ApiErrorCode } from '../errors.js';
import { DEFAULT_CLASS_ANNOTATION, LOCAL_PATH_CLASS, LOCAL_PATH_PROVISIONER } from '../storage.js';
import type { ApiObject } from '../types.js';
import type { ApiServer } from './api-server.js';
import { SYSTEM_NAMESPACES } from './names.js';

export async function ensureSystemNamespaces(
  api: ApiServer,
  logger: Logger,
  signal: AbortSignal,
): Promise<void> {
  for (const name of SYSTEM_NAMESPACES) {
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        if (await api.store.get(api.resolve('namespaces'), undefined, name)) break;
        await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
        logger.info({ namespace: name }, 'created namespace');
        break;
      } catch (err) {
        if (err instanceof ApiError && err.code === ApiErrorCode.AlreadyExists) break;
        if (attempt % 20 === 0) logger.warn({ err, namespace: name }, 'cannot create a system namespace yet');
        await new Promise((r) => setTimeout(r, Math.min(1000, 100 * attempt)));
      }
    }
  }
}

/** The built-in default StorageClass, as k3s ships rancher's local-path-provisioner. */
export function localPathStorageClass(): ApiObject {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: LOCAL_PATH_CLASS, annotations: { [DEFAULT_CLASS_ANNOTATION]: 'true' } },
    provisioner: LOCAL_PATH_PROVISIONER,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'WaitForFirstConsumer',
  };
}

/**
 * The StorageClass `local-path` (default, provisioner berth.io/local-path) is created when
 * absent, retrying until the cluster has a leader; one that exists, a user's edits
 * included, is left alone. A user who deletes it gets it back when a node restarts (as
 * k3s does); to keep another class the default, remove the annotation from this one.
 */
export async function ensureDefaultStorageClass(
  api: ApiServer,
  logger: Logger,
  signal: AbortSignal,
): Promise<void> {
  for (let attempt = 1; !signal.aborted; attempt++) {
    try {
      if (await api.store.get(api.resolve('storageclasses'), undefined, LOCAL_PATH_CLASS)) return;
      await api.create(localPathStorageClass());
      logger.info({ storageClass: LOCAL_PATH_CLASS }, 'created the default storage class');
      return;
    } catch (err) {
      if (err instanceof ApiError && err.code === ApiErrorCode.AlreadyExists) return;
      if (attempt % 20 === 0) logger.warn({ err }, 'cannot create the default storage class yet');
      await new Promise((r) => setTimeout(r, Math.min(1000, 100 * attempt)));
    }
  }
}
