// The store's KV interface over an external etcd v3 cluster, through the `etcd3` package: the
// backend for users who already run etcd. Requests and responses are mapped field by field onto
// etcd's own RPCs (etcd3's low-level `kv`, `leaseClient` and `watchClient`, not its builders),
// so the semantics are etcd's; etcd's errors become the StoreErrors of errors.ts.
//
// Where etcd3 or the KV interface cannot carry something exactly, this file says so:
// - Lease ids are int64 in etcd but `number` here. etcd picks ids above 2^53, which a number
//   cannot hold, so leaseGrant without an id picks a random id below 2^53 itself (retrying on
//   "lease already exists"). Leases granted by other etcd clients may have ids that do not fit;
//   they come back rounded.
// - Range errors for a compacted revision do not carry the compaction point; it is found with
//   a one-off watch from revision 1 (etcd answers it with compact_revision).
// - etcd3's high-level watcher drops compact_revision and resumes from the header revision
//   (which can skip events); watches here use the raw Watch stream, one stream per watch,
//   and resume after a broken stream from the revision after the last event delivered.
// - etcd3's default fault handling (a circuit breaker per host, opened by any three transient
//   errors, streams included, and a blind retry of every call) turned one dead member into
//   "circuit breaker is open" for every member within seconds, and retried writes whose
//   outcome was unknown. Here etcd3's policies pass calls straight through, and this file
//   retries on another member: reads after any transient error, writes only when the request
//   cannot have reached a server (no connection), so a write is never applied twice.

import { randomBytes } from 'node:crypto';
import {
  type CallOptionsFactory,
  ClientClosedError,
  CompareResult,
  CompareTarget,
  Etcd3,
  FilterType,
  GRPCCancelledError,
  GRPCDeadlineExceededError,
  GRPCInvalidArgumentError,
  GRPCUnavailableError,
  type ICompare,
  type IDeleteRangeResponse,
  type IDuplexStream,
  type IKeyValue,
  type IOptions,
  type IPutResponse,
  type IRangeResponse,
  type IRequestOp,
  type IResponseHeader,
  type IResponseOp,
  type ITxnRequest,
  type ITxnResponse,
  type IWatchRequest,
  type IWatchResponse,
} from 'etcd3';
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
  requestTooLarge,
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
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type KeyValue,
  type KV,
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
  type Watcher,
  type WatchRequest,
  type WatchResponse,
} from './types.js';

export interface EtcdStoreOptions {
  /** etcd client URLs (`http://host:2379`) or `host:port`. */
  endpoints: string[];
  /** Deadline of each unary call attempt, ms (default 10 000). Streams have none. */
  callTimeoutMs?: number;
  /** How long to wait for a connection, ms (default 5 000). */
  dialTimeoutMs?: number;
  /** Further attempts of a call that failed transiently (default 2 per endpoint). */
  retries?: number;
  /**
   * Extra options for the etcd3 client (credentials, auth). Its `faultHandling` replaces the
   * pass-through policies this store installs (see the top of this file).
   */
  client?: Omit<IOptions, 'hosts'>;
}

type HostPolicy = ReturnType<NonNullable<NonNullable<IOptions['faultHandling']>['host']>>;

/** A cockatiel-shaped policy that runs the call once: etcd3 only ever calls execute(). */
const passThrough = {
  execute<T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> {
    return Promise.resolve().then(() => fn({ signal: signal ?? new AbortController().signal }));
  },
} as unknown as HostPolicy;

/** Is it safe to send again? Reads: after any transient failure. Writes: only if never sent. */
type CallKind = 'read' | 'write';

/** Highest lease id this store hands out itself: ids must survive a trip through `number`. */
const MAX_SAFE_LEASE_ID = Number.MAX_SAFE_INTEGER;
const GRANT_ATTEMPTS = 5;
const WATCH_BACKOFF_MIN_MS = 100;
const WATCH_BACKOFF_MAX_MS = 2_000;
const COMPACT_PROBE_TIMEOUT_MS = 1_500;
const COMPACT_PROBE_ATTEMPTS = 3;

export function createEtcdStore(options: EtcdStoreOptions): KV {
  if (options.endpoints.length === 0) throw invalidArgument('no etcd endpoints given');
  const callTimeoutMs = options.callTimeoutMs ?? 10_000;
  const callOptions: CallOptionsFactory = () => ({ deadline: Date.now() + callTimeoutMs });
  const client = new Etcd3({
    ...options.client,
    hosts: options.endpoints,
    dialTimeout: options.dialTimeoutMs ?? 5_000,
    defaultCallOptions: options.client?.defaultCallOptions ?? callOptions,
    faultHandling: options.client?.faultHandling ?? { host: () => passThrough, global: passThrough },
  });
  return new EtcdStore(client, options.retries ?? 2 * options.endpoints.length);
}

const RETRY_BACKOFF_MIN_MS = 50;
const RETRY_BACKOFF_MAX_MS = 1_000;

class EtcdStore implements KV {
  private closed = false;
  private nextWatchId = 1;
  private readonly watches = new Set<EtcdWatch>();

  constructor(
    private readonly client: Etcd3,
    private readonly retries: number,
  ) {}

  /** Run one etcd call, again on another member when that is safe (see CallKind). */
  private async call<R>(kind: CallKind, fn: () => Promise<R>, requestBytes?: () => number): Promise<R> {
    let backoff = RETRY_BACKOFF_MIN_MS;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw stopped();
      try {
        return await fn();
      } catch (err) {
        if (attempt >= this.retries || !retryable(kind, err)) throw await this.storeError(err, requestBytes);
      }
      await sleep(backoff);
      backoff = Math.min(backoff * 2, RETRY_BACKOFF_MAX_MS);
    }
  }

  range(req: RangeRequest): Promise<RangeResponse> {
    return this.call('read', async () => toRangeResponse(await this.client.kv.range(toRangeRequest(req))));
  }

  put(req: PutRequest): Promise<PutResponse> {
    return this.call(
      'write',
      async () => toPutResponse(await this.client.kv.put(toPutRequest(req))),
      () => req.key.length + req.value.length,
    );
  }

  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    return this.call('write', async () =>
      toDeleteRangeResponse(await this.client.kv.deleteRange(toDeleteRangeRequest(req))),
    );
  }

  txn(req: TxnRequest): Promise<TxnResponse> {
    return this.call(
      txnWrites(req) ? 'write' : 'read',
      async () => toTxnResponse(await this.client.kv.txn(toTxnRequest(req))),
      () => txnBytes(req),
    );
  }

  compact(req: CompactionRequest): Promise<CompactionResponse> {
    return this.call('write', async () => {
      const res = await this.client.kv.compact({ revision: req.revision, physical: false });
      return { header: toHeader(res.header) };
    });
  }

  async watch(req: WatchRequest, onResponse: (r: WatchResponse) => void): Promise<Watcher> {
    if (this.closed) throw stopped();
    const w = new EtcdWatch(this.client, this.nextWatchId++, req, onResponse, this.retries, (x) =>
      this.watches.delete(x),
    );
    this.watches.add(w);
    try {
      await w.start();
    } catch (err) {
      this.watches.delete(w);
      await w.cancel();
      throw await this.storeError(err);
    }
    return w;
  }

  async leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    const chooseId = !req.id;
    for (let attempt = 1; ; attempt++) {
      const id = chooseId ? randomLeaseId() : (req.id as number);
      try {
        return await this.call('write', async () => {
          const res = await this.client.leaseClient.leaseGrant({ TTL: req.ttl, ID: String(id) });
          // etcd answers some grant failures in the body rather than as a gRPC error.
          if (res.error) throw new Error(res.error);
          return { header: toHeader(res.header), id: Number(res.ID), ttl: Number(res.TTL) };
        });
      } catch (err) {
        if (chooseId && err instanceof StoreError && err.code === StoreErrorCode.LeaseExists) {
          if (attempt < GRANT_ATTEMPTS) continue;
        }
        throw err;
      }
    }
  }

  leaseRevoke(id: number): Promise<{ header: ResponseHeader }> {
    return this.call('write', async () => {
      const res = await this.client.leaseClient.leaseRevoke({ ID: String(id) });
      return { header: toHeader(res.header) };
    });
  }

  /** A renewal is idempotent, so it is retried like a read. */
  leaseKeepAlive(id: number): Promise<LeaseKeepAliveResponse> {
    return this.call('read', () => this.keepAliveOnce(id));
  }

  private async keepAliveOnce(id: number): Promise<LeaseKeepAliveResponse> {
    const stream: IDuplexStream<{ ID?: string }, { header: IResponseHeader; ID: string; TTL: string }> =
      await this.client.leaseClient.leaseKeepAlive();
    try {
      const res = await new Promise<{ header: IResponseHeader; ID: string; TTL: string }>(
        (resolve, reject) => {
          const timer = setTimeout(() => reject(requestTimeout()), 10_000);
          stream.on('data', (r) => {
            clearTimeout(timer);
            resolve(r);
          });
          stream.on('error', (e) => {
            clearTimeout(timer);
            reject(e);
          });
          stream.on('end', () => {
            clearTimeout(timer);
            reject(stopped());
          });
          stream.write({ ID: String(id) });
        },
      );
      // etcd answers TTL 0 (not an error) for a lease that no longer exists.
      return { header: toHeader(res.header), id: Number(res.ID), ttl: Number(res.TTL) };
    } finally {
      closeStream(stream);
    }
  }

  leaseTimeToLive(id: number, keys = false): Promise<LeaseTimeToLiveResponse> {
    return this.call('read', async () => {
      const res = await this.client.leaseClient.leaseTimeToLive({ ID: String(id), keys });
      return {
        header: toHeader(res.header),
        id: Number(res.ID),
        ttl: Number(res.TTL),
        grantedTtl: Number(res.grantedTTL),
        keys: (res.keys ?? []).map(bytes),
      };
    });
  }

  leaseLeases(): Promise<LeaseLeasesResponse> {
    return this.call('read', async () => {
      const res = await this.client.leaseClient.leaseLeases();
      return { header: toHeader(res.header), leases: (res.leases ?? []).map((l) => ({ id: Number(l.ID) })) };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.watches].map((w) => w.cancel()));
    this.client.close();
  }

  /** etcd3's error (or any) → StoreError; rejections that are not etcd's pass through. */
  private async storeError(err: unknown, requestBytes?: () => number): Promise<unknown> {
    if (err instanceof StoreError) return err;
    if (err instanceof ClientClosedError || (this.closed && err instanceof Error)) {
      return withCause(stopped(), err);
    }
    if (!(err instanceof Error)) return err;
    const message = err.message;
    if (message.includes('required revision has been compacted')) {
      return withCause(new CompactedError(await this.compactRevision()), err);
    }
    if (message.includes('etcdserver: request is too large')) {
      return withCause(requestTooLarge(requestBytes?.() ?? 0, StoreLimits.maxRequestBytes), err);
    }
    for (const [text, make] of ERRORS_BY_MESSAGE) {
      if (message.includes(text)) return withCause(make(), err);
    }
    if (
      err instanceof GRPCUnavailableError ||
      err instanceof GRPCDeadlineExceededError ||
      err instanceof GRPCCancelledError
    ) {
      return new StoreError(StoreErrorCode.Timeout, GrpcCode.Unavailable, detail(message), { cause: err });
    }
    if (err instanceof GRPCInvalidArgumentError) {
      return withCause(invalidArgument(detail(message).replace(/^etcdserver: /, '')), err);
    }
    return err;
  }

  /**
   * The cluster's compaction point. etcd does not put it in Range's "compacted" error, but a
   * watch from revision 1 is answered with it (a member that has not applied the compaction
   * yet would stay silent: hence the time limit and the retries).
   */
  private async compactRevision(): Promise<number> {
    for (let attempt = 0; attempt < COMPACT_PROBE_ATTEMPTS; attempt++) {
      const rev = await probeCompactRevision(this.client).catch(() => 0);
      if (rev > 0) return rev;
    }
    return 0;
  }
}

const ERRORS_BY_MESSAGE: [string, () => StoreError][] = [
  ['etcdserver: key is not provided', emptyKey],
  ['etcdserver: key not found', keyNotFound],
  ['etcdserver: value is provided', valueProvided],
  ['etcdserver: lease is provided', leaseProvided],
  ['etcdserver: too many operations in txn request', tooManyOps],
  ['etcdserver: duplicate key given in txn request', duplicateKey],
  ['etcdserver: mvcc: required revision is a future revision', futureRevision],
  ['etcdserver: requested lease not found', leaseNotFound],
  ['etcdserver: lease already exists', leaseExists],
  ['etcdserver: too large lease TTL', leaseTtlTooLarge],
  ['etcdserver: no leader', noLeader],
  ['etcdserver: request timed out', requestTimeout],
  ['etcdserver: server stopped', stopped],
];

// The request never left this process, or never reached a server.
const NOT_SENT =
  /No connection established|ECONNREFUSED|Connection refused|Channel has been shut down|circuit breaker is open|etcdserver: no leader/i;
// A member's transient trouble: worth asking another one, but a write may have been applied.
const TRANSIENT = /etcdserver: (request timed out|leader changed|server stopped|too many requests)/;

function retryable(kind: CallKind, err: unknown): boolean {
  if (!(err instanceof Error) || err instanceof ClientClosedError) return false;
  if (NOT_SENT.test(err.message)) return true;
  if (kind === 'write') return false;
  return (
    TRANSIENT.test(err.message) ||
    err instanceof GRPCUnavailableError ||
    err instanceof GRPCDeadlineExceededError ||
    err instanceof GRPCCancelledError
  );
}

/** Does the txn write, in either branch, at any depth? A read-only txn is retried as a read. */
function txnWrites(r: TxnRequest): boolean {
  return [...r.success, ...r.failure].some(
    (op) => 'put' in op || 'deleteRange' in op || ('txn' in op && txnWrites(op.txn)),
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withCause(e: StoreError, cause: unknown): StoreError {
  Object.defineProperty(e, 'cause', { value: cause, enumerable: false, writable: true, configurable: true });
  return e;
}

/** "GRPCUnavailableError: 14 UNAVAILABLE: No connection established" → the part after the code. */
function detail(message: string): string {
  const at = message.indexOf('etcdserver: ');
  if (at >= 0) return message.slice(at);
  return message.replace(/^\w+: \d+ [A-Z_]+: /, '');
}

function randomLeaseId(): number {
  // 53 random bits, never 0 (0 asks etcd to choose, which would give an id above 2^53).
  const b = randomBytes(7);
  const hi = (b.readUInt32BE(0) & 0x1fffff) * 2 ** 32;
  const id = hi + b.readUInt32BE(3);
  return Math.min(id % MAX_SAFE_LEASE_ID, MAX_SAFE_LEASE_ID) || 1;
}

function closeStream(stream: {
  end(): void;
  cancel(): void;
  on(e: 'error', f: (e: Error) => void): unknown;
}) {
  // Half-close first: etcd3 marks a host failed on a stream error while the stream is still
  // writable, and a cancel we asked for is not the host's fault.
  stream.on('error', () => {});
  try {
    stream.end();
  } catch {
    // already closed
  }
  try {
    stream.cancel();
  } catch {
    // already closed
  }
}

// --- watch --------------------------------------------------------------------------------

type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse>;

/**
 * One watch on its own Watch stream. After a broken stream it opens a new one from the revision
 * after the last event it delivered (or after the last progress notification), so responses
 * keep coming in order without gaps or repeats until cancel(). A compacted start revision ends
 * the watch with a response carrying compactRevision.
 */
class EtcdWatch implements Watcher {
  private stream: WatchStream | undefined;
  private canceled = false;
  private created = false;
  /** The revision to ask for when (re)creating on a new stream; 0: from now on. */
  private nextRevision: number;
  private backoffMs = WATCH_BACKOFF_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private startWaiter: { resolve(): void; reject(e: unknown): void } | undefined;
  private startFailures = 0;

  constructor(
    private readonly client: Etcd3,
    readonly id: number,
    private readonly req: WatchRequest,
    private readonly onResponse: (r: WatchResponse) => void,
    /** Failed attempts to create the watch before start() gives up. */
    private readonly startRetries: number,
    private readonly onDone: (w: EtcdWatch) => void,
  ) {
    this.nextRevision = req.startRevision ?? 0;
  }

  /** Resolves once etcd has created the watch; rejects if the first attempt fails. */
  start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.startWaiter = { resolve, reject };
      void this.open();
    });
  }

  async cancel(): Promise<void> {
    if (this.canceled) return;
    this.canceled = true;
    this.finish();
  }

  private finish(): void {
    this.canceled = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.stream) closeStream(this.stream);
    this.stream = undefined;
    this.onDone(this);
  }

  private async open(): Promise<void> {
    let stream: WatchStream;
    try {
      stream = await this.client.watchClient.watch();
    } catch (err) {
      this.broken(err);
      return;
    }
    if (this.canceled) {
      closeStream(stream);
      return;
    }
    this.stream = stream;
    stream.on('data', (res) => {
      if (this.stream === stream) this.handle(res);
    });
    stream.on('error', (err) => {
      if (this.stream === stream) this.broken(err);
    });
    stream.on('end', () => {
      if (this.stream === stream) this.broken(new GRPCUnavailableError('watch stream ended'));
    });
    const filters: FilterType[] = [];
    if (this.req.noPut) filters.push(FilterType.Noput);
    if (this.req.noDelete) filters.push(FilterType.Nodelete);
    stream.write({
      create_request: {
        key: buf(this.req.key),
        range_end: this.req.rangeEnd ? buf(this.req.rangeEnd) : undefined,
        start_revision: this.nextRevision,
        prev_kv: this.req.prevKv ?? false,
        progress_notify: this.req.progressNotify ?? false,
        filters,
      },
    });
  }

  private broken(err: unknown): void {
    if (this.canceled) return;
    if (this.stream) closeStream(this.stream);
    this.stream = undefined;
    if (!this.created && this.startWaiter && ++this.startFailures > this.startRetries) {
      // Never created: the caller hears about it rather than waiting forever.
      const w = this.startWaiter;
      this.startWaiter = undefined;
      this.canceled = true;
      this.onDone(this);
      w.reject(err);
      return;
    }
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.canceled) void this.open();
    }, this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, WATCH_BACKOFF_MAX_MS);
  }

  private handle(res: IWatchResponse): void {
    if (this.canceled) return;
    this.backoffMs = WATCH_BACKOFF_MIN_MS;
    const header = toHeader(res.header);
    if (res.created && !res.canceled) {
      // "From now on" means after the revision at creation: a new stream resumes there.
      if (this.nextRevision === 0) this.nextRevision = header.revision + 1;
      if (!this.created) {
        this.created = true;
        const w = this.startWaiter;
        this.startWaiter = undefined;
        w?.resolve();
      }
      return;
    }
    const compactRevision = Number(res.compact_revision ?? 0);
    if (res.canceled || compactRevision > 0) {
      if (!this.created && this.startWaiter && compactRevision === 0) {
        const w = this.startWaiter;
        this.startWaiter = undefined;
        this.finish();
        w.reject(invalidArgument(res.cancel_reason || 'watch canceled'));
        return;
      }
      const out: WatchResponse = { header, watchId: this.id, events: [], canceled: true };
      if (compactRevision > 0) out.compactRevision = compactRevision;
      if (res.cancel_reason) out.cancelReason = res.cancel_reason;
      // Created-and-compacted in one answer: the caller still gets a Watcher, then this.
      if (!this.created) {
        this.created = true;
        const w = this.startWaiter;
        this.startWaiter = undefined;
        w?.resolve();
      }
      this.finish();
      deliver(this.onResponse, out);
      return;
    }
    const events = (res.events ?? []).map(toEvent);
    const last = events[events.length - 1];
    if (last) this.nextRevision = last.kv.modRevision + 1;
    // Only a synced watch gets progress notifications: nothing before header.revision is owed.
    else this.nextRevision = Math.max(this.nextRevision, header.revision + 1);
    deliver(this.onResponse, { header, watchId: this.id, events });
  }
}

function deliver(onResponse: (r: WatchResponse) => void, r: WatchResponse): void {
  try {
    onResponse(r);
  } catch (err) {
    // A throwing callback is the caller's bug; let it surface, not break the stream.
    setImmediate(() => {
      throw err;
    });
  }
}

async function probeCompactRevision(client: Etcd3): Promise<number> {
  const stream = await client.watchClient.watch();
  try {
    return await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => resolve(0), COMPACT_PROBE_TIMEOUT_MS);
      stream.on('data', (res) => {
        const rev = Number(res.compact_revision ?? 0);
        if (rev > 0) {
          clearTimeout(timer);
          resolve(rev);
        }
      });
      stream.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      stream.write({
        create_request: { key: Buffer.from('\0berth-compact-probe'), start_revision: 1 },
      });
    });
  } finally {
    closeStream(stream);
  }
}

// --- mapping ------------------------------------------------------------------------------

function buf(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** A plain Uint8Array view of etcd3's Buffer (no copy). */
function bytes(b: Buffer | Uint8Array | null | undefined): Uint8Array {
  if (!b) return new Uint8Array(0);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function num(s: string | number | null | undefined): number {
  return s === undefined || s === null || s === '' ? 0 : Number(s);
}

function toHeader(h: IResponseHeader | null | undefined): ResponseHeader {
  return {
    clusterId: h?.cluster_id ?? '0',
    memberId: h?.member_id ?? '0',
    revision: num(h?.revision),
    raftTerm: num(h?.raft_term),
  };
}

function toKv(kv: IKeyValue): KeyValue {
  return {
    key: bytes(kv.key),
    createRevision: num(kv.create_revision),
    modRevision: num(kv.mod_revision),
    version: num(kv.version),
    value: bytes(kv.value),
    lease: num(kv.lease),
  };
}

function toEvent(ev: { type: string | number; kv: IKeyValue; prev_kv: IKeyValue | null }): WatchEvent {
  // etcd3's copy of kv.proto names the enum values 'Put' and 'Delete' (etcd's: PUT, DELETE).
  const isDelete = ev.type === 1 || String(ev.type).toUpperCase() === 'DELETE';
  const out: WatchEvent = { type: isDelete ? 'delete' : 'put', kv: toKv(ev.kv) };
  if (ev.prev_kv) out.prevKv = toKv(ev.prev_kv);
  return out;
}

function toRangeRequest(r: RangeRequest) {
  return {
    key: buf(r.key),
    range_end: r.rangeEnd ? buf(r.rangeEnd) : undefined,
    limit: r.limit ?? 0,
    revision: r.revision ?? 0,
    keys_only: r.keysOnly ?? false,
    count_only: r.countOnly ?? false,
    serializable: r.serializable ?? false,
  };
}

function toRangeResponse(r: IRangeResponse): RangeResponse {
  return {
    header: toHeader(r.header),
    kvs: (r.kvs ?? []).map(toKv),
    more: r.more ?? false,
    count: num(r.count),
  };
}

function toPutRequest(r: PutRequest) {
  return {
    key: buf(r.key),
    value: buf(r.value),
    lease: r.lease ? String(r.lease) : '0',
    prev_kv: r.prevKv ?? false,
    ignore_value: r.ignoreValue ?? false,
    ignore_lease: r.ignoreLease ?? false,
  };
}

function toPutResponse(r: IPutResponse): PutResponse {
  const out: PutResponse = { header: toHeader(r.header) };
  if (r.prev_kv) out.prevKv = toKv(r.prev_kv);
  return out;
}

function toDeleteRangeRequest(r: DeleteRangeRequest) {
  return { key: buf(r.key), range_end: r.rangeEnd ? buf(r.rangeEnd) : undefined, prev_kv: r.prevKv ?? false };
}

function toDeleteRangeResponse(r: IDeleteRangeResponse): DeleteRangeResponse {
  return { header: toHeader(r.header), deleted: num(r.deleted), prevKvs: (r.prev_kvs ?? []).map(toKv) };
}

// Numbers, not names: etcd3's enum names ('NotEqual') are not the proto's ('NOT_EQUAL').
const COMPARE_TARGET: Record<Compare['target'], CompareTarget> = {
  version: CompareTarget.Version,
  create: CompareTarget.Create,
  mod: CompareTarget.Mod,
  value: CompareTarget.Value,
  lease: CompareTarget.Lease,
};
const COMPARE_RESULT: Record<Compare['result'], CompareResult> = {
  equal: CompareResult.Equal,
  greater: CompareResult.Greater,
  less: CompareResult.Less,
  not_equal: CompareResult.NotEqual,
};

function toCompare(c: Compare): ICompare {
  const out: ICompare = {
    target: COMPARE_TARGET[c.target],
    result: COMPARE_RESULT[c.result],
    key: buf(c.key),
  };
  if (c.rangeEnd) out.range_end = buf(c.rangeEnd);
  switch (c.target) {
    case 'version':
      out.version = c.version ?? 0;
      break;
    case 'create':
      out.create_revision = c.createRevision ?? 0;
      break;
    case 'mod':
      out.mod_revision = c.modRevision ?? 0;
      break;
    case 'value':
      out.value = buf(c.value ?? new Uint8Array(0));
      break;
    case 'lease':
      out.lease = String(c.lease ?? 0);
      break;
  }
  return out;
}

function toRequestOp(op: RequestOp): IRequestOp {
  if ('range' in op) return { request_range: toRangeRequest(op.range) };
  if ('put' in op) return { request_put: toPutRequest(op.put) };
  if ('deleteRange' in op) return { request_delete_range: toDeleteRangeRequest(op.deleteRange) };
  return { request_txn: toTxnRequest(op.txn) };
}

function toTxnRequest(r: TxnRequest): ITxnRequest {
  return {
    compare: r.compare.map(toCompare),
    success: r.success.map(toRequestOp),
    failure: r.failure.map(toRequestOp),
  };
}

function toResponseOp(op: IResponseOp): ResponseOp {
  if (op.response_range) return { range: toRangeResponse(op.response_range) };
  if (op.response_put) return { put: toPutResponse(op.response_put) };
  if (op.response_delete_range) return { deleteRange: toDeleteRangeResponse(op.response_delete_range) };
  if (op.response_txn) return { txn: toTxnResponse(op.response_txn) };
  throw new Error(`etcd answered a txn with a response op of no known kind: ${JSON.stringify(op)}`);
}

function toTxnResponse(r: ITxnResponse): TxnResponse {
  return {
    header: toHeader(r.header),
    succeeded: r.succeeded ?? false,
    responses: (r.responses ?? []).map(toResponseOp),
  };
}

function txnBytes(r: TxnRequest): number {
  let n = 0;
  for (const c of r.compare) n += c.key.length + (c.rangeEnd?.length ?? 0) + (c.value?.length ?? 0);
  for (const op of [...r.success, ...r.failure]) {
    if ('put' in op) n += op.put.key.length + op.put.value.length;
    else if ('range' in op) n += op.range.key.length + (op.range.rangeEnd?.length ?? 0);
    else if ('deleteRange' in op) n += op.deleteRange.key.length + (op.deleteRange.rangeEnd?.length ?? 0);
    else n += txnBytes(op.txn);
  }
  return n;
}
