// Keeping a lease alive: a LeaseKeepAlive stream that renews the lease every TTL/3, moves to
// the next endpoint when its stream breaks, and says once, through onLost, when the lease is
// gone: the server answered TTL 0 (revoked or expired), or no renewal got through for a whole
// TTL (it has expired by now, or will before anyone could renew it).

import type * as grpc from '@grpc/grpc-js';
import { leaseNotFound, StoreError, StoreErrorCode } from '../store/errors.js';
import {
  longToNumber,
  type WireLeaseIdRequest,
  type WireLeaseKeepAliveResponse,
} from '../store/grpc-mapping.js';
import { type Endpoint, type EndpointPool, failureFromError, isFailure, method } from './connection.js';
import { type AttemptFailure, backoffMs, sleep } from './retry.js';

export interface KeepAliveHandle {
  readonly leaseId: number;
  /** The TTL the last renewal granted, in seconds; 0 before the first one. */
  readonly ttl: number;
  /** Stop renewing (the lease then expires on its own, unless revoked). Idempotent. */
  stop(): void;
}

/** Renewals go out every TTL/3, but never more often than this. */
const MIN_INTERVAL_MS = 500;

type KeepAliveStream = grpc.ClientDuplexStream<WireLeaseIdRequest, WireLeaseKeepAliveResponse>;

export function startKeepAlive(
  pool: EndpointPool,
  leaseId: number,
  onLost: (err: StoreError) => void,
): KeepAliveHandle {
  let ttl = 0;
  let stopped = false;
  let failures = 0;
  let stream: KeepAliveStream | undefined;
  /** When the last renewal that got through was sent: the lease lives at least ttl from then. */
  let renewedAt = Date.now();

  const lost = (err: StoreError) => {
    if (stopped) return;
    stop();
    try {
      onLost(err);
    } catch (e) {
      pool.options.logger.warn({ leaseId, err: e }, 'keep-alive onLost threw');
    }
  };

  const stop = () => {
    if (stopped) return;
    stopped = true;
    const s = stream;
    stream = undefined;
    s?.cancel();
  };

  /** One stream on `ep`: resolves when it breaks (with why), after renewing as long as it can. */
  const session = (ep: Endpoint) =>
    new Promise<AttemptFailure>((resolve) => {
      const m = method('Lease', 'LeaseKeepAlive');
      const s = pool.isClosed
        ? undefined
        : ep.client.makeBidiStreamRequest<WireLeaseIdRequest, WireLeaseKeepAliveResponse>(
            m.path,
            m.requestSerialize as (v: WireLeaseIdRequest) => Buffer,
            m.responseDeserialize as (b: Buffer) => WireLeaseKeepAliveResponse,
          );
      if (!s) return resolve({ code: 1, details: 'berth client: closed', notSent: true });
      stream = s;
      let sentAt = 0;
      let next: NodeJS.Timeout | undefined;
      let deadline: NodeJS.Timeout | undefined;
      const end = (f: AttemptFailure) => {
        clearTimeout(next);
        clearTimeout(deadline);
        if (stream === s) stream = undefined;
        resolve(f);
      };
      const send = () => {
        if (stopped || stream !== s) return;
        sentAt = Date.now();
        try {
          s.write({ ID: leaseId });
        } catch {
          // 'error' follows.
        }
        // An unanswered renewal means a stuck endpoint: drop the stream, try the next one.
        deadline = setTimeout(() => s.cancel(), pool.options.requestTimeoutMs);
      };
      s.on('data', (res: WireLeaseKeepAliveResponse) => {
        clearTimeout(deadline);
        let granted: number;
        try {
          granted = longToNumber(res.TTL, 'TTL');
        } catch {
          granted = 0;
        }
        if (granted <= 0) {
          lost(leaseNotFound());
          return;
        }
        ttl = granted;
        renewedAt = sentAt;
        failures = 0;
        pool.succeeded(ep);
        next = setTimeout(send, Math.max(MIN_INTERVAL_MS, (ttl * 1000) / 3));
      });
      s.on('error', (err: grpc.ServiceError) => end(failureFromError(err)));
      s.on('end', () =>
        end({ code: 1, details: `keep-alive stream on ${ep.address} ended`, notSent: false }),
      );
      send();
    });

  void (async () => {
    while (!stopped && !pool.isClosed) {
      const ep = pool.endpointAt(0);
      let failure: AttemptFailure;
      try {
        await pool.ready(ep);
        if (stopped) break;
        failure = await session(ep);
      } catch (err) {
        failure = isFailure(err) ? err : failureFromError(err as Error);
      }
      if (stopped || pool.isClosed) break;
      failures++;
      pool.skip(ep);
      pool.options.logger.warn(
        { leaseId, endpoint: ep.address, code: failure.code, details: failure.details },
        'lease keep-alive stream failed; trying the next endpoint',
      );
      const expired = ttl > 0 ? Date.now() - renewedAt >= ttl * 1000 : failures > pool.options.retries;
      if (expired) {
        lost(
          new StoreError(
            StoreErrorCode.LeaseNotFound,
            leaseNotFound().grpc,
            `berth client: lease ${leaseId} could not be renewed (${failure.details}); it has expired`,
            { cause: failure },
          ),
        );
        break;
      }
      await sleep(backoffMs(failures, pool.options.backoff));
    }
  })();

  return {
    leaseId,
    get ttl() {
      return ttl;
    },
    stop,
  };
}
