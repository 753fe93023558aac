// The client's watches: all of them multiplexed on one Watch stream, as etcd's clientv3 does,
// and resumed on another endpoint when the stream breaks.
//
// Resuming without gaps or duplicates: every watch remembers `nextRev`, the first revision it
// has not delivered yet (its start revision; after the created response of a "from now" watch,
// that response's header revision + 1; after events, the last event's revision + 1; after a
// progress notification, its header revision + 1). A re-created watch starts at nextRev, and
// any event below nextRev is dropped. A revision's events travel in one response, so a
// revision is delivered whole or not at all.
//
// Watch ids are chosen by the client (WatchCreateRequest.watch_id, etcd >= 3.4) and stay the
// same on every stream, so a Watcher's id never changes. Created responses are matched to
// create requests in order (the server answers creates in the order it gets them).

import type * as grpc from '@grpc/grpc-js';
import { StoreError, StoreErrorCode, stopped } from '../store/errors.js';
import {
  GrpcStatus,
  statusToError,
  type WireWatchRequest,
  type WireWatchResponse,
  watchCreateToWire,
  watchResponseFromWire,
} from '../store/grpc-mapping.js';
import type { Watcher, WatchRequest, WatchResponse } from '../store/types.js';
import { type Endpoint, type EndpointPool, failureFromError, isFailure, method } from './connection.js';
import { type AttemptFailure, backoffMs, sleep } from './retry.js';

interface ClientWatch {
  readonly id: number;
  readonly req: WatchRequest;
  readonly onResponse: (r: WatchResponse) => void;
  /** First revision not delivered yet; 0 while a "from now" watch has not been created. */
  nextRev: number;
  /** Created on the current stream. */
  created: boolean;
  createTimer?: NodeJS.Timeout;
  /** Until the first created response: the caller of watch() waiting, and failed connects. */
  initial?: { resolve: (w: Watcher) => void; reject: (e: StoreError) => void; failures: number };
  /** cancel() was called: nothing is delivered any more. */
  canceled: boolean;
}

type WatchStream = grpc.ClientDuplexStream<WireWatchRequest, WireWatchResponse>;

export class WatchHub {
  private readonly watches = new Map<number, ClientWatch>();
  /** Creates sent on the current stream, not yet answered, in the order they were sent. */
  private awaitingCreate: ClientWatch[] = [];
  private readonly cancelWaiters = new Map<number, () => void>();
  private stream: WatchStream | undefined;
  private streamEndpoint: Endpoint | undefined;
  private connecting = false;
  /** Consecutive stream failures (reset when a create succeeds): drives the back-off. */
  private failures = 0;
  private nextId = 1;
  private closed = false;

  constructor(private readonly pool: EndpointPool) {}

  watch(req: WatchRequest, onResponse: (r: WatchResponse) => void): Promise<Watcher> {
    if (this.closed) return Promise.reject(clientClosed());
    const id = this.nextId++;
    return new Promise<Watcher>((resolve, reject) => {
      const w: ClientWatch = {
        id,
        req,
        onResponse,
        nextRev: req.startRevision && req.startRevision > 0 ? req.startRevision : 0,
        created: false,
        initial: { resolve, reject, failures: 0 },
        canceled: false,
      };
      this.watches.set(id, w);
      if (this.stream) this.sendCreate(w);
      else this.connect();
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watches.values()) {
      clearTimeout(w.createTimer);
      w.initial?.reject(clientClosed());
    }
    this.watches.clear();
    this.awaitingCreate = [];
    for (const done of this.cancelWaiters.values()) done();
    this.cancelWaiters.clear();
    this.dropStream();
  }

  // ---- stream lifecycle ----

  private connect(): void {
    if (this.connecting || this.closed || this.stream) return;
    this.connecting = true;
    void (async () => {
      try {
        while (!this.closed && this.watches.size > 0 && !this.stream) {
          if (this.failures > 0) await sleep(backoffMs(this.failures, this.pool.options.backoff));
          if (this.closed || this.watches.size === 0) break;
          const ep = this.pool.endpointAt(0);
          try {
            await this.pool.ready(ep);
          } catch (err) {
            this.streamFailed(ep, isFailure(err) ? err : failureFromError(err as Error));
            continue;
          }
          if (this.closed) break;
          this.open(ep);
        }
      } finally {
        this.connecting = false;
      }
    })();
  }

  private open(ep: Endpoint): void {
    const m = method('Watch', 'Watch');
    const s = ep.client.makeBidiStreamRequest<WireWatchRequest, WireWatchResponse>(
      m.path,
      m.requestSerialize as (v: WireWatchRequest) => Buffer,
      m.responseDeserialize as (b: Buffer) => WireWatchResponse,
    );
    this.stream = s;
    this.streamEndpoint = ep;
    this.awaitingCreate = [];
    s.on('data', (res: WireWatchResponse) => {
      if (s !== this.stream) return;
      try {
        this.receive(res);
      } catch (err) {
        this.pool.options.logger.warn(
          { endpoint: ep.address, err },
          'malformed watch response; reconnecting',
        );
        s.cancel();
      }
    });
    const broken = (failure: AttemptFailure) => {
      if (s !== this.stream) return;
      this.stream = undefined;
      this.streamEndpoint = undefined;
      for (const w of this.watches.values()) {
        w.created = false;
        clearTimeout(w.createTimer);
      }
      this.awaitingCreate = [];
      // Cancels in flight are answered by the stream ending: their watches are gone with it.
      for (const done of this.cancelWaiters.values()) done();
      this.cancelWaiters.clear();
      if (this.closed || this.watches.size === 0) return;
      this.streamFailed(ep, failure);
      this.connect();
    };
    s.on('error', (err: grpc.ServiceError) => broken(failureFromError(err)));
    s.on('end', () =>
      broken({ code: GrpcStatus.Cancelled, details: `watch stream on ${ep.address} ended`, notSent: false }),
    );
    for (const w of this.watches.values()) this.sendCreate(w);
  }

  private streamFailed(ep: Endpoint, failure: AttemptFailure): void {
    this.failures++;
    this.pool.skip(ep);
    this.pool.options.logger.warn(
      { endpoint: ep.address, code: failure.code, details: failure.details, watches: this.watches.size },
      'watch stream failed; resuming on the next endpoint',
    );
    // A watch never created yet gives up after `retries`; created ones resume until canceled.
    for (const w of [...this.watches.values()]) {
      if (!w.initial) continue;
      w.initial.failures++;
      if (w.initial.failures > this.pool.options.retries) {
        this.watches.delete(w.id);
        w.initial.reject(statusToError(failure));
      }
    }
  }

  private dropStream(): void {
    const s = this.stream;
    this.stream = undefined;
    this.streamEndpoint = undefined;
    this.awaitingCreate = [];
    if (!s) return;
    try {
      s.end();
    } catch {
      // Already broken.
    }
  }

  // ---- requests ----

  private write(req: WireWatchRequest): void {
    try {
      this.stream?.write(req);
    } catch {
      // The stream broke; its 'error' handler resumes.
    }
  }

  private sendCreate(w: ClientWatch): void {
    const s = this.stream;
    if (!s) return;
    const req: WatchRequest = { ...w.req };
    if (w.nextRev > 0) req.startRevision = w.nextRev;
    else delete req.startRevision;
    this.write({ create_request: watchCreateToWire(req, w.id) });
    this.awaitingCreate.push(w);
    clearTimeout(w.createTimer);
    // A create that gets no answer means a stuck stream: break it and resume elsewhere.
    w.createTimer = setTimeout(() => {
      if (s === this.stream && !w.created && this.watches.has(w.id)) {
        this.pool.options.logger.warn(
          { endpoint: this.streamEndpoint?.address, watchId: w.id },
          'watch create timed out',
        );
        s.cancel();
      }
    }, this.pool.options.requestTimeoutMs);
  }

  /** Cancel one watch; resolves once the server confirmed (or the stream is gone). */
  async cancel(id: number): Promise<void> {
    const w = this.watches.get(id);
    if (!w) return;
    this.watches.delete(id);
    w.canceled = true;
    clearTimeout(w.createTimer);
    if (this.stream && w.created) {
      const confirmed = new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.cancelWaiters.delete(id);
          resolve();
        }, this.pool.options.requestTimeoutMs);
        this.cancelWaiters.set(id, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.write({ cancel_request: { watch_id: id } });
      await confirmed;
    }
    // A watch canceled while its create is in flight is canceled when the created answer comes.
    if (this.watches.size === 0 && this.awaitingCreate.length === 0) this.dropStream();
  }

  // ---- responses ----

  private deliver(w: ClientWatch, r: WatchResponse): void {
    if (w.canceled) return;
    try {
      w.onResponse(r);
    } catch (err) {
      this.pool.options.logger.warn({ watchId: w.id, err }, 'watch callback threw');
    }
  }

  private receive(wire: WireWatchResponse): void {
    const r = watchResponseFromWire(wire);
    if (r.created) {
      this.onCreated(r);
      return;
    }
    if (r.watchId === -1) {
      // A progress response for the whole stream: every event up to its revision was sent.
      for (const w of this.watches.values()) {
        if (w.created) w.nextRev = Math.max(w.nextRev, r.header.revision + 1);
      }
      return;
    }
    if (r.canceled) {
      const done = this.cancelWaiters.get(r.watchId);
      if (done) {
        this.cancelWaiters.delete(r.watchId);
        done();
      }
      const w = this.watches.get(r.watchId);
      if (!w) return;
      this.watches.delete(w.id);
      const res: WatchResponse = { header: r.header, watchId: w.id, events: [], canceled: true };
      if (r.compactRevision !== undefined) res.compactRevision = r.compactRevision;
      if (r.cancelReason !== undefined) res.cancelReason = r.cancelReason;
      this.deliver(w, res);
      return;
    }
    const w = this.watches.get(r.watchId);
    if (!w) return;
    if (r.events.length === 0) {
      // A progress notification: nothing at or below its revision is still to come.
      w.nextRev = Math.max(w.nextRev, r.header.revision + 1);
      if (w.req.progressNotify) this.deliver(w, { header: r.header, watchId: w.id, events: [] });
      return;
    }
    const events = r.events.filter((e) => e.kv.modRevision >= w.nextRev);
    const last = events[events.length - 1];
    if (!last) return; // Already delivered before the stream was resumed.
    w.nextRev = last.kv.modRevision + 1;
    this.deliver(w, { header: r.header, watchId: w.id, events });
  }

  private onCreated(r: WatchResponse & { created: boolean }): void {
    let w = this.awaitingCreate.shift();
    if (w && r.watchId !== -1 && w.id !== r.watchId) {
      // Out of order (should not happen): trust the id.
      this.awaitingCreate.unshift(w);
      w = this.watches.get(r.watchId);
      this.awaitingCreate = this.awaitingCreate.filter((x) => x !== w);
    }
    if (!w) return;
    clearTimeout(w.createTimer);
    if (r.canceled) {
      // The server refused the watch.
      this.watches.delete(w.id);
      const reason = r.cancelReason ?? 'watch refused by the server';
      const err = statusToError({ code: 3, details: reason });
      if (w.initial) w.initial.reject(err);
      else
        this.deliver(w, {
          header: r.header,
          watchId: w.id,
          events: [],
          canceled: true,
          cancelReason: reason,
        });
      return;
    }
    if (w.canceled) {
      // cancel() came while the create was in flight.
      this.write({ cancel_request: { watch_id: w.id } });
      if (this.watches.size === 0 && this.awaitingCreate.length === 0) this.dropStream();
      return;
    }
    w.created = true;
    if (w.nextRev === 0) w.nextRev = r.header.revision + 1;
    this.failures = 0;
    if (this.streamEndpoint) this.pool.succeeded(this.streamEndpoint);
    const initial = w.initial;
    if (initial) {
      w.initial = undefined;
      const id = w.id;
      initial.resolve({ id, cancel: () => this.cancel(id) });
    }
  }
}

function clientClosed(): StoreError {
  const s = stopped();
  return new StoreError(StoreErrorCode.Stopped, s.grpc, 'berth client: closed');
}
