// The API's gRPC edge (proto/api.proto, service berth.api.v1.Objects): decode, call the
// ApiServer, encode. Objects travel as JSON text. Every failure is answered with a status:
// an ApiError with its own code and message (and the trailers `berth-error` and
// `berth-field-errors-bin`), anything else INTERNAL. No request, however malformed, may crash
// the process: requests are decoded by a guarded deserializer and every handler catches.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { admitObjectWrite } from '../../auth/object-admission.js';
import { protoDir } from '../../rpc/proto-path.js';
import { ApiError, badRequest, tooLarge } from '../errors.js';
import type { ApiServer } from './api-server.js';
import { type PropagationPolicy, PROPAGATION_POLICIES } from './deletion.js';
import { fromStoreError, MAX_OBJECT_BYTES } from './object-store.js';
import type { ApiWatchEvent } from './watch.js';

export const ERROR_CODE_TRAILER = 'berth-error';
export const FIELD_ERRORS_TRAILER = 'berth-field-errors-bin';

let definition: protoLoader.PackageDefinition | undefined;

/** proto/api.proto, loaded once per process. */
export function apiProtos(): protoLoader.PackageDefinition {
  definition ??= protoLoader.loadSync('api.proto', {
    keepCase: true,
    longs: Number,
    defaults: true,
    oneofs: true,
    includeDirs: [protoDir()],
  });
  return definition;
}

export function objectsService(): protoLoader.ServiceDefinition {
  return apiProtos()['berth.api.v1.Objects'] as protoLoader.ServiceDefinition;
}

export interface ApiServiceDeps {
  api: ApiServer;
  version: string;
  member: string;
  nodeName: string;
  onInternalError?: (err: unknown, method: string) => void;
}

type Decoded =
  | { ok: true; value: Record<string, unknown>; size: number }
  | { ok: false; error: string; size: number };

function guarded(def: protoLoader.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(def)) {
    const decode = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (buf: Buffer): Decoded => {
        try {
          return { ok: true, value: decode(buf) as Record<string, unknown>, size: buf.length };
        } catch (err) {
          return { ok: false, error: err instanceof Error ? err.message : String(err), size: buf.length };
        }
      },
    } as grpc.MethodDefinition<unknown, unknown>;
  }
  return out as grpc.ServiceDefinition;
}

function unwrap(d: Decoded, method: string): Record<string, unknown> {
  if (!d.ok) throw badRequest(`malformed ${method} request: ${d.error}`);
  if (d.size > MAX_OBJECT_BYTES + 64 * 1024) throw tooLarge(d.size, MAX_OBJECT_BYTES);
  return d.value;
}

/**
 * The status an error is answered with. Trailers carry only ASCII (the code) or bytes (the
 * field errors, in a binary `-bin` trailer): a message may hold any character the user sent.
 */
export function toStatus(err: unknown): Partial<grpc.StatusObject> {
  const e = err instanceof ApiError ? err : fromStoreError(err);
  try {
    const metadata = new grpc.Metadata();
    metadata.set(ERROR_CODE_TRAILER, e.code);
    if (e.fieldErrors.length > 0)
      metadata.set(FIELD_ERRORS_TRAILER, Buffer.from(JSON.stringify(e.fieldErrors)));
    return { code: e.grpc, details: wellFormed(e.message), metadata };
  } catch {
    return { code: e.grpc, details: wellFormed(e.message) };
  }
}

/** grpc-js URI-encodes the message: a lone surrogate (from the user's input) would make it throw. */
function wellFormed(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

function parseObject(text: unknown): unknown {
  if (typeof text !== 'string' || text === '') throw badRequest('the request carries no object');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`the object is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const str = (v: unknown) => (typeof v === 'string' ? v : '');

function propagationOf(v: unknown): PropagationPolicy | undefined {
  const s = str(v);
  if (s === '') return undefined;
  if (!(PROPAGATION_POLICIES as readonly string[]).includes(s)) {
    throw badRequest(`propagation_policy must be one of ${PROPAGATION_POLICIES.join(', ')}, got "${s}"`);
  }
  return s as PropagationPolicy;
}

/** Register berth.api.v1.Objects on `server` (made with kvServerOptions()). */
export function addApiService(server: grpc.Server, deps: ApiServiceDeps): void {
  const { api } = deps;
  type Call = grpc.ServerUnaryCall<Decoded, object>;
  const unary = (method: string, fn: (req: Record<string, unknown>, call: Call) => Promise<object>) => {
    return (call: Call, callback: grpc.sendUnaryData<object>) => {
      Promise.resolve()
        .then(() => fn(unwrap(call.request, method), call))
        .then(
          (res) => callback(null, res),
          (err) => {
            if (!(err instanceof ApiError)) deps.onInternalError?.(err, method);
            callback(toStatus(err), null);
          },
        )
        .catch((err) => {
          // Answering itself failed (a status grpc-js would not send): answer plainly.
          deps.onInternalError?.(err, method);
          try {
            callback({ code: grpc.status.INTERNAL, details: 'the server could not encode its answer' }, null);
          } catch {
            // The call is gone; nothing left to answer.
          }
        });
    };
  };
  const write = (req: Record<string, unknown>) => ({
    namespace: str(req.namespace) || undefined,
    dryRun: req.dry_run === true,
  });
  const namespaceOf = (req: Record<string, unknown>) =>
    req.all_namespaces === true ? undefined : str(req.namespace) || 'default';

  // A node's certificate may write only what NodeRestriction allows (pkg/auth); any other
  // caller was already decided by the authorization interceptor, and --insecure has none.
  const admitted = async (
    call: Call,
    verb: 'create' | 'update' | 'updateStatus' | 'apply',
    req: Record<string, unknown>,
  ) => {
    const object = parseObject(req.object);
    await admitObjectWrite(api, call, { verb, object, namespace: write(req).namespace });
    return object;
  };

  server.addService(guarded(objectsService()), {
    Create: unary('Create', async (req, call) => {
      const object = await api.create(await admitted(call, 'create', req), {
        ...write(req),
        uid: str(req.uid) || undefined,
      });
      return { object: JSON.stringify(object) };
    }),
    Update: unary('Update', async (req, call) => ({
      object: JSON.stringify(await api.update(await admitted(call, 'update', req), write(req))),
    })),
    UpdateStatus: unary('UpdateStatus', async (req, call) => ({
      object: JSON.stringify(await api.update(await admitted(call, 'updateStatus', req), write(req), true)),
    })),
    Apply: unary('Apply', async (req, call) => {
      const { object, result } = await api.apply(await admitted(call, 'apply', req), {
        ...write(req),
        uid: str(req.uid) || undefined,
      });
      return { object: JSON.stringify(object), result };
    }),
    Get: unary('Get', async (req) => ({
      object: JSON.stringify(await api.get(str(req.resource), str(req.namespace), str(req.name))),
    })),
    List: unary('List', async (req) => {
      const { items, revision } = await api.list(str(req.resource), {
        namespace: namespaceOf(req),
        labelSelector: str(req.label_selector),
        fieldSelector: str(req.field_selector),
      });
      const list = { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: String(revision) }, items };
      return { list: JSON.stringify(list) };
    }),
    Delete: unary('Delete', async (req, call) => {
      await admitObjectWrite(api, call, {
        verb: 'delete',
        resource: str(req.resource),
        namespace: str(req.namespace) || undefined,
        name: str(req.name),
      });
      const grace = req.grace_period_seconds;
      const { object, deleted } = await api.delete(str(req.resource), str(req.namespace), str(req.name), {
        propagationPolicy: propagationOf(req.propagation_policy),
        gracePeriodSeconds: typeof grace === 'number' ? grace : undefined,
        dryRun: req.dry_run === true,
        preconditions: {
          uid: str(req.precondition_uid) || undefined,
          resourceVersion: str(req.precondition_resource_version) || undefined,
        },
      });
      return { object: JSON.stringify(object), deleted };
    }),
    Version: unary('Version', async () => ({
      version: deps.version,
      member: deps.member,
      node_name: deps.nodeName,
    })),
    Watch: (call: grpc.ServerWritableStream<Decoded, object>) => {
      let handle: { cancel(): Promise<void> } | undefined;
      let done = false;
      const end = () => {
        if (done) return;
        done = true;
        call.end();
      };
      call.on('cancelled', () => {
        done = true;
        void handle?.cancel();
      });
      Promise.resolve()
        .then(async () => {
          const req = unwrap(call.request, 'Watch');
          handle = await api.watch(
            str(req.resource),
            {
              namespace: namespaceOf(req),
              labelSelector: str(req.label_selector),
              fieldSelector: str(req.field_selector),
              resourceVersion: str(req.resource_version),
              bookmarkIntervalMs:
                req.allow_bookmarks === true ? Number(req.bookmark_interval_ms) || 10_000 : 0,
            },
            {
              event: (e: ApiWatchEvent) => {
                if (!done) call.write({ type: e.type, object: JSON.stringify(e.object) });
              },
              end,
            },
          );
          if (done) await handle.cancel();
        })
        .catch((err) => {
          if (done) return;
          done = true;
          if (!(err instanceof ApiError)) deps.onInternalError?.(err, 'Watch');
          call.emit('error', toStatus(err));
        });
    },
  });
}
