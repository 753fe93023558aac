// The multi-version key-value store at the heart of the state machine, with etcd v3's MVCC
// semantics (server/storage/mvcc): one global revision, starting at 1 for an empty store and
// bumped by exactly one for every write that changes something (a whole txn included); per
// key a history of revisions, deletes recorded as tombstones, so a Range can read any
// revision back to the compaction point.
//
//   put / deleteRange / txn ──► WriteContext (main = revision + 1, sub = 0, 1, 2, …)
//                                 │ appends KeyRecords to each key's history
//                                 ▼ on success: revision = main, onCommit(revision, events)
//                                   on a thrown StoreError: every appended record is removed
//
// Pure and synchronous: no clock, no randomness, no I/O. Every replica applying the same
// calls in the same order ends in the same state.

import { EMPTY_BYTES, type KeySpan, keyBytes, keySpan, keyString, lowerBound } from './bytes.js';
import {
  CompactedError,
  emptyKey,
  futureRevision,
  keyNotFound,
  leaseNotFound,
  leaseProvided,
  valueProvided,
} from './errors.js';
import type {
  CompactionResponse,
  Compare,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KeyValue,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseHeader,
  ResponseOp,
  TxnRequest,
  TxnResponse,
  WatchEvent,
} from './types.js';
import { compareBytes, StoreLimits } from './types.js';
import { validateTxnRequest } from './validate.js';

/** One revision of one key. A tombstone records a delete: its other fields are 0 / empty. */
export interface KeyRecord {
  /** The store revision of the change (the key's modRevision). */
  main: number;
  /** Position of the change inside its revision (a txn makes several). */
  sub: number;
  tombstone: boolean;
  createRevision: number;
  version: number;
  value: Uint8Array;
  lease: number;
}

interface KeyHistory {
  key: Uint8Array;
  /** Ascending by (main, sub); never empty. */
  records: KeyRecord[];
}

/** Builds response headers; the store fills only `revision`, the caller's factory the rest. */
export type HeaderFactory = (revision: number) => ResponseHeader;

/** Placeholder identity ('' / 0) for callers that fill clusterId, memberId and raftTerm later. */
export const placeholderHeader: HeaderFactory = (revision) => ({
  clusterId: '',
  memberId: '',
  revision,
  raftTerm: 0,
});

export interface MvccOptions {
  /** Whether a lease exists (puts with an unknown lease fail). Default: no lease exists. */
  leaseExists?: (id: number) => boolean;
  /**
   * Called once per committed write, after the revision moved, with that revision's events
   * in order (each with prevKv when the key existed before). Must not write to the store.
   */
  onCommit?: (revision: number, events: WatchEvent[]) => void;
  header?: HeaderFactory;
  /** Default StoreLimits.maxTxnOps. Every replica must use the same value. */
  maxTxnOps?: number;
}

/** The whole store as plain data (snapshots, tests). Records are copies; byte arrays are shared. */
export interface MvccDump {
  revision: number;
  compactRevision: number;
  /** Ascending by key bytes. */
  keys: { key: Uint8Array; records: KeyRecord[] }[];
}

/** Writes that share one revision (see MvccStore.write). */
export interface MvccWriteTxn {
  put(req: PutRequest): PutResponse;
  deleteRange(req: DeleteRangeRequest): DeleteRangeResponse;
  /** Sees the writes made earlier in the same txn. */
  range(req: RangeRequest): RangeResponse;
}

class WriteContext {
  readonly main: number;
  sub = 0;
  readonly events: WatchEvent[] = [];
  /** Keys that got a record, in order, so a failed write can take them back. */
  readonly touched: string[] = [];

  constructor(readonly beginRev: number) {
    this.main = beginRev + 1;
  }

  /** The revision the txn's reads see: its own writes once it made any (etcd's storeTxnWrite). */
  get viewRev(): number {
    return this.events.length > 0 ? this.main : this.beginRev;
  }
}

function toKv(key: Uint8Array, r: KeyRecord, keysOnly = false): KeyValue {
  return {
    key: key.slice(),
    createRevision: r.createRevision,
    modRevision: r.main,
    version: r.version,
    value: keysOnly ? new Uint8Array(0) : r.value.slice(),
    lease: r.lease,
  };
}

function deletedKv(key: Uint8Array, rev: number): KeyValue {
  return {
    key: key.slice(),
    createRevision: 0,
    modRevision: rev,
    version: 0,
    value: new Uint8Array(0),
    lease: 0,
  };
}

/** Index of the last record with main <= rev, or -1. */
function lastAtOrBefore(records: readonly KeyRecord[], rev: number): number {
  let lo = 0;
  let hi = records.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((records[mid] as KeyRecord).main <= rev) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

function liveAt(h: KeyHistory, rev: number): KeyRecord | undefined {
  const r = h.records[lastAtOrBefore(h.records, rev)];
  return r && !r.tombstone ? r : undefined;
}

function latestLive(h: KeyHistory): KeyRecord | undefined {
  const r = h.records[h.records.length - 1];
  return r && !r.tombstone ? r : undefined;
}

function compareNumbers(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** etcd's compareKV: how `kv` (or an absent key, all zero / empty) stands against `c`. */
function compareHolds(c: Compare, kv: KeyRecord | undefined): boolean {
  let r: number;
  switch (c.target) {
    case 'value':
      r = compareBytes(kv ? kv.value : EMPTY_BYTES, c.value ?? EMPTY_BYTES);
      break;
    case 'create':
      r = compareNumbers(kv ? kv.createRevision : 0, c.createRevision ?? 0);
      break;
    case 'mod':
      r = compareNumbers(kv ? kv.main : 0, c.modRevision ?? 0);
      break;
    case 'version':
      r = compareNumbers(kv ? kv.version : 0, c.version ?? 0);
      break;
    case 'lease':
      r = compareNumbers(kv ? kv.lease : 0, c.lease ?? 0);
      break;
    default:
      return false;
  }
  switch (c.result) {
    case 'equal':
      return r === 0;
    case 'not_equal':
      return r !== 0;
    case 'greater':
      return r > 0;
    case 'less':
      return r < 0;
    default:
      return false;
  }
}

export class MvccStore {
  private readonly index = new Map<string, KeyHistory>();
  /** Every key with a history, ascending; tombstoned keys stay until compaction drops them. */
  private sorted: string[] = [];
  private rev = 1;
  private compactRev = 0;
  private writing: WriteContext | undefined;
  private readonly leaseExists: (id: number) => boolean;
  private readonly onCommit: ((revision: number, events: WatchEvent[]) => void) | undefined;
  private readonly header: HeaderFactory;
  private readonly maxTxnOps: number;

  constructor(options: MvccOptions = {}) {
    this.leaseExists = options.leaseExists ?? (() => false);
    this.onCommit = options.onCommit;
    this.header = options.header ?? placeholderHeader;
    this.maxTxnOps = options.maxTxnOps ?? StoreLimits.maxTxnOps;
  }

  /** The newest revision (1 for an empty store). */
  get revision(): number {
    return this.rev;
  }

  /** Revisions below this one are gone (0: never compacted). */
  get compactRevision(): number {
    return this.compactRev;
  }

  // --- reads -----------------------------------------------------------------------------

  range(req: RangeRequest): RangeResponse {
    return this.rangeAt(req, this.rev, this.rev);
  }

  /**
   * A range seen from `viewRev`; an explicit revision above `maxRev` is a future revision
   * (inside a txn that is the revision the txn started from, as in etcd's checkRange).
   */
  private rangeAt(req: RangeRequest, viewRev: number, maxRev: number): RangeResponse {
    if (req.key.length === 0) throw emptyKey();
    let rev = req.revision ?? 0;
    if (rev > maxRev) throw futureRevision();
    if (!(rev > 0)) rev = viewRev;
    if (rev < this.compactRev) throw new CompactedError(this.compactRev);
    const limit = req.limit !== undefined && req.limit > 0 ? req.limit : 0;
    const kvs: KeyValue[] = [];
    let count = 0;
    this.forEachLive(keySpan(req.key, req.rangeEnd), rev, (h, r) => {
      count++;
      if (!req.countOnly && (limit === 0 || kvs.length < limit)) kvs.push(toKv(h.key, r, req.keysOnly));
    });
    return { header: this.header(viewRev), kvs, more: !req.countOnly && count > kvs.length, count };
  }

  private forEachHistory(span: KeySpan, fn: (h: KeyHistory) => void): void {
    if (span.end === undefined) {
      const h = this.index.get(span.start);
      if (h) fn(h);
      return;
    }
    for (let i = lowerBound(this.sorted, span.start); i < this.sorted.length; i++) {
      const k = this.sorted[i] as string;
      if (span.end !== null && k >= span.end) break;
      fn(this.index.get(k) as KeyHistory);
    }
  }

  private forEachLive(span: KeySpan, rev: number, fn: (h: KeyHistory, r: KeyRecord) => void): void {
    this.forEachHistory(span, (h) => {
      const r = liveAt(h, rev);
      if (r) fn(h, r);
    });
  }

  /**
   * Every change to a key in [key, rangeEnd) at revision `from` or later, in revision order,
   * as watch events (prevKv set when the previous version is still retained). `from` must
   * be >= compactRevision for the result to be complete.
   */
  history(from: number, key: Uint8Array, rangeEnd?: Uint8Array): WatchEvent[] {
    const found: { r: KeyRecord; ev: WatchEvent }[] = [];
    this.forEachHistory(keySpan(key, rangeEnd), (h) => {
      for (let i = lastAtOrBefore(h.records, from - 1) + 1; i < h.records.length; i++) {
        const r = h.records[i] as KeyRecord;
        if (r.main > this.rev) break;
        const prev = h.records[i - 1];
        const ev: WatchEvent = r.tombstone
          ? { type: 'delete', kv: deletedKv(h.key, r.main) }
          : { type: 'put', kv: toKv(h.key, r) };
        if (prev && !prev.tombstone) ev.prevKv = toKv(h.key, prev);
        found.push({ r, ev });
      }
    });
    found.sort((a, b) => a.r.main - b.r.main || a.r.sub - b.r.sub);
    return found.map((f) => f.ev);
  }

  /** The newest version of `key`, if it exists (no copy of the bytes is made). */
  get(key: Uint8Array): KeyRecord | undefined {
    const h = this.index.get(keyString(key));
    return h ? latestLive(h) : undefined;
  }

  // --- writes ----------------------------------------------------------------------------

  put(req: PutRequest): PutResponse {
    return this.runWrite((ctx) => this.putIn(ctx, req));
  }

  deleteRange(req: DeleteRangeRequest): DeleteRangeResponse {
    return this.runWrite((ctx) => this.deleteIn(ctx, req));
  }

  /**
   * etcd's Txn: compares (nested ones included) see the store as it was before the txn;
   * each op sees the ops before it; all writes share one new revision; a txn that writes
   * nothing leaves the revision alone. Any error leaves the store untouched.
   */
  txn(req: TxnRequest): TxnResponse {
    validateTxnRequest(req, this.maxTxnOps);
    return this.runWrite((ctx) => this.txnIn(ctx, req));
  }

  /**
   * Run several writes at one revision (lease revocation deletes all its keys this way).
   * If `fn` throws, nothing it wrote remains.
   */
  write<T>(fn: (tx: MvccWriteTxn) => T): T {
    return this.runWrite((ctx) =>
      fn({
        put: (req) => this.putIn(ctx, req),
        deleteRange: (req) => this.deleteIn(ctx, req),
        range: (req) => this.rangeAt(req, ctx.viewRev, ctx.beginRev),
      }),
    );
  }

  private runWrite<T>(fn: (ctx: WriteContext) => T): T {
    if (this.writing) throw new Error('mvcc: a write started while another was in progress');
    const ctx = new WriteContext(this.rev);
    this.writing = ctx;
    let result: T;
    try {
      result = fn(ctx);
    } catch (err) {
      this.rollback(ctx);
      throw err;
    } finally {
      this.writing = undefined;
    }
    if (ctx.events.length > 0) {
      this.rev = ctx.main;
      this.onCommit?.(ctx.main, ctx.events);
    }
    return result;
  }

  private rollback(ctx: WriteContext): void {
    for (let i = ctx.touched.length - 1; i >= 0; i--) {
      const k = ctx.touched[i] as string;
      const h = this.index.get(k) as KeyHistory;
      h.records.pop();
      if (h.records.length === 0) {
        this.index.delete(k);
        this.sorted.splice(lowerBound(this.sorted, k), 1);
      }
    }
  }

  private append(ctx: WriteContext, k: string, key: Uint8Array, r: KeyRecord): KeyHistory {
    let h = this.index.get(k);
    if (!h) {
      h = { key: key.slice(), records: [] };
      this.index.set(k, h);
      this.sorted.splice(lowerBound(this.sorted, k), 0, k);
    }
    h.records.push(r);
    ctx.touched.push(k);
    return h;
  }

  private putIn(ctx: WriteContext, req: PutRequest): PutResponse {
    if (req.key.length === 0) throw emptyKey();
    if (req.ignoreValue && req.value.length !== 0) throw valueProvided();
    if (req.ignoreLease && (req.lease ?? 0) !== 0) throw leaseProvided();
    const k = keyString(req.key);
    const existing = this.index.get(k);
    const cur = existing ? latestLive(existing) : undefined;
    if ((req.ignoreValue || req.ignoreLease) && !cur) throw keyNotFound();
    const lease = req.ignoreLease && cur ? cur.lease : (req.lease ?? 0);
    if (!req.ignoreLease && lease !== 0 && !this.leaseExists(lease)) throw leaseNotFound();
    const r: KeyRecord = {
      main: ctx.main,
      sub: ctx.sub++,
      tombstone: false,
      createRevision: cur ? cur.createRevision : ctx.main,
      version: cur ? cur.version + 1 : 1,
      value: req.ignoreValue && cur ? cur.value : req.value.slice(),
      lease,
    };
    const h = this.append(ctx, k, req.key, r);
    const ev: WatchEvent = { type: 'put', kv: toKv(h.key, r) };
    if (cur) ev.prevKv = toKv(h.key, cur);
    ctx.events.push(ev);
    const resp: PutResponse = { header: this.header(ctx.main) };
    if (req.prevKv && cur) resp.prevKv = toKv(h.key, cur);
    return resp;
  }

  private deleteIn(ctx: WriteContext, req: DeleteRangeRequest): DeleteRangeResponse {
    if (req.key.length === 0) throw emptyKey();
    const victims: { k: string; h: KeyHistory; cur: KeyRecord }[] = [];
    this.forEachHistory(keySpan(req.key, req.rangeEnd), (h) => {
      const cur = latestLive(h);
      if (cur) victims.push({ k: keyString(h.key), h, cur });
    });
    const prevKvs: KeyValue[] = [];
    for (const { k, h, cur } of victims) {
      this.append(ctx, k, h.key, {
        main: ctx.main,
        sub: ctx.sub++,
        tombstone: true,
        createRevision: 0,
        version: 0,
        value: EMPTY_BYTES,
        lease: 0,
      });
      ctx.events.push({ type: 'delete', kv: deletedKv(h.key, ctx.main), prevKv: toKv(h.key, cur) });
      if (req.prevKv) prevKvs.push(toKv(h.key, cur));
    }
    return { header: this.header(ctx.viewRev), deleted: victims.length, prevKvs };
  }

  private txnIn(ctx: WriteContext, req: TxnRequest): TxnResponse {
    const succeeded = req.compare.every((c) => this.compareAt(c, ctx.beginRev));
    const ops = succeeded ? req.success : req.failure;
    const responses = ops.map((op) => this.opIn(ctx, op));
    return { header: this.header(ctx.viewRev), succeeded, responses };
  }

  private opIn(ctx: WriteContext, op: RequestOp): ResponseOp {
    if ('range' in op) return { range: this.rangeAt(op.range, ctx.viewRev, ctx.beginRev) };
    if ('put' in op) return { put: this.putIn(ctx, op.put) };
    if ('deleteRange' in op) return { deleteRange: this.deleteIn(ctx, op.deleteRange) };
    return { txn: this.txnIn(ctx, op.txn) };
  }

  /** etcd's applyCompare: every key in the range must pass; a value compare on no key fails. */
  private compareAt(c: Compare, rev: number): boolean {
    let any = false;
    let ok = true;
    this.forEachLive(keySpan(c.key, c.rangeEnd), rev, (_h, r) => {
      any = true;
      if (ok && !compareHolds(c, r)) ok = false;
    });
    if (!any) return c.target !== 'value' && compareHolds(c, undefined);
    return ok;
  }

  // --- compaction ------------------------------------------------------------------------

  /**
   * Forget history before `rev`: each key keeps its newest version at or below `rev` and
   * everything after. Deviation from etcd, on purpose: a tombstone at exactly `rev` is kept
   * until the next compaction, so a watch started at the compaction revision (which etcd
   * allows) still sees a delete made at that revision. Reads cannot tell the difference.
   */
  compact(rev: number): CompactionResponse {
    if (rev <= this.compactRev) throw new CompactedError(this.compactRev);
    if (rev > this.rev) throw futureRevision();
    let dropped = false;
    for (const [k, h] of this.index) {
      const i = lastAtOrBefore(h.records, rev);
      if (i < 0) continue;
      const r = h.records[i] as KeyRecord;
      const keepFrom = r.tombstone && r.main < rev ? i + 1 : i;
      if (keepFrom > 0) h.records.splice(0, keepFrom);
      if (h.records.length === 0) {
        this.index.delete(k);
        dropped = true;
      }
    }
    if (dropped) this.sorted = this.sorted.filter((k) => this.index.has(k));
    this.compactRev = rev;
    return { header: this.header(this.rev) };
  }

  // --- whole-state access ----------------------------------------------------------------

  /** Live keys carrying a lease, as [keyString, lease] pairs, ascending by key. */
  leasedKeys(): [string, number][] {
    const out: [string, number][] = [];
    for (const k of this.sorted) {
      const r = latestLive(this.index.get(k) as KeyHistory);
      if (r && r.lease !== 0) out.push([k, r.lease]);
    }
    return out;
  }

  dump(): MvccDump {
    return {
      revision: this.rev,
      compactRevision: this.compactRev,
      keys: this.sorted.map((k) => {
        const h = this.index.get(k) as KeyHistory;
        return { key: h.key, records: h.records.map((r) => ({ ...r })) };
      }),
    };
  }

  /** Replace the whole state with `d` (from dump(), here or elsewhere). Takes ownership of `d`. */
  load(d: MvccDump): void {
    if (this.writing) throw new Error('mvcc: load during a write');
    this.index.clear();
    this.sorted = [];
    for (const { key, records } of d.keys) {
      const k = keyString(key);
      this.index.set(k, { key: keyBytes(k), records: records.map((r) => ({ ...r })) });
      this.sorted.push(k);
    }
    this.sorted.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    this.rev = d.revision;
    this.compactRev = d.compactRevision;
  }
}
