// The store's API, with etcd v3 semantics and etcd's names (etcdserverpb / mvccpb), so the
// gRPC edge maps onto etcd's wire protocol field by field. Keys and values are bytes.
// Two implementations: Berth's own (MVCC state machine replicated by pkg/raft) and one over an
// external etcd cluster; one conformance suite runs against both.

export interface ResponseHeader {
  clusterId: string;
  memberId: string;
  /** The store's revision when the request was served. */
  revision: number;
  raftTerm: number;
}

export interface KeyValue {
  key: Uint8Array;
  /** Revision of the last creation of this key (0 if it does not exist). */
  createRevision: number;
  /** Revision of the last modification of this key. */
  modRevision: number;
  /** Number of modifications since creation; a delete resets it to 0. */
  version: number;
  value: Uint8Array;
  /** Lease attached to the key, 0 for none. */
  lease: number;
}

export interface RangeRequest {
  key: Uint8Array;
  /**
   * Absent: just `key`. Otherwise the range [key, rangeEnd). A rangeEnd of one zero byte
   * means "every key >= key"; key and rangeEnd both one zero byte means every key.
   */
  rangeEnd?: Uint8Array;
  /** Maximum number of keys returned; 0 means no limit. */
  limit?: number;
  /** Read at this past revision; 0 or absent means the newest. */
  revision?: number;
  keysOnly?: boolean;
  countOnly?: boolean;
  /** Serve from this member's local state without a ReadIndex round (may be stale). */
  serializable?: boolean;
}

export interface RangeResponse {
  header: ResponseHeader;
  kvs: KeyValue[];
  /** More keys matched than `limit` let through. */
  more: boolean;
  /** Number of keys in the range (regardless of limit). */
  count: number;
}

export interface PutRequest {
  key: Uint8Array;
  value: Uint8Array;
  lease?: number;
  prevKv?: boolean;
  /** Keep the current value (error if the key does not exist). */
  ignoreValue?: boolean;
  /** Keep the current lease (error if the key does not exist). */
  ignoreLease?: boolean;
}

export interface PutResponse {
  header: ResponseHeader;
  prevKv?: KeyValue;
}

export interface DeleteRangeRequest {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  prevKv?: boolean;
}

export interface DeleteRangeResponse {
  header: ResponseHeader;
  deleted: number;
  prevKvs: KeyValue[];
}

export type CompareTarget = 'version' | 'create' | 'mod' | 'value' | 'lease';
export type CompareResult = 'equal' | 'greater' | 'less' | 'not_equal';

/** One Txn guard. Compared against every key in [key, rangeEnd) when rangeEnd is set. */
export interface Compare {
  target: CompareTarget;
  result: CompareResult;
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  /** The operand; which one is used depends on target. A missing key has 0 / empty for all. */
  version?: number;
  createRevision?: number;
  modRevision?: number;
  value?: Uint8Array;
  lease?: number;
}

export type RequestOp =
  | { range: RangeRequest }
  | { put: PutRequest }
  | { deleteRange: DeleteRangeRequest }
  | { txn: TxnRequest };

export type ResponseOp =
  | { range: RangeResponse }
  | { put: PutResponse }
  | { deleteRange: DeleteRangeResponse }
  | { txn: TxnResponse };

export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

export interface TxnResponse {
  header: ResponseHeader;
  succeeded: boolean;
  responses: ResponseOp[];
}

export interface CompactionRequest {
  revision: number;
}

export interface CompactionResponse {
  header: ResponseHeader;
}

export interface WatchRequest {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  /** First revision to report (inclusive); 0 or absent means "from now on". */
  startRevision?: number;
  prevKv?: boolean;
  /** Send empty responses now and then, carrying the current revision. */
  progressNotify?: boolean;
  noPut?: boolean;
  noDelete?: boolean;
}

export type EventType = 'put' | 'delete';

export interface WatchEvent {
  type: EventType;
  /** For a delete: the key with modRevision = the deletion's revision and no value. */
  kv: KeyValue;
  prevKv?: KeyValue;
}

export interface WatchResponse {
  header: ResponseHeader;
  watchId: number;
  events: WatchEvent[];
  /**
   * Set when the watch could not start (or continue) because its revision was compacted:
   * the oldest revision still available. The watch is canceled.
   */
  compactRevision?: number;
  canceled?: boolean;
  cancelReason?: string;
}

/** A running watch. Responses arrive in revision order with no gaps, until cancel(). */
export interface Watcher {
  readonly id: number;
  cancel(): Promise<void>;
}

export interface LeaseGrantRequest {
  /** Seconds. */
  ttl: number;
  /** Requested id; 0 or absent lets the store choose. */
  id?: number;
}

export interface LeaseGrantResponse {
  header: ResponseHeader;
  id: number;
  ttl: number;
}

export interface LeaseKeepAliveResponse {
  header: ResponseHeader;
  id: number;
  /** The renewed TTL in seconds; 0 when the lease no longer exists. */
  ttl: number;
}

export interface LeaseTimeToLiveResponse {
  header: ResponseHeader;
  id: number;
  /** Seconds left; -1 when the lease does not exist. */
  ttl: number;
  grantedTtl: number;
  keys: Uint8Array[];
}

export interface LeaseLeasesResponse {
  header: ResponseHeader;
  leases: { id: number }[];
}

/**
 * The store API. Every call may reject with a StoreError (see errors.ts). Writes are
 * linearizable; reads are linearizable unless `serializable` is set.
 */
export interface KV {
  range(req: RangeRequest): Promise<RangeResponse>;
  put(req: PutRequest): Promise<PutResponse>;
  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse>;
  txn(req: TxnRequest): Promise<TxnResponse>;
  compact(req: CompactionRequest): Promise<CompactionResponse>;
  /** Start a watch; `onResponse` is called in order, never concurrently. */
  watch(req: WatchRequest, onResponse: (r: WatchResponse) => void): Promise<Watcher>;
  leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse>;
  leaseRevoke(id: number): Promise<{ header: ResponseHeader }>;
  /** One keep-alive round trip (a stream of these is a keep-alive stream). */
  leaseKeepAlive(id: number): Promise<LeaseKeepAliveResponse>;
  leaseTimeToLive(id: number, keys?: boolean): Promise<LeaseTimeToLiveResponse>;
  leaseLeases(): Promise<LeaseLeasesResponse>;
  close(): Promise<void>;
}

/** Bytes helpers used across the store: keys compare as unsigned bytes, as in etcd. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** The rangeEnd that selects every key with `prefix` (etcd's clientv3.GetPrefixRangeEnd). */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = prefix.slice();
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.slice(0, i + 1);
    }
  }
  // All 0xff: every key after prefix.
  return new Uint8Array([0]);
}

/** The store's limits (etcd's defaults where etcd has one). */
export const StoreLimits = {
  /** etcd's --max-request-bytes default. */
  maxRequestBytes: 1.5 * 1024 * 1024,
  /** etcd's --max-txn-ops default. */
  maxTxnOps: 128,
  /** Smallest TTL a lease gets (etcd: minimum 2 * heartbeat ... rounded); seconds. */
  minLeaseTtl: 2,
} as const;
