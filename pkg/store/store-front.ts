// What the local and the replicated store share: validation at the KV boundary, reads from
// the state machine, watches on this node's hub, lease bookkeeping and expiry. Subclasses
// say only how a command gets applied (directly, or through Raft) and what makes a read
// linearizable.
//
//   put/txn/… ──validate──► size check ──► execute(cmd)      (subclass: apply, or propose)
//   range ──validate──► readBarrier() ──► mvcc.range        watch ──► stateMachine.hub
//   lease deadlines: Lessor + a timer; where mayExpireLeases(), expired leases are revoked
//   through execute(), so every replica deletes the same keys at the same revision.

import { type CommandOf, type CommandResponses, type CommandType, encodeCommand } from './commands.js';
import { requestTooLarge, stopped } from './errors.js';
import { Lessor } from './lessor.js';
import type { HeaderFactory } from './mvcc.js';
import type { StoreLogger, StoreStateMachine } from './state-machine.js';
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

export interface StoreFrontOptions {
  header: HeaderFactory;
  logger?: StoreLogger;
  /** Monotonic milliseconds for lease deadlines. Default performance.now. */
  now?: () => number;
  /** How often lease deadlines are checked, in ms. Default 100. */
  leaseCheckIntervalMs?: number;
  /** Default StoreLimits.maxRequestBytes. */
  maxRequestBytes?: number;
}

export abstract class StoreFront implements KV {
  abstract readonly stateMachine: StoreStateMachine;
  protected readonly lessor: Lessor;
  protected readonly header: HeaderFactory;
  protected readonly logger: StoreLogger;
  protected readonly maxRequestBytes: number;
  private readonly timer: NodeJS.Timeout;
  private readonly watches = new Set<number>();
  /** Leases whose revocation is in flight, so the timer does not propose it twice. */
  private readonly revoking = new Set<number>();
  private closed = false;

  constructor(options: StoreFrontOptions) {
    this.header = options.header;
    this.logger = options.logger ?? { warn: () => {}, error: () => {} };
    this.maxRequestBytes = options.maxRequestBytes ?? StoreLimits.maxRequestBytes;
    this.lessor = new Lessor(options.now ?? (() => performance.now()));
    this.timer = setInterval(() => this.expireLeases(), options.leaseCheckIntervalMs ?? 100);
    this.timer.unref();
  }

  /** Apply one command (through Raft where there is one) and return its response. */
  protected abstract execute<T extends CommandType>(cmd: CommandOf<T>): Promise<CommandResponses[T]>;
  /** Resolve once this node's state reflects every write acknowledged before the call. */
  protected abstract readBarrier(serializable: boolean): Promise<void>;
  /** Restart an existing lease's clock; returns the response with its TTL. */
  protected abstract keepAlive(id: number): Promise<LeaseKeepAliveResponse>;
  /** Only the node that decides expiry (the leader) revokes expired leases. */
  protected abstract mayExpireLeases(): boolean;
  /** A unique request id for a command proposed from here. */
  protected abstract nextRequestId(): string;
  protected async shutdown(): Promise<void> {}

  async range(req: RangeRequest): Promise<RangeResponse> {
    this.ensureOpen();
    validateRangeRequest(req);
    const size = req.key.length + (req.rangeEnd?.length ?? 0);
    if (size > this.maxRequestBytes) throw requestTooLarge(size, this.maxRequestBytes);
    await this.readBarrier(req.serializable === true);
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
    if (!this.stateMachine.leases.has(id)) return { header: this.currentHeader(), id, ttl: 0 };
    return this.keepAlive(id);
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
    await this.shutdown();
    for (const id of this.watches) this.stateMachine.hub.cancel(id);
    this.watches.clear();
  }

  protected ensureOpen(): void {
    if (this.closed) throw stopped();
  }

  protected currentHeader(): ResponseHeader {
    return this.header(this.stateMachine.revision);
  }

  private exec<T extends CommandType>(
    type: T,
    request: CommandOf<T>['request'],
  ): Promise<CommandResponses[T]> {
    const cmd = { type, requestId: this.nextRequestId(), request } as CommandOf<T>;
    const size = encodeCommand(cmd as never).length;
    if (size > this.maxRequestBytes) throw requestTooLarge(size, this.maxRequestBytes);
    return this.execute(cmd);
  }

  private expireLeases(): void {
    if (this.closed || !this.mayExpireLeases()) return;
    for (const id of this.lessor.expired()) {
      if (this.revoking.has(id) || !this.stateMachine.leases.has(id)) continue;
      this.revoking.add(id);
      this.exec('leaseRevoke', { id })
        .catch((err: Error) =>
          this.logger.warn({ id, err: err.message }, 'store: revoking an expired lease failed'),
        )
        .finally(() => this.revoking.delete(id));
    }
  }
}
