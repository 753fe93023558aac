// The client's options, their defaults, and endpoint parsing.

import * as grpc from '@grpc/grpc-js';

/** What the client logs through; a pino logger fits (`logger.child({ component: 'client' })`). */
export interface ClientLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface ClientOptions {
  /**
   * Members' client addresses: 'host:port', 'https://host:port' or 'http://host:port'. The
   * client talks to one at a time and fails over to the next when it stops answering.
   */
  endpoints: string[];
  /**
   * Mutual TLS (pkg/rpc/tls.ts), or undefined for a node started with --insecure. The scheme
   * of an endpoint does not choose: a cluster is all TLS or all plain.
   */
  credentials?: grpc.ChannelCredentials;
  /** How long to wait for a connection to an endpoint before trying the next one (ms). Default 2000. */
  dialTimeoutMs?: number;
  /** The deadline of every call, per attempt (ms). Default 5000. Watch streams have none. */
  requestTimeoutMs?: number;
  /**
   * Further attempts after a failure that is safe to retry (see retry.ts for which are).
   * Default 3. Watches and keep-alives that were running reconnect until canceled instead.
   */
  retries?: number;
  /** Back-off between attempts: exponential from initialMs, capped at maxMs, with jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  logger?: ClientLogger;
}

export interface ResolvedClientOptions {
  endpoints: string[];
  credentials: grpc.ChannelCredentials;
  dialTimeoutMs: number;
  requestTimeoutMs: number;
  retries: number;
  backoff: { initialMs: number; maxMs: number };
  logger: ClientLogger;
}

const silent: ClientLogger = { debug() {}, info() {}, warn() {} };

/** A gRPC target from an endpoint as users write it; throws a clear error for what is not one. */
export function parseEndpoint(endpoint: string): string {
  const e = endpoint.trim();
  const scheme = /^https?:\/\//.exec(e)?.[0];
  const target = scheme ? e.slice(scheme.length).replace(/\/+$/, '') : e;
  if (!/^[^\s/]+:\d+$/.test(target) && !target.startsWith('unix:')) {
    throw new Error(`endpoint ${endpoint} is not host:port, https://host:port or unix:path`);
  }
  return target;
}

function nonNegative(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v < 0)
    throw new Error(`client option ${name} must be a non-negative number, got ${v}`);
  return v;
}

export function resolveOptions(o: ClientOptions): ResolvedClientOptions {
  if (!Array.isArray(o.endpoints) || o.endpoints.length === 0) {
    throw new Error('client option endpoints must list at least one endpoint');
  }
  return {
    endpoints: o.endpoints.map(parseEndpoint),
    credentials: o.credentials ?? grpc.credentials.createInsecure(),
    dialTimeoutMs: nonNegative(o.dialTimeoutMs, 2000, 'dialTimeoutMs'),
    requestTimeoutMs: nonNegative(o.requestTimeoutMs, 5000, 'requestTimeoutMs'),
    retries: Math.floor(nonNegative(o.retries, 3, 'retries')),
    backoff: {
      initialMs: nonNegative(o.backoff?.initialMs, 50, 'backoff.initialMs'),
      maxMs: nonNegative(o.backoff?.maxMs, 2000, 'backoff.maxMs'),
    },
    logger: o.logger ?? silent,
  };
}
