// The HTTP router every berth-node runs for Ingresses: an informer keeps the route table
// (ingress-routes.ts) current; each request is routed by host and path to a Service port,
// whose ready backends (ServiceBackends) are tried round-robin, and proxied over a pooled
// keep-alive connection with bodies streamed both ways.
//
//   client ─► http.Server ─► routes.match(Host, path) ─► backends(ns, svc, port)
//                 │  404 no route, 503 no endpoint          │ round-robin start, then in turn
//                 ▼                                         ▼
//             attempt(backend): http.request over the backend's keep-alive Agent
//               connect refused / timed out ──────────────► next backend
//               reused socket reset before a response ────► once more, next backend
//                 (idempotent method, or no body)
//               hang-up before a response, no body ───────► next backend
//               no response headers in time ──────────────► 504
//               other failure before a response ──────────► 502
//               failure once the response started ────────► the client connection is destroyed
//
// A request body is forwarded as it arrives and also kept (up to BODY_REPLAY_BYTES) until a
// response starts, so a retry can send it again; past that limit no retry is made.
// Failures are logged, at most once per LOG_INTERVAL_MS for each service or backend (with
// how many were left out); successful requests are not logged.

import http, { type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ApiServer } from '../api/server/api-server.js';
import { Informer } from '../controller/informer.js';
import { buildIngressRoutes, type IngressRoutes, type ServiceBackendRef } from './ingress-routes.js';
import type { Backend, ServiceBackends } from './types.js';

export interface IngressServerOptions {
  /** Read for Ingresses (watched through an informer). */
  api: ApiServer;
  /** The ready backends of Services; the router only reads it. */
  backends: ServiceBackends;
  /** Listen address (a node's own address, e.g. 127.0.0.2). */
  host: string;
  /** Listen port; 0 picks a free one (see `address()`). */
  port: number;
  logger: Logger;
  /** Shown in logs. */
  nodeName?: string;
  /** How long to wait for an upstream's response headers once the request is sent, then 504. Default 60 000. */
  responseTimeoutMs?: number;
  /** How long a TCP connect to a backend may take before the next backend is tried. Default 5 000. */
  connectTimeoutMs?: number;
}

export const DEFAULT_RESPONSE_TIMEOUT_MS = 60_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Bytes of a request body kept for a retry until the response starts. */
export const BODY_REPLAY_BYTES = 256 * 1024;
const LOG_INTERVAL_MS = 10_000;
/** Idle keep-alive connections to a backend are closed after this long. */
const IDLE_SOCKET_MS = 30_000;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** RFC 9110 §7.6.1 hop-by-hop fields (and the older Keep-Alive / Proxy-Connection). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** An Agent that, once its backend left the endpoints, keeps no socket: in-flight requests finish, idle sockets go. */
class BackendAgent extends http.Agent {
  private retired = false;

  // Node keeps a freed socket only when this returns true (its own always does; the
  // typings say void).
  override keepSocketAlive(socket: Socket): boolean {
    if (this.retired) return false;
    super.keepSocketAlive(socket);
    return true;
  }

  retire(): void {
    this.retired = true;
    for (const list of Object.values(this.freeSockets)) for (const s of list ?? []) s.destroy();
  }
}

/**
 * The request body, forwarded to the current upstream request with backpressure and kept
 * until a response starts (while it fits BODY_REPLAY_BYTES), so a retry can send it again.
 */
class RequestBody {
  private kept: Buffer[] = [];
  private keptBytes = 0;
  private overflow = false;
  private ended = false;
  private sink: ClientRequest | undefined;
  private readonly onDrain = () => this.src.resume();

  constructor(private readonly src: IncomingMessage) {
    // Paused before the 'data' listener, so nothing flows until an upstream is attached.
    src.pause();
    src.on('data', (chunk: Buffer) => {
      if (!this.overflow) {
        if (this.keptBytes + chunk.length > BODY_REPLAY_BYTES) this.release();
        else {
          this.kept.push(chunk);
          this.keptBytes += chunk.length;
        }
      }
      if (this.sink && !this.sink.write(chunk)) this.src.pause();
    });
    src.on('end', () => {
      this.ended = true;
      this.sink?.end();
    });
  }

  /** Whether all of the body read so far is kept (a retry can send it again). */
  get replayable(): boolean {
    return !this.overflow;
  }

  attach(sink: ClientRequest): void {
    this.sink = sink;
    sink.on('drain', this.onDrain);
    let ok = true;
    for (const c of this.kept) ok = sink.write(c);
    if (this.ended) sink.end();
    else if (ok) this.src.resume();
  }

  detach(): void {
    this.sink?.off('drain', this.onDrain);
    this.sink = undefined;
    this.src.pause();
  }

  /** A response started (or the body is too big): no retry will need the body again. */
  release(): void {
    this.overflow = true;
    this.kept = [];
    this.keptBytes = 0;
  }
}

type Attempt =
  | { type: 'responded' }
  | { type: 'client-gone' }
  | { type: 'connect' | 'reused' | 'hangup' | 'failed' | 'timeout'; err: Error };

const hasBody = (req: IncomingMessage): boolean =>
  req.headers['transfer-encoding'] !== undefined ||
  (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

const errCode = (err: Error): string => (err as NodeJS.ErrnoException).code ?? '';

/** Names the Connection header lists, lower case: hop-by-hop for this message too. */
function connectionTokens(raw: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]?.toLowerCase() !== 'connection') continue;
    for (const t of (raw[i + 1] ?? '').split(',')) if (t.trim() !== '') out.add(t.trim().toLowerCase());
  }
  return out;
}

/** Raw headers without hop-by-hop fields and without `drop`; a flat [name, value, ...] list. */
function endToEnd(raw: readonly string[], drop: ReadonlySet<string> = new Set()): string[] {
  const listed = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (HOP_BY_HOP.has(name) || listed.has(name) || drop.has(name)) continue;
    out.push(raw[i] as string, raw[i + 1] as string);
  }
  return out;
}

const FORWARDED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

/** The upstream request's headers: end-to-end ones, Host kept, X-Forwarded-* set. */
function upstreamHeaders(req: IncomingMessage): string[] {
  const headers = endToEnd(req.rawHeaders, FORWARDED);
  const client = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  const prior = req.headers['x-forwarded-for'];
  const chain = [...(Array.isArray(prior) ? prior : prior ? [prior] : []), client].filter((s) => s !== '');
  headers.push('X-Forwarded-For', chain.join(', '), 'X-Forwarded-Proto', 'http');
  if (req.headers.host !== undefined) headers.push('X-Forwarded-Host', req.headers.host);
  return headers;
}

const portText = (b: ServiceBackendRef) => String(b.port.number ?? b.port.name);
const serviceText = (b: ServiceBackendRef) => `${b.namespace}/${b.name} port ${portText(b)}`;

/** See the file comment. */
export class IngressServer {
  private readonly log: Logger;
  private readonly responseTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private informer: Informer | undefined;
  private server: http.Server | undefined;
  private routes: IngressRoutes = buildIngressRoutes([]);
  private routesStale = false;
  private readonly agents = new Map<string, BackendAgent>();
  private readonly roundRobin = new Map<string, number>();
  private readonly logged = new Map<string, { at: number; suppressed: number }>();
  private stopped = false;
  private listeningToBackends = false;

  constructor(private readonly opts: IngressServerOptions) {
    this.log = opts.logger.child({ component: 'ingress' });
    this.responseTimeoutMs = opts.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  }

  /**
   * Lists Ingresses, then listens; rejects with the listen error (EADDRINUSE,
   * EADDRNOTAVAIL...), after which start may be called again.
   */
  async start(): Promise<void> {
    const informer = new Informer(this.opts.api, 'ingresses', this.log);
    this.informer = informer;
    const changed = () => this.routesChanged();
    informer.on({ add: changed, update: changed, delete: changed });
    if (!this.listeningToBackends) {
      // ServiceBackends has no way to stop listening: one listener for the server's life.
      this.listeningToBackends = true;
      this.opts.backends.onChange(() => {
        if (!this.stopped) this.pruneAgents();
      });
    }
    await informer.start();
    if (this.stopped) return; // stop() came during the first list: nothing to listen for.
    this.rebuildRoutes();
    const server = http.createServer((req, res) => this.handle(req, res));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.opts.port, this.opts.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await informer.stop();
      throw err;
    }
    server.on('error', (err) => this.log.error({ err }, 'ingress listener failed'));
    this.server = server;
    this.log.debug({ address: this.address(), node: this.opts.nodeName }, 'ingress router listening');
  }

  /** Where the router listens (the real port when `port` was 0). */
  address(): AddressInfo {
    const a = this.server?.address();
    if (!a || typeof a === 'string') throw new Error('ingress server is not listening');
    return a;
  }

  /** Stops listening, drops every connection (clients' and backends') and the informer. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer?.stop();
    const server = this.server;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    }
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }

  // ---- routes and pools ----

  private routesChanged(): void {
    if (this.routesStale) return;
    this.routesStale = true;
    // The first list brings every Ingress at once: build the table once after it.
    queueMicrotask(() => {
      if (this.routesStale) this.rebuildRoutes();
    });
  }

  private rebuildRoutes(): void {
    if (!this.informer) return;
    this.routesStale = false;
    this.routes = buildIngressRoutes(this.informer.list());
    for (const r of this.routes.shadowed)
      this.warn(
        `shadowed ${r.ingress} ${r.host} ${r.path}`,
        { ingress: r.ingress, host: r.host, path: r.path },
        'ingress path ignored: an older Ingress routes the same host and path',
      );
    this.pruneAgents();
  }

  /** Retires the pools of backends no routed Service has any more (in-flight requests finish). */
  private pruneAgents(): void {
    const live = new Set<string>();
    const services = new Set<string>();
    for (const ref of this.routes.serviceBackends()) {
      services.add(serviceText(ref));
      for (const b of this.opts.backends.backends(ref.namespace, ref.name, ref.port) ?? [])
        live.add(`${b.ip}:${b.port}`);
    }
    for (const [key, agent] of this.agents) {
      if (live.has(key)) continue;
      agent.retire();
      this.agents.delete(key);
    }
    for (const key of this.roundRobin.keys()) if (!services.has(key)) this.roundRobin.delete(key);
    if (this.logged.size > 1000) this.logged.clear();
  }

  private agentFor(b: Backend): BackendAgent {
    const key = `${b.ip}:${b.port}`;
    let agent = this.agents.get(key);
    if (!agent) {
      agent = new BackendAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS });
      this.agents.set(key, agent);
    }
    return agent;
  }

  // ---- requests ----

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.routesStale) this.rebuildRoutes();
    const match = this.routes.match(req.headers.host, req.url ?? '/');
    if (!match) {
      reply(res, 404, `no ingress rule matches host "${req.headers.host ?? ''}" path "${req.url ?? ''}"\n`);
      return;
    }
    const b = match.backend;
    if (b.kind === 'resource') {
      this.warn(
        `resource ${match.ingress}`,
        { ingress: match.ingress },
        'ingress resource backends are not served',
      );
      reply(res, 503, `ingress ${match.ingress}: resource backends are not served by berth\n`);
      return;
    }
    const svc = serviceText(b);
    const list = this.opts.backends.backends(b.namespace, b.name, b.port);
    if (list === undefined) {
      this.warn(
        `svc ${svc}`,
        { ingress: match.ingress, service: svc },
        'ingress backend service or port not found',
      );
      reply(res, 503, `no service ${b.namespace}/${b.name} with port ${portText(b)}\n`);
      return;
    }
    if (list.length === 0) {
      this.warn(
        `svc ${svc}`,
        { ingress: match.ingress, service: svc },
        'ingress backend service has no ready endpoint',
      );
      reply(res, 503, `no ready endpoints for service ${svc}\n`);
      return;
    }
    this.proxy(req, res, b, list).catch((err: unknown) => {
      this.log.error({ err, service: svc }, 'ingress proxy failed');
      fail(res, 502, `upstream failed for service ${svc}\n`);
    });
  }

  private async proxy(
    req: IncomingMessage,
    res: ServerResponse,
    ref: ServiceBackendRef,
    list: readonly Backend[],
  ): Promise<void> {
    const svc = serviceText(ref);
    const n = this.roundRobin.get(svc) ?? 0;
    this.roundRobin.set(svc, n + 1);
    const order = list.map((_, i) => list[(n + i) % list.length] as Backend);
    const withBody = hasBody(req);
    const retryReused = withBody ? IDEMPOTENT.has(req.method ?? '') : true;
    const body = withBody ? new RequestBody(req) : undefined;
    const headers = upstreamHeaders(req);
    let reusedRetried = false;
    let budget = order.length;
    let last: Error | undefined;
    for (let i = 0; i < budget; i++) {
      const backend = order[i % order.length] as Backend;
      const r = await this.attempt(req, res, backend, headers, body);
      if (r.type === 'responded' || r.type === 'client-gone') return;
      last = r.err;
      const fields = { service: svc, backend: `${backend.ip}:${backend.port}`, pod: backend.pod, err: r.err };
      const replayable = body?.replayable ?? true;
      if (r.type === 'timeout') {
        this.warn(`timeout ${svc}`, fields, 'ingress upstream timed out');
        fail(res, 504, `upstream timed out for service ${svc}\n`);
        return;
      }
      if (r.type === 'connect' && replayable) {
        this.warn(`backend ${fields.backend}`, fields, 'ingress backend not reachable; trying the next');
        continue;
      }
      if (r.type === 'reused' && !reusedRetried && retryReused && replayable) {
        // A keep-alive connection the backend had closed: one more try, on the next backend.
        reusedRetried = true;
        budget++;
        continue;
      }
      if ((r.type === 'hangup' || r.type === 'reused') && !withBody) {
        this.warn(
          `backend ${fields.backend}`,
          fields,
          'ingress backend closed without answering; trying the next',
        );
        continue;
      }
      this.warn(`failed ${svc}`, fields, 'ingress upstream failed');
      fail(res, 502, `upstream failed for service ${svc}\n`);
      return;
    }
    this.warn(`failed ${svc}`, { service: svc, err: last }, 'ingress: no backend answered');
    fail(res, 503, `no ready endpoints answered for service ${svc}\n`);
  }

  /** One try on one backend; resolves once the response started or the try failed. */
  private attempt(
    req: IncomingMessage,
    res: ServerResponse,
    backend: Backend,
    headers: string[],
    body: RequestBody | undefined,
  ): Promise<Attempt> {
    return new Promise((resolve) => {
      // Not req.destroyed: a request is destroyed once its body was read, client still there.
      if (res.destroyed) {
        resolve({ type: 'client-gone' });
        return;
      }
      const upstream = http.request({
        host: backend.ip,
        port: backend.port,
        method: req.method,
        path: req.url,
        headers,
        setHost: req.headers.host === undefined,
        agent: this.agentFor(backend),
      });
      let connected = false;
      let responded = false;
      let timedOut = false;
      let settled = false;
      let connectTimer: NodeJS.Timeout | undefined;
      let responseTimer: NodeJS.Timeout | undefined;
      const settle = (a: Attempt) => {
        clearTimeout(connectTimer);
        clearTimeout(responseTimer);
        res.off('close', onClientClose);
        if (settled) return;
        settled = true;
        resolve(a);
      };
      const onClientClose = () => {
        if (res.writableFinished) return;
        upstream.destroy();
        settle({ type: 'client-gone' });
      };
      res.on('close', onClientClose);

      upstream.on('socket', (socket: Socket) => {
        if (upstream.reusedSocket || !socket.connecting) {
          connected = true;
          return;
        }
        connectTimer = setTimeout(() => {
          const err = Object.assign(new Error(`connect timed out after ${this.connectTimeoutMs} ms`), {
            code: 'ETIMEDOUT',
          });
          upstream.destroy(err);
        }, this.connectTimeoutMs);
        socket.once('connect', () => {
          connected = true;
          clearTimeout(connectTimer);
        });
      });
      // The wait for an answer starts once the request (body included) is sent.
      upstream.on('finish', () => {
        if (responded || settled) return;
        responseTimer = setTimeout(() => {
          timedOut = true;
          upstream.destroy(new Error(`no response within ${this.responseTimeoutMs} ms`));
        }, this.responseTimeoutMs);
      });
      upstream.on('response', (ures: IncomingMessage) => {
        responded = true;
        body?.release();
        res.writeHead(ures.statusCode ?? 502, ures.statusMessage, endToEnd(ures.rawHeaders));
        ures.on('error', () => res.destroy());
        ures.on('close', () => {
          if (!ures.complete) res.destroy();
        });
        res.on('close', () => {
          if (!res.writableFinished) upstream.destroy();
        });
        ures.pipe(res);
        settle({ type: 'responded' });
      });
      upstream.on('error', (err: Error) => {
        if (responded) {
          res.destroy();
          return;
        }
        body?.detach();
        if (settled) return;
        const code = errCode(err);
        if (timedOut) settle({ type: 'timeout', err });
        else if (!connected) settle({ type: 'connect', err });
        else if (upstream.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE'))
          settle({ type: 'reused', err });
        else if (code === 'ECONNRESET' || code === 'EPIPE') settle({ type: 'hangup', err });
        else settle({ type: 'failed', err });
      });
      if (body) body.attach(upstream);
      else upstream.end();
    });
  }

  /** A warning at most once per LOG_INTERVAL_MS for each key, with how many were left out. */
  private warn(key: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const e = this.logged.get(key);
    if (e && now - e.at < LOG_INTERVAL_MS) {
      e.suppressed++;
      return;
    }
    this.log.warn({ ...fields, ...(e?.suppressed ? { suppressed: e.suppressed } : {}) }, msg);
    this.logged.set(key, { at: now, suppressed: 0 });
  }
}

/** A short plain-text answer. */
function reply(res: ServerResponse, status: number, text: string): void {
  const body = Buffer.from(text);
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': body.length,
  });
  res.end(body);
}

/** An error answer, or a destroyed connection when the response already started. */
function fail(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent) res.destroy();
  else if (!res.destroyed) reply(res, status, text);
}
