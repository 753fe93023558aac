// What exists from the start: the namespaces `default` and `berth-system`. Every node
// creates them when it starts (an existing one is left alone), retrying until the cluster
// has a leader, so a cluster of any age has them without a separate setup step.

import type { Logger } from 'pino';
import { ApiError, ApiErrorCode } from '../errors.js';
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
