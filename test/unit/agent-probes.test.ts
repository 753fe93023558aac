import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http';
import { createServer, type Server } from 'node:net';
import test from 'ava';
import { createBackoff, createImagePullBackoff, formatDelay } from '../../pkg/agent/backoff.js';
import type { ProbeSpec } from '../../pkg/agent/container-spec.js';
import {
  type ProbeClock,
  type ProbeKind,
  type ProbeResult,
  type ProbeState,
  ProbeWorker,
  probe,
} from '../../pkg/agent/probes.js';
import type { ContainerRuntime } from '../../pkg/agent/runtime.js';

const IP = '127.0.0.1';

const noExec: Pick<ContainerRuntime, 'exec'> = {
  exec: async () => {
    throw new Error('no exec');
  },
};

async function listening<S extends Server | ReturnType<typeof createHttpServer>>(s: S): Promise<number> {
  await new Promise<void>((r) => s.listen(0, IP, () => r()));
  return (s.address() as { port: number }).port;
}

const target = (ports: Record<string | number, number>, hostIp = IP) => ({
  containerId: 'c1',
  hostIp,
  portFor: (p: number | string) => ports[p],
});

test('httpGet: 2xx/3xx succeed, 4xx/5xx fail; path, headers and named ports', async (t) => {
  let seen: { url?: string; headers?: IncomingHttpHeaders } = {};
  const server = createHttpServer((req, res) => {
    seen = { url: req.url, headers: req.headers };
    const code = Number(req.url?.slice(1).split('?')[0]) || 200;
    res.writeHead(code, code === 302 ? { location: 'http://example.com/' } : {});
    res.end('body');
  });
  const port = await listening(server);
  t.teardown(() => server.close());
  const tg = target({ 8080: port, http: port });
  const get = (path: string, p: number | string = 8080) => probe({ httpGet: { port: p, path } }, tg, noExec);
  t.is((await get('/200')).result, 'success');
  t.is((await get('/302')).result, 'success', 'redirects count as success, not followed');
  t.is((await get('/399')).result, 'success');
  t.deepEqual(await get('/404'), { result: 'failure', message: 'HTTP probe failed with statuscode: 404' });
  t.is((await get('/500', 'http')).result, 'failure');
  const r = await probe(
    { httpGet: { port: 'http', path: 'healthz?x=1', httpHeaders: [{ name: 'X-Probe', value: 'yes' }] } },
    tg,
    noExec,
  );
  t.is(r.result, 'success');
  t.is(seen.url, '/healthz?x=1');
  t.is(seen.headers?.['x-probe'], 'yes');
  t.regex(seen.headers?.['user-agent'] ?? '', /^berth-probe\//);
  const unpublished = await get('/200', 'metrics');
  t.is(unpublished.result, 'failure');
  t.regex(unpublished.message, /not published/);
});

test('httpGet: a server that does not answer in timeoutSeconds fails', async (t) => {
  const server = createHttpServer(() => {}); // never responds
  const port = await listening(server);
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const started = Date.now();
  const r = await probe(
    { httpGet: { port: 80, path: '/' }, timeoutSeconds: 1 },
    target({ 80: port }),
    noExec,
  );
  t.is(r.result, 'failure');
  t.regex(r.message, /timeout/);
  t.true(Date.now() - started < 3000);
});

test('probes refuse any host that is not loopback', async (t) => {
  for (const spec of [
    { httpGet: { port: 80, host: '10.0.0.1' } },
    { tcpSocket: { port: 80, host: '172.17.0.2' } },
    { tcpSocket: { port: 80, host: 'localhost' } },
  ] as ProbeSpec[]) {
    const r = await probe(spec, target({ 80: 1 }), noExec);
    t.is(r.result, 'failure');
    t.regex(r.message, /not a loopback address/);
  }
  const r = await probe({ tcpSocket: { port: 80 } }, target({ 80: 1 }, '192.168.1.10'), noExec);
  t.regex(r.message, /not a loopback address/);
});

test('tcpSocket: connect succeeds, a closed port fails', async (t) => {
  const server = createServer((s) => s.destroy());
  const port = await listening(server);
  t.is((await probe({ tcpSocket: { port: 5432 } }, target({ 5432: port }), noExec)).result, 'success');
  await new Promise((r) => server.close(r));
  const r = await probe({ tcpSocket: { port: 5432 } }, target({ 5432: port }), noExec);
  t.is(r.result, 'failure');
  t.regex(r.message, /ECONNREFUSED/);
});

test('exec: exit 0 succeeds, anything else or an error fails', async (t) => {
  const calls: unknown[] = [];
  const rt: Pick<ContainerRuntime, 'exec'> = {
    exec: async (id, command, timeoutMs) => {
      calls.push([id, command, timeoutMs]);
      if (command[0] === 'hang') throw new Error('exec timed out');
      return { exitCode: command[0] === 'true' ? 0 : 1, stdout: Buffer.from('out'), stderr: Buffer.from('') };
    },
  };
  t.deepEqual(await probe({ exec: { command: ['true'] }, timeoutSeconds: 2 }, target({}), rt), {
    result: 'success',
    message: 'out',
  });
  t.is((await probe({ exec: { command: ['false'] } }, target({}), rt)).result, 'failure');
  t.deepEqual(await probe({ exec: { command: ['hang'] } }, target({}), rt), {
    result: 'failure',
    message: 'exec timed out',
  });
  t.deepEqual(calls[0], ['c1', ['true'], 2000]);
});

// A fake clock: timers fire when advance() passes them; probe results resolve in between.
function fakeClock() {
  let now = 0;
  let timers: { at: number; fn: () => void; id: number }[] = [];
  let nextId = 0;
  const clock: ProbeClock = {
    now: () => now,
    setTimer(ms, fn) {
      const id = nextId++;
      timers.push({ at: now + ms, fn, id });
      return () => {
        timers = timers.filter((x) => x.id !== id);
      };
    },
  };
  const flush = () => new Promise((r) => setImmediate(r));
  return {
    clock,
    async advance(ms: number) {
      const end = now + ms;
      for (;;) {
        await flush();
        timers.sort((a, b) => a.at - b.at || a.id - b.id);
        const t = timers[0];
        if (!t || t.at > end) break;
        timers.shift();
        now = t.at;
        t.fn();
        await flush();
      }
      now = end;
      await flush();
    },
  };
}

function worker(specs: { startup?: ProbeSpec; liveness?: ProbeSpec; readiness?: ProbeSpec }) {
  const f = fakeClock();
  const results: Record<ProbeKind, ProbeResult['result'][]> = { startup: [], liveness: [], readiness: [] };
  const runs: [number, ProbeKind][] = [];
  const events: [number, ProbeState, ProbeKind][] = [];
  const w = new ProbeWorker({
    startupProbe: specs.startup,
    livenessProbe: specs.liveness,
    readinessProbe: specs.readiness,
    clock: f.clock,
    run: async (kind) => {
      runs.push([f.clock.now(), kind]);
      return { result: results[kind].shift() ?? 'success', message: kind };
    },
    onResult: (state, d) => events.push([f.clock.now(), state, d.probe]),
  });
  return { w, f, results, runs, events };
}

const tcp = (more: Partial<ProbeSpec> = {}): ProbeSpec => ({ tcpSocket: { port: 80 }, ...more });

test('worker: no probes means ready at once', (t) => {
  const { w, events } = worker({});
  w.start(0);
  t.true(w.started && w.ready);
  t.deepEqual(events, [[0, 'ready', 'readiness']]);
});

test('worker: readiness starts false, honours initialDelay, period and thresholds', async (t) => {
  const { w, f, results, runs, events } = worker({
    readiness: tcp({ initialDelaySeconds: 5, periodSeconds: 10, successThreshold: 2, failureThreshold: 2 }),
  });
  w.start(0);
  t.false(w.ready);
  results.readiness.push('success', 'success', 'failure', 'success', 'failure', 'failure');
  await f.advance(60_000);
  t.deepEqual(
    runs.map((r) => r[0]),
    [5000, 15000, 25000, 35000, 45000, 55000],
  );
  t.deepEqual(events, [
    [15000, 'ready', 'readiness'], // two successes
    [55000, 'notReady', 'readiness'], // two failures in a row; the lone one at 25 s is not enough
  ]);
  w.stop();
  await f.advance(60_000);
  t.is(runs.length, 6, 'stopped');
});

test('worker: liveness fails after failureThreshold (default 3) and stops', async (t) => {
  const { w, f, results, runs, events } = worker({ liveness: tcp() });
  w.start(0);
  results.liveness.push('failure', 'failure', 'success', 'failure', 'failure', 'failure');
  await f.advance(100_000);
  t.deepEqual(events, [
    [0, 'ready', 'readiness'],
    [50000, 'failed', 'liveness'],
  ]);
  t.is(runs.length, 6);
});

test('worker: startup gates liveness and readiness; initialDelay counts from the container start', async (t) => {
  const { w, f, results, runs, events } = worker({
    startup: tcp({ periodSeconds: 5, failureThreshold: 10 }),
    liveness: tcp({ initialDelaySeconds: 30 }),
    readiness: tcp({ periodSeconds: 10 }),
  });
  w.start(0);
  results.startup.push('failure', 'failure', 'failure');
  await f.advance(14_000);
  t.false(w.started);
  t.deepEqual(
    runs.filter((r) => r[1] !== 'startup'),
    [],
    'nothing else runs before startup succeeds',
  );
  await f.advance(1_000); // 4th startup probe at 15 s succeeded; readiness right away
  t.true(w.started);
  t.deepEqual(runs.slice(4), [[15000, 'readiness']]);
  t.deepEqual(events, [[15000, 'ready', 'readiness']]);
  await f.advance(26_000);
  t.deepEqual(
    runs.filter((r) => r[1] === 'liveness').map((r) => r[0]),
    [30000, 40000],
  );
  t.is(runs.filter((r) => r[1] === 'startup').length, 4, 'startup stops once it succeeded');
});

test('worker: startup failing failureThreshold times fails the container', async (t) => {
  const { w, f, results, events } = worker({
    startup: tcp({ periodSeconds: 1, failureThreshold: 2 }),
    readiness: tcp(),
  });
  w.start(0);
  results.startup.push('failure', 'failure');
  await f.advance(10_000);
  t.deepEqual(events, [[1000, 'failed', 'startup']]);
  t.false(w.started);
});

test('backoff: kubelet crash loop 10s, 20s, 40s ... capped at 5 min', (t) => {
  let now = 0;
  const b = createBackoff({ now: () => now });
  const key = 'uid/app';
  // First exit: restart at once.
  b.noteExited(key, 0);
  t.is(b.inBackoff(key), 0);
  const delays: number[] = [];
  for (let i = 0; i < 8; i++) {
    delays.push(b.next(key));
    b.noteStarted(key, now);
    now += 1000; // crashes after a second
    b.noteExited(key, now);
    t.is(b.inBackoff(key), delays[i] ?? -1, 'the window starts at the exit');
    now += b.inBackoff(key);
    t.is(b.inBackoff(key), 0);
  }
  t.deepEqual(
    delays.map((d) => d / 1000),
    [10, 20, 40, 80, 160, 300, 300, 300],
  );
  t.is(formatDelay(b.delay(key)), '5m0s');
  t.is(formatDelay(20_000), '20s');
});

test('backoff: a run longer than resetAfterMs starts over; reset and forgetPrefix', (t) => {
  const now = 0;
  const b = createBackoff({ initialMs: 10, maxMs: 1000, resetAfterMs: 100, now: () => now });
  b.next('a/x');
  b.next('a/x');
  t.is(b.delay('a/x'), 20);
  b.noteStarted('a/x', 0);
  b.noteExited('a/x', 100);
  t.is(b.inBackoff('a/x', 100), 0);
  t.is(b.next('a/x'), 10);
  b.next('a/y');
  b.next('b/z');
  b.forgetPrefix('a/');
  t.is(b.delay('a/x') + b.delay('a/y'), 0);
  t.is(b.delay('b/z'), 10);
  b.reset('b/z');
  t.is(b.delay('b/z'), 0);
});

test('image pull backoff: window from the failure; long idle starts over', (t) => {
  let now = 0;
  const b = createImagePullBackoff(() => now);
  t.is(b.next('img'), 10_000); // ErrImagePull
  now = 5_000;
  t.is(b.inBackoff('img'), 5_000); // ImagePullBackOff
  now = 10_000;
  t.is(b.inBackoff('img'), 0);
  t.is(b.next('img'), 20_000);
  now = 10_000 + 20_000 + 600_001;
  t.is(b.next('img'), 10_000, 'idle past resetAfterMs');
});
