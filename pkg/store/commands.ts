// The store's commands: what a node proposes through Raft and every replica applies. Each
// carries a request id chosen by the proposer, so the proposer can pick its own result out of
// the state machine once the entry is applied (see StoreStateMachine).
//
// Binary encoding (varints and length-prefixed bytes, as pkg/raft/codec.ts writes them):
//
//   'S' | version 1 | requestId (utf-8 bytes) | type u8 | body
//
// decodeCommand never throws anything but StoreDecodeError, whatever the input.

import { CodecError, Reader, Writer } from '../raft/codec.js';
import { GrpcCode, StoreError, StoreErrorCode } from './errors.js';
import type {
  CompactionRequest,
  CompactionResponse,
  Compare,
  CompareResult,
  CompareTarget,
  DeleteRangeRequest,
  DeleteRangeResponse,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RequestOp,
  ResponseHeader,
  TxnRequest,
  TxnResponse,
} from './types.js';
import { checkUint, MAX_TXN_DEPTH } from './validate.js';

export interface LeaseRevokeRequest {
  id: number;
}

export interface LeaseRevokeResponse {
  header: ResponseHeader;
}

/** A keep-alive, through the log so every member's lessor restarts the lease's clock. */
export interface LeaseRenewRequest {
  id: number;
}

/** What each command type answers with. */
export interface CommandResponses {
  put: PutResponse;
  deleteRange: DeleteRangeResponse;
  txn: TxnResponse;
  compact: CompactionResponse;
  leaseGrant: LeaseGrantResponse;
  leaseRevoke: LeaseRevokeResponse;
  leaseRenew: LeaseKeepAliveResponse;
}

export type CommandType = keyof CommandResponses;

interface CommandRequests {
  put: PutRequest;
  deleteRange: DeleteRangeRequest;
  txn: TxnRequest;
  compact: CompactionRequest;
  leaseGrant: LeaseGrantRequest;
  leaseRevoke: LeaseRevokeRequest;
  leaseRenew: LeaseRenewRequest;
}

/** A command of type T: `{ type, requestId, request }`. */
export type CommandOf<T extends CommandType> = {
  type: T;
  /** Chosen by the proposer; unique among its requests in flight (e.g. "<member>-<counter>"). */
  requestId: string;
  request: CommandRequests[T];
};

export type Command = { [T in CommandType]: CommandOf<T> }[CommandType];

/** Bytes that are not a command (or a snapshot) this version understands. */
export class StoreDecodeError extends StoreError {
  constructor(
    readonly what: string,
    readonly detail: string,
    /** The request id, when it could be read before the damage. */
    readonly requestId?: string,
    options?: { cause?: unknown },
  ) {
    super(
      StoreErrorCode.InvalidArgument,
      GrpcCode.InvalidArgument,
      `etcdserver: cannot decode ${what}: ${detail}`,
      options,
    );
    this.name = 'StoreDecodeError';
  }
}

const MAGIC = 0x53; // 'S'
const VERSION = 1;

const TYPE_CODES: Record<CommandType, number> = {
  put: 1,
  deleteRange: 2,
  txn: 3,
  compact: 4,
  leaseGrant: 5,
  leaseRevoke: 6,
  leaseRenew: 7,
};
const TYPES_BY_CODE = new Map<number, CommandType>(
  Object.entries(TYPE_CODES).map(([t, c]) => [c, t as CommandType]),
);

// etcd's enum numbers (etcdserverpb.Compare).
const TARGETS: CompareTarget[] = ['version', 'create', 'mod', 'value', 'lease'];
const RESULTS: CompareResult[] = ['equal', 'greater', 'less', 'not_equal'];

const OP_RANGE = 1;
const OP_PUT = 2;
const OP_DELETE = 3;
const OP_TXN = 4;

// Flag bits.
const F_RANGE_END = 1;
const F_PREV_KV = 2;
const F_IGNORE_VALUE = 4;
const F_IGNORE_LEASE = 8;
const F_KEYS_ONLY = 16;
const F_COUNT_ONLY = 32;
const F_SERIALIZABLE = 64;
const F_OPERAND = 128;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

// --- encoding ------------------------------------------------------------------------------

function uint(w: Writer, v: number | undefined, field: string): void {
  checkUint(v, field);
  w.uvarint(v ?? 0);
}

function writeRange(w: Writer, r: RangeRequest, f: string): void {
  const end = r.rangeEnd && r.rangeEnd.length > 0 ? r.rangeEnd : undefined;
  w.u8(
    (end ? F_RANGE_END : 0) |
      (r.keysOnly ? F_KEYS_ONLY : 0) |
      (r.countOnly ? F_COUNT_ONLY : 0) |
      (r.serializable ? F_SERIALIZABLE : 0),
  );
  w.bytes(r.key);
  if (end) w.bytes(end);
  uint(w, r.limit, `${f}.limit`);
  uint(w, r.revision, `${f}.revision`);
}

function writePut(w: Writer, p: PutRequest, f: string): void {
  w.u8(
    (p.prevKv ? F_PREV_KV : 0) | (p.ignoreValue ? F_IGNORE_VALUE : 0) | (p.ignoreLease ? F_IGNORE_LEASE : 0),
  );
  w.bytes(p.key).bytes(p.value);
  uint(w, p.lease, `${f}.lease`);
}

function writeDelete(w: Writer, d: DeleteRangeRequest): void {
  const end = d.rangeEnd && d.rangeEnd.length > 0 ? d.rangeEnd : undefined;
  w.u8((end ? F_RANGE_END : 0) | (d.prevKv ? F_PREV_KV : 0));
  w.bytes(d.key);
  if (end) w.bytes(end);
}

function operandOf(c: Compare): number | Uint8Array | undefined {
  switch (c.target) {
    case 'value':
      return c.value;
    case 'version':
      return c.version;
    case 'create':
      return c.createRevision;
    case 'mod':
      return c.modRevision;
    case 'lease':
      return c.lease;
  }
}

function writeCompare(w: Writer, c: Compare, f: string): void {
  const target = TARGETS.indexOf(c.target);
  const result = RESULTS.indexOf(c.result);
  if (target < 0) throw invalid(`${f}.target is unknown: ${String(c.target)}`);
  if (result < 0) throw invalid(`${f}.result is unknown: ${String(c.result)}`);
  const end = c.rangeEnd && c.rangeEnd.length > 0 ? c.rangeEnd : undefined;
  const operand = operandOf(c);
  w.u8(target)
    .u8(result)
    .u8((end ? F_RANGE_END : 0) | (operand !== undefined ? F_OPERAND : 0));
  w.bytes(c.key);
  if (end) w.bytes(end);
  if (operand instanceof Uint8Array) w.bytes(operand);
  else if (operand !== undefined) uint(w, operand, `${f}.${c.target}`);
}

function writeTxn(w: Writer, t: TxnRequest, f: string, depth: number): void {
  if (depth > MAX_TXN_DEPTH) throw invalid(`${f}: txns nested more than ${MAX_TXN_DEPTH} deep`);
  w.uvarint(t.compare.length);
  t.compare.forEach((c, i) => {
    writeCompare(w, c, `${f}.compare[${i}]`);
  });
  for (const [name, ops] of [
    ['success', t.success],
    ['failure', t.failure],
  ] as const) {
    w.uvarint(ops.length);
    ops.forEach((op, i) => {
      writeOp(w, op, `${f}.${name}[${i}]`, depth);
    });
  }
}

function writeOp(w: Writer, op: RequestOp, f: string, depth: number): void {
  if ('range' in op) writeRange(w.u8(OP_RANGE), op.range, `${f}.range`);
  else if ('put' in op) writePut(w.u8(OP_PUT), op.put, `${f}.put`);
  else if ('deleteRange' in op) writeDelete(w.u8(OP_DELETE), op.deleteRange);
  else if ('txn' in op) writeTxn(w.u8(OP_TXN), op.txn, `${f}.txn`, depth + 1);
  else throw invalid(`${f} is not a range, put, deleteRange or txn`);
}

function invalid(what: string): StoreError {
  return new StoreError(StoreErrorCode.InvalidArgument, GrpcCode.InvalidArgument, `etcdserver: ${what}`);
}

/** Encode a command for proposing. Throws INVALID_ARGUMENT (naming the field) for bad numbers. */
export function encodeCommand(cmd: Command): Uint8Array {
  const code = TYPE_CODES[cmd.type];
  if (code === undefined) throw invalid(`unknown command type ${String(cmd.type)}`);
  const w = new Writer(64);
  w.u8(MAGIC).u8(VERSION).bytes(utf8Encoder.encode(cmd.requestId)).u8(code);
  switch (cmd.type) {
    case 'put':
      writePut(w, cmd.request, 'put');
      break;
    case 'deleteRange':
      writeDelete(w, cmd.request);
      break;
    case 'txn':
      writeTxn(w, cmd.request, 'txn', 0);
      break;
    case 'compact':
      uint(w, cmd.request.revision, 'compact.revision');
      break;
    case 'leaseGrant':
      uint(w, cmd.request.ttl, 'leaseGrant.ttl');
      uint(w, cmd.request.id, 'leaseGrant.id');
      break;
    case 'leaseRevoke':
      uint(w, cmd.request.id, 'leaseRevoke.id');
      break;
    case 'leaseRenew':
      uint(w, cmd.request.id, 'leaseRenew.id');
      break;
  }
  return w.finish();
}

// --- decoding ------------------------------------------------------------------------------

/** Thrown inside the decoder; decodeCommand turns it into a StoreDecodeError. */
class Malformed extends Error {}

function flags(r: Reader, allowed: number): number {
  const f = r.u8();
  if ((f & ~allowed) !== 0) throw new Malformed(`unknown flags ${f.toString(2)}`);
  return f;
}

function readRange(r: Reader): RangeRequest {
  const f = flags(r, F_RANGE_END | F_KEYS_ONLY | F_COUNT_ONLY | F_SERIALIZABLE);
  const req: RangeRequest = { key: r.bytes() };
  if (f & F_RANGE_END) req.rangeEnd = r.bytes();
  const limit = r.uvarint();
  const revision = r.uvarint();
  if (limit) req.limit = limit;
  if (revision) req.revision = revision;
  if (f & F_KEYS_ONLY) req.keysOnly = true;
  if (f & F_COUNT_ONLY) req.countOnly = true;
  if (f & F_SERIALIZABLE) req.serializable = true;
  return req;
}

function readPut(r: Reader): PutRequest {
  const f = flags(r, F_PREV_KV | F_IGNORE_VALUE | F_IGNORE_LEASE);
  const req: PutRequest = { key: r.bytes(), value: r.bytes() };
  const lease = r.uvarint();
  if (lease) req.lease = lease;
  if (f & F_PREV_KV) req.prevKv = true;
  if (f & F_IGNORE_VALUE) req.ignoreValue = true;
  if (f & F_IGNORE_LEASE) req.ignoreLease = true;
  return req;
}

function readDelete(r: Reader): DeleteRangeRequest {
  const f = flags(r, F_RANGE_END | F_PREV_KV);
  const req: DeleteRangeRequest = { key: r.bytes() };
  if (f & F_RANGE_END) req.rangeEnd = r.bytes();
  if (f & F_PREV_KV) req.prevKv = true;
  return req;
}

function readCompare(r: Reader): Compare {
  const target = TARGETS[r.u8()];
  const result = RESULTS[r.u8()];
  if (!target || !result) throw new Malformed('unknown compare target or result');
  const f = flags(r, F_RANGE_END | F_OPERAND);
  const c: Compare = { target, result, key: r.bytes() };
  if (f & F_RANGE_END) c.rangeEnd = r.bytes();
  if (f & F_OPERAND) {
    if (target === 'value') c.value = r.bytes();
    else if (target === 'version') c.version = r.uvarint();
    else if (target === 'create') c.createRevision = r.uvarint();
    else if (target === 'mod') c.modRevision = r.uvarint();
    else c.lease = r.uvarint();
  }
  return c;
}

function readTxn(r: Reader, depth: number): TxnRequest {
  if (depth > MAX_TXN_DEPTH) throw new Malformed(`txns nested more than ${MAX_TXN_DEPTH} deep`);
  const compare: Compare[] = [];
  for (let n = r.uvarint(); n > 0; n--) compare.push(readCompare(r));
  const success: RequestOp[] = [];
  for (let n = r.uvarint(); n > 0; n--) success.push(readOp(r, depth));
  const failure: RequestOp[] = [];
  for (let n = r.uvarint(); n > 0; n--) failure.push(readOp(r, depth));
  return { compare, success, failure };
}

function readOp(r: Reader, depth: number): RequestOp {
  const kind = r.u8();
  switch (kind) {
    case OP_RANGE:
      return { range: readRange(r) };
    case OP_PUT:
      return { put: readPut(r) };
    case OP_DELETE:
      return { deleteRange: readDelete(r) };
    case OP_TXN:
      return { txn: readTxn(r, depth + 1) };
    default:
      throw new Malformed(`unknown op kind ${kind}`);
  }
}

function readBody(r: Reader, type: CommandType, requestId: string): Command {
  switch (type) {
    case 'put':
      return { type, requestId, request: readPut(r) };
    case 'deleteRange':
      return { type, requestId, request: readDelete(r) };
    case 'txn':
      return { type, requestId, request: readTxn(r, 0) };
    case 'compact':
      return { type, requestId, request: { revision: r.uvarint() } };
    case 'leaseGrant': {
      const ttl = r.uvarint();
      const id = r.uvarint();
      return { type, requestId, request: id ? { ttl, id } : { ttl } };
    }
    case 'leaseRevoke':
      return { type, requestId, request: { id: r.uvarint() } };
    case 'leaseRenew':
      return { type, requestId, request: { id: r.uvarint() } };
  }
}

/** Decode what encodeCommand produced. Anything else: StoreDecodeError, never another throw. */
export function decodeCommand(data: Uint8Array): Command {
  let requestId: string | undefined;
  try {
    const r = new Reader(data, 'store command');
    if (r.u8() !== MAGIC) throw new Malformed('not a store command');
    const version = r.u8();
    if (version !== VERSION) throw new Malformed(`unknown format version ${version}`);
    requestId = utf8Decoder.decode(r.bytes());
    const code = r.u8();
    const type = TYPES_BY_CODE.get(code);
    if (!type) throw new Malformed(`unknown command type ${code}`);
    const cmd = readBody(r, type, requestId);
    r.end();
    return cmd;
  } catch (err) {
    const detail =
      err instanceof Malformed
        ? err.message
        : err instanceof CodecError
          ? err.message.replace(/^raft codec: cannot decode store command: /, '')
          : `malformed (${err instanceof Error ? err.message : String(err)})`;
    throw new StoreDecodeError('command', detail, requestId, { cause: err });
  }
}
