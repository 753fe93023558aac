// The TCP proxy on real loopback sockets: round-robin, failover on a refused port, the
// Docker userland proxy case (accepted, then closed without a byte) with the client's bytes
// replayed, the replay limit, ClientIP affinity by source address, half-close with a large
// answer, idle timeout, no endpoints, bind errors and close().
import { createServer, Socket, connect as tcpConnect } from 'node:net';
import test from 'ava';
import { TcpProxy, type TcpProxyOptions } from '../../pkg/proxy/tcp-proxy.js';
import type { Backend } from '../../pkg/proxy/types.js';
import {
  captureLogger,
  closedPort,
  exchange,
  openClient,
  randomLoopback,
  silentLogger,
  startBackend,
  type TestBackend,
  waitFor,
} from './proxy-support.js';

const asBackend = (b: TestBackend): Backend => ({ ip: b.host, port: b.port });

async function startProxy(backends: Backend[], options: Partial<TcpProxyOptions> = {}) {
  const proxy = new TcpProxy({
    host: randomLoopback(),
    port: 0,
    name: `test/svc-${Math.random().toString(36).slice(2, 8)}:http`,
    backends: () => backends,
    logger: silentLogger,
    ...options,
  });
  await proxy.listen();
  const a = proxy.address() as { host: string; port: number };
  return { proxy, host: a.host, port: a.port };
}

test('round-robin over every backend, in order', async (t) => {
  const bs = await Promise.all(['b1', 'b2', 'b3'].map((n) => startBackend(n)));
  const { proxy, host, port } = await startProxy(bs.map(asBackend));
  const answers: string[] = [];
  for (let i = 0; i < 6; i++) answers.push((await exchange(host, port, `req${i}`)).data);
  t.deepEqual(answers, ['b1:req0', 'b2:req1', 'b3:req2', 'b1:req3', 'b2:req4', 'b3:req5']);
  t.deepEqual(
    bs.map((b) => b.accepted),
    [2, 2, 2],
  );
  await proxy.close();
  await Promise.all(bs.map((b) => b.close()));
});

test('a refused backend port is skipped: the next endpoint serves', async (t) => {
  const good = await startBackend('good');
  const deadHost = randomLoopback();
  const dead: Backend = { ip: deadHost, port: await closedPort(deadHost) };
  const { proxy, host, port } = await startProxy([dead, asBackend(good)]);
  for (let i = 0; i < 4; i++) t.is((await exchange(host, port, `r${i}`)).data, `good:r${i}`);
  t.is(good.accepted, 4);
  await proxy.close();
  await good.close();
});

test('accepted then closed without a byte (FIN): the next endpoint gets the replayed bytes', async (t) => {
  const hangUp = await startBackend('hangup', { kind: 'read-then-hang-up' });
  const good = await startBackend('good', { kind: 'lines' });
  const { proxy, host, port } = await startProxy([asBackend(hangUp), asBackend(good)]);
  const c = await openClient(host, port);
  c.socket.write('hello ');
  c.socket.write('world\n');
  await c.waitFor('good:hello world\n');
  t.is(hangUp.accepted, 1);
  t.true(hangUp.received.startsWith('hello'), 'the first endpoint had read the bytes before hanging up');
  t.is(good.received, 'hello world\n', 'replayed once, in order, nothing lost or doubled');
  // Past the first answer the connection is a plain relay.
  c.socket.write('again\n');
  await c.waitFor('good:again\n');
  c.socket.end();
  await c.closed;
  await proxy.close();
  await Promise.all([hangUp.close(), good.close()]);
});

test('accepted then reset at once: the next endpoint serves, for every connection', async (t) => {
  const reset = await startBackend('reset', { kind: 'hang-up', reset: true });
  const fin = await startBackend('fin', { kind: 'hang-up' });
  const good = await startBackend('good');
  const { proxy, host, port } = await startProxy([asBackend(reset), asBackend(fin), asBackend(good)]);
  for (let i = 0; i < 3; i++) t.is((await exchange(host, port, `q${i}`)).data, `good:q${i}`);
  t.is(good.accepted, 3);
  // Round-robin starts one further each time: (reset, fin, good), (fin, good), (good).
  t.is(reset.accepted, 1);
  t.is(fin.accepted, 2);
  await proxy.close();
  await Promise.all([reset.close(), fin.close(), good.close()]);
});

test('more client bytes than the replay buffer before a hang-up: closed, not replayed', async (t) => {
  const hangUp = await startBackend('hangup', { kind: 'read-then-hang-up' });
  const good = await startBackend('good');
  // The hang-up reads a first chunk and closes; by then the client's 256 KiB exceed 1 KiB.
  const { proxy, host, port } = await startProxy([asBackend(hangUp), asBackend(good)], {
    replayLimitBytes: 1024,
  });
  const r = await exchange(host, port, Buffer.alloc(256 * 1024, 'x'));
  t.is(r.data, '');
  t.is(good.accepted, 0, 'a partial request is never sent to another endpoint');
  await proxy.close();
  await Promise.all([hangUp.close(), good.close()]);
});

test('a backend that does not accept within connectTimeoutMs is skipped', async (t) => {
  const good = await startBackend('good');
  const blackHole = randomLoopback();
  const { proxy, host, port } = await startProxy([{ ip: blackHole, port: 9 }, asBackend(good)], {
    connectTimeoutMs: 150,
    // A socket never connected: as a SYN into a dropped route, it neither connects nor fails.
    connect: (b) =>
      b.ip === blackHole ? new Socket() : tcpConnect({ host: b.ip, port: b.port, allowHalfOpen: true }),
  });
  const started = Date.now();
  t.is((await exchange(host, port, 'late')).data, 'good:late');
  const took = Date.now() - started;
  t.true(took >= 140 && took < 5000, `answered after ${took} ms`);
  await proxy.close();
  await good.close();
});

test('every endpoint failing closes the client', async (t) => {
  const h = randomLoopback();
  const { proxy, host, port } = await startProxy([
    { ip: h, port: await closedPort(h) },
    { ip: h, port: await closedPort(h) },
  ]);
  const started = Date.now();
  const r = await exchange(host, port, 'x');
  t.is(r.data, '');
  t.true(Date.now() - started < 4000);
  await waitFor('relay gone', () => proxy.connections === 0);
  await proxy.close();
});

test('ClientIP affinity: each source address sticks to one backend', async (t) => {
  const bs = await Promise.all(['b1', 'b2', 'b3'].map((n) => startBackend(n)));
  const { proxy, host, port } = await startProxy(bs.map(asBackend), { affinity: { timeoutSeconds: 60 } });
  const clientA = randomLoopback();
  const clientB = randomLoopback();
  const a: string[] = [];
  const b: string[] = [];
  for (let i = 0; i < 4; i++) {
    a.push((await exchange(host, port, 'a', { localAddress: clientA })).data);
    b.push((await exchange(host, port, 'b', { localAddress: clientB })).data);
  }
  t.is(new Set(a).size, 1, `A went to ${a.join(',')}`);
  t.is(new Set(b).size, 1, `B went to ${b.join(',')}`);
  t.not(a[0]?.split(':')[0], b[0]?.split(':')[0], 'the second client started on the next backend');
  // Without affinity the same client rotates.
  proxy.setAffinity(undefined);
  const c: string[] = [];
  for (let i = 0; i < 3; i++) c.push((await exchange(host, port, 'c', { localAddress: clientA })).data);
  t.is(new Set(c.map((x) => x.split(':')[0])).size, 3);
  await proxy.close();
  await Promise.all(bs.map((x) => x.close()));
});

test('half-close: the client ends its side and still receives a large answer in full', async (t) => {
  const extra = 'y'.repeat(2 * 1024 * 1024);
  const big = await startBackend('big', { kind: 'echo-on-end', extra });
  const { proxy, host, port } = await startProxy([asBackend(big)]);
  const r = await exchange(host, port, 'request body', { timeoutMs: 10_000 });
  t.is(r.error, undefined);
  t.is(r.data.length, 'big:request body'.length + extra.length);
  t.true(r.data.startsWith('big:request body'));
  await waitFor('relay gone', () => proxy.connections === 0);
  await proxy.close();
  await big.close();
});

test('half-close the other way: the backend ends first, the client can still send', async (t) => {
  const srvHost = randomLoopback();
  let got = '';
  const srv = createServer({ allowHalfOpen: true }, (s) => {
    s.end('bye-first');
    s.on('data', (c: Buffer) => {
      got += c.toString();
    });
    s.on('end', () => s.destroy());
  });
  await new Promise<void>((r) => srv.listen({ host: srvHost, port: 0 }, () => r()));
  const { proxy, host, port } = await startProxy([
    { ip: srvHost, port: (srv.address() as { port: number }).port },
  ]);
  const c = await openClient(host, port);
  await c.waitFor('bye-first');
  await new Promise((r) => setTimeout(r, 50));
  t.false(c.socket.destroyed, 'still open for writing after the FIN from the backend');
  c.socket.end('late words');
  await c.closed;
  await waitFor('backend got the late words', () => got === 'late words');
  await proxy.close();
  await new Promise<void>((r) => srv.close(() => r()));
  t.pass();
});

test('backpressure: a client that stops reading stops the backend, and gets every byte later', async (t) => {
  const total = 96 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 'z');
  const srvHost = randomLoopback();
  let pushed = 0;
  const srv = createServer((s) => {
    s.on('error', () => {});
    s.resume(); // read (and drop) the request, so the hang-up at the end is seen
    const pump = () => {
      while (pushed < total) {
        pushed += chunk.length;
        if (!s.write(chunk)) {
          s.once('drain', pump);
          return;
        }
      }
      s.end();
    };
    pump();
  });
  await new Promise<void>((r) => srv.listen({ host: srvHost, port: 0 }, () => r()));
  const { proxy, host, port } = await startProxy([
    { ip: srvHost, port: (srv.address() as { port: number }).port },
  ]);
  const c = await openClient(host, port);
  c.socket.pause();
  c.socket.write('go');
  await new Promise((r) => setTimeout(r, 1500));
  // Kernel buffers on three sockets hold some megabytes; an unbounded relay would take it all.
  t.true(pushed < total / 2, `the backend pushed ${pushed} bytes to a client that reads nothing`);
  let received = 0;
  c.socket.removeAllListeners('data');
  c.socket.on('data', (b: Buffer) => {
    received += b.length;
  });
  c.socket.resume();
  await c.closed;
  t.is(received, total);
  await proxy.close();
  await new Promise<void>((r) => srv.close(() => r()));
});

test('an idle connection is closed after idleTimeoutMs; an active one is not', async (t) => {
  const lines = await startBackend('lines', { kind: 'lines' });
  const { proxy, host, port } = await startProxy([asBackend(lines)], { idleTimeoutMs: 1000 });
  const idle = await openClient(host, port);
  // The proxy's last activity on `idle` is between this write and the answer arriving.
  const lastActive = Date.now();
  idle.socket.write('one\n');
  await idle.waitFor('lines:one\n');
  let idleClosed = 0;
  void idle.closed.then(() => {
    idleClosed = Date.now();
  });
  // `busy` talks every 100 ms until `idle` is closed (and a while longer).
  const busy = await openClient(host, port);
  for (let i = 0; !idleClosed || Date.now() - idleClosed < 300; i++) {
    if (Date.now() - lastActive > 8000) break;
    busy.socket.write(`tick${i}\n`);
    await busy.waitFor(`lines:tick${i}\n`);
    await new Promise((r) => setTimeout(r, 100));
  }
  busy.socket.write('still there\n');
  await busy.waitFor('lines:still there\n');
  busy.socket.end();
  await busy.closed;
  await waitFor('relays gone', () => proxy.connections === 0);
  await proxy.close();
  await lines.close();
  t.true(idleClosed > 0, 'the idle connection was closed');
  const after = idleClosed - lastActive;
  t.true(after >= 990 && after < 4000, `idle closed ${after} ms after its last byte`);
});

test('no endpoints: the connection is closed at once, with one warning per 30 s', async (t) => {
  const { logger, lines } = captureLogger('info');
  const name = `demo/web-${Math.random().toString(36).slice(2, 8)}:http`;
  const { proxy, host, port } = await startProxy([], { logger, name });
  const started = Date.now();
  const r1 = await exchange(host, port, 'hello');
  const r2 = await exchange(host, port, 'hello');
  t.is(r1.data, '');
  t.is(r2.data, '');
  t.true(Date.now() - started < 3000, 'closed without waiting for anything');
  const warnings = lines.filter((l) => String(l.msg).includes('has no ready endpoints'));
  t.is(warnings.length, 1);
  t.regex(
    String(warnings[0]?.msg),
    new RegExp(`^service ${name} has no ready endpoints; connection from 127\\.`),
  );
  t.is(warnings[0]?.level, 40);
  await proxy.close();
});

test('backends read per connection: a new list applies to the next connection', async (t) => {
  const b1 = await startBackend('b1');
  const b2 = await startBackend('b2');
  let list: Backend[] = [asBackend(b1)];
  const { proxy, host, port } = await startProxy([], {});
  proxy.setBackends(() => list);
  t.is((await exchange(host, port, 'x')).data, 'b1:x');
  list = [asBackend(b2)];
  t.is((await exchange(host, port, 'y')).data, 'b2:y');
  await proxy.close();
  await Promise.all([b1.close(), b2.close()]);
});

test('listen rejects with EADDRINUSE when the address is taken; close() ends open connections', async (t) => {
  const lines = await startBackend('lines', { kind: 'lines' });
  const { proxy, host, port } = await startProxy([asBackend(lines)]);
  const second = new TcpProxy({ host, port, name: 'x', backends: () => [], logger: silentLogger });
  const err = await t.throwsAsync(second.listen());
  t.is((err as NodeJS.ErrnoException).code, 'EADDRINUSE');
  const c = await openClient(host, port);
  c.socket.write('hi\n');
  await c.waitFor('lines:hi\n');
  t.is(proxy.connections, 1);
  await proxy.close();
  await c.closed;
  t.false(proxy.listening);
  // The address is free again: the other listener takes it.
  await second.listen();
  t.true(second.listening);
  await second.close();
  const refused = await new Promise<string>((resolve) => {
    const s = tcpConnect({ host, port });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? ''));
    s.on('connect', () => resolve('connected'));
  });
  t.is(refused, 'ECONNREFUSED');
  await lines.close();
});
