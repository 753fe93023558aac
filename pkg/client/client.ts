// Berth's store client: the KV interface (pkg/store/types.ts) over etcd v3's gRPC protocol,
// against Berth's nodes or any etcd (>= 3.4) cluster.
//
//   createClient(options) ─┬─ EndpointPool (connection.ts): one channel per endpoint, the
//                          │  last that answered first; unary calls with deadlines, retries
//                          │  and fail-over by the rule in retry.ts
//                          ├─ WatchHub (watch-stream.ts): every watch on one stream, resumed
//                          │  on the next endpoint from the last revision seen + 1
//                          ├─ keepAlive (keep-alive.ts): a lease renewed until stop/onLost
//                          └─ cluster (cluster.ts): membership and per-endpoint status
//
// Every call rejects with a StoreError: the store's own (matched by etcd's message, so the
// same code and message as in-process), or one built from the gRPC status (see
// grpc-mapping.ts statusToError). Ownership: the caller closes the client; close() ends its
// watches and keep-alives (without calling onLost) and fails calls still in flight.

import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { StoreError, StoreErrorCode } from '../store/errors.js';
import {
  compactionRequestToWire,
  compactionResponseFromWire,
  deleteRangeRequestToWire,
  deleteRangeResponseFromWire,
  headerFromWire,
  isReadOnlyTxn,
  leaseGrantResponseFromWire,
  leaseKeepAliveResponseFromWire,
  leaseLeasesResponseFromWire,
  leaseTimeToLiveResponseFromWire,
  putRequestToWire,
  putResponseFromWire,
  rangeRequestToWire,
  rangeResponseFromWire,
  txnRequestToWire,
  txnResponseFromWire,
  type WireCompactionResponse,
  type WireDeleteRangeResponse,
  type WireHeader,
  type WireLeaseGrantResponse,
  type WireLeaseIdRequest,
  type WireLeaseKeepAliveResponse,
  type WireLeaseLeasesResponse,
  type WireLeaseTimeToLiveResponse,
  type WirePutResponse,
  type WireRangeResponse,
  type WireTxnResponse,
} from '../store/grpc-mapping.js';
import type { KV, LeaseKeepAliveResponse } from '../store/types.js';
import { type ClusterClient, createClusterClient } from './cluster.js';
import { EndpointPool, failureFromError, isFailure, method } from './connection.js';
import { type KeepAliveHandle, startKeepAlive } from './keep-alive.js';
import { type ClientOptions, resolveOptions } from './options.js';
import { type AttemptFailure, backoffMs, isRetryable, sleep } from './retry.js';
import { WatchHub } from './watch-stream.js';

export type {
  ClusterClient,
  EndpointStatus,
  MemberAddResponse,
  MembersResponse,
  StatusResponse,
} from './cluster.js';
export type { KeepAliveHandle } from './keep-alive.js';
export type { ClientLogger, ClientOptions } from './options.js';

export interface Client extends KV {
  /** Membership and per-endpoint status (berthctl member ..., endpoint status). */
  readonly cluster: ClusterClient;
  /** The client's endpoints as gRPC targets, in the order given. */
  readonly endpoints: readonly string[];
  /** The endpoint calls go to first now: the last one that answered. */
  currentEndpoint(): string;
  /**
   * Keep lease `id` alive until stop() or client.close(). `onLost` is called once if the
   * lease is gone (the server answered TTL 0, or no renewal got through for a whole TTL);
   * renewing stops then.
   */
  keepAlive(id: number, onLost: (err: StoreError) => void): KeepAliveHandle;
}

const GRANT_ATTEMPTS = 5;

/** A random lease id in [1, 2^53 - 1]: it survives the trip through `number`. */
function randomLeaseId(): number {
  const n = randomBytes(8).readBigUInt64BE() & BigInt(Number.MAX_SAFE_INTEGER);
  return n === 0n ? 1 : Number(n);
}

export function createClient(options: ClientOptions): Client {
  const opts = resolveOptions(options);
  const pool = new EndpointPool(opts);
  const hub = new WatchHub(pool);
  const keepAlives = new Set<KeepAliveHandle>();

  /** One keep-alive round trip on a short-lived stream; retried like a read (renewal is idempotent). */
  const keepAliveOnce = async (id: number): Promise<LeaseKeepAliveResponse> => {
    const m = method('Lease', 'LeaseKeepAlive');
    let last: AttemptFailure | undefined;
    for (let attempt = 0; attempt <= opts.retries; attempt++) {
      if (attempt > 0) await sleep(backoffMs(attempt, opts.backoff));
      const ep = pool.endpointAt(0);
      try {
        await pool.ready(ep);
        const res = await new Promise<WireLeaseKeepAliveResponse>((resolve, reject) => {
          const s = ep.client.makeBidiStreamRequest<WireLeaseIdRequest, WireLeaseKeepAliveResponse>(
            m.path,
            m.requestSerialize as (v: WireLeaseIdRequest) => Buffer,
            m.responseDeserialize as (b: Buffer) => WireLeaseKeepAliveResponse,
            new grpc.Metadata(),
            { deadline: Date.now() + opts.requestTimeoutMs },
          );
          s.on('data', (r: WireLeaseKeepAliveResponse) => {
            resolve(r);
            s.end();
          });
          s.on('error', (err) => reject(failureFromError(err)));
          s.on('end', () =>
            reject({ code: 1, details: 'keep-alive stream ended without an answer', notSent: false }),
          );
          s.write({ ID: id });
        });
        pool.succeeded(ep);
        return leaseKeepAliveResponseFromWire(res);
      } catch (err) {
        last = isFailure(err) ? err : failureFromError(err as Error);
        if (pool.isClosed || !isRetryable(last, 'read')) break;
        pool.skip(ep);
      }
    }
    throw await pool.toError(last as AttemptFailure, pool.endpointAt(0));
  };

  return {
    endpoints: pool.endpoints.map((e) => e.address),
    cluster: createClusterClient(pool),
    currentEndpoint: () => pool.current(),

    async range(req) {
      return rangeResponseFromWire(
        await pool.call<object, WireRangeResponse>('KV', 'Range', rangeRequestToWire(req), 'read'),
      );
    },
    async put(req) {
      return putResponseFromWire(
        await pool.call<object, WirePutResponse>('KV', 'Put', putRequestToWire(req), 'write'),
      );
    },
    async deleteRange(req) {
      return deleteRangeResponseFromWire(
        await pool.call<object, WireDeleteRangeResponse>(
          'KV',
          'DeleteRange',
          deleteRangeRequestToWire(req),
          'write',
        ),
      );
    },
    async txn(req) {
      const kind = isReadOnlyTxn(req) ? 'read' : 'write';
      return txnResponseFromWire(
        await pool.call<object, WireTxnResponse>('KV', 'Txn', txnRequestToWire(req), kind),
      );
    },
    async compact(req) {
      return compactionResponseFromWire(
        await pool.call<object, WireCompactionResponse>(
          'KV',
          'Compact',
          compactionRequestToWire(req),
          'write',
        ),
      );
    },
    watch(req, onResponse) {
      return hub.watch(req, onResponse);
    },
    async leaseGrant(req) {
      // etcd picks lease ids above 2^53, which a number cannot hold: without an id, the client
      // picks a random one below 2^53 itself, and picks again if it is taken.
      const chooseId = !req.id;
      for (let attempt = 1; ; attempt++) {
        const w = { TTL: req.ttl, ID: chooseId ? randomLeaseId() : req.id };
        try {
          return leaseGrantResponseFromWire(
            await pool.call<object, WireLeaseGrantResponse>('Lease', 'LeaseGrant', w, 'write'),
          );
        } catch (err) {
          if (!(chooseId && err instanceof StoreError && err.code === StoreErrorCode.LeaseExists)) throw err;
          if (attempt >= GRANT_ATTEMPTS) throw err;
        }
      }
    },
    async leaseRevoke(id) {
      const w = await pool.call<object, { header?: WireHeader }>('Lease', 'LeaseRevoke', { ID: id }, 'write');
      return { header: headerFromWire(w.header) };
    },
    leaseKeepAlive: keepAliveOnce,
    async leaseTimeToLive(id, keys) {
      return leaseTimeToLiveResponseFromWire(
        await pool.call<object, WireLeaseTimeToLiveResponse>(
          'Lease',
          'LeaseTimeToLive',
          { ID: id, keys: keys ?? false },
          'read',
        ),
      );
    },
    async leaseLeases() {
      return leaseLeasesResponseFromWire(
        await pool.call<object, WireLeaseLeasesResponse>('Lease', 'LeaseLeases', {}, 'read'),
      );
    },
    keepAlive(id, onLost) {
      const handle = startKeepAlive(pool, id, (err) => {
        keepAlives.delete(handle);
        onLost(err);
      });
      keepAlives.add(handle);
      return {
        leaseId: id,
        get ttl() {
          return handle.ttl;
        },
        stop() {
          keepAlives.delete(handle);
          handle.stop();
        },
      };
    },
    async close() {
      hub.close();
      for (const k of keepAlives) k.stop();
      keepAlives.clear();
      pool.close();
    },
  };
}
