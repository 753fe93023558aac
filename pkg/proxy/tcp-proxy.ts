// One TCP listener of a Service port (clusterIP:port or nodeAddress:nodePort) and the
// connections it relays to the port's backends, as kube-proxy's userspace mode did.
//
//   client ─accept─► Balancer.pick ─► connect backend 1 ─✗─► backend 2 ─✓─► relay both ways
//
// A backend "fails" when the connect is refused, errors or times out, and also when it
// closes (FIN or reset) before sending a single byte: Docker's userland proxy accepts on a
// published port even when the container behind it is gone, then hangs up. So until the
// first backend byte the client's bytes are kept (up to replayLimitBytes) and replayed to
// the next backend. From the first backend byte on, bytes are only relayed, with
// backpressure both ways; FIN is relayed each way (half-close), an error on one side
// destroys the other, and a connection idle for idleTimeoutMs is closed.

import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import type { Logger } from 'pino';
import { type AffinityConfig, Balancer } from './balancer.js';
import type { Backend } from './types.js';

export interface TcpProxyOptions {
  host: string;
  /** 0: any free port (see address()). */
  port: number;
  /** The Service port, `namespace/service:port`, for logs. */
  name: string;
  /** The current ready backends; read once per accepted connection. */
  backends: () => Backend[];
  affinity?: AffinityConfig;
  /** Close a connection after this long without a byte either way. 10 minutes by default. */
  idleTimeoutMs?: number;
  /** Give up on a backend that has not accepted within this. 1 s by default. */
  connectTimeoutMs?: number;
  /** Client bytes kept for replay until the first backend byte. 64 KiB by default. */
  replayLimitBytes?: number;
  logger: Logger;
  /** Clock for affinity and log throttling (ms). */
  now?: () => number;
  /** Opens a backend connection (allowHalfOpen); tests pass one that never connects. */
  connect?: (backend: Backend) => Socket;
}

export const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 1000;
export const DEFAULT_REPLAY_LIMIT_BYTES = 64 * 1024;
/** Warnings about one Service port are logged at most this often. */
export const WARN_EVERY_MS = 30_000;

/** Last warning time per service port and reason, shared by all listeners of the process. */
const lastWarned = new Map<string, number>();

function shouldWarn(key: string, now: number): boolean {
  const last = lastWarned.get(key);
  if (last !== undefined && now - last < WARN_EVERY_MS) return false;
  lastWarned.set(key, now);
  return true;
}

const clientIpOf = (s: Socket) => (s.remoteAddress ?? '').replace(/^::ffff:/, '');

export class TcpProxy {
  private server: Server | undefined;
  private readonly balancer: Balancer;
  private backends: () => Backend[];
  private readonly conns = new Set<Relay>();
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly relayContext: RelayContext;
  private sweep: NodeJS.Timeout | undefined;
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly replayLimitBytes: number;

  constructor(private readonly options: TcpProxyOptions) {
    this.now = options.now ?? Date.now;
    this.backends = options.backends;
    this.balancer = new Balancer({ affinity: options.affinity, now: this.now });
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.replayLimitBytes = options.replayLimitBytes ?? DEFAULT_REPLAY_LIMIT_BYTES;
    this.logger = options.logger.child({ service: options.name, listen: `${options.host}:${options.port}` });
    this.relayContext = {
      clock: { now: this.now() },
      idleTimeoutMs: this.idleTimeoutMs,
      connectTimeoutMs: this.connectTimeoutMs,
      replayLimitBytes: this.replayLimitBytes,
      logger: this.logger,
      connect: options.connect ?? ((b) => tcpConnect({ host: b.ip, port: b.port, allowHalfOpen: true })),
      connected: (clientIp, backend) => this.balancer.connected(clientIp, backend),
      unreachable: (clientIp, tried) => {
        if (shouldWarn(`${this.options.name}|unreachable`, this.now()))
          this.logger.warn(
            { client: clientIp, tried },
            `service ${this.options.name}: no endpoint answered; connection from ${clientIp} closed`,
          );
      },
      done: (relay) => this.conns.delete(relay),
    };
  }

  get name(): string {
    return this.options.name;
  }

  /** Where new connections' backends come from (takes effect for the next connection). */
  setBackends(backends: () => Backend[]): void {
    this.backends = backends;
  }

  /** Turn ClientIP affinity on, change its timeout, or (undefined) turn it off. */
  setAffinity(affinity: AffinityConfig | undefined): void {
    this.balancer.setAffinity(affinity);
  }

  /** The bound address while listening. */
  address(): { host: string; port: number } | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  get listening(): boolean {
    return this.server?.listening ?? false;
  }

  /** Open connections (relayed or still connecting). */
  get connections(): number {
    return this.conns.size;
  }

  /** Start accepting. Rejects with the bind error (EADDRINUSE, EADDRNOTAVAIL, ...). */
  listen(): Promise<void> {
    if (this.server?.listening) return Promise.resolve();
    const server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    return new Promise((resolve, reject) => {
      const failed = (err: Error) => {
        server.close();
        reject(err);
      };
      server.once('error', failed);
      server.listen({ host: this.options.host, port: this.options.port }, () => {
        server.removeListener('error', failed);
        server.on('error', (err) => this.logger.warn({ err }, 'listener error'));
        this.server = server;
        this.sweep = setInterval(() => this.closeIdle(), this.sweepMs());
        this.sweep.unref();
        resolve();
      });
    });
  }

  /** Stop accepting and destroy open connections. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    clearInterval(this.sweep);
    const closed = server?.listening
      ? new Promise<void>((resolve) => server.close(() => resolve()))
      : Promise.resolve();
    for (const c of [...this.conns]) c.destroy();
    await closed;
  }

  // Idle connections are found by a sweep rather than a timer per socket, which Node would
  // re-arm on every read and write (measurable at tens of thousands of requests/s).
  private sweepMs(): number {
    return Math.max(25, Math.floor(this.idleTimeoutMs / 4));
  }

  private closeIdle(): void {
    const now = this.now();
    this.relayContext.clock.now = now;
    // Activity is stamped with this coarse clock, up to one sweep late: allow for it.
    const limit = this.idleTimeoutMs + this.sweepMs();
    for (const relay of this.conns) if (now - relay.lastActive >= limit) relay.idle();
  }

  private accept(client: Socket): void {
    const clientIp = clientIpOf(client);
    this.balancer.setBackends(this.backends());
    const candidates = this.balancer.pick(clientIp);
    if (candidates.length === 0) {
      if (shouldWarn(`${this.options.name}|none`, this.now()))
        this.logger.warn(
          { client: clientIp },
          `service ${this.options.name} has no ready endpoints; connection from ${clientIp} closed`,
        );
      client.on('error', () => {});
      client.destroy();
      return;
    }
    const relay = new Relay(client, clientIp, candidates, this.relayContext);
    this.conns.add(relay);
    relay.start();
  }
}

/** What a relay needs from its listener. */
interface RelayContext {
  /** A coarse clock (ms) the idle sweep advances; relays stamp activity with it. */
  clock: { now: number };
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  replayLimitBytes: number;
  logger: Logger;
  connect(backend: Backend): Socket;
  /** The client's connection reached `backend` (affinity). */
  connected(clientIp: string, backend: Backend): void;
  /** Every candidate failed. */
  unreachable(clientIp: string, tried: number): void;
  /** Both sides are closed. */
  done(relay: Relay): void;
}

/** One client connection and its current backend connection. */
class Relay {
  private upstream: Socket | undefined;
  private backend: Backend | undefined;
  private upstreamConnected = false;
  /** The backend has sent a byte: no more failover, no more replay. */
  private established = false;
  private replay: Buffer[] = [];
  private replayBytes = 0;
  /** Whether `replay` still holds every byte the client sent. */
  private replayable = true;
  private clientEnded = false;
  private clientClosed = false;
  private upstreamClosed = true;
  private attempt = 0;
  private connectTimer: NodeJS.Timeout | undefined;
  private finished = false;
  /** Destroyed on purpose (idle, error, no backend left): no more attempts. */
  private stopping = false;
  /** The last time bytes moved either way (the coarse clock). */
  lastActive: number;

  constructor(
    private readonly client: Socket,
    private readonly clientIp: string,
    private readonly candidates: Backend[],
    private readonly ctx: RelayContext,
  ) {
    this.lastActive = ctx.clock.now;
  }

  idle(): void {
    this.ctx.logger.debug({ client: this.clientIp }, 'idle connection closed');
    this.destroy();
  }

  start(): void {
    const c = this.client;
    c.setNoDelay(true);
    c.on('data', (chunk: Buffer) => this.onClientData(chunk));
    c.on('end', () => this.onClientEnd());
    c.on('drain', () => this.upstream?.resume());
    c.on('error', (err) => {
      this.ctx.logger.debug({ client: this.clientIp, err: err.message }, 'client error');
      this.destroy();
    });
    c.on('close', () => {
      this.clientClosed = true;
      const up = this.upstream;
      // A clean close after both FINs lets the backend side flush; anything else ends it.
      if (up && !(this.established && up.writableEnded && up.readableEnded)) up.destroy();
      this.maybeDone();
    });
    this.next();
  }

  destroy(): void {
    this.stopping = true;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.client.destroy();
    this.upstream?.destroy();
  }

  private onClientData(chunk: Buffer): void {
    this.lastActive = this.ctx.clock.now;
    if (!this.established && this.replayable) {
      this.replay.push(chunk);
      this.replayBytes += chunk.length;
    }
    if (this.upstream && this.upstreamConnected) {
      this.upstream.write(chunk);
      this.trimReplay();
    }
    this.updateClientFlow();
  }

  private onClientEnd(): void {
    this.clientEnded = true;
    if (this.upstream && this.upstreamConnected) this.upstream.end();
  }

  /** Once bytes went to a backend, replay is only possible while they all fit. */
  private trimReplay(): void {
    if (this.replayable && this.replayBytes > this.ctx.replayLimitBytes) {
      this.replayable = false;
      this.replay = [];
    }
  }

  /** Paused while the backend cannot take more, or nothing is connected and replay is full. */
  private updateClientFlow(): void {
    if (this.clientClosed) return;
    const pause = this.upstreamConnected
      ? (this.upstream?.writableNeedDrain ?? false)
      : this.replayBytes >= this.ctx.replayLimitBytes;
    if (pause) this.client.pause();
    else this.client.resume();
  }

  /** Connect to the next candidate; close the client when none is left. */
  private next(): void {
    if (this.stopping || this.client.destroyed) return;
    const backend = this.candidates[this.attempt++];
    if (!backend) {
      this.ctx.unreachable(this.clientIp, this.attempt - 1);
      this.destroy();
      return;
    }
    this.backend = backend;
    this.upstreamConnected = false;
    this.upstreamClosed = false;
    const up = this.ctx.connect(backend);
    this.upstream = up;
    up.setNoDelay(true);
    this.connectTimer = setTimeout(() => {
      const err = Object.assign(new Error(`connect timeout after ${this.ctx.connectTimeoutMs} ms`), {
        code: 'ETIMEDOUT',
      });
      this.upstreamFailed(up, err);
    }, this.ctx.connectTimeoutMs);
    up.once('connect', () => {
      if (this.connectTimer) clearTimeout(this.connectTimer);
      this.upstreamConnected = true;
      this.ctx.connected(this.clientIp, backend);
      for (const chunk of this.replay) up.write(chunk);
      this.trimReplay();
      if (this.clientEnded) up.end();
      this.updateClientFlow();
    });
    up.on('data', (chunk: Buffer) => {
      this.lastActive = this.ctx.clock.now;
      if (!this.established) {
        this.established = true;
        this.replay = [];
        this.replayable = false;
      }
      if (!this.client.write(chunk)) up.pause();
    });
    up.on('drain', () => this.updateClientFlow());
    up.on('end', () => {
      if (!this.established) this.upstreamFailed(up, new Error('closed before sending a byte'));
      else this.client.end();
    });
    up.on('error', (err) => {
      if (!this.established) this.upstreamFailed(up, err);
      else {
        this.ctx.logger.debug(
          { backend: `${backend.ip}:${backend.port}`, err: err.message },
          'backend error',
        );
        this.client.destroy();
      }
    });
    up.on('close', () => {
      if (up !== this.upstream) return;
      this.upstreamClosed = true;
      if (!this.established) this.upstreamFailed(up, new Error('closed before sending a byte'));
      else if (!(this.client.writableEnded && this.client.readableEnded)) this.client.destroy();
      this.maybeDone();
    });
  }

  /** A backend failed before its first byte: try the next one when the client's bytes allow. */
  private upstreamFailed(up: Socket, err: Error & { code?: string }): void {
    if (up !== this.upstream || this.established) return;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    const wasConnected = this.upstreamConnected;
    this.upstream = undefined;
    this.upstreamConnected = false;
    this.upstreamClosed = true;
    up.removeAllListeners();
    up.on('error', () => {});
    up.destroy();
    if (this.stopping || this.client.destroyed) {
      this.maybeDone();
      return;
    }
    const b = this.backend as Backend;
    const log = this.ctx.logger;
    if (wasConnected && !this.replayable) {
      log.debug(
        { backend: `${b.ip}:${b.port}`, client: this.clientIp, err: err.code ?? err.message },
        'backend closed before answering; too many bytes to replay',
      );
      this.destroy();
      return;
    }
    log.debug(
      { backend: `${b.ip}:${b.port}`, pod: b.pod, client: this.clientIp, err: err.code ?? err.message },
      'backend failed; trying the next',
    );
    this.updateClientFlow();
    this.next();
  }

  private maybeDone(): void {
    if (this.finished || !this.clientClosed || !this.upstreamClosed) return;
    this.finished = true;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.ctx.done(this);
  }
}
