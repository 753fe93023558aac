// Watch over objects: Kubernetes' watch semantics on the store's watch.
//
// - resourceVersion empty or "0": ADDED for every current object, then changes after that
//   list; "N": every change after revision N, in order, none missing.
// - Label and field selectors apply to both sides of a change: an object that starts to
//   match is ADDED, one that stops matching is DELETED, as the Kubernetes API server does.
// - BOOKMARK events carry a resourceVersion up to which everything has been sent, so a
//   client that reconnects resumes from there even when its objects did not change.
// - A start revision already compacted is one ERROR event (Expired, code 410) telling the
//   client to list again; the watch then ends.

import type { KeyValue, WatchResponse, Watcher } from '../../store/types.js';
import { ApiError, badRequest, expired, internal } from '../errors.js';
import type { KindInfo } from '../kinds.js';
import type { ApiObject } from '../types.js';
import type { ApiServer } from './api-server.js';
import { fromStoreError, type ObjectStore } from './object-store.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** Kubernetes' Status object, the payload of an ERROR event. */
export interface StatusObject {
  apiVersion: 'v1';
  kind: 'Status';
  status: 'Failure';
  code: number;
  reason: string;
  message: string;
}

export interface ApiWatchEvent {
  type: WatchEventType;
  object: ApiObject | StatusObject;
}

export interface ApiWatchOptions {
  /** Undefined: every namespace. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  /** Send BOOKMARK events this often; 0 or absent: none. */
  bookmarkIntervalMs?: number;
}

/** Where events go. `end` is called once, after an ERROR event or when the watch is canceled. */
export interface WatchSink {
  event(e: ApiWatchEvent): void;
  end(): void;
}

export interface WatchHandle {
  cancel(): Promise<void>;
}

/** HTTP-style codes in Status objects, as Kubernetes clients expect them. */
const STATUS_CODES: Record<string, number> = { Expired: 410, InternalError: 500, BadRequest: 400 };

export function statusOf(err: ApiError): StatusObject {
  return {
    apiVersion: 'v1',
    kind: 'Status',
    status: 'Failure',
    code: STATUS_CODES[err.reason] ?? 500,
    reason: err.reason,
    message: err.message,
  };
}

/** Bookmarks no more often than this, whatever the client asks. */
const MIN_BOOKMARK_MS = 100;

export async function watchObjects(
  api: ApiServer,
  kind: KindInfo,
  options: ApiWatchOptions,
  sink: WatchSink,
): Promise<WatchHandle> {
  const filter = api.filterOf(kind, options);
  const namespace = kind.namespaced ? options.namespace : undefined;
  const rv = options.resourceVersion ?? '';
  if (rv !== '' && !/^\d+$/.test(rv))
    throw badRequest(`resourceVersion must be a decimal number, got "${rv}"`);

  let ended = false;
  let watcher: Watcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  /** Every event up to this revision has been sent. */
  let sentUpTo = 0;

  const finish = (err?: ApiError) => {
    if (ended) return;
    ended = true;
    if (timer) clearInterval(timer);
    if (err) sink.event({ type: 'ERROR', object: statusOf(err) });
    void watcher?.cancel().catch(() => {});
    sink.end();
  };

  let start: number;
  if (rv === '' || rv === '0') {
    const list = await api.store.list(kind, namespace);
    for (const object of list.items) if (filter(object)) sink.event({ type: 'ADDED', object });
    start = list.revision + 1;
  } else {
    start = Number(rv) + 1;
  }
  sentUpTo = start - 1;

  const onResponse = (r: WatchResponse) => {
    if (ended) return;
    if (r.compactRevision !== undefined && r.compactRevision > 0) {
      finish(expired(start - 1, r.compactRevision));
      return;
    }
    if (r.canceled) {
      finish(internal(`the store ended the watch: ${r.cancelReason ?? 'canceled'}`));
      return;
    }
    for (const e of r.events) {
      let event: ApiWatchEvent | undefined;
      try {
        event = translate(api.store, e.type, e.kv, e.prevKv, filter);
      } catch (err) {
        // A value this node cannot open (unknown key) or parse: end the watch with an ERROR
        // rather than skip an event silently.
        finish(fromStoreError(err));
        return;
      }
      if (event) sink.event(event);
      sentUpTo = Math.max(sentUpTo, e.kv.modRevision);
    }
  };

  try {
    watcher = await api.store.watch(kind, namespace, start, onResponse);
  } catch (err) {
    finish(err instanceof ApiError ? err : internal(String(err)));
    return { cancel: async () => {} };
  }

  const every = options.bookmarkIntervalMs ?? 0;
  if (every > 0) {
    timer = setInterval(
      () => {
        void bookmark().catch(() => {});
      },
      Math.max(MIN_BOOKMARK_MS, every),
    );
  }
  // The store hands a revision's watch responses over on a later turn of the event loop than
  // the one that applied it: after reading the revision, wait one turn so those come first.
  const bookmark = async () => {
    const revision = await api.store.localRevision();
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (ended) return;
    sentUpTo = Math.max(sentUpTo, revision);
    sink.event({
      type: 'BOOKMARK',
      object: {
        apiVersion: kind.apiVersion,
        kind: kind.kind,
        metadata: { resourceVersion: String(sentUpTo) },
      },
    });
  };

  return { cancel: async () => finish() };
}

/** One store event as the watch event a client with this filter should see, if any. */
function translate(
  store: ObjectStore,
  type: 'put' | 'delete',
  kv: KeyValue,
  prevKv: KeyValue | undefined,
  filter: (o: ApiObject) => boolean,
): ApiWatchEvent | undefined {
  const before = prevKv ? store.decode(prevKv) : undefined;
  const matchedBefore = before !== undefined && filter(before);
  if (type === 'delete') {
    if (!before || !matchedBefore) return undefined;
    return {
      type: 'DELETED',
      object: { ...before, metadata: { ...before.metadata, resourceVersion: String(kv.modRevision) } },
    };
  }
  const now = store.decode(kv);
  const matchesNow = filter(now);
  if (matchesNow) return { type: matchedBefore ? 'MODIFIED' : 'ADDED', object: now };
  if (matchedBefore) return { type: 'DELETED', object: now };
  return undefined;
}
