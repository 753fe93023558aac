// Objects in the store: JSON values under /registry/<resource>/[<namespace>/]<name>, with
// metadata.resourceVersion taken from the key's mod revision on every read (it is never
// stored). Every write is one Txn guarded by the revision the caller read, so two writers
// racing on one object cannot both win (optimistic concurrency, as Kubernetes over etcd).
// Store failures become ApiErrors here: no leader or a timeout is UNAVAILABLE (retry).
// With a keyring, values of encrypted resources (Secrets) are sealed here before the write
// is proposed and opened on every read (encryption.ts); watch.ts decodes through decode().

import { CompactedError, StoreError, StoreErrorCode } from '../../store/errors.js';
import type { Compare, KeyValue, KV, RequestOp, WatchResponse, Watcher } from '../../store/types.js';
import { prefixEnd } from '../../store/types.js';
import { ApiError, expired, internal, tooLarge, unavailable } from '../errors.js';
import { type KindInfo, keyPrefix, objectKey } from '../kinds.js';
import type { ApiObject } from '../types.js';
import { decryptValue, EncryptionError, encryptValue, isEncryptedKey, type Keyring } from './encryption.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The largest object the API stores (JSON bytes): Kubernetes' ConfigMap/Secret limit. */
export const MAX_OBJECT_BYTES = 1024 * 1024;

/** An object as read, with the revision it was read at. */
export interface Stored {
  object: ApiObject;
  /** The key's mod revision (= metadata.resourceVersion). */
  revision: number;
}

/**
 * A stored value as an object. Sealed values are opened with `keyring`; without one, a
 * sealed value is an EncryptionError (plaintext values need none).
 */
export function decodeObject(kv: KeyValue, keyring?: Keyring): ApiObject {
  const obj = JSON.parse(dec.decode(decryptValue(keyring, dec.decode(kv.key), kv.value))) as ApiObject;
  obj.metadata = { ...obj.metadata, resourceVersion: String(kv.modRevision) };
  return obj;
}

/** The stored form: everything but resourceVersion (the store keeps that itself). Not sealed: see ObjectStore.encode. */
export function encodeObject(obj: ApiObject): Uint8Array {
  const { resourceVersion: _, ...metadata } = obj.metadata;
  const bytes = enc.encode(JSON.stringify({ ...obj, metadata }));
  if (bytes.length > MAX_OBJECT_BYTES) throw tooLarge(bytes.length, MAX_OBJECT_BYTES);
  return bytes;
}

/** A store failure as the API reports it. */
export function fromStoreError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof CompactedError) return expired(0, err.compactRevision);
  if (err instanceof StoreError) {
    switch (err.code) {
      case StoreErrorCode.NoLeader:
        return unavailable('no leader', err);
      case StoreErrorCode.Timeout:
        return unavailable('the write or read timed out; it may or may not have been applied', err);
      case StoreErrorCode.Stopped:
        return unavailable('this node is shutting down', err);
      case StoreErrorCode.RequestTooLarge:
        return new ApiError('API_TOO_LARGE', err.message, [], { cause: err });
      default:
        return internal(err.message, err);
    }
  }
  // Names the key, never the data; the value stays in the store for a node that has the key.
  if (err instanceof EncryptionError) return internal(err.message, err);
  if (err instanceof SyntaxError) return internal(`a stored object is not valid JSON: ${err.message}`, err);
  return internal(err instanceof Error ? err.message : String(err), err);
}

async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw fromStoreError(err);
  }
}

/**
 * A write fence: every write also requires `key` to hold `value`. The leader's controllers
 * write through a fenced store, so once a newer leader has written its own value there, a
 * deposed leader's late writes are refused instead of racing the new leader's.
 */
export interface Fence {
  key: string;
  value: string;
}

/**
 * More for one write's Txn: compares it also requires and ops it also does (the Service
 * allocation guard, service-alloc.ts). A write refused by them resolves undefined, like
 * one refused by its own compare; the caller tells the two apart by reading the object.
 */
export interface TxnExtra {
  compare: Compare[];
  success: RequestOp[];
}

export class ObjectStore {
  private readonly fence: { key: Uint8Array; value: Uint8Array } | undefined;

  constructor(
    readonly kv: KV,
    fence?: Fence,
    /** Seals values of encrypted resources (encryption.ts); none: stored as plain JSON. */
    readonly keyring?: Keyring,
  ) {
    this.fence = fence ? { key: enc.encode(fence.key), value: enc.encode(fence.value) } : undefined;
  }

  /** A stored value as an object, opened with this store's keyring. */
  decode(kv: KeyValue): ApiObject {
    return decodeObject(kv, this.keyring);
  }

  /** The bytes to store under `key`: sealed when it holds an encrypted resource and there is a keyring. */
  encode(key: string, obj: ApiObject): Uint8Array {
    const bytes = encodeObject(obj);
    return this.keyring && isEncryptedKey(key) ? encryptValue(this.keyring, key, bytes) : bytes;
  }

  /** The fence's compare, if any, for a write's Txn. */
  private fenced(): Compare[] {
    return this.fence
      ? [{ target: 'value', result: 'equal', key: this.fence.key, value: this.fence.value }]
      : [];
  }

  /** After a failed write: was it the fence? Then this writer is no longer the leader. */
  private async checkFence(): Promise<void> {
    if (!this.fence) return;
    const r = await this.kv.range({ key: this.fence.key });
    const now = r.kvs[0]?.value;
    if (!now || Buffer.compare(Buffer.from(now), Buffer.from(this.fence.value)) !== 0) {
      throw new ApiError('API_FORBIDDEN', 'this node is no longer the leader; its controllers stopped');
    }
  }

  async get(kind: KindInfo, namespace: string | undefined, name: string): Promise<Stored | undefined> {
    return guard(async () => {
      const r = await this.kv.range({ key: enc.encode(objectKey(kind, namespace, name)) });
      const kv = r.kvs[0];
      return kv ? { object: this.decode(kv), revision: kv.modRevision } : undefined;
    });
  }

  /** Every object of `kind` (in `namespace`, or all), and the store revision of the read. */
  async list(kind: KindInfo, namespace?: string): Promise<{ items: ApiObject[]; revision: number }> {
    return guard(async () => {
      const key = enc.encode(keyPrefix(kind, namespace));
      const r = await this.kv.range({ key, rangeEnd: prefixEnd(key) });
      return { items: r.kvs.map((kv) => this.decode(kv)), revision: r.header.revision };
    });
  }

  /** Store `obj` (attached to `lease`, 0 for none) if no object has its key. Resolves with its revision, or undefined if one exists (or `extra` refused). */
  async create(kind: KindInfo, obj: ApiObject, lease = 0, extra?: TxnExtra): Promise<number | undefined> {
    const path = objectKey(kind, obj.metadata.namespace, obj.metadata.name as string);
    const key = enc.encode(path);
    const value = this.encode(path, obj);
    return guard(async () => {
      const r = await this.kv.txn({
        compare: [
          { target: 'create', result: 'equal', key, createRevision: 0 },
          ...this.fenced(),
          ...(extra?.compare ?? []),
        ],
        success: [{ put: { key, value, lease } }, ...(extra?.success ?? [])],
        failure: [],
      });
      if (!r.succeeded) await this.checkFence();
      return r.succeeded ? r.header.revision : undefined;
    });
  }

  /** Replace `obj` if its key is still at `revision` (and `extra` allows). Resolves with the new revision, or undefined. */
  async update(
    kind: KindInfo,
    obj: ApiObject,
    revision: number,
    lease = 0,
    extra?: TxnExtra,
  ): Promise<number | undefined> {
    const path = objectKey(kind, obj.metadata.namespace, obj.metadata.name as string);
    const key = enc.encode(path);
    const value = this.encode(path, obj);
    return guard(async () => {
      const r = await this.kv.txn({
        compare: [
          { target: 'mod', result: 'equal', key, modRevision: revision },
          ...this.fenced(),
          ...(extra?.compare ?? []),
        ],
        success: [{ put: { key, value, lease } }, ...(extra?.success ?? [])],
        failure: [],
      });
      if (!r.succeeded) await this.checkFence();
      return r.succeeded ? r.header.revision : undefined;
    });
  }

  /** Delete the object if its key is still at `revision`. Resolves with the deletion's revision, or undefined. */
  async delete(kind: KindInfo, obj: ApiObject, revision: number): Promise<number | undefined> {
    const key = enc.encode(objectKey(kind, obj.metadata.namespace, obj.metadata.name as string));
    return guard(async () => {
      const r = await this.kv.txn({
        compare: [{ target: 'mod', result: 'equal', key, modRevision: revision }, ...this.fenced()],
        success: [{ deleteRange: { key } }],
        failure: [],
      });
      if (!r.succeeded) await this.checkFence();
      return r.succeeded ? r.header.revision : undefined;
    });
  }

  /** The store's current revision, from this node's state (what a bookmark may promise). */
  async localRevision(): Promise<number> {
    return guard(async () => {
      const key = enc.encode('/registry/');
      const r = await this.kv.range({ key, rangeEnd: prefixEnd(key), countOnly: true, serializable: true });
      return r.header.revision;
    });
  }

  /** Watch a kind's keys from `startRevision` (0: from now), with previous values. */
  async watch(
    kind: KindInfo,
    namespace: string | undefined,
    startRevision: number,
    onResponse: (r: WatchResponse) => void,
  ): Promise<Watcher> {
    const key = enc.encode(keyPrefix(kind, namespace));
    return guard(() =>
      this.kv.watch({ key, rangeEnd: prefixEnd(key), startRevision, prevKv: true }, onResponse),
    );
  }

  async grantLease(ttlSeconds: number): Promise<number> {
    return guard(async () => (await this.kv.leaseGrant({ ttl: ttlSeconds })).id);
  }
}
