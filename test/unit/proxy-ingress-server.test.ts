// The Ingress router (pkg/proxy/ingress-server.ts) on real loopback sockets: an in-process
// API server holds the Ingresses, a small fake ServiceBackends names the backends, and the
// backends are real HTTP (or raw TCP) servers. Every test binds its own random 127.x.y.z
// addresses with kernel-chosen ports, so this file runs in parallel with any other.
import { createHash, randomBytes, randomInt } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import test from 'ava';
import pino, { type Logger } from 'pino';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import { IngressServer } from '../../pkg/proxy/ingress-server.js';
import type { Backend, ServicePortRef, ServiceBackends } from '../../pkg/proxy/types.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const silent = pino({ level: 'silent' });

/** A random loopback address in 127.200.0.0 – 127.249.255.254 (other proxy tests use 127.100–199). */
const loopback = () => `127.${randomInt(200, 250)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;

class FakeBackends implements ServiceBackends {
  private readonly table = new Map<string, Backend[]>();
  private readonly listeners: (() => void)[] = [];

  set(namespace: string, service: string, port: number | string, list: Backend[] | undefined): void {
    const key = `${namespace}/${service}/${port}`;
    if (list === undefined) this.table.delete(key);
    else this.table.set(key, list);
    for (const l of this.listeners) l();
  }

  backends(namespace: string, service: string, port: ServicePortRef): Backend[] | undefined {
    return this.table.get(`${namespace}/${service}/${port.number ?? port.name}`);
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }
}

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
}

interface HttpBackend extends Backend {
  name: string;
  /** Connections accepted so far. */
  connections: number;
  /** Connections open now. */
  open: Set<net.Socket>;
  requests: Seen[];
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, b: HttpBackend) => void;

/** Answers `<name> <method> <url>` unless given a handler. */
async function httpBackend(name: string, handler?: Handler): Promise<HttpBackend> {
  const b: HttpBackend = {
    name,
    ip: loopback(),
    port: 0,
    connections: 0,
    open: new Set(),
    requests: [],
    close: async () => {},
  };
  const server = http.createServer((req, res) => {
    b.requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
    });
    if (handler) return handler(req, res, b);
    req.resume();
    res.end(`${name} ${req.method} ${req.url}`);
  });
  server.on('connection', (s: net.Socket) => {
    b.connections++;
    b.open.add(s);
    s.on('close', () => b.open.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, b.ip, resolve));
  b.port = (server.address() as net.AddressInfo).port;
  b.close = () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return b;
}

/** A raw TCP backend: `onSocket` plays the server. */
async function tcpBackend(
  onSocket: (s: net.Socket, n: number) => void,
): Promise<Backend & { close(): void }> {
  let n = 0;
  const server = net.createServer((s) => {
    s.on('error', () => {});
    onSocket(s, n++);
  });
  const ip = loopback();
  await new Promise<void>((resolve) => server.listen(0, ip, resolve));
  return { ip, port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

/** An address where nothing listens: a port bound and released on a fresh random address. */
async function refusingBackend(): Promise<Backend> {
  const b = await tcpBackend(() => {});
  b.close();
  return { ip: b.ip, port: b.port };
}

interface Ingress {
  name: string;
  rules?: { host?: string; paths: [path: string, pathType: string, service: string][] }[];
  defaultService?: string;
}

function ingressManifest(i: Ingress) {
  const backend = (svc: string) => ({ service: { name: svc, port: { number: 80 } } });
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: i.name, namespace: 'demo' },
    spec: {
      ...(i.defaultService ? { defaultBackend: backend(i.defaultService) } : {}),
      ...(i.rules
        ? {
            rules: i.rules.map((r) => ({
              ...(r.host ? { host: r.host } : {}),
              http: {
                paths: r.paths.map(([path, pathType, svc]) => ({ path, pathType, backend: backend(svc) })),
              },
            })),
          }
        : {}),
    },
  };
}

interface Router {
  api: ApiServer;
  backends: FakeBackends;
  server: IngressServer;
  host: string;
  port: number;
}

async function router(
  ingresses: Ingress[],
  opts: { logger?: Logger; responseTimeoutMs?: number } = {},
): Promise<Router> {
  const api = new ApiServer({ kv: createLocalStore(), logger: silent });
  await ensureSystemNamespaces(api, silent, new AbortController().signal);
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } });
  for (const i of ingresses) await api.create(ingressManifest(i));
  const backends = new FakeBackends();
  const server = new IngressServer({
    api,
    backends,
    host: loopback(),
    port: 0,
    logger: opts.logger ?? silent,
    nodeName: 'n1',
    ...(opts.responseTimeoutMs ? { responseTimeoutMs: opts.responseTimeoutMs } : {}),
  });
  await server.start();
  const a = server.address();
  return { api, backends, server, host: a.address, port: a.port };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(
  r: Pick<Router, 'host' | 'port'>,
  o: {
    path?: string;
    host?: string;
    method?: string;
    headers?: Record<string, string>;
    body?: Buffer | string;
    agent?: http.Agent;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: r.host,
        port: r.port,
        method: o.method ?? 'GET',
        path: o.path ?? '/',
        headers: { host: o.host ?? 'demo.example', ...o.headers },
        agent: o.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
        res.on('close', () => {
          if (!res.complete) reject(new Error('response cut short'));
        });
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

test('routes by host and path: longest match, Exact before Prefix, the default backend, 404', async (t) => {
  const names = ['root', 'api', 'exact', 'other', 'fallback'];
  const b = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await httpBackend(n)] as const)));
  const r = await router([
    {
      name: 'site',
      rules: [
        {
          host: 'demo.example',
          paths: [
            ['/', 'Prefix', 'root'],
            ['/api', 'Prefix', 'api'],
            ['/api/v1', 'Exact', 'exact'],
          ],
        },
        { host: '*.other.example', paths: [['/', 'Prefix', 'other']] },
      ],
    },
  ]);
  for (const n of names) r.backends.set('demo', n, 80, [b[n] as HttpBackend]);
  const body = async (host: string, path: string) => {
    const res = await request(r, { host, path });
    return `${res.status} ${res.body}`;
  };
  t.is(await body('demo.example', '/'), '200 root GET /');
  t.is(await body('DEMO.example:8080', '/api/v2?x=1'), '200 api GET /api/v2?x=1');
  t.is(await body('demo.example', '/api/v1'), '200 exact GET /api/v1');
  t.is(await body('demo.example', '/api/v1/x'), '200 api GET /api/v1/x');
  t.is(await body('demo.example', '/apix'), '200 root GET /apix');
  t.is(await body('a.other.example', '/z'), '200 other GET /z');
  const missing = await request(r, { host: 'nowhere.example', path: '/z' });
  t.is(missing.status, 404);
  t.regex(missing.body, /^no ingress rule matches host "nowhere\.example" path "\/z"\n$/);

  // A default backend, added while the router runs.
  await r.api.create(ingressManifest({ name: 'fallback', defaultService: 'fallback' }));
  for (let i = 0; i < 100 && (await request(r, { host: 'nowhere.example' })).status === 404; i++)
    await new Promise((res) => setTimeout(res, 20));
  t.is(await body('nowhere.example', '/z'), '200 fallback GET /z');
  t.is(await body('demo.example', '/'), '200 root GET /');

  await r.server.stop();
  for (const x of Object.values(b)) await x.close();
});

test('503 with a short body when the Service has no ready endpoint or does not exist', async (t) => {
  const r = await router([{ name: 'site', rules: [{ paths: [['/', 'Prefix', 'web']] }] }]);
  const none = await request(r);
  t.is(none.status, 503);
  t.is(none.body, 'no service demo/web with port 80\n');
  r.backends.set('demo', 'web', 80, []);
  const empty = await request(r, { method: 'HEAD' });
  t.is(empty.status, 503);
  const get = await request(r);
  t.is(get.status, 503);
  t.is(get.body, 'no ready endpoints for service demo/web port 80\n');
  t.is(get.headers['content-type'], 'text/plain; charset=utf-8');
  await r.server.stop();
});

test('the backend sees X-Forwarded-For/-Proto/-Host and the Host, and no hop-by-hop headers', async (t) => {
  const web = await httpBackend('web');
  const r = await router([{ name: 'site', rules: [{ paths: [['/', 'Prefix', 'web']] }] }]);
  r.backends.set('demo', 'web', 80, [web]);
  const res = await request(r, {
    host: 'shop.example:8080',
    path: '/cart',
    headers: {
      'X-Forwarded-For': '203.0.113.7',
      'X-Forwarded-Proto': 'https',
      Connection: 'keep-alive, X-Hop',
      'X-Hop': 'drop me',
      'Keep-Alive': 'timeout=5',
      TE: 'trailers',
      'X-End': 'keep me',
    },
  });
  t.is(res.status, 200);
  const seen = web.requests[0] as Seen;
  t.is(seen.headers.host, 'shop.example:8080');
  t.regex(String(seen.headers['x-forwarded-for']), /^203\.0\.113\.7, 127\.\d+\.\d+\.\d+$/);
  t.is(seen.headers['x-forwarded-proto'], 'http');
  t.is(seen.headers['x-forwarded-host'], 'shop.example:8080');
  t.is(seen.headers['x-end'], 'keep me');
  for (const h of ['x-hop', 'keep-alive', 'te']) t.is(seen.headers[h], undefined, h);
  t.not(seen.headers.connection, 'keep-alive, X-Hop');
  await r.server.stop();
  await web.close();
});

test('upstream connections are kept alive and reused; response headers pass, hop-by-hop ones do not', async (t) => {
  const web = await httpBackend('web', (req, res) => {
    req.resume();
    res.setHeader('Set-Cookie', ['a=1', 'b=2']);
    res.setHeader('Connection', 'keep-alive, X-Private');
    res.setHeader('X-Private', 'hop');
    res.end('ok');
  });
  const r = await router([{ name: 'site', rules: [{ paths: [['/', 'Prefix', 'web']] }] }]);
  r.backends.set('demo', 'web', 80, [web]);
  for (let i = 0; i < 10; i++) {
    const res = await request(r, { path: `/${i}` });
    t.is(res.status, 200);
    t.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2']);
    t.is(res.headers['x-private'], undefined);
  }
  t.is(web.requests.length, 10);
  t.true(web.connections < 10, `${web.connections} connections for 10 requests`);
  t.is(web.connections, 1);
  await r.server.stop();
  await web.close();
});

test('round-robin over the endpoints; a refused one is skipped, and logged once, not per request', async (t) => {
  const a = await httpBackend('a');
  const b = await httpBackend('b');
  const dead = await refusingBackend();
  const lines: string[] = [];
  const logger = pino(
    { level: 'warn' },
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );
  const r = await router([{ name: 'site', rules: [{ paths: [['/', 'Prefix', 'web']] }] }], { logger });
  r.backends.set('demo', 'web', 80, [a, dead, b]);
  const answers: string[] = [];
  for (let i = 0; i < 9; i++) {
    const res = await request(r);
    t.is(res.status, 200);
    answers.push(res.body.split(' ')[0] as string);
  }
  // Starts a, dead (→ b), b, a, ...: a and b share the load; dead costs no failure.
  t.deepEqual(answers, ['a', 'b', 'b', 'a', 'b', 'b', 'a', 'b', 'b']);
  const refused = lines.filter((l) => l.includes('not reachable'));
  t.is(refused.length, 1, lines.join(''));
  t.regex(refused[0] ?? '', /ECONNREFUSED/);

  // Every endpoint refusing: 503.
  r.backends.set('demo', 'web', 80, [dead, await refusingBackend()]);
  const res = await request(r);
  t.is(res.status, 503);
  t.is(res.body, 'no ready endpoints answered for service demo/web port 80\n');
  await r.server.stop();
  await a.close();
  await b.close();
});

test('a backend that accepts and closes without a byte is skipped for a GET; a POST with a body gets 502', async (t) => {
  const web = await httpBackend('web', (req, res) => {
    req.resume();
    req.on('end', () => res.end(`web ${req.method}`));
  });
  const hangUp = await tcpBackend((s) => s.destroy());
  const r = await router([{ name: 'site', rules: [{ paths: [['/', 'Prefix', 'web']] }] }]);
  r.backends.set('demo', 'web', 80, [hangUp, web]);
  for (let i = 0; i < 4; i++) {
    const res = await request(r);
    t.is(`${res.status} ${res.body}`, '200 web GET');
  }
  // A body-less POST is safe to send again too.
  t.is((await request(r, { method: 'POST' })).body, 'web POST');
  const posts = await Promise.all([0, 1].map(() => request(r, { method: 'POST', body: 'order=1' })));
  t.deepEqual(posts.map((p) => p.status).sort(), [200, 502]);
  await r.server.stop();
  await web.close();
  hangUp.close();
});

test('a keep-alive connection the backend closed is retried once for GET and PUT, not for POST', async (t) => {
  // Answers the first request of each connection, keeping it open, and drops the connection
  // when a second request comes: a keep-alive timeout racing the next request.
  let connections = 0;
  const flaky = await tcpBackend((s) => {
    connections++;
    let requests = 0;
    let buffered = '';
    s.on('data', (d: Buffer) => {
      buffered += d.toString('latin1');
      if (!/\r\n\r\n/.test(buffered)) return;
      const length = Number(/content-length: *(\d+)/i.exec(buffered)?.[1] ?? 0);
      const head = buffered.indexOf('\r\n\r\n') + 4;
      if (buffered.length - head < length) return;
      buffered = '';
      if (++requests > 1) return s.destroy();
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok');
    });
  });
  const r = await router([{ name: 'site', rules: [{ paths: [['/', 'Prefix', 'web']] }] }]);
  r.backends.set('demo', 'web', 80, [flaky]);
  t.is((await request(r)).status, 200);
  t.is((await request(r)).status, 200, 'GET on the dropped connection is sent again');
  t.is((await request(r, { method: 'PUT', body: 'x=1' })).status, 200, 'PUT with a body is idempotent');
  t.is(
    (await request(r, { method: 'POST', body: 'x=1' })).status,
    502,
    'POST with a body may have been done',
  );
  t.is(connections, 3, 'the retries opened new connections; the POST did not');
  await r.server.stop();
  flaky.close();
});

test('POST bodies stream through both ways, large ones included', async (t) => {
  const echo = await httpBackend('echo', (req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
    req.pipe(res);
  });
  const r = await router([{ name: 'site', rules: [{ paths: [['/upload', 'Exact', 'echo']] }] }]);
  r.backends.set('demo', 'echo', 80, [echo]);
  const small = await request(r, { method: 'POST', path: '/upload', body: 'hello' });
  t.is(`${small.status} ${small.body}`, '200 hello');

  // 8 MiB in 64 KiB pieces, chunked (no Content-Length), read back and compared by hash.
  const piece = randomBytes(64 * 1024);
  const sent = createHash('sha256');
  const got = createHash('sha256');
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    const req = http.request(
      { host: r.host, port: r.port, method: 'POST', path: '/upload', headers: { host: 'x' }, agent: false },
      (res) => {
        t.is(res.statusCode, 200);
        res.on('data', (c: Buffer) => {
          got.update(c);
          received += c.length;
        });
        res.on('end', resolve);
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    let left = 128;
    const write = () => {
      while (left > 0) {
        left--;
        sent.update(piece);
        if (!req.write(piece)) return void req.once('drain', write);
      }
      req.end();
    };
    write();
  });
  t.is(received, 128 * piece.length);
  t.is(got.digest('hex'), sent.digest('hex'));
  await r.server.stop();
  await echo.close();
});

test('504 when the upstream does not answer in time; a response cut short is cut short for the client', async (t) => {
  const slow = await httpBackend('slow', () => {});
  const cut = await httpBackend('cut', (req, res) => {
    req.resume();
    res.writeHead(200, { 'Content-Length': '100' });
    res.write('partial');
    setTimeout(() => res.destroy(), 20);
  });
  const r = await router(
    [
      {
        name: 'site',
        rules: [
          {
            paths: [
              ['/slow', 'Prefix', 'slow'],
              ['/cut', 'Prefix', 'cut'],
            ],
          },
        ],
      },
    ],
    { responseTimeoutMs: 200 },
  );
  r.backends.set('demo', 'slow', 80, [slow]);
  r.backends.set('demo', 'cut', 80, [cut]);
  const res = await request(r, { path: '/slow' });
  t.is(res.status, 504);
  t.is(res.body, 'upstream timed out for service demo/slow port 80\n');
  await t.throwsAsync(request(r, { path: '/cut' }));
  await r.server.stop();
  await slow.close();
  await cut.close();
});

test('idle connections to an endpoint that left are closed; in-flight requests finish', async (t) => {
  let release: () => void = () => {};
  const web = await httpBackend('web', (req, res) => {
    req.resume();
    if (req.url === '/hold') release = () => res.end('held');
    else res.end('ok');
  });
  const other = await httpBackend('other');
  const r = await router([{ name: 'site', rules: [{ paths: [['/', 'Prefix', 'web']] }] }]);
  r.backends.set('demo', 'web', 80, [web]);
  // One connection busy with /hold, a second one idle after its answer.
  const held = request(r, { path: '/hold' });
  for (let i = 0; i < 100 && web.requests.length < 1; i++) await new Promise((res) => setTimeout(res, 10));
  t.is((await request(r)).body, 'ok');
  t.is(web.open.size, 2);
  r.backends.set('demo', 'web', 80, [other]);
  for (let i = 0; i < 100 && web.open.size > 1; i++) await new Promise((res) => setTimeout(res, 10));
  t.is(web.open.size, 1, 'the idle connection is closed at once');
  release();
  t.is((await held).body, 'held');
  for (let i = 0; i < 100 && web.open.size > 0; i++) await new Promise((res) => setTimeout(res, 10));
  t.is(web.open.size, 0, 'the busy one after its response');
  t.is((await request(r)).body, 'other GET /');
  await r.server.stop();
  await web.close();
  await other.close();
});

test('start rejects with the listen error and can be called again; stop closes the port', async (t) => {
  const taken = await tcpBackend(() => {});
  const api = new ApiServer({ kv: createLocalStore(), logger: silent });
  await ensureSystemNamespaces(api, silent, new AbortController().signal);
  const server = new IngressServer({
    api,
    backends: new FakeBackends(),
    host: taken.ip,
    port: taken.port,
    logger: silent,
  });
  await t.throwsAsync(server.start(), { code: 'EADDRINUSE' });
  taken.close();
  await new Promise((res) => setTimeout(res, 20));
  await server.start();
  t.is((await request({ host: taken.ip, port: taken.port })).status, 404);
  await server.stop();
  await t.throwsAsync(request({ host: taken.ip, port: taken.port }), { code: 'ECONNREFUSED' });
});

test('a client that goes away before the answer takes its upstream request with it', async (t) => {
  let upstreamClosed = false;
  const slow = await httpBackend('slow', (req) => {
    req.resume();
    req.socket.on('close', () => {
      upstreamClosed = true;
    });
  });
  const r = await router([{ name: 'site', rules: [{ paths: [['/', 'Prefix', 'slow']] }] }]);
  r.backends.set('demo', 'slow', 80, [slow]);
  const client = http.request({
    host: r.host,
    port: r.port,
    path: '/',
    headers: { host: 'x' },
    agent: false,
  });
  client.on('error', () => {});
  client.end();
  for (let i = 0; i < 100 && slow.requests.length === 0; i++) await new Promise((res) => setTimeout(res, 10));
  client.destroy();
  for (let i = 0; i < 100 && !upstreamClosed; i++) await new Promise((res) => setTimeout(res, 10));
  t.true(upstreamClosed);
  await r.server.stop();
  await slow.close();
});
