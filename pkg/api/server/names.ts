// How requests name kinds and objects, shared by every part of the API server.

import { badRequest } from '../errors.js';
import { type KindInfo, kindByName, qualifiedResource } from '../kinds.js';

/** Namespaces that exist from the start and may not be deleted (node Leases live in the last). */
export const SYSTEM_NAMESPACES = ['default', 'berth-system', 'berth-node-lease'] as const;

/** `deployments.apps "web"`: how Kubernetes names an object in messages. */
export function refOf(kind: KindInfo, name: string): string {
  const shown = name.length > 100 ? `${name.slice(0, 97)}...` : name;
  return `${qualifiedResource(kind)} ${JSON.stringify(shown)}`;
}

/** The kind a request names, or a clear error. */
export function resolveKind(resource: string): KindInfo {
  const kind = kindByName(resource);
  if (!kind) throw badRequest(`the server doesn't have a resource type "${resource}"`);
  return kind;
}
