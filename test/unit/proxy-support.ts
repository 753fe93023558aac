// Loopback servers and clients for the proxy tests. Every test picks its own random
// 127.x.y.z addresses (outside 127.0.0.0/16, which node processes use) and ports from the
// kernel (port 0), so test files can run in parallel.

import { randomInt } from 'node:crypto';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

/** A random loopback address in 127.100.0.0 – 127.199.255.254. */
export function randomLoopback(): string {
  return `127.${randomInt(100, 200)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}

/** A random port for addresses the test does not bind itself first. */
export const randomPort = (lo = 20000, hi = 29999) => randomInt(lo, hi + 1);

export interface TestBackend {
  name: string;
  host: string;
  port: number;
  /** Connections accepted so far. */
  accepted: number;
  /** Every byte received, over all connections. */
  received: string;
  server: Server;
  close(): Promise<void>;
}

type Behaviour =
  /** Read until the client's FIN, then answer `name:<what it read>` (+ `extra`) and end. */
  | { kind: 'echo-on-end'; extra?: string }
  /** Answer each `\n`-terminated line with `name:<line>\n`, keeping the connection. */
  | { kind: 'lines' }
  /** Accept, then hang up at once without a byte (Docker's userland proxy, container gone). */
  | { kind: 'hang-up'; reset?: boolean }
  /** Read the first bytes, then hang up without answering. */
  | { kind: 'read-then-hang-up' };

export async function startBackend(
  name: string,
  behaviour: Behaviour = { kind: 'echo-on-end' },
  host = randomLoopback(),
): Promise<TestBackend> {
  const sockets = new Set<Socket>();
  const b: TestBackend = {
    name,
    host,
    port: 0,
    accepted: 0,
    received: '',
    server: createServer({ allowHalfOpen: true }, (s) => {
      b.accepted++;
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
      serve(b, s, behaviour);
    }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        b.server.close(() => resolve());
      }),
  };
  await new Promise<void>((resolve, reject) => {
    b.server.once('error', reject);
    b.server.listen({ host, port: 0 }, () => resolve());
  });
  b.port = (b.server.address() as { port: number }).port;
  return b;
}

function serve(b: TestBackend, s: Socket, behaviour: Behaviour): void {
  switch (behaviour.kind) {
    case 'echo-on-end': {
      let got = '';
      s.on('data', (c: Buffer) => {
        got += c.toString();
        b.received += c.toString();
      });
      s.on('end', () => s.end(`${b.name}:${got}${behaviour.extra ?? ''}`));
      return;
    }
    case 'lines': {
      let buf = '';
      s.on('data', (c: Buffer) => {
        b.received += c.toString();
        buf += c.toString();
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          s.write(`${b.name}:${buf.slice(0, i)}\n`);
          buf = buf.slice(i + 1);
        }
      });
      s.on('end', () => s.end());
      return;
    }
    case 'hang-up':
      if (behaviour.reset) s.resetAndDestroy();
      else s.destroy();
      return;
    case 'read-then-hang-up':
      s.once('data', (c: Buffer) => {
        b.received += c.toString();
        s.destroy();
      });
      return;
  }
}

/** A port on `host` that refuses connections (bound, then closed). */
export async function closedPort(host: string): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen({ host, port: 0 }, () => resolve()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export interface ExchangeResult {
  data: string;
  /** The connection closed with an error (reset) rather than a FIN. */
  error?: string;
}

/** Connect, send `payload`, end the write side, and read until the connection closes. */
export function exchange(
  host: string,
  port: number,
  payload: string | Buffer,
  options: { localAddress?: string; timeoutMs?: number } = {},
): Promise<ExchangeResult> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    const s = tcpConnect({ host, port, localAddress: options.localAddress, allowHalfOpen: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close from ${host}:${port} within ${options.timeoutMs ?? 5000} ms`));
    }, options.timeoutMs ?? 5000);
    s.on('connect', () => s.end(payload));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
    });
    s.on('close', () => {
      clearTimeout(timer);
      const r: ExchangeResult = { data: Buffer.concat(chunks).toString() };
      if (error) r.error = error;
      resolve(r);
    });
  });
}

/** A connected client with a line reader. */
export async function openClient(
  host: string,
  port: number,
  localAddress?: string,
): Promise<{
  socket: Socket;
  received: () => string;
  waitFor: (text: string, ms?: number) => Promise<void>;
  /** The other side hung up (FIN or reset): this client, half-open, may still write. */
  closed: Promise<void>;
}> {
  const s = tcpConnect({ host, port, localAddress, allowHalfOpen: true });
  s.on('error', () => {});
  let got = '';
  s.on('data', (c: Buffer) => {
    got += c.toString();
  });
  const closed = new Promise<void>((resolve) => {
    s.once('end', () => resolve());
    s.once('close', () => resolve());
  });
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
  return {
    socket: s,
    received: () => got,
    waitFor: (text, ms = 5000) => waitFor(`"${text}" from ${host}:${port}`, () => got.includes(text), ms),
    closed,
  };
}

export async function waitFor(what: string, fn: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A pino logger whose records (parsed) land in `lines`, at `level` and above. */
export function captureLogger(level = 'debug'): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

export const silentLogger = pino({ level: 'silent' });
