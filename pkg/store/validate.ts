// Request validation at the store's boundary, with etcd's rules (etcdserver/api/v3rpc/key.go:
// checkRangeRequest, checkPutRequest, checkTxnRequest, checkIntervals) plus Berth's own:
// numbers must be non-negative safe integers, and the error names the offending field.
//
// The MVCC store runs the txn checks itself as well (they are deterministic), so a command
// that reached the log without passing through here still fails the same way on every node.

import { type KeySpan, keySpan, keyString, spanContains } from './bytes.js';
import {
  duplicateKey,
  emptyKey,
  invalidArgument,
  leaseProvided,
  tooManyOps,
  valueProvided,
} from './errors.js';
import type {
  Compare,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
  WatchRequest,
} from './types.js';
import { StoreLimits } from './types.js';

/** Nested txns deeper than this are refused (etcd has no such limit; it keeps recursion bounded). */
export const MAX_TXN_DEPTH = 32;

const COMPARE_TARGETS = new Set(['version', 'create', 'mod', 'value', 'lease']);
const COMPARE_RESULTS = new Set(['equal', 'greater', 'less', 'not_equal']);

/** `value` is absent or a non-negative safe integer; otherwise INVALID_ARGUMENT naming `field`. */
export function checkUint(value: unknown, field: string): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalidArgument(`${field} must be a non-negative integer, got ${String(value)}`);
  }
}

export function checkBytes(value: unknown, field: string, optional = false): void {
  if (value === undefined && optional) return;
  if (!(value instanceof Uint8Array)) throw invalidArgument(`${field} must be bytes`);
}

/** A key: bytes, not empty (etcd: "key is not provided"). */
export function checkKey(key: unknown, field: string): void {
  checkBytes(key, field);
  if ((key as Uint8Array).length === 0) throw emptyKey();
}

export function validateRangeRequest(req: RangeRequest, field = 'range'): void {
  checkKey(req.key, `${field}.key`);
  checkBytes(req.rangeEnd, `${field}.rangeEnd`, true);
  checkUint(req.limit, `${field}.limit`);
  checkUint(req.revision, `${field}.revision`);
}

export function validatePutRequest(req: PutRequest, field = 'put'): void {
  checkKey(req.key, `${field}.key`);
  checkBytes(req.value, `${field}.value`);
  checkUint(req.lease, `${field}.lease`);
  if (req.ignoreValue && req.value.length !== 0) throw valueProvided();
  if (req.ignoreLease && (req.lease ?? 0) !== 0) throw leaseProvided();
}

export function validateDeleteRangeRequest(req: DeleteRangeRequest, field = 'deleteRange'): void {
  checkKey(req.key, `${field}.key`);
  checkBytes(req.rangeEnd, `${field}.rangeEnd`, true);
}

export function validateCompare(c: Compare, field: string): void {
  checkKey(c.key, `${field}.key`);
  checkBytes(c.rangeEnd, `${field}.rangeEnd`, true);
  if (!COMPARE_TARGETS.has(c.target))
    throw invalidArgument(`${field}.target is unknown: ${String(c.target)}`);
  if (!COMPARE_RESULTS.has(c.result))
    throw invalidArgument(`${field}.result is unknown: ${String(c.result)}`);
  checkUint(c.version, `${field}.version`);
  checkUint(c.createRevision, `${field}.createRevision`);
  checkUint(c.modRevision, `${field}.modRevision`);
  checkUint(c.lease, `${field}.lease`);
  checkBytes(c.value, `${field}.value`, true);
}

/**
 * etcd's txn checks: at most maxTxnOps in compare/success/failure (nested txns share what is
 * left of the budget), every op valid, and no key written twice (checkIntervals).
 */
export function validateTxnRequest(
  req: TxnRequest,
  maxTxnOps: number = StoreLimits.maxTxnOps,
  field = 'txn',
): void {
  checkTxnShape(req, maxTxnOps, field, 0);
  checkIntervals(req.success);
  checkIntervals(req.failure);
}

function checkTxnShape(req: TxnRequest, budget: number, field: string, depth: number): void {
  if (depth > MAX_TXN_DEPTH) throw invalidArgument(`${field}: txns nested more than ${MAX_TXN_DEPTH} deep`);
  if (!Array.isArray(req.compare) || !Array.isArray(req.success) || !Array.isArray(req.failure)) {
    throw invalidArgument(`${field} needs compare, success and failure lists`);
  }
  const opc = Math.max(req.compare.length, req.success.length, req.failure.length);
  if (opc > budget) throw tooManyOps();
  req.compare.forEach((c, i) => {
    validateCompare(c, `${field}.compare[${i}]`);
  });
  req.success.forEach((op, i) => {
    checkOp(op, budget - opc, `${field}.success[${i}]`, depth);
  });
  req.failure.forEach((op, i) => {
    checkOp(op, budget - opc, `${field}.failure[${i}]`, depth);
  });
}

function checkOp(op: RequestOp, budget: number, field: string, depth: number): void {
  if ('range' in op) validateRangeRequest(op.range, `${field}.range`);
  else if ('put' in op) validatePutRequest(op.put, `${field}.put`);
  else if ('deleteRange' in op) validateDeleteRangeRequest(op.deleteRange, `${field}.deleteRange`);
  else if ('txn' in op) checkTxnShape(op.txn, budget, `${field}.txn`, depth + 1);
  else throw invalidArgument(`${field} is not a range, put, deleteRange or txn`);
}

function intersects(dels: readonly KeySpan[], k: string): boolean {
  return dels.some((d) => spanContains(d, k));
}

/**
 * etcd's checkIntervals: puts and deletes at one level must not overlap, nor with what the
 * nested txns write; a key put in both branches of one nested txn is fine (only one runs).
 */
function checkIntervals(ops: readonly RequestOp[]): { puts: Set<string>; dels: KeySpan[] } {
  const dels: KeySpan[] = [];
  for (const op of ops) {
    if ('deleteRange' in op) dels.push(keySpan(op.deleteRange.key, op.deleteRange.rangeEnd));
  }
  const puts = new Set<string>();
  for (const op of ops) {
    if (!('txn' in op)) continue;
    const then = checkIntervals(op.txn.success);
    const otherwise = checkIntervals(op.txn.failure);
    for (const k of then.puts) {
      if (puts.has(k) || intersects(dels, k)) throw duplicateKey();
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      if (puts.has(k) && !then.puts.has(k)) throw duplicateKey();
      if (intersects(dels, k)) throw duplicateKey();
      puts.add(k);
    }
    dels.push(...then.dels, ...otherwise.dels);
  }
  for (const op of ops) {
    if (!('put' in op)) continue;
    const k = keyString(op.put.key);
    if (puts.has(k) || intersects(dels, k)) throw duplicateKey();
    puts.add(k);
  }
  return { puts, dels };
}

export function validateWatchRequest(req: WatchRequest, field = 'watch'): void {
  checkKey(req.key, `${field}.key`);
  checkBytes(req.rangeEnd, `${field}.rangeEnd`, true);
  checkUint(req.startRevision, `${field}.startRevision`);
}
