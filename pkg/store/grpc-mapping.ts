// Conversions between etcd's wire messages (proto/etcd/*.proto, as @grpc/proto-loader hands
// them over with { keepCase, longs: String, enums: String, defaults, oneofs }) and the store's
// own objects (types.ts). Pure functions: no gRPC, no I/O. Both edges use them: the server
// decodes requests and encodes responses, the client (pkg/client) does the reverse.
//
// Rules, in both directions:
// - bytes: decoded Buffers are copied into plain Uint8Arrays (a decoded Buffer shares memory
//   with the whole received frame, which the store must not keep alive);
// - int64: decoded as decimal strings, turned into numbers only when they are safe integers,
//   otherwise INVALID_ARGUMENT naming the field; uint64 ids (cluster, member) stay strings;
// - enums: names; an unknown number is INVALID_ARGUMENT naming the field;
// - sorting: Berth returns keys in ascending key order, so sort_order NONE or ASCEND with
//   sort_target KEY is accepted, anything else is INVALID_ARGUMENT (never silently ignored).

import {
  CompactedError,
  duplicateKey,
  emptyKey,
  futureRevision,
  GrpcCode,
  invalidArgument,
  keyNotFound,
  leaseExists,
  leaseNotFound,
  leaseProvided,
  leaseTtlTooLarge,
  noLeader,
  requestTimeout,
  StoreError,
  StoreErrorCode,
  stopped,
  tooManyOps,
  valueProvided,
} from './errors.js';
import {
  type CompactionRequest,
  type CompactionResponse,
  type Compare,
  type CompareResult,
  type CompareTarget,
  compareBytes,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type KeyValue,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  type LeaseKeepAliveResponse,
  type LeaseLeasesResponse,
  type LeaseTimeToLiveResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type RequestOp,
  type ResponseHeader,
  type ResponseOp,
  StoreLimits,
  type TxnRequest,
  type TxnResponse,
  type WatchEvent,
  type WatchRequest,
  type WatchResponse,
} from './types.js';

// ---- wire shapes ----
// Decoded messages carry every field (defaults: true) except unset oneof members; messages
// being encoded may leave fields out. One set of optional-field shapes serves both.

/** int64/uint64 on the wire: decoded as a decimal string, encoded from a string or a number. */
export type WireLong = string | number;
/** bytes on the wire: decoded as a Buffer, encoded from any Uint8Array. */
export type WireBytes = Uint8Array;

export interface WireHeader {
  cluster_id?: WireLong;
  member_id?: WireLong;
  revision?: WireLong;
  raft_term?: WireLong;
}

export interface WireKeyValue {
  key?: WireBytes;
  create_revision?: WireLong;
  mod_revision?: WireLong;
  version?: WireLong;
  value?: WireBytes;
  lease?: WireLong;
}

export interface WireRangeRequest {
  key?: WireBytes;
  range_end?: WireBytes;
  limit?: WireLong;
  revision?: WireLong;
  sort_order?: string | number;
  sort_target?: string | number;
  serializable?: boolean;
  keys_only?: boolean;
  count_only?: boolean;
  min_mod_revision?: WireLong;
  max_mod_revision?: WireLong;
  min_create_revision?: WireLong;
  max_create_revision?: WireLong;
}

export interface WireRangeResponse {
  header?: WireHeader;
  kvs?: WireKeyValue[];
  more?: boolean;
  count?: WireLong;
}

export interface WirePutRequest {
  key?: WireBytes;
  value?: WireBytes;
  lease?: WireLong;
  prev_kv?: boolean;
  ignore_value?: boolean;
  ignore_lease?: boolean;
}

export interface WirePutResponse {
  header?: WireHeader;
  prev_kv?: WireKeyValue | null;
}

export interface WireDeleteRangeRequest {
  key?: WireBytes;
  range_end?: WireBytes;
  prev_kv?: boolean;
}

export interface WireDeleteRangeResponse {
  header?: WireHeader;
  deleted?: WireLong;
  prev_kvs?: WireKeyValue[];
}

export interface WireRequestOp {
  request?: string;
  request_range?: WireRangeRequest | null;
  request_put?: WirePutRequest | null;
  request_delete_range?: WireDeleteRangeRequest | null;
  request_txn?: WireTxnRequest | null;
}

export interface WireResponseOp {
  response?: string;
  response_range?: WireRangeResponse | null;
  response_put?: WirePutResponse | null;
  response_delete_range?: WireDeleteRangeResponse | null;
  response_txn?: WireTxnResponse | null;
}

export interface WireCompare {
  result?: string | number;
  target?: string | number;
  key?: WireBytes;
  target_union?: string;
  version?: WireLong;
  create_revision?: WireLong;
  mod_revision?: WireLong;
  value?: WireBytes;
  lease?: WireLong;
  range_end?: WireBytes;
}

export interface WireTxnRequest {
  compare?: WireCompare[];
  success?: WireRequestOp[];
  failure?: WireRequestOp[];
}

export interface WireTxnResponse {
  header?: WireHeader;
  succeeded?: boolean;
  responses?: WireResponseOp[];
}

export interface WireCompactionRequest {
  revision?: WireLong;
  physical?: boolean;
}

export interface WireCompactionResponse {
  header?: WireHeader;
}

export interface WireWatchCreateRequest {
  key?: WireBytes;
  range_end?: WireBytes;
  start_revision?: WireLong;
  progress_notify?: boolean;
  filters?: (string | number)[];
  prev_kv?: boolean;
  watch_id?: WireLong;
  fragment?: boolean;
}

export interface WireWatchRequest {
  request_union?: string;
  create_request?: WireWatchCreateRequest | null;
  cancel_request?: { watch_id?: WireLong } | null;
  progress_request?: Record<string, never> | null;
}

export interface WireEvent {
  type?: string | number;
  kv?: WireKeyValue | null;
  prev_kv?: WireKeyValue | null;
}

export interface WireWatchResponse {
  header?: WireHeader;
  watch_id?: WireLong;
  created?: boolean;
  canceled?: boolean;
  compact_revision?: WireLong;
  cancel_reason?: string;
  fragment?: boolean;
  events?: WireEvent[];
}

export interface WireLeaseGrantRequest {
  TTL?: WireLong;
  ID?: WireLong;
}

export interface WireLeaseGrantResponse {
  header?: WireHeader;
  ID?: WireLong;
  TTL?: WireLong;
  error?: string;
}

export interface WireLeaseIdRequest {
  ID?: WireLong;
}

export interface WireLeaseKeepAliveResponse {
  header?: WireHeader;
  ID?: WireLong;
  TTL?: WireLong;
}

export interface WireLeaseTimeToLiveRequest {
  ID?: WireLong;
  keys?: boolean;
}

export interface WireLeaseTimeToLiveResponse {
  header?: WireHeader;
  ID?: WireLong;
  TTL?: WireLong;
  grantedTTL?: WireLong;
  keys?: WireBytes[];
}

export interface WireLeaseLeasesResponse {
  header?: WireHeader;
  leases?: { ID?: WireLong }[];
}

export interface WireMember {
  ID?: WireLong;
  name?: string;
  peerURLs?: string[];
  clientURLs?: string[];
  isLearner?: boolean;
}

export interface WireMembersResponse {
  header?: WireHeader;
  member?: WireMember | null;
  members?: WireMember[];
}

export interface WireStatusResponse {
  header?: WireHeader;
  version?: string;
  dbSize?: WireLong;
  leader?: WireLong;
  raftIndex?: WireLong;
  raftTerm?: WireLong;
  raftAppliedIndex?: WireLong;
  errors?: string[];
  dbSizeInUse?: WireLong;
  isLearner?: boolean;
}

// ---- cluster objects (no counterpart in types.ts: they describe members, not keys) ----

/** One member of the cluster, as etcd's Member message describes it. */
export interface MemberInfo {
  /** uint64 member id, decimal. */
  id: string;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

/** What one member says about itself (etcd's StatusResponse without the header). */
export interface MemberStatus {
  /** The server's version string. */
  version: string;
  /** Bytes of storage the member uses. */
  dbSize: number;
  /** Member id of the leader as this member knows it; '0' when there is none. */
  leader: string;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  /** Alarms and health problems, as etcd reports them; empty when healthy. */
  errors?: string[];
  dbSizeInUse?: number;
  isLearner?: boolean;
}

// ---- scalars ----

const EMPTY = new Uint8Array(0);

/** A decoded int64 as a number; INVALID_ARGUMENT naming `field` if it is not a safe integer. */
export function longToNumber(v: WireLong | undefined | null, field: string): number {
  if (v === undefined || v === null || v === '') return 0;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isSafeInteger(n)) {
    throw invalidArgument(`${field} ${String(v)} is not an integer Berth can represent (|n| <= 2^53 - 1)`);
  }
  return n;
}

/** A uint64 id as a canonical decimal string ('0' when unset); INVALID_ARGUMENT if malformed. */
export function uint64String(v: WireLong | undefined | null, field: string): string {
  if (v === undefined || v === null || v === '') return '0';
  const s = String(v);
  if (!/^\d+$/.test(s)) throw invalidArgument(`${field} ${s} is not an unsigned 64-bit integer`);
  const big = BigInt(s);
  if (big > 0xffffffffffffffffn) throw invalidArgument(`${field} ${s} does not fit in 64 bits`);
  return big.toString();
}

/** Decoded bytes as a fresh, plain Uint8Array (never a view into the received frame). */
export function bytesFromWire(b: WireBytes | undefined | null): Uint8Array {
  if (!b || b.length === 0) return new Uint8Array(0);
  return new Uint8Array(b);
}

/** An optional range end: empty on the wire means absent. */
function optionalBytes(b: WireBytes | undefined | null): Uint8Array | undefined {
  return b && b.length > 0 ? new Uint8Array(b) : undefined;
}

function enumName<N extends string>(v: string | number | undefined, names: readonly N[], field: string): N {
  if (v === undefined) return names[0] as N;
  if (typeof v === 'number') {
    const name = names[v];
    if (name === undefined) throw invalidArgument(`${field} ${v} is not a known value`);
    return name;
  }
  if (!(names as readonly string[]).includes(v)) throw invalidArgument(`${field} ${v} is not a known value`);
  return v as N;
}

// ---- header, key-values, events ----

/** A uint64 id for the wire: a store that names itself otherwise ('local') is reported as 0. */
function idToWire(id: string): string {
  return /^\d+$/.test(id) ? id : '0';
}

export function headerToWire(h: ResponseHeader): WireHeader {
  return {
    cluster_id: idToWire(h.clusterId),
    member_id: idToWire(h.memberId),
    revision: h.revision,
    raft_term: h.raftTerm,
  };
}

export function headerFromWire(w: WireHeader | undefined | null): ResponseHeader {
  return {
    clusterId: uint64String(w?.cluster_id, 'header.cluster_id'),
    memberId: uint64String(w?.member_id, 'header.member_id'),
    revision: longToNumber(w?.revision, 'header.revision'),
    raftTerm: longToNumber(w?.raft_term, 'header.raft_term'),
  };
}

export function keyValueToWire(kv: KeyValue): WireKeyValue {
  return {
    key: kv.key,
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
    value: kv.value,
    lease: kv.lease,
  };
}

export function keyValueFromWire(w: WireKeyValue): KeyValue {
  return {
    key: bytesFromWire(w.key),
    createRevision: longToNumber(w.create_revision, 'kv.create_revision'),
    modRevision: longToNumber(w.mod_revision, 'kv.mod_revision'),
    version: longToNumber(w.version, 'kv.version'),
    value: bytesFromWire(w.value),
    lease: longToNumber(w.lease, 'kv.lease'),
  };
}

export function eventToWire(e: WatchEvent): WireEvent {
  return {
    type: e.type === 'put' ? 'PUT' : 'DELETE',
    kv: keyValueToWire(e.kv),
    ...(e.prevKv ? { prev_kv: keyValueToWire(e.prevKv) } : {}),
  };
}

export function eventFromWire(w: WireEvent): WatchEvent {
  const type = enumName(w.type, ['PUT', 'DELETE'], 'event.type');
  const ev: WatchEvent = {
    type: type === 'PUT' ? 'put' : 'delete',
    kv: keyValueFromWire(w.kv ?? {}),
  };
  if (w.prev_kv) ev.prevKv = keyValueFromWire(w.prev_kv);
  return ev;
}

// ---- KV requests ----

/**
 * range_end only when there is one. protobufjs encodes a field that is set even when it is
 * empty, and etcd (Go) reads an empty-but-present range_end as "no upper bound", not as
 * "this key alone".
 */
function withRangeEnd(rangeEnd: Uint8Array | undefined): { range_end?: WireBytes } {
  return rangeEnd && rangeEnd.length > 0 ? { range_end: rangeEnd } : {};
}

const SORT_ORDERS = ['NONE', 'ASCEND', 'DESCEND'] as const;
const SORT_TARGETS = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'] as const;

function requireKey(key: WireBytes | undefined | null): Uint8Array {
  if (!key || key.length === 0) throw emptyKey();
  return new Uint8Array(key);
}

export type RangeSort = { order: 'ASCEND' | 'DESCEND'; target: (typeof SORT_TARGETS)[number] };

/**
 * The sort a Range asks for, or undefined when the store's own order (ascending keys) is
 * it. As in etcd, a target other than KEY with order NONE means ascending.
 */
export function rangeSortFromWire(w: WireRangeRequest): RangeSort | undefined {
  const order = enumName(w.sort_order, SORT_ORDERS, 'sort_order');
  const target = enumName(w.sort_target, SORT_TARGETS, 'sort_target');
  if (target === 'KEY' && order !== 'DESCEND') return undefined;
  return { order: order === 'DESCEND' ? 'DESCEND' : 'ASCEND', target };
}

/** Sort range results as etcd does (stable, so ties keep ascending key order). */
export function sortKeyValues(kvs: KeyValue[], sort: RangeSort): KeyValue[] {
  const by: Record<RangeSort['target'], (a: KeyValue, b: KeyValue) => number> = {
    KEY: (a, b) => compareBytes(a.key, b.key),
    VALUE: (a, b) => compareBytes(a.value, b.value),
    VERSION: (a, b) => a.version - b.version,
    CREATE: (a, b) => a.createRevision - b.createRevision,
    MOD: (a, b) => a.modRevision - b.modRevision,
  };
  const cmp = by[sort.target];
  return [...kvs].sort(sort.order === 'ASCEND' ? cmp : (a, b) => cmp(b, a));
}

/** `allowSort`: the caller sorts (top-level Range); inside a Txn, sorting is refused. */
export function rangeRequestFromWire(w: WireRangeRequest, allowSort = false): RangeRequest {
  const sort = rangeSortFromWire(w);
  if (sort && !allowSort) {
    throw invalidArgument(
      `sort_order ${sort.order} with sort_target ${sort.target} is not supported inside a txn: Berth returns keys in ascending key order there`,
    );
  }
  for (const field of [
    'min_mod_revision',
    'max_mod_revision',
    'min_create_revision',
    'max_create_revision',
  ] as const) {
    if (longToNumber(w[field], field) !== 0) {
      throw invalidArgument(`${field} is not supported: Berth does not filter ranges by revision`);
    }
  }
  const req: RangeRequest = { key: requireKey(w.key) };
  const rangeEnd = optionalBytes(w.range_end);
  if (rangeEnd) req.rangeEnd = rangeEnd;
  const limit = longToNumber(w.limit, 'limit');
  if (limit > 0) req.limit = limit;
  const revision = longToNumber(w.revision, 'revision');
  if (revision > 0) req.revision = revision;
  if (w.keys_only) req.keysOnly = true;
  if (w.count_only) req.countOnly = true;
  if (w.serializable) req.serializable = true;
  return req;
}

export function rangeRequestToWire(r: RangeRequest): WireRangeRequest {
  return {
    key: r.key,
    ...withRangeEnd(r.rangeEnd),
    limit: r.limit ?? 0,
    revision: r.revision ?? 0,
    keys_only: r.keysOnly ?? false,
    count_only: r.countOnly ?? false,
    serializable: r.serializable ?? false,
  };
}

export function putRequestFromWire(w: WirePutRequest): PutRequest {
  const req: PutRequest = { key: requireKey(w.key), value: bytesFromWire(w.value) };
  const lease = longToNumber(w.lease, 'lease');
  if (lease !== 0) req.lease = lease;
  if (w.prev_kv) req.prevKv = true;
  if (w.ignore_value) req.ignoreValue = true;
  if (w.ignore_lease) req.ignoreLease = true;
  return req;
}

export function putRequestToWire(r: PutRequest): WirePutRequest {
  return {
    key: r.key,
    value: r.value,
    lease: r.lease ?? 0,
    prev_kv: r.prevKv ?? false,
    ignore_value: r.ignoreValue ?? false,
    ignore_lease: r.ignoreLease ?? false,
  };
}

export function deleteRangeRequestFromWire(w: WireDeleteRangeRequest): DeleteRangeRequest {
  const req: DeleteRangeRequest = { key: requireKey(w.key) };
  const rangeEnd = optionalBytes(w.range_end);
  if (rangeEnd) req.rangeEnd = rangeEnd;
  if (w.prev_kv) req.prevKv = true;
  return req;
}

export function deleteRangeRequestToWire(r: DeleteRangeRequest): WireDeleteRangeRequest {
  return { key: r.key, ...withRangeEnd(r.rangeEnd), prev_kv: r.prevKv ?? false };
}

const COMPARE_RESULTS = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'] as const;
const COMPARE_TARGETS = ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'] as const;
const RESULT_FROM_WIRE: Record<string, CompareResult> = {
  EQUAL: 'equal',
  GREATER: 'greater',
  LESS: 'less',
  NOT_EQUAL: 'not_equal',
};
const RESULT_TO_WIRE: Record<CompareResult, string> = {
  equal: 'EQUAL',
  greater: 'GREATER',
  less: 'LESS',
  not_equal: 'NOT_EQUAL',
};
const TARGET_FROM_WIRE: Record<string, CompareTarget> = {
  VERSION: 'version',
  CREATE: 'create',
  MOD: 'mod',
  VALUE: 'value',
  LEASE: 'lease',
};
const TARGET_TO_WIRE: Record<CompareTarget, string> = {
  version: 'VERSION',
  create: 'CREATE',
  mod: 'MOD',
  value: 'VALUE',
  lease: 'LEASE',
};

export function compareFromWire(w: WireCompare, field = 'compare'): Compare {
  const result = RESULT_FROM_WIRE[enumName(w.result, COMPARE_RESULTS, `${field}.result`)] as CompareResult;
  const target = TARGET_FROM_WIRE[enumName(w.target, COMPARE_TARGETS, `${field}.target`)] as CompareTarget;
  const c: Compare = { target, result, key: requireKey(w.key) };
  const rangeEnd = optionalBytes(w.range_end);
  if (rangeEnd) c.rangeEnd = rangeEnd;
  // The operand is the oneof member named by target; an unset one compares against 0 / empty.
  switch (target) {
    case 'version':
      c.version = longToNumber(w.version, `${field}.version`);
      break;
    case 'create':
      c.createRevision = longToNumber(w.create_revision, `${field}.create_revision`);
      break;
    case 'mod':
      c.modRevision = longToNumber(w.mod_revision, `${field}.mod_revision`);
      break;
    case 'value':
      c.value = bytesFromWire(w.value);
      break;
    case 'lease':
      c.lease = longToNumber(w.lease, `${field}.lease`);
      break;
  }
  return c;
}

export function compareToWire(c: Compare): WireCompare {
  const w: WireCompare = {
    result: RESULT_TO_WIRE[c.result],
    target: TARGET_TO_WIRE[c.target],
    key: c.key,
    ...withRangeEnd(c.rangeEnd),
  };
  switch (c.target) {
    case 'version':
      w.version = c.version ?? 0;
      break;
    case 'create':
      w.create_revision = c.createRevision ?? 0;
      break;
    case 'mod':
      w.mod_revision = c.modRevision ?? 0;
      break;
    case 'value':
      w.value = c.value ?? EMPTY;
      break;
    case 'lease':
      w.lease = c.lease ?? 0;
      break;
  }
  return w;
}

function requestOpFromWire(w: WireRequestOp, field: string, depth: number): RequestOp {
  if (w.request_range) return { range: rangeRequestFromWire(w.request_range) };
  if (w.request_put) return { put: putRequestFromWire(w.request_put) };
  if (w.request_delete_range) return { deleteRange: deleteRangeRequestFromWire(w.request_delete_range) };
  if (w.request_txn) return { txn: txnFromWire(w.request_txn, `${field}.request_txn`, depth + 1) };
  throw invalidArgument(
    `${field} has no request set (one of request_range, request_put, request_delete_range, request_txn)`,
  );
}

function requestOpToWire(op: RequestOp): WireRequestOp {
  if ('range' in op) return { request_range: rangeRequestToWire(op.range) };
  if ('put' in op) return { request_put: putRequestToWire(op.put) };
  if ('deleteRange' in op) return { request_delete_range: deleteRangeRequestToWire(op.deleteRange) };
  return { request_txn: txnRequestToWire(op.txn) };
}

/** Nested txns deeper than this are refused before they can exhaust the stack. */
const MAX_TXN_DEPTH = 16;

function txnFromWire(w: WireTxnRequest, field: string, depth: number): TxnRequest {
  if (depth > MAX_TXN_DEPTH) throw invalidArgument(`${field} nests txns deeper than ${MAX_TXN_DEPTH}`);
  const compare = w.compare ?? [];
  const success = w.success ?? [];
  const failure = w.failure ?? [];
  if (
    compare.length > StoreLimits.maxTxnOps ||
    success.length > StoreLimits.maxTxnOps ||
    failure.length > StoreLimits.maxTxnOps
  ) {
    throw tooManyOps();
  }
  return {
    compare: compare.map((c, i) => compareFromWire(c, `${field}.compare[${i}]`)),
    success: success.map((op, i) => requestOpFromWire(op, `${field}.success[${i}]`, depth)),
    failure: failure.map((op, i) => requestOpFromWire(op, `${field}.failure[${i}]`, depth)),
  };
}

export function txnRequestFromWire(w: WireTxnRequest): TxnRequest {
  return txnFromWire(w, 'txn', 0);
}

export function txnRequestToWire(t: TxnRequest): WireTxnRequest {
  return {
    compare: t.compare.map(compareToWire),
    success: t.success.map(requestOpToWire),
    failure: t.failure.map(requestOpToWire),
  };
}

/** A txn that only reads (every op, nested ones included, is a range): safe to retry. */
export function isReadOnlyTxn(t: TxnRequest): boolean {
  const readOnly = (op: RequestOp): boolean =>
    'range' in op || ('txn' in op && op.txn.success.every(readOnly) && op.txn.failure.every(readOnly));
  return t.success.every(readOnly) && t.failure.every(readOnly);
}

export function compactionRequestFromWire(w: WireCompactionRequest): CompactionRequest {
  return { revision: longToNumber(w.revision, 'revision') };
}

export function compactionRequestToWire(r: CompactionRequest): WireCompactionRequest {
  return { revision: r.revision, physical: false };
}

// ---- KV responses ----

export function rangeResponseToWire(r: RangeResponse): WireRangeResponse {
  return { header: headerToWire(r.header), kvs: r.kvs.map(keyValueToWire), more: r.more, count: r.count };
}

export function rangeResponseFromWire(w: WireRangeResponse): RangeResponse {
  return {
    header: headerFromWire(w.header),
    kvs: (w.kvs ?? []).map(keyValueFromWire),
    more: w.more ?? false,
    count: longToNumber(w.count, 'count'),
  };
}

export function putResponseToWire(r: PutResponse): WirePutResponse {
  return { header: headerToWire(r.header), ...(r.prevKv ? { prev_kv: keyValueToWire(r.prevKv) } : {}) };
}

export function putResponseFromWire(w: WirePutResponse): PutResponse {
  const r: PutResponse = { header: headerFromWire(w.header) };
  if (w.prev_kv) r.prevKv = keyValueFromWire(w.prev_kv);
  return r;
}

export function deleteRangeResponseToWire(r: DeleteRangeResponse): WireDeleteRangeResponse {
  return { header: headerToWire(r.header), deleted: r.deleted, prev_kvs: r.prevKvs.map(keyValueToWire) };
}

export function deleteRangeResponseFromWire(w: WireDeleteRangeResponse): DeleteRangeResponse {
  return {
    header: headerFromWire(w.header),
    deleted: longToNumber(w.deleted, 'deleted'),
    prevKvs: (w.prev_kvs ?? []).map(keyValueFromWire),
  };
}

function responseOpToWire(op: ResponseOp): WireResponseOp {
  if ('range' in op) return { response_range: rangeResponseToWire(op.range) };
  if ('put' in op) return { response_put: putResponseToWire(op.put) };
  if ('deleteRange' in op) return { response_delete_range: deleteRangeResponseToWire(op.deleteRange) };
  return { response_txn: txnResponseToWire(op.txn) };
}

function responseOpFromWire(w: WireResponseOp): ResponseOp {
  if (w.response_range) return { range: rangeResponseFromWire(w.response_range) };
  if (w.response_put) return { put: putResponseFromWire(w.response_put) };
  if (w.response_delete_range) return { deleteRange: deleteRangeResponseFromWire(w.response_delete_range) };
  if (w.response_txn) return { txn: txnResponseFromWire(w.response_txn) };
  throw invalidArgument('txn response op has no response set');
}

export function txnResponseToWire(r: TxnResponse): WireTxnResponse {
  return {
    header: headerToWire(r.header),
    succeeded: r.succeeded,
    responses: r.responses.map(responseOpToWire),
  };
}

export function txnResponseFromWire(w: WireTxnResponse): TxnResponse {
  return {
    header: headerFromWire(w.header),
    succeeded: w.succeeded ?? false,
    responses: (w.responses ?? []).map(responseOpFromWire),
  };
}

export function compactionResponseToWire(r: CompactionResponse): WireCompactionResponse {
  return { header: headerToWire(r.header) };
}

export function compactionResponseFromWire(w: WireCompactionResponse): CompactionResponse {
  return { header: headerFromWire(w.header) };
}

// ---- Watch ----

/** A create request as the store's WatchRequest. An empty key means "from the first key". */
export function watchCreateFromWire(w: WireWatchCreateRequest): WatchRequest {
  const key = w.key && w.key.length > 0 ? new Uint8Array(w.key) : new Uint8Array([0]);
  const req: WatchRequest = { key };
  const rangeEnd = optionalBytes(w.range_end);
  if (rangeEnd) req.rangeEnd = rangeEnd;
  const start = longToNumber(w.start_revision, 'start_revision');
  if (start > 0) req.startRevision = start;
  if (w.prev_kv) req.prevKv = true;
  if (w.progress_notify) req.progressNotify = true;
  for (const [i, f] of (w.filters ?? []).entries()) {
    const name = enumName(f, ['NOPUT', 'NODELETE'], `filters[${i}]`);
    if (name === 'NOPUT') req.noPut = true;
    else req.noDelete = true;
  }
  return req;
}

export function watchCreateToWire(r: WatchRequest, watchId: number): WireWatchCreateRequest {
  const filters: string[] = [];
  if (r.noPut) filters.push('NOPUT');
  if (r.noDelete) filters.push('NODELETE');
  return {
    key: r.key,
    ...withRangeEnd(r.rangeEnd),
    start_revision: r.startRevision ?? 0,
    progress_notify: r.progressNotify ?? false,
    filters,
    prev_kv: r.prevKv ?? false,
    watch_id: watchId,
    fragment: false,
  };
}

/** A store WatchResponse on the wire, under the stream-local `watchId`. */
export function watchResponseToWire(r: WatchResponse, watchId: number): WireWatchResponse {
  return {
    header: headerToWire(r.header),
    watch_id: watchId,
    created: false,
    canceled: r.canceled ?? false,
    compact_revision: r.compactRevision ?? 0,
    cancel_reason: r.cancelReason ?? '',
    events: r.events.map(eventToWire),
  };
}

export function watchResponseFromWire(w: WireWatchResponse): WatchResponse & { created: boolean } {
  const r: WatchResponse & { created: boolean } = {
    header: headerFromWire(w.header),
    watchId: longToNumber(w.watch_id, 'watch_id'),
    events: (w.events ?? []).map(eventFromWire),
    created: w.created ?? false,
  };
  const compactRevision = longToNumber(w.compact_revision, 'compact_revision');
  if (compactRevision > 0) r.compactRevision = compactRevision;
  if (w.canceled) r.canceled = true;
  if (w.cancel_reason) r.cancelReason = w.cancel_reason;
  return r;
}

// ---- Lease ----

export function leaseGrantRequestFromWire(w: WireLeaseGrantRequest): LeaseGrantRequest {
  const req: LeaseGrantRequest = { ttl: longToNumber(w.TTL, 'TTL') };
  const id = longToNumber(w.ID, 'ID');
  if (id !== 0) req.id = id;
  return req;
}

export function leaseGrantResponseToWire(r: LeaseGrantResponse): WireLeaseGrantResponse {
  return { header: headerToWire(r.header), ID: r.id, TTL: r.ttl, error: '' };
}

export function leaseGrantResponseFromWire(w: WireLeaseGrantResponse): LeaseGrantResponse {
  // etcd once reported some grant failures in `error` instead of a status; honour it.
  if (w.error) throw invalidArgument(w.error.replace(/^etcdserver: /, ''));
  return { header: headerFromWire(w.header), id: longToNumber(w.ID, 'ID'), ttl: longToNumber(w.TTL, 'TTL') };
}

export function leaseKeepAliveResponseToWire(r: LeaseKeepAliveResponse): WireLeaseKeepAliveResponse {
  return { header: headerToWire(r.header), ID: r.id, TTL: r.ttl };
}

export function leaseKeepAliveResponseFromWire(w: WireLeaseKeepAliveResponse): LeaseKeepAliveResponse {
  return { header: headerFromWire(w.header), id: longToNumber(w.ID, 'ID'), ttl: longToNumber(w.TTL, 'TTL') };
}

export function leaseTimeToLiveResponseToWire(r: LeaseTimeToLiveResponse): WireLeaseTimeToLiveResponse {
  return { header: headerToWire(r.header), ID: r.id, TTL: r.ttl, grantedTTL: r.grantedTtl, keys: r.keys };
}

export function leaseTimeToLiveResponseFromWire(w: WireLeaseTimeToLiveResponse): LeaseTimeToLiveResponse {
  return {
    header: headerFromWire(w.header),
    id: longToNumber(w.ID, 'ID'),
    ttl: longToNumber(w.TTL, 'TTL'),
    grantedTtl: longToNumber(w.grantedTTL, 'grantedTTL'),
    keys: (w.keys ?? []).map(bytesFromWire),
  };
}

export function leaseLeasesResponseToWire(r: LeaseLeasesResponse): WireLeaseLeasesResponse {
  return { header: headerToWire(r.header), leases: r.leases.map((l) => ({ ID: l.id })) };
}

export function leaseLeasesResponseFromWire(w: WireLeaseLeasesResponse): LeaseLeasesResponse {
  return {
    header: headerFromWire(w.header),
    leases: (w.leases ?? []).map((l) => ({ id: longToNumber(l.ID, 'leases.ID') })),
  };
}

// ---- Cluster and Maintenance ----

export function memberToWire(m: MemberInfo): WireMember {
  return {
    ID: idToWire(m.id),
    name: m.name,
    peerURLs: m.peerUrls,
    clientURLs: m.clientUrls,
    isLearner: m.isLearner,
  };
}

export function memberFromWire(w: WireMember): MemberInfo {
  return {
    id: uint64String(w.ID, 'member.ID'),
    name: w.name ?? '',
    peerUrls: w.peerURLs ?? [],
    clientUrls: w.clientURLs ?? [],
    isLearner: w.isLearner ?? false,
  };
}

export function statusToWire(header: ResponseHeader, s: MemberStatus): WireStatusResponse {
  return {
    header: headerToWire(header),
    version: s.version,
    dbSize: s.dbSize,
    leader: idToWire(s.leader),
    raftIndex: s.raftIndex,
    raftTerm: s.raftTerm,
    raftAppliedIndex: s.raftAppliedIndex,
    errors: s.errors ?? [],
    dbSizeInUse: s.dbSizeInUse ?? s.dbSize,
    isLearner: s.isLearner ?? false,
  };
}

export function statusFromWire(w: WireStatusResponse): MemberStatus & { header: ResponseHeader } {
  return {
    header: headerFromWire(w.header),
    version: w.version ?? '',
    dbSize: longToNumber(w.dbSize, 'dbSize'),
    leader: uint64String(w.leader, 'leader'),
    raftIndex: longToNumber(w.raftIndex, 'raftIndex'),
    raftTerm: longToNumber(w.raftTerm, 'raftTerm'),
    raftAppliedIndex: longToNumber(w.raftAppliedIndex, 'raftAppliedIndex'),
    errors: w.errors ?? [],
    dbSizeInUse: longToNumber(w.dbSizeInUse, 'dbSizeInUse'),
    isLearner: w.isLearner ?? false,
  };
}

// ---- errors ----

/** gRPC status codes that have no name in errors.ts' GrpcCode. */
export const GrpcStatus = {
  Ok: 0,
  Cancelled: 1,
  Unknown: 2,
  Unimplemented: 12,
  Internal: 13,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;

/** Trailer that carries CompactedError's revision next to etcd's message. */
export const COMPACT_REVISION_TRAILER = 'berth-compact-revision';

/** A status the gRPC edge answers with. */
export interface WireStatus {
  code: number;
  details: string;
  /** Set for CompactedError: sent as the COMPACT_REVISION_TRAILER trailer. */
  compactRevision?: number;
}

/**
 * Any error as the status the server answers with: a StoreError keeps its `grpc` code and its
 * message exactly (etcd clients match on it); anything else is UNKNOWN with its message.
 */
export function errorToStatus(err: unknown): WireStatus {
  if (err instanceof StoreError) {
    const s: WireStatus = { code: err.grpc, details: err.message };
    if (err instanceof CompactedError) s.compactRevision = err.compactRevision;
    return s;
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: GrpcStatus.Unknown, details: `berth: internal error: ${message}` };
}

/** The catalogue, keyed by etcd's message: every StoreError the server may send, rebuilt. */
const CATALOGUE = new Map<string, () => StoreError>(
  [
    emptyKey,
    keyNotFound,
    valueProvided,
    leaseProvided,
    tooManyOps,
    duplicateKey,
    futureRevision,
    leaseNotFound,
    leaseExists,
    leaseTtlTooLarge,
    noLeader,
    requestTimeout,
    stopped,
  ].map((make) => [make().message, make]),
);
const COMPACTED_MESSAGE = new CompactedError(0).message;
const TOO_LARGE_PREFIX = 'etcdserver: request is too large';

const KNOWN_GRPC_CODES = new Set<number>(Object.values(GrpcCode));

/**
 * A gRPC status back as the StoreError it was sent from, found by etcd's message (the same
 * table etcd clients use). A status outside the catalogue keeps its message: a known code
 * stays (STORE_INVALID_ARGUMENT as Berth's code); DEADLINE_EXCEEDED becomes STORE_TIMEOUT
 * with DEADLINE_EXCEEDED, transport failures (UNAVAILABLE, CANCELLED) STORE_TIMEOUT with
 * UNAVAILABLE (as the etcd adapter reports them: the outcome is unknown, retry later); and
 * the codes errors.ts has no name for (UNKNOWN, INTERNAL, UNIMPLEMENTED, ...) become
 * INVALID_ARGUMENT, since retrying them would not help. The original status is the `cause`.
 */
export function statusToError(status: WireStatus): StoreError {
  const { code, details } = status;
  const cause = { cause: { code, details } };
  const make = CATALOGUE.get(details);
  if (make) return make();
  if (details === COMPACTED_MESSAGE) return new CompactedError(status.compactRevision ?? 0);
  if (details.startsWith(TOO_LARGE_PREFIX)) {
    return new StoreError(StoreErrorCode.RequestTooLarge, GrpcCode.InvalidArgument, details, cause);
  }
  if (code === GrpcCode.DeadlineExceeded) {
    return new StoreError(StoreErrorCode.Timeout, GrpcCode.DeadlineExceeded, details, cause);
  }
  if (code === GrpcCode.Unavailable || code === GrpcStatus.Cancelled) {
    return new StoreError(StoreErrorCode.Timeout, GrpcCode.Unavailable, details, cause);
  }
  if (KNOWN_GRPC_CODES.has(code)) {
    return new StoreError(StoreErrorCode.InvalidArgument, code as GrpcCode, details, cause);
  }
  return new StoreError(StoreErrorCode.InvalidArgument, GrpcCode.InvalidArgument, details, cause);
}
