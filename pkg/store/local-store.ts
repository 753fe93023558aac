// A KV over StoreStateMachine without Raft: one process applies commands directly. For tests
// of the layers above the store and for single-node development. Semantics are the
// replicated store's: the same commands, the same state machine; only the log is missing.
//
//   put/txn/… ──validate──► encodeCommand (size check) ──► stateMachine.applyCommand
//   range ──validate──► mvcc.range                   watch ──► stateMachine.hub
//   lease deadlines: Lessor (lessor.ts) + an interval timer; an expired lease is revoked
//   through applyCommand, as a leader would propose it.

import { type CommandOf, type CommandResponses, type CommandType, encodeCommand } from './commands.js';
import { requestTooLarge, stopped } from './errors.js';
import { Lessor } from './lessor.js';
import type { HeaderFactory } from './mvcc.js';
import { type StoreLogger, StoreStateMachine } from './state-machine.js';
import type {
  CompactionRequest,
  CompactionResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KV,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseTimeToLiveResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  ResponseHeader,
  TxnRequest,
  TxnResponse,
  Watcher,
  WatchRequest,
  WatchResponse,
} from './types.js';
import { StoreLimits } from './types.js';
import {
  checkUint,
  validateDeleteRangeRequest,
  validatePutRequest,
  validateRangeRequest,
  validateTxnRequest,
  validateWatchRequest,
} from './validate.js';

export interface LocalStoreOptions {
  /** Reported in response headers. Default 'local'. */
  clusterId?: string;
  /** Reported in response headers. Default 'local'. */
  memberId?: string;
  /** How often lease deadlines are checked, in ms. Default 100. */
  leaseCheckIntervalMs?: number;
  /** Monotonic milliseconds. Default performance.now. */
  now?: () => number;
  /** Default StoreLimits.maxRequestBytes. */
  maxRequestBytes?: number;
  logger?: StoreLogger;
}

export interface LocalStore extends KV {
  /** The state machine underneath (for tests and tooling). */
  readonly stateMachine: StoreStateMachine;
}

export function createLocalStore(options: LocalStoreOptions = {}): LocalStore {
  return new LocalStoreImpl(options);
}

class LocalStoreImpl implements LocalStore {
  readonly stateMachine: StoreStateMachine;
  private readonly lessor: Lessor;
  private readonly header: HeaderFactory;
  private readonly logger: StoreLogger;
  private readonly maxRequestBytes: number;
  private readonly timer: NodeJS.Timeout;
  private readonly watches = new Set<number>();
  private nextRequest = 0;
  private closed = false;

  constructor(options: LocalStoreOptions) {
    const clusterId = options.clusterId ?? 'local';
    const memberId = options.memberId ?? 'local';
    this.header = (revision) => ({ clusterId, memberId, revision, raftTerm: 0 });
    this.logger = options.logger ?? { warn: () => {}, error: () => {} };
    this.maxRequestBytes = options.maxRequestBytes ?? StoreLimits.maxRequestBytes;
    const now = options.now ?? (() => performance.now());
    this.lessor = new Lessor(now);
    this.stateMachine = new StoreStateMachine({
      header: this.header,
      logger: options.logger,
      onLeaseChange: (c) => {
        if (c.type === 'grant') this.lessor.track(c.id, c.ttl);
        else if (c.type === 'revoke') this.lessor.forget(c.id);
        else {
          this.lessor.clear();
          for (const l of c.leases) this.lessor.track(l.id, l.ttl);
        }
      },
    });
    this.timer = setInterval(() => this.expireLeases(), options.leaseCheckIntervalMs ?? 100);
    this.timer.unref();
  }

  async range(req: RangeRequest): Promise<RangeResponse> {
    this.ensureOpen();
    validateRangeRequest(req);
    const size = req.key.length + (req.rangeEnd?.length ?? 0);
    if (size > this.maxRequestBytes) throw requestTooLarge(size, this.maxRequestBytes);
    return this.stateMachine.mvcc.range(req);
  }

  async put(req: PutRequest): Promise<PutResponse> {
    this.ensureOpen();
    validatePutRequest(req);
    return this.exec('put', req);
  }

  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    this.ensureOpen();
    validateDeleteRangeRequest(req);
    return this.exec('deleteRange', req);
  }

  async txn(req: TxnRequest): Promise<TxnResponse> {
    this.ensureOpen();
    validateTxnRequest(req);
    return this.exec('txn', req);
  }

  async compact(req: CompactionRequest): Promise<CompactionResponse> {
    this.ensureOpen();
    checkUint(req.revision, 'compact.revision');
    return this.exec('compact', req);
  }

  async watch(req: WatchRequest, onResponse: (r: WatchResponse) => void): Promise<Watcher> {
    this.ensureOpen();
    validateWatchRequest(req);
    const hub = this.stateMachine.hub;
    const id = hub.register(req, onResponse);
    this.watches.add(id);
    return {
      id,
      cancel: async () => {
        this.watches.delete(id);
        hub.cancel(id);
      },
    };
  }

  async leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    this.ensureOpen();
    checkUint(req.ttl, 'leaseGrant.ttl');
    checkUint(req.id, 'leaseGrant.id');
    return this.exec('leaseGrant', req);
  }

  async leaseRevoke(id: number): Promise<{ header: ResponseHeader }> {
    this.ensureOpen();
    checkUint(id, 'leaseRevoke.id');
    return this.exec('leaseRevoke', { id });
  }

  async leaseKeepAlive(id: number): Promise<LeaseKeepAliveResponse> {
    this.ensureOpen();
    checkUint(id, 'leaseKeepAlive.id');
    const ttl = this.stateMachine.leases.has(id) ? this.lessor.renew(id) : 0;
    return { header: this.currentHeader(), id, ttl };
  }

  async leaseTimeToLive(id: number, keys = false): Promise<LeaseTimeToLiveResponse> {
    this.ensureOpen();
    checkUint(id, 'leaseTimeToLive.id');
    const leases = this.stateMachine.leases;
    const granted = leases.grantedTtl(id);
    if (granted === undefined) return { header: this.currentHeader(), id, ttl: -1, grantedTtl: 0, keys: [] };
    return {
      header: this.currentHeader(),
      id,
      ttl: this.lessor.remaining(id),
      grantedTtl: granted,
      keys: keys ? leases.keys(id) : [],
    };
  }

  async leaseLeases(): Promise<LeaseLeasesResponse> {
    this.ensureOpen();
    return { header: this.currentHeader(), leases: this.stateMachine.leases.ids().map((id) => ({ id })) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const id of this.watches) this.stateMachine.hub.cancel(id);
    this.watches.clear();
  }

  private ensureOpen(): void {
    if (this.closed) throw stopped();
  }

  private currentHeader(): ResponseHeader {
    return this.header(this.stateMachine.revision);
  }

  private exec<T extends CommandType>(type: T, request: CommandOf<T>['request']): CommandResponses[T] {
    const cmd = { type, requestId: `local-${++this.nextRequest}`, request } as CommandOf<T>;
    const size = encodeCommand(cmd as never).length;
    if (size > this.maxRequestBytes) throw requestTooLarge(size, this.maxRequestBytes);
    const outcome = this.stateMachine.applyCommand(cmd);
    if (!outcome.ok) throw outcome.error;
    return outcome.response;
  }

  /** What a leader does on its lease timer: revoke what expired, through the state machine. */
  private expireLeases(): void {
    if (this.closed) return;
    for (const id of this.lessor.expired()) {
      this.lessor.forget(id);
      if (!this.stateMachine.leases.has(id)) continue;
      const outcome = this.stateMachine.applyCommand({
        type: 'leaseRevoke',
        requestId: `local-expire-${++this.nextRequest}`,
        request: { id },
      });
      if (!outcome.ok)
        this.logger.error({ id, err: outcome.error.message }, 'store: revoking an expired lease failed');
    }
  }
}
