// The store's replicated state machine: what pkg/raft's runner applies on every node.
//
//   entry.data ──decodeCommand──► execute on MvccStore + LeaseTable ──► CommandOutcome
//                                         │ each committed revision            │
//                                         ▼                                    ▼
//                     LeaseTable.observe (attach/detach keys)     onResult(outcome, index);
//                     WatchHub.notify (this node's watchers)      kept for takeResult(id)
//                                                                 when expect(id) was called
//
// How a proposer gets its answer: pick a request id unique among its requests in flight,
// call expect(id), propose encodeCommand(cmd), and when RaftNode.propose resolves (the entry
// is applied here by then) call takeResult(id). undefined means the entry was not applied
// through apply() on this node (e.g. it arrived inside a snapshot): the outcome is unknown.
// Call forget(id) when giving up (timeout). Other replicas apply the same entry; they keep
// nothing unless they too expect that id.
//
// Errors in a command (lease not found, compacted, …) are outcomes, never throws. apply()
// throws only for a broken invariant (a bug), which the runner treats as fatal.
//
// Determinism: no clock, no randomness; the snapshot is a canonical byte encoding (keys
// in byte order, leases by id), so replicas that applied the same commands produce the
// same bytes, and restore(snapshot()) followed by snapshot() reproduces them exactly.

import { CodecError, Reader, Writer } from '../raft/codec.js';
import type { StateMachine } from '../raft/runner.js';
import type { Entry } from '../raft/types.js';
import { keyString } from './bytes.js';
import {
  type Command,
  type CommandOf,
  type CommandResponses,
  type CommandType,
  decodeCommand,
  StoreDecodeError,
} from './commands.js';
import { leaseNotFound, StoreError } from './errors.js';
import { type LeaseInfo, LeaseTable, type LeaseTableDump } from './lease-table.js';
import { type HeaderFactory, type KeyRecord, type MvccDump, MvccStore, placeholderHeader } from './mvcc.js';
import type { WatchEvent } from './types.js';
import { compareBytes } from './types.js';
import { WatchHub, type WatchHubOptions } from './watch-hub.js';

export type CommandOutcome<R = CommandResponses[CommandType]> =
  | { requestId: string; ok: true; response: R }
  | { requestId: string; ok: false; error: StoreError };

/** Lease changes applied here, for the clock-keeping side (lessor.ts) to follow. */
export type LeaseChange =
  | { type: 'grant'; id: number; ttl: number }
  | { type: 'revoke'; id: number }
  /** A keep-alive was applied: the lease's clock restarts. */
  | { type: 'renew'; id: number }
  /** The state was restored from a snapshot: these are now all the leases. */
  | { type: 'reset'; leases: LeaseInfo[] };

/** pino-compatible. */
export interface StoreLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface StoreStateMachineOptions {
  /** Fills response headers (clusterId, memberId, raftTerm); default placeholders ('' / 0). */
  header?: HeaderFactory;
  /** Every applied command's outcome, with its log index (0 for applyCommand). Must not throw. */
  onResult?: (outcome: CommandOutcome, index: number) => void;
  /** Must not throw. */
  onLeaseChange?: (change: LeaseChange) => void;
  logger?: StoreLogger;
  /** Delivery options of the watch hub. */
  watch?: Omit<WatchHubOptions, 'header'>;
  /** Must be the same on every replica. Default StoreLimits.minLeaseTtl. */
  minLeaseTtl?: number;
  /** Must be the same on every replica. Default StoreLimits.maxTxnOps. */
  maxTxnOps?: number;
}

/** Everything the state machine holds, as plain data (tests compare these). */
export interface StoreDump {
  mvcc: MvccDump;
  leases: LeaseTableDump;
}

const silentLogger: StoreLogger = { warn: () => {}, error: () => {} };

export class StoreStateMachine implements StateMachine {
  readonly mvcc: MvccStore;
  readonly leases: LeaseTable;
  /** This node's watchers; fed by every committed revision, replayed from mvcc history. */
  readonly hub: WatchHub;
  private readonly header: HeaderFactory;
  private readonly logger: StoreLogger;
  private readonly onResult: ((outcome: CommandOutcome, index: number) => void) | undefined;
  private readonly onLeaseChange: ((change: LeaseChange) => void) | undefined;
  /** Request ids a local proposer waits for → their outcome once applied. */
  private readonly awaited = new Map<string, CommandOutcome | undefined>();

  constructor(options: StoreStateMachineOptions = {}) {
    this.header = options.header ?? placeholderHeader;
    this.logger = options.logger ?? silentLogger;
    this.onResult = options.onResult;
    this.onLeaseChange = options.onLeaseChange;
    this.leases = new LeaseTable(options.minLeaseTtl);
    this.mvcc = new MvccStore({
      leaseExists: (id) => this.leases.has(id),
      onCommit: (rev, events) => this.committed(rev, events),
      header: this.header,
      maxTxnOps: options.maxTxnOps,
    });
    this.hub = new WatchHub(this.mvcc, { ...options.watch, header: this.header });
  }

  get revision(): number {
    return this.mvcc.revision;
  }

  get compactRevision(): number {
    return this.mvcc.compactRevision;
  }

  // --- StateMachine ----------------------------------------------------------------------

  apply(entry: Entry): void {
    if (entry.data.length === 0) return;
    let cmd: Command;
    try {
      cmd = decodeCommand(entry.data);
    } catch (err) {
      const e = err as StoreDecodeError;
      this.logger.warn(
        { index: entry.index, requestId: e.requestId, err: e.message },
        'store: skipped a bad command',
      );
      if (e.requestId !== undefined)
        this.record({ requestId: e.requestId, ok: false, error: e }, entry.index);
      return;
    }
    this.execute(cmd, entry.index);
  }

  snapshot(): Uint8Array {
    return encodeSnapshot(this.dump());
  }

  /** Replace the state with a snapshot's. Throws StoreDecodeError (state untouched) if corrupt. */
  restore(data: Uint8Array): void {
    const d = decodeSnapshot(data);
    this.mvcc.load(d.mvcc);
    this.leases.load(d.leases, this.mvcc);
    this.hub.resync();
    this.emitLease({ type: 'reset', leases: this.leases.list() });
  }

  // --- direct use ------------------------------------------------------------------------

  /** Execute a command without the log (single-node use, tests). Same effects as apply(). */
  applyCommand<T extends CommandType>(cmd: CommandOf<T>): CommandOutcome<CommandResponses[T]> {
    return this.execute(cmd as Command, 0) as CommandOutcome<CommandResponses[T]>;
  }

  /** A local proposer will want the outcome of `requestId`: keep it when it is applied. */
  expect(requestId: string): void {
    if (!this.awaited.has(requestId)) this.awaited.set(requestId, undefined);
  }

  /** The outcome of an expected request once applied (and stop expecting it), else undefined. */
  takeResult(requestId: string): CommandOutcome | undefined {
    const o = this.awaited.get(requestId);
    if (o) this.awaited.delete(requestId);
    return o;
  }

  forget(requestId: string): void {
    this.awaited.delete(requestId);
  }

  /** The whole state as plain data. */
  dump(): StoreDump {
    return { mvcc: this.mvcc.dump(), leases: this.leases.dump() };
  }

  // --- internals -------------------------------------------------------------------------

  private execute(cmd: Command, index: number): CommandOutcome {
    let outcome: CommandOutcome;
    try {
      outcome = { requestId: cmd.requestId, ok: true, response: this.run(cmd) };
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      outcome = { requestId: cmd.requestId, ok: false, error: err };
    }
    this.record(outcome, index);
    return outcome;
  }

  private run(cmd: Command): CommandResponses[CommandType] {
    switch (cmd.type) {
      case 'put':
        return this.mvcc.put(cmd.request);
      case 'deleteRange':
        return this.mvcc.deleteRange(cmd.request);
      case 'txn':
        return this.mvcc.txn(cmd.request);
      case 'compact':
        return this.mvcc.compact(cmd.request.revision);
      case 'leaseGrant': {
        const l = this.leases.grant(cmd.request.id ?? 0, cmd.request.ttl);
        this.emitLease({ type: 'grant', id: l.id, ttl: l.ttl });
        return { header: this.header(this.mvcc.revision), id: l.id, ttl: l.ttl };
      }
      case 'leaseRevoke':
        this.leases.revoke(cmd.request.id, this.mvcc);
        this.emitLease({ type: 'revoke', id: cmd.request.id });
        return { header: this.header(this.mvcc.revision) };
      case 'leaseRenew': {
        const ttl = this.leases.grantedTtl(cmd.request.id);
        if (ttl === undefined) throw leaseNotFound();
        this.emitLease({ type: 'renew', id: cmd.request.id });
        return { header: this.header(this.mvcc.revision), id: cmd.request.id, ttl };
      }
    }
  }

  private committed(rev: number, events: WatchEvent[]): void {
    this.leases.observe(events, (ev) => keyString(ev.kv.key));
    this.hub.notify(rev, events);
  }

  private record(outcome: CommandOutcome, index: number): void {
    if (this.awaited.has(outcome.requestId)) this.awaited.set(outcome.requestId, outcome);
    if (!this.onResult) return;
    try {
      this.onResult(outcome, index);
    } catch (err) {
      this.logger.error({ err, requestId: outcome.requestId }, 'store: onResult threw');
    }
  }

  private emitLease(change: LeaseChange): void {
    if (!this.onLeaseChange) return;
    try {
      this.onLeaseChange(change);
    } catch (err) {
      this.logger.error({ err, change: change.type }, 'store: onLeaseChange threw');
    }
  }
}

// --- snapshot encoding ---------------------------------------------------------------------
//
//   'BSNP' | version 1 | revision | compactRevision
//   | #keys × ( key | #records × ( main | sub | flags [| createRevision | version | lease | value] ) )
//   | #leases × ( id | ttl ) | lastAutoId

const SNAPSHOT_MAGIC = [0x42, 0x53, 0x4e, 0x50];
const SNAPSHOT_VERSION = 1;
const R_TOMBSTONE = 1;

export function encodeSnapshot(d: StoreDump): Uint8Array {
  const w = new Writer(1024);
  for (const b of SNAPSHOT_MAGIC) w.u8(b);
  w.u8(SNAPSHOT_VERSION).uvarint(d.mvcc.revision).uvarint(d.mvcc.compactRevision);
  w.uvarint(d.mvcc.keys.length);
  for (const { key, records } of d.mvcc.keys) {
    w.bytes(key).uvarint(records.length);
    for (const r of records) {
      w.uvarint(r.main)
        .uvarint(r.sub)
        .u8(r.tombstone ? R_TOMBSTONE : 0);
      if (!r.tombstone) w.uvarint(r.createRevision).uvarint(r.version).uvarint(r.lease).bytes(r.value);
    }
  }
  w.uvarint(d.leases.leases.length);
  for (const l of d.leases.leases) w.uvarint(l.id).uvarint(l.ttl);
  w.uvarint(d.leases.lastAutoId);
  return w.finish();
}

class BadSnapshot extends Error {}

function check(ok: boolean, detail: string): void {
  if (!ok) throw new BadSnapshot(detail);
}

/** Decode and check a snapshot: ordering, revisions and lease references must be consistent. */
export function decodeSnapshot(data: Uint8Array): StoreDump {
  try {
    const r = new Reader(data, 'store snapshot');
    for (const b of SNAPSHOT_MAGIC) check(r.u8() === b, 'not a store snapshot');
    const version = r.u8();
    check(version === SNAPSHOT_VERSION, `unknown format version ${version}`);
    const revision = r.uvarint();
    const compactRevision = r.uvarint();
    check(revision >= 1 && compactRevision <= revision, 'bad revisions');
    const keys: MvccDump['keys'] = [];
    const leased: number[] = [];
    let prevKey: Uint8Array | undefined;
    for (let n = r.uvarint(); n > 0; n--) {
      const key = r.bytes();
      check(key.length > 0 && (!prevKey || compareBytes(prevKey, key) < 0), 'keys out of order');
      prevKey = key;
      const records: KeyRecord[] = [];
      let last: KeyRecord | undefined;
      for (let m = r.uvarint(); m > 0; m--) {
        const main = r.uvarint();
        const sub = r.uvarint();
        const f = r.u8();
        check(f === 0 || f === R_TOMBSTONE, 'bad record flags');
        const rec: KeyRecord =
          f === R_TOMBSTONE
            ? {
                main,
                sub,
                tombstone: true,
                createRevision: 0,
                version: 0,
                value: new Uint8Array(0),
                lease: 0,
              }
            : {
                main,
                sub,
                tombstone: false,
                createRevision: r.uvarint(),
                version: r.uvarint(),
                lease: r.uvarint(),
                value: r.bytes(),
              };
        check(main >= 1 && main <= revision, 'record revision out of range');
        check(!last || last.main < main || (last.main === main && last.sub < sub), 'records out of order');
        check(
          rec.tombstone || (rec.version >= 1 && rec.createRevision >= 1 && rec.createRevision <= main),
          'bad record',
        );
        records.push(rec);
        last = rec;
      }
      check(last !== undefined, 'a key without history');
      if (last && !last.tombstone && last.lease !== 0) leased.push(last.lease);
      keys.push({ key, records });
    }
    const leases: LeaseInfo[] = [];
    for (let n = r.uvarint(); n > 0; n--) {
      const id = r.uvarint();
      const ttl = r.uvarint();
      const prev = leases[leases.length - 1];
      check(id > 0 && (!prev || prev.id < id), 'leases out of order');
      leases.push({ id, ttl });
    }
    const lastAutoId = r.uvarint();
    r.end();
    const ids = new Set(leases.map((l) => l.id));
    for (const id of leased) check(ids.has(id), `a key is attached to lease ${id}, which does not exist`);
    return { mvcc: { revision, compactRevision, keys }, leases: { leases, lastAutoId } };
  } catch (err) {
    if (!(err instanceof BadSnapshot) && !(err instanceof CodecError)) throw err;
    const detail = err.message.replace(/^raft codec: cannot decode store snapshot: /, '');
    throw new StoreDecodeError('snapshot', detail, undefined, { cause: err });
  }
}
