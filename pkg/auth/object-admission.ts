// The Objects handlers' authorization step (pkg/api/server/grpc-api.ts): when the caller is
// a node, read what the rule needs from the store and apply NodeRestriction before the write.
// Other callers were decided by the interceptor (rules.ts) and pass untouched, as does every
// call on an --insecure node (no certificate).
import { ApiError, ApiErrorCode, forbidden } from '../api/errors.js';
import { kindOf } from '../api/kinds.js';
import type { ApiServer } from '../api/server/api-server.js';
import type { ApiObject } from '../api/types.js';
import { type AuthenticatedCall, identityOfCall } from './identity.js';
import { admitNodeWrite, needsStoredObject, type WriteVerb } from './node-restriction.js';

/** What the handler knows of the write before it acts. */
export type ObjectWriteRequest =
  | { verb: Exclude<WriteVerb, 'delete'>; object: unknown; namespace: string | undefined }
  | { verb: 'delete'; resource: string; namespace: string | undefined; name: string };

/** The ApiServer calls admission uses. */
export type AdmissionApi = Pick<ApiServer, 'get' | 'resolve' | 'namespaceFor'>;

/**
 * Throws an ApiError (Forbidden, or NotFound when the object a node's right depends on is
 * gone) when the call's certificate is a node's and NodeRestriction refuses the write.
 * Resolves at once for any other caller. Malformed requests pass: the ApiServer rejects them.
 */
export async function admitObjectWrite(
  api: AdmissionApi,
  call: AuthenticatedCall,
  req: ObjectWriteRequest,
): Promise<void> {
  const identity = identityOfCall(call);
  if (identity?.kind !== 'node') return;
  const target = targetOf(api, req);
  if (!target) return;
  const stored = needsStoredObject(target.kind) ? await storedObject(api, target) : undefined;
  const decision = admitNodeWrite(identity.nodeName, { verb: req.verb, ...target, stored });
  if (decision.allowed) return;
  throw decision.notFound
    ? new ApiError(ApiErrorCode.NotFound, decision.message)
    : forbidden(decision.message);
}

interface Target {
  kind: string;
  resource: string;
  namespace: string | undefined;
  name: string;
}

function targetOf(api: AdmissionApi, req: ObjectWriteRequest): Target | undefined {
  if (req.verb === 'delete') {
    const kind = api.resolve(req.resource);
    return {
      kind: kind.kind,
      resource: kind.resource,
      namespace: api.namespaceFor(kind, req.namespace),
      name: req.name,
    };
  }
  const o = req.object as Partial<ApiObject> | null;
  if (typeof o !== 'object' || o === null || typeof o.kind !== 'string') return undefined;
  const meta = typeof o.metadata === 'object' && o.metadata !== null ? o.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : '';
  const namespace =
    typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : req.namespace;
  const kind = typeof o.apiVersion === 'string' ? kindOf(o.apiVersion, o.kind) : undefined;
  // An unknown kind is refused for a node (as "everything else"); the API would reject it anyway.
  if (!kind) return { kind: o.kind, resource: o.kind, namespace, name };
  return { kind: kind.kind, resource: kind.resource, namespace: api.namespaceFor(kind, namespace), name };
}

async function storedObject(api: AdmissionApi, t: Target): Promise<ApiObject | undefined> {
  if (t.name === '') return undefined;
  try {
    return await api.get(t.resource, t.namespace, t.name);
  } catch (err) {
    if (err instanceof ApiError && err.code === ApiErrorCode.NotFound) return undefined;
    throw err;
  }
}
