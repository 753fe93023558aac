// The object API's client (proto/api.proto), over the same endpoint pool, deadlines and
// fail-over as the store client. Every call rejects with an ApiError: the server's own
// (rebuilt from the `berth-error` trailer, field errors included), or UNAVAILABLE when no
// node could answer.
//
// Retries are safe by construction:
// - reads, Apply (applying a manifest twice is applying it once) and Create (the client
//   picks the uid; a retried create that finds its own uid is a success) are retried on any
//   transient failure, on the next endpoint;
// - Update is guarded by resourceVersion and retried only when it certainly was not applied
//   (not sent, or refused for want of a leader);
// - Delete retried after an unknown outcome treats NOT_FOUND as done.
// Watches reconnect to the next endpoint from the last resourceVersion they delivered.

import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { ApiError, ApiErrorCode, type FieldError, tooLarge } from '../api/errors.js';
import { MAX_OBJECT_BYTES } from '../api/server/object-store.js';
import type { ApiList, ApiObject } from '../api/types.js';
import { ERROR_CODE_TRAILER, FIELD_ERRORS_TRAILER, objectsService } from '../api/server/grpc-api.js';
import { EndpointPool, failureFromError } from './connection.js';
import { type ClientOptions, resolveOptions } from './options.js';
import { type AttemptFailure, backoffMs, type CallKind, sleep } from './retry.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface ApiWatchEvent {
  type: WatchEventType;
  object: ApiObject;
}

export interface WriteOptions {
  namespace?: string;
  dryRun?: boolean;
}

export interface ListOptions {
  namespace?: string;
  allNamespaces?: boolean;
  labelSelector?: string;
  fieldSelector?: string;
}

export interface DeleteOptions {
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  gracePeriodSeconds?: number;
  dryRun?: boolean;
  preconditionUid?: string;
  preconditionResourceVersion?: string;
}

export interface WatchOptions extends ListOptions {
  resourceVersion?: string;
  allowBookmarks?: boolean;
  bookmarkIntervalMs?: number;
}

export interface WatchHandle {
  cancel(): void;
}

export interface ApiClient {
  create(obj: unknown, options?: WriteOptions): Promise<ApiObject>;
  update(obj: unknown, options?: WriteOptions): Promise<ApiObject>;
  updateStatus(obj: unknown, options?: WriteOptions): Promise<ApiObject>;
  apply(obj: unknown, options?: WriteOptions): Promise<{ object: ApiObject; result: string }>;
  get(resource: string, namespace: string | undefined, name: string): Promise<ApiObject>;
  list(resource: string, options?: ListOptions): Promise<ApiList>;
  /** `object` is absent when a retried delete found the object already gone. */
  delete(
    resource: string,
    namespace: string | undefined,
    name: string,
    options?: DeleteOptions,
  ): Promise<{ object?: ApiObject; deleted: boolean }>;
  /**
   * Events in order until cancel() or the end: `onEnd` once, with the error that ended the
   * watch (an ApiError Expired means: list again), or none when canceled.
   */
  watch(
    resource: string,
    options: WatchOptions,
    onEvent: (e: ApiWatchEvent) => void,
    onEnd: (err?: ApiError) => void,
  ): WatchHandle;
  version(): Promise<{ version: string; member: string; nodeName: string }>;
  readonly endpoints: readonly string[];
  close(): void;
}

const SERVICE = 'Objects';

function lookup(_service: string, name: string): protoLoader.MethodDefinition<object, object> {
  const m = objectsService()[name];
  if (!m) throw new Error(`berth.api.v1.Objects has no method ${name}`);
  return m as protoLoader.MethodDefinition<object, object>;
}

/** The ApiError a failed attempt stands for. */
export function apiErrorOf(f: AttemptFailure, endpoint?: string): ApiError {
  const code = f.metadata?.get(ERROR_CODE_TRAILER)[0];
  if (typeof code === 'string' && (Object.values(ApiErrorCode) as string[]).includes(code)) {
    let fields: FieldError[] = [];
    const raw = f.metadata?.get(FIELD_ERRORS_TRAILER)[0];
    if (raw !== undefined) {
      try {
        fields = JSON.parse(raw.toString()) as FieldError[];
      } catch {
        fields = [];
      }
    }
    return new ApiError(code as ApiErrorCode, f.details, fields);
  }
  if (f.code === grpc.status.UNAVAILABLE || f.code === grpc.status.DEADLINE_EXCEEDED) {
    const details = f.details.replace(/^berth client: /, '');
    const where = endpoint && !details.includes(endpoint) ? ` (last tried ${endpoint})` : '';
    return new ApiError(ApiErrorCode.Unavailable, `cannot reach the cluster${where}: ${details}`);
  }
  if (f.code === grpc.status.RESOURCE_EXHAUSTED) {
    // grpc-js' own refusal of a message over the server's limit: say it in the API's words.
    const sizes = /larger than max \((\d+) vs (\d+)\)/.exec(f.details);
    if (sizes) return tooLarge(Number(sizes[1]), MAX_OBJECT_BYTES);
    return new ApiError(ApiErrorCode.TooLarge, f.details);
  }
  if (f.code === grpc.status.UNIMPLEMENTED) {
    return new ApiError(ApiErrorCode.Internal, `the server does not serve Berth's object API: ${f.details}`);
  }
  return new ApiError(ApiErrorCode.Internal, f.details);
}

export function createApiClient(options: ClientOptions): ApiClient {
  const resolved = resolveOptions(options);
  const pool = new EndpointPool(resolved, lookup);
  const call = <Res>(name: string, req: object, kind: CallKind): Promise<Res> =>
    pool.call<object, Res>(SERVICE, name, req, kind, async (f, ep) => apiErrorOf(f, ep.address));
  const parse = (text: string) => JSON.parse(text) as ApiObject;
  const write = (obj: unknown, o: WriteOptions = {}) => ({
    object: JSON.stringify(obj),
    namespace: o.namespace ?? '',
    dry_run: o.dryRun === true,
  });
  const listReq = (o: ListOptions) => ({
    namespace: o.namespace ?? '',
    all_namespaces: o.allNamespaces === true,
    label_selector: o.labelSelector ?? '',
    field_selector: o.fieldSelector ?? '',
  });

  return {
    endpoints: resolved.endpoints,
    async create(obj, o) {
      const r = await call<{ object: string }>('Create', { ...write(obj, o), uid: randomUUID() }, 'read');
      return parse(r.object);
    },
    async update(obj, o) {
      return parse((await call<{ object: string }>('Update', write(obj, o), 'write')).object);
    },
    async updateStatus(obj, o) {
      return parse((await call<{ object: string }>('UpdateStatus', write(obj, o), 'write')).object);
    },
    async apply(obj, o) {
      // The uid makes a retried apply that created the object say 'created', not 'unchanged'.
      const req = { ...write(obj, o), uid: randomUUID() };
      const r = await call<{ object: string; result: string }>('Apply', req, 'read');
      return { object: parse(r.object), result: r.result };
    },
    async get(resource, namespace, name) {
      const r = await call<{ object: string }>('Get', { resource, namespace: namespace ?? '', name }, 'read');
      return parse(r.object);
    },
    async list(resource, o = {}) {
      const r = await call<{ list: string }>('List', { resource, ...listReq(o) }, 'read');
      return JSON.parse(r.list) as ApiList;
    },
    async delete(resource, namespace, name, o = {}) {
      const req = {
        resource,
        namespace: namespace ?? '',
        name,
        propagation_policy: o.propagationPolicy ?? '',
        grace_period_seconds: o.gracePeriodSeconds,
        dry_run: o.dryRun === true,
        precondition_uid: o.preconditionUid ?? '',
        precondition_resource_version: o.preconditionResourceVersion ?? '',
      };
      let uncertain = false;
      for (let attempt = 0; ; attempt++) {
        try {
          const r = await call<{ object: string; deleted: boolean }>('Delete', req, 'write');
          return { object: parse(r.object), deleted: r.deleted };
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          if (uncertain && err.code === ApiErrorCode.NotFound) return { deleted: true };
          if (err.code !== ApiErrorCode.Unavailable || attempt >= resolved.retries) throw err;
          uncertain = true;
          await sleep(backoffMs(attempt + 1, resolved.backoff));
        }
      }
    },
    watch(resource, o, onEvent, onEnd) {
      return startWatch(pool, resource, o, onEvent, onEnd);
    },
    async version() {
      const r = await call<{ version: string; member: string; node_name: string }>('Version', {}, 'read');
      return { version: r.version, member: r.member, nodeName: r.node_name };
    },
    close() {
      pool.close();
    },
  };
}

/** One watch over the pool: a server stream, resumed elsewhere when its node goes away. */
function startWatch(
  pool: EndpointPool,
  resource: string,
  o: WatchOptions,
  onEvent: (e: ApiWatchEvent) => void,
  onEnd: (err?: ApiError) => void,
): WatchHandle {
  const m = lookup(SERVICE, 'Watch');
  let resourceVersion = o.resourceVersion ?? '';
  let current: grpc.ClientReadableStream<{ type: string; object: string }> | undefined;
  let ended = false;
  let failures = 0;
  const finish = (err?: ApiError) => {
    if (ended) return;
    ended = true;
    current?.cancel();
    onEnd(err);
  };
  const open = async () => {
    if (ended) return;
    const ep = pool.endpointAt(0);
    try {
      await pool.ready(ep);
    } catch {
      pool.skip(ep);
      return retry();
    }
    if (ended) return;
    const stream = ep.client.makeServerStreamRequest<object, { type: string; object: string }>(
      m.path,
      m.requestSerialize as (v: object) => Buffer,
      m.responseDeserialize as (b: Buffer) => { type: string; object: string },
      {
        resource,
        namespace: o.namespace ?? '',
        all_namespaces: o.allNamespaces === true,
        label_selector: o.labelSelector ?? '',
        field_selector: o.fieldSelector ?? '',
        resource_version: resourceVersion,
        allow_bookmarks: o.allowBookmarks === true,
        bookmark_interval_ms: o.bookmarkIntervalMs ?? 0,
      },
    );
    current = stream;
    // 'error' and 'end' may both come: act on the first.
    let settled = false;
    stream.on('data', (msg: { type: string; object: string }) => {
      if (ended) return;
      failures = 0;
      pool.succeeded(ep);
      const object = JSON.parse(msg.object) as ApiObject;
      if (msg.type === 'ERROR') {
        const status = object as unknown as { reason?: string; message?: string };
        const code = status.reason === 'Expired' ? ApiErrorCode.Expired : ApiErrorCode.Internal;
        finish(new ApiError(code, status.message ?? 'watch failed'));
        return;
      }
      const rv = object.metadata?.resourceVersion;
      if (rv) resourceVersion = rv;
      onEvent({ type: msg.type as WatchEventType, object });
    });
    stream.on('error', (err: grpc.ServiceError) => {
      if (ended || settled) return;
      settled = true;
      const f = failureFromError(err);
      const transient =
        f.code === grpc.status.UNAVAILABLE ||
        f.code === grpc.status.DEADLINE_EXCEEDED ||
        f.code === grpc.status.CANCELLED;
      if (!transient) {
        finish(apiErrorOf(f, ep.address));
        return;
      }
      pool.skip(ep);
      void retry();
    });
    stream.on('end', () => {
      // The server ended the stream without an ERROR event: its node is stopping. Go on elsewhere.
      if (!ended && !settled) {
        settled = true;
        pool.skip(ep);
        void retry();
      }
    });
  };
  const retry = async () => {
    if (ended || pool.isClosed) return finish();
    failures++;
    await sleep(backoffMs(Math.min(failures, 6), pool.options.backoff));
    await open();
  };
  void open();
  return { cancel: () => finish() };
}
