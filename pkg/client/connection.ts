// The client's endpoints: one gRPC channel per endpoint, the one that worked last first, and
// the retry loop for unary calls (retry.ts decides what may be retried). Streams (watch,
// keep-alive) pick their endpoint here too and run their own reconnect loops.

import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { CompactedError, GrpcCode, type StoreError } from '../store/errors.js';
import { COMPACT_REVISION_TRAILER, statusToError, type WireWatchResponse } from '../store/grpc-mapping.js';
import { etcdService } from '../store/grpc-server.js';
import type { ResolvedClientOptions } from './options.js';

/** How long a call waits out 'no leader' (an election or two) before giving up. */
const NO_LEADER_PATIENCE_MS = 5000;

import {
  type AttemptFailure,
  backoffMs,
  type CallKind,
  isNoLeader,
  isNotSentStatus,
  isRetryable,
  sleep,
} from './retry.js';

export interface Endpoint {
  readonly index: number;
  /** The gRPC target ('127.0.0.1:2379'). */
  readonly address: string;
  readonly client: grpc.Client;
}

/** Channel settings: etcd-sized messages, dead-peer detection on open streams, quick redials. */
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': 2 ** 31 - 1,
  'grpc.max_send_message_length': -1,
  // A member that stops answering (SIGSTOP, a partition) is noticed on open streams in 15 s.
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 2_000,
  // Each client owns its connections: closing one never disturbs another's.
  'grpc.use_local_subchannel_pool': 1,
};

export function failureFromError(err: grpc.ServiceError | Error): AttemptFailure {
  const e = err as Partial<grpc.ServiceError>;
  const code = typeof e.code === 'number' ? e.code : grpc.status.UNKNOWN;
  const details = typeof e.details === 'string' ? e.details : err.message;
  const f: AttemptFailure = { code, details, notSent: isNotSentStatus(code, details) };
  if (e.metadata) f.metadata = e.metadata;
  const rev = e.metadata?.get(COMPACT_REVISION_TRAILER)[0];
  if (rev !== undefined) f.compactRevision = Number(rev);
  return f;
}

/** A method of one etcd service: its path and (de)serializers, from proto/etcd. */
export function method(service: string, name: string): protoLoader.MethodDefinition<object, object> {
  const m = etcdService(service)[name];
  if (!m) throw new Error(`etcdserverpb.${service} has no method ${name}`);
  return m;
}

export class EndpointPool {
  readonly endpoints: readonly Endpoint[];
  private preferred = 0;
  private closed = false;

  /** `lookup` finds a method's definition (default: etcd's services, from proto/etcd). */
  constructor(
    readonly options: ResolvedClientOptions,
    private readonly lookup: (
      service: string,
      name: string,
    ) => protoLoader.MethodDefinition<object, object> = method,
  ) {
    const credentials = options.credentials;
    this.endpoints = options.endpoints.map((address, index) => ({
      index,
      address,
      client: new grpc.Client(address, credentials, CHANNEL_OPTIONS),
    }));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The endpoint for the `offset`-th try of an operation: the preferred one, then the next... */
  endpointAt(offset: number): Endpoint {
    return this.endpoints[(this.preferred + offset) % this.endpoints.length] as Endpoint;
  }

  /** This endpoint answered: later operations start with it. */
  succeeded(ep: Endpoint): void {
    this.preferred = ep.index;
  }

  /**
   * `ep` failed: the next endpoint becomes the preferred one, unless another call has moved
   * on already (so concurrent failures on one endpoint advance by one, not by many).
   */
  skip(ep: Endpoint): void {
    if (this.preferred === ep.index) this.preferred = (ep.index + 1) % this.endpoints.length;
  }

  /** The address the client uses first now. */
  current(): string {
    return this.endpointAt(0).address;
  }

  find(address: string): Endpoint | undefined {
    return this.endpoints.find((e) => e.address === address);
  }

  /**
   * Resolves once `ep` has a READY connection. Rejects with a NOT-SENT failure when its last
   * connection attempt failed (TRANSIENT_FAILURE: refused, reset; fail over at once rather
   * than wait) or when no connection is up within dialTimeoutMs (an endpoint that hangs).
   */
  ready(ep: Endpoint): Promise<void> {
    const channel = ep.client.getChannel();
    const deadline = Date.now() + this.options.dialTimeoutMs;
    const notSent = (why: string): AttemptFailure => ({
      code: grpc.status.UNAVAILABLE,
      details: `berth client: no connection to ${ep.address}: ${why}`,
      notSent: true,
    });
    return new Promise((resolve, reject) => {
      const check = () => {
        const state = channel.getConnectivityState(true);
        if (state === grpc.connectivityState.READY) return resolve();
        if (state === grpc.connectivityState.TRANSIENT_FAILURE) return reject(notSent('connection failed'));
        if (state === grpc.connectivityState.SHUTDOWN) return reject(notSent('client closed'));
        try {
          channel.watchConnectivityState(state, deadline, (err) => {
            if (err) reject(notSent(`not connected within ${this.options.dialTimeoutMs} ms`));
            else check();
          });
        } catch {
          reject(notSent('client closed'));
        }
      };
      check();
    });
  }

  /** One attempt on one endpoint, with the request deadline. Rejects with an AttemptFailure. */
  async attempt<Req, Res>(ep: Endpoint, service: string, name: string, req: Req): Promise<Res> {
    if (this.closed) throw { code: grpc.status.CANCELLED, details: 'berth client: closed', notSent: true };
    await this.ready(ep);
    const m = this.lookup(service, name);
    return new Promise<Res>((resolve, reject) => {
      ep.client.makeUnaryRequest<Req, Res>(
        m.path,
        m.requestSerialize as (value: Req) => Buffer,
        m.responseDeserialize as (value: Buffer) => Res,
        req,
        new grpc.Metadata(),
        { deadline: Date.now() + this.options.requestTimeoutMs },
        (err, res) => {
          if (err) reject(failureFromError(err));
          else resolve(res as Res);
        },
      );
    });
  }

  /**
   * A unary call with fail-over: tries the preferred endpoint, then (when retry.ts allows
   * for this kind of call) the next ones, backing off between attempts. Rejects with the
   * StoreError of the last failure.
   */
  async call<Req, Res>(
    service: string,
    name: string,
    req: Req,
    kind: CallKind,
    toError: (f: AttemptFailure, ep: Endpoint) => Promise<Error> = (f, ep) => this.toError(f, ep),
  ): Promise<Res> {
    let last: AttemptFailure | undefined;
    let lastEp = this.endpointAt(0);
    const started = Date.now();
    // "No leader" lasts about one election: wait it out with short pauses, apart from the
    // retry budget, rather than fail a request a second later would have served.
    let noLeaderWaits = 0;
    for (let attempt = 0; attempt <= this.options.retries; attempt++) {
      if (attempt > 0) {
        const wait =
          noLeaderWaits > 0
            ? Math.min(200, backoffMs(noLeaderWaits, this.options.backoff))
            : backoffMs(attempt, this.options.backoff);
        await sleep(wait);
      }
      const ep = this.endpointAt(0);
      try {
        const res = await this.attempt<Req, Res>(ep, service, name, req);
        this.succeeded(ep);
        return res;
      } catch (err) {
        last = isFailure(err) ? err : failureFromError(err as Error);
        lastEp = ep;
        // A broken or frozen endpoint: whatever happens to this call, the next goes elsewhere.
        const stuck = last.code === GrpcCode.Unavailable || last.code === GrpcCode.DeadlineExceeded;
        if (stuck && !isNoLeader(last)) this.skip(ep);
        if (this.closed || !isRetryable(last, kind)) break;
        if (isNoLeader(last) && Date.now() - started < NO_LEADER_PATIENCE_MS) {
          noLeaderWaits++;
          attempt--;
        } else if (attempt === this.options.retries) {
          break;
        }
        this.skip(ep);
        this.options.logger.warn(
          {
            endpoint: ep.address,
            method: `${service}.${name}`,
            code: last.code,
            details: last.details,
            attempt,
          },
          'call failed; trying the next endpoint',
        );
      }
    }
    throw await toError(last as AttemptFailure, lastEp);
  }

  /** A unary call on one endpoint only, without retries (status per endpoint). */
  async callOn<Req, Res>(address: string, service: string, name: string, req: Req): Promise<Res> {
    const ep = this.find(address);
    if (!ep) throw new Error(`${address} is not one of this client's endpoints`);
    try {
      return await this.attempt<Req, Res>(ep, service, name, req);
    } catch (err) {
      throw await this.toError(isFailure(err) ? err : failureFromError(err as Error), ep);
    }
  }

  /**
   * The StoreError for a failure on `ep`. etcd's "compacted" status does not say where the
   * compaction point is (Berth's server adds it as a trailer); without it, ask `ep`.
   */
  async toError(f: AttemptFailure, ep: Endpoint): Promise<StoreError> {
    const err = statusToError(f);
    if (err instanceof CompactedError && err.compactRevision === 0 && !this.closed) {
      const rev = await this.probeCompactRevision(ep).catch(() => 0);
      if (rev > 0) return new CompactedError(rev);
    }
    return err;
  }

  /**
   * The compaction point of `ep`'s store: a watch from revision 1 is answered with it (etcd
   * sends created, then canceled with compact_revision). 0 when nothing says so in time.
   */
  probeCompactRevision(ep: Endpoint): Promise<number> {
    const m = method('Watch', 'Watch');
    return new Promise<number>((resolve) => {
      const s = ep.client.makeBidiStreamRequest<object, WireWatchResponse>(
        m.path,
        m.requestSerialize as (v: object) => Buffer,
        m.responseDeserialize as (b: Buffer) => WireWatchResponse,
        new grpc.Metadata(),
        { deadline: Date.now() + this.options.requestTimeoutMs },
      );
      let done = false;
      const finish = (rev: number) => {
        if (done) return;
        done = true;
        resolve(rev);
        s.cancel();
      };
      s.on('data', (r: WireWatchResponse) => {
        const rev = Number(r.compact_revision ?? 0);
        if (rev > 0) finish(rev);
        else if (r.canceled || !r.created) finish(0);
      });
      s.on('error', () => finish(0));
      s.on('end', () => finish(0));
      s.write({
        create_request: { key: new Uint8Array([0]), range_end: new Uint8Array([0]), start_revision: 1 },
      });
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const ep of this.endpoints) ep.client.close();
  }
}

export function isFailure(err: unknown): err is AttemptFailure {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as AttemptFailure).code === 'number' &&
    typeof (err as AttemptFailure).details === 'string' &&
    typeof (err as AttemptFailure).notSent === 'boolean'
  );
}
