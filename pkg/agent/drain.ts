// The proxies' side of a graceful stop, as the agent sees it.

import type { ApiObject } from '../api/types.js';

/**
 * The proxies' side of a graceful stop: resolves once every node's proxy has seen the pod
 * leave its Services' endpoints, or after a short bound (a node that does not answer must
 * not hold a deletion up). Implemented by pkg/proxy, which the agent may not import.
 */
export interface EndpointsDrain {
  waitRemoved(pod: ApiObject): Promise<void>;
}
