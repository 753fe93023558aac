// `proxy`: HTTP requests/s and p99 latency through Berth's L4 proxy (pkg/proxy/tcp-proxy.ts)
// against HAProxy in TCP mode, with the direct path as the baseline, driven by the same load
// generator (wrk, keep-alive connections) in the same run. Every party is a process of its own
// on loopback: the backend (bench/proxy-backend.ts, a minimal Node HTTP server), Berth's proxy
// (bench/proxy-child.ts), HAProxy (Debian's package, its own config in a temp dir) and wrk.
// All three are started first, each is warmed up, then measured one at a time: direct, Berth,
// HAProxy. With --rounds N that is repeated N times, each round starting one target further on,
// so that a machine whose load drifts (other work on it) does not favour one target.
//
// HAProxy runs one thread by default: Berth's proxy is one Node event loop, and on a small
// machine a second HAProxy thread only competes with the backend and wrk for the same cores.
//
// Ownership: the bench ends only the processes it started, by pid, and removes only the temp
// dir it made (bench/proxy-processes.ts), also on Ctrl-C.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Child, firstLine, ProcessGroup, waitListening } from './proxy-processes.js';
import { parseWrkReport, type WrkResult, wrkArgs } from './proxy-wrk.js';
import { hostLoad, parseDuration, percentile, processCpuSeconds, round, sleep } from './stats.js';

export type ProxyTarget = 'direct' | 'berth' | 'haproxy';
export const PROXY_TARGETS: readonly ProxyTarget[] = ['direct', 'berth', 'haproxy'];

/** Every listener of the bench is on this loopback address; ports are picked free. */
const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 10_000;
/** A request wrk waits on longer than this counts as an error. */
const WRK_TIMEOUT_S = 5;

export interface ProxyBenchOptions {
  /** Measured time per target and round, whole seconds. */
  durationS: number;
  /** Each round measures every target once, starting one target further on than the last. */
  rounds: number;
  /** Unmeasured load on each target before it is measured, whole seconds (0: none). */
  warmupS: number;
  connections: number;
  /** wrk threads. */
  threads: number;
  /** HAProxy's nbthread. */
  haproxyThreads: number;
  /** Size of the backend's response body. */
  bodyBytes: number;
  targets: readonly ProxyTarget[];
  log: (line: string) => void;
}

export interface ProxyTargetResult extends WrkResult {
  /** CPU used while measured, in % of one core (processes' user + system time / wall time). */
  cpu_pct: { backend: number; proxy?: number };
  /** The proxy's CPU time per request, microseconds. */
  proxy_cpu_us_per_req?: number;
  /** Each round's requests/s (more than one round only). */
  rps_rounds?: number[];
}

export interface ProxyBenchResult {
  bench: 'proxy';
  duration_s: number;
  rounds: number;
  warmup_s: number;
  connections: number;
  threads: number;
  body_bytes: number;
  systems: { node: string; haproxy: string; wrk: string };
  host: { cpus: number; loadavg_1m_start: number; loadavg_1m_end?: number };
  direct?: ProxyTargetResult;
  berth?: ProxyTargetResult;
  haproxy?: ProxyTargetResult;
  /** Berth's requests/s over HAProxy's (the aim is >= 0.7). */
  ratio_haproxy: number | null;
  /** Each proxy's requests/s over the direct path's. */
  berth_vs_direct: number | null;
  haproxy_vs_direct: number | null;
}

const here = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));

/** A port nobody listens on at `host` right now (the kernel's pick). */
async function freePort(host: string): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, host, resolve);
  });
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (typeof addr !== 'object' || addr === null) throw new Error('no port from the kernel');
  return addr.port;
}

/** The first line `command args` prints (stdout or stderr), or undefined when it cannot run. */
function versionLine(command: string, args: string[]): string | undefined {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  if (r.error) return undefined;
  return `${r.stdout}${r.stderr}`.split('\n')[0]?.trim();
}

/** Make sure `command` runs; if not, install it with scripts/`script` (apt, needs root). */
function ensureTool(
  command: string,
  versionArgs: string[],
  script: string,
  log: (l: string) => void,
): string {
  let v = versionLine(command, versionArgs);
  if (v !== undefined) return v;
  log(`${command} is not installed: bash scripts/${script}`);
  // The script's chatter goes to stderr: stdout ends with the JSON line only.
  const r = spawnSync('bash', [here(`../../scripts/${script}`)], { stdio: ['ignore', 2, 2] });
  v = versionLine(command, versionArgs);
  if (r.status !== 0 || v === undefined) {
    throw new Error(
      `${command} is not installed and scripts/${script} failed (exit ${r.status}); run it as root`,
    );
  }
  return v;
}

function haproxyConfig(o: { port: number; backend: number; threads: number; connections: number }): string {
  // TCP mode, one frontend, one server; no logging (Berth's proxy logs only warnings here).
  // maxconn sizes HAProxy's fd limit (about 2 per connection), which must fit the hard limit.
  return [
    'global',
    `  nbthread ${o.threads}`,
    `  maxconn ${Math.max(1024, 2 * o.connections)}`,
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    'frontend bench',
    `  bind ${HOST}:${o.port}`,
    '  default_backend app',
    'backend app',
    `  server app0 ${HOST}:${o.backend}`,
    '',
  ].join('\n');
}

interface RoundResult extends WrkResult {
  wallS: number;
  backendCpuS: number;
  proxyCpuS: number;
}

const round1 = (n: number) => round(n, 1);

/** One target's rounds as one figure: mean rps, median percentiles, worst max, sums. */
function summarize(rs: readonly RoundResult[], proxied: boolean): ProxyTargetResult {
  const sum = (f: (r: RoundResult) => number) => rs.reduce((a, r) => a + f(r), 0);
  const median = (f: (r: RoundResult) => number) => percentile(rs.map(f), 50);
  const wallS = sum((r) => r.wallS);
  const requests = sum((r) => r.requests);
  const x: ProxyTargetResult = {
    rps: round1(sum((r) => r.rps) / rs.length),
    requests,
    p50_ms: median((r) => r.p50_ms),
    p90_ms: median((r) => r.p90_ms),
    p99_ms: median((r) => r.p99_ms),
    max_ms: Math.max(...rs.map((r) => r.max_ms)),
    errors: sum((r) => r.errors),
    cpu_pct: { backend: round1((100 * sum((r) => r.backendCpuS)) / wallS) },
  };
  if (proxied) {
    const proxyCpuS = sum((r) => r.proxyCpuS);
    x.cpu_pct.proxy = round1((100 * proxyCpuS) / wallS);
    x.proxy_cpu_us_per_req = requests > 0 ? round1((proxyCpuS * 1e6) / requests) : 0;
  }
  if (rs.length > 1) x.rps_rounds = rs.map((r) => r.rps);
  return x;
}

/**
 * Start HAProxy on a free port of HOST. The port is picked before HAProxy binds it, so another
 * process may take it in between (an outgoing connection's local port, say): then try again.
 */
async function startHaproxy(
  group: ProcessGroup,
  o: { backend: number; threads: number; connections: number },
): Promise<{ port: number; proxy: Child }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort(HOST);
    const cfg = join(group.tempDir(), 'haproxy.cfg');
    writeFileSync(cfg, haproxyConfig({ ...o, port }));
    // -db: stay in the foreground, so the pid spawned is HAProxy's own, ended by that pid.
    const proxy = group.spawn('haproxy', 'haproxy', ['-db', '-f', cfg]);
    try {
      await waitListening(proxy, HOST, port, START_TIMEOUT_MS);
      // Whoever took the port may be listening on it: make sure HAProxy did not exit.
      await sleep(200);
      if (proxy.proc.exitCode !== null || proxy.proc.signalCode !== null) {
        throw new Error(`haproxy exited after it started: ${proxy.stderrTail()}`);
      }
      return { port, proxy };
    } catch (err) {
      await group.stop(proxy);
      if (attempt >= 3 || !/cannot bind|Address already in use/i.test(proxy.stderrTail())) throw err;
    }
  }
}

export async function runProxyBench(o: ProxyBenchOptions): Promise<ProxyBenchResult> {
  const versions = {
    node: process.version,
    // 'HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://...', 'wrk debian/4.1.0 [epoll] Copyright ...'
    haproxy: o.targets.includes('haproxy')
      ? ensureTool('haproxy', ['-v'], 'ensure-haproxy.sh', o.log).replace(/ - https?:.*$/, '')
      : 'not run',
    wrk: ensureTool('wrk', ['--version'], 'ensure-wrk.sh', o.log).replace(/ Copyright.*$/, ''),
  };
  const result: ProxyBenchResult = {
    bench: 'proxy',
    duration_s: o.durationS,
    rounds: o.rounds,
    warmup_s: o.warmupS,
    connections: o.connections,
    threads: o.threads,
    body_bytes: o.bodyBytes,
    systems: versions,
    host: { cpus: hostLoad().cpus, loadavg_1m_start: hostLoad().loadavg_1m },
    ratio_haproxy: null,
    berth_vs_direct: null,
    haproxy_vs_direct: null,
  };
  const group = new ProcessGroup();
  try {
    const backend = group.spawn('backend', process.execPath, [
      here('./proxy-backend.js'),
      HOST,
      String(o.bodyBytes),
    ]);
    const backendPort = (JSON.parse(await firstLine(backend, START_TIMEOUT_MS)) as { port: number }).port;
    o.log(`backend: node pid ${backend.pid} on ${HOST}:${backendPort}, ${o.bodyBytes}-byte body`);

    // Every target is up before the first is measured; an idle proxy costs the others nothing.
    const endpoints = new Map<ProxyTarget, { port: number; proxy?: Child }>();
    for (const target of o.targets) {
      if (target === 'direct') {
        endpoints.set(target, { port: backendPort });
      } else if (target === 'berth') {
        const proxy = group.spawn('berth proxy', process.execPath, [
          here('./proxy-child.js'),
          HOST,
          '0',
          `${HOST}:${backendPort}`,
        ]);
        const { port } = JSON.parse(await firstLine(proxy, START_TIMEOUT_MS)) as { port: number };
        o.log(`berth: TcpProxy in node pid ${proxy.pid} on ${HOST}:${port}`);
        endpoints.set(target, { port, proxy });
      } else {
        const { port, proxy } = await startHaproxy(group, {
          backend: backendPort,
          threads: o.haproxyThreads,
          connections: o.connections,
        });
        o.log(`haproxy: pid ${proxy.pid} on ${HOST}:${port}, tcp mode, nbthread ${o.haproxyThreads}`);
        endpoints.set(target, { port, proxy });
      }
    }

    const load = (target: ProxyTarget, durationS: number) => ({
      url: `http://${HOST}:${endpoints.get(target)?.port}/`,
      threads: o.threads,
      connections: o.connections,
      timeoutS: WRK_TIMEOUT_S,
      durationS,
    });
    if (o.warmupS > 0) {
      for (const target of o.targets) {
        const w = await runWrk(group, load(target, o.warmupS));
        o.log(`${target}: warm-up ${w.rps} req/s, not counted`);
      }
    }

    const rounds = new Map<ProxyTarget, RoundResult[]>(o.targets.map((t) => [t, []]));
    for (let round = 0; round < o.rounds; round++) {
      // Each round starts one target further on, so no target always follows the same one.
      const order = o.targets.map((_, i) => o.targets[(i + round) % o.targets.length] as ProxyTarget);
      for (const target of order) {
        const proxy = endpoints.get(target)?.proxy;
        const pids = [backend.pid, proxy?.pid];
        const cpu0 = pids.map((p) => processCpuSeconds(p) ?? 0);
        const t0 = performance.now();
        const r = await runWrk(group, load(target, o.durationS));
        const wallS = (performance.now() - t0) / 1000;
        for (const c of [backend, proxy]) {
          if (c && (c.proc.exitCode !== null || c.proc.signalCode !== null)) {
            throw new Error(`${c.name} (pid ${c.pid}) exited during the ${target} run: ${c.stderrTail()}`);
          }
        }
        if (r.requests === 0) throw new Error(`${target}: no request answered (${r.errors} errors)`);
        const [backendCpuS = 0, proxyCpuS = 0] = pids.map(
          (p, i) => (processCpuSeconds(p) ?? 0) - (cpu0[i] ?? 0),
        );
        rounds.get(target)?.push({ ...r, wallS, backendCpuS, proxyCpuS });
        o.log(
          `${o.rounds > 1 ? `round ${round + 1}/${o.rounds} ` : ''}${target}: ${r.rps} req/s, ` +
            `p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, max ${r.max_ms} ms, errors ${r.errors}; ` +
            `cpu backend ${round1((100 * backendCpuS) / wallS)}%` +
            (proxy
              ? `, proxy ${round1((100 * proxyCpuS) / wallS)}% (${round1((proxyCpuS * 1e6) / Math.max(1, r.requests))} us/req)`
              : ''),
        );
        // Let the connections of this target close before the next one starts.
        await sleep(500);
      }
    }
    for (const [target, rs] of rounds)
      result[target] = summarize(rs, endpoints.get(target)?.proxy !== undefined);
  } finally {
    await group.close();
  }
  result.host.loadavg_1m_end = hostLoad().loadavg_1m;
  const ratio = (a: ProxyTargetResult | undefined, b: ProxyTargetResult | undefined) =>
    a && b && b.rps > 0 ? round(a.rps / b.rps, 3) : null;
  result.ratio_haproxy = ratio(result.berth, result.haproxy);
  result.berth_vs_direct = ratio(result.berth, result.direct);
  result.haproxy_vs_direct = ratio(result.haproxy, result.direct);
  return result;
}

async function runWrk(group: ProcessGroup, o: Parameters<typeof wrkArgs>[0]): Promise<WrkResult> {
  const wrk = group.spawn('wrk', 'wrk', wrkArgs(o), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  wrk.proc.stdout?.setEncoding('utf8');
  wrk.proc.stdout?.on('data', (chunk: string) => {
    out += chunk;
  });
  const code = await wrk.exited;
  if (code !== 0) throw new Error(`wrk exited with code ${code}: ${wrk.stderrTail()}${out}`);
  return parseWrkReport(out);
}

export function formatProxyBench(r: ProxyBenchResult): string {
  const lines = [
    `proxy: ${r.connections} connections, ${r.threads} wrk threads, ${r.duration_s} s per target` +
      `${r.rounds > 1 ? ` x ${r.rounds} rounds` : ''}, ` +
      `${r.body_bytes}-byte responses; ${r.systems.haproxy}`,
    'target     requests/s   p50 ms   p99 ms   max ms  errors  cpu backend  cpu proxy  proxy us/req',
  ];
  for (const t of PROXY_TARGETS) {
    const x = r[t];
    if (!x) continue;
    lines.push(
      `${t.padEnd(8)} ${String(x.rps).padStart(12)} ${String(x.p50_ms).padStart(8)} ` +
        `${String(x.p99_ms).padStart(8)} ${String(x.max_ms).padStart(8)} ${String(x.errors).padStart(7)} ` +
        `${`${x.cpu_pct.backend}%`.padStart(12)} ${(x.cpu_pct.proxy === undefined ? '-' : `${x.cpu_pct.proxy}%`).padStart(10)} ` +
        `${String(x.proxy_cpu_us_per_req ?? '-').padStart(13)}`,
    );
  }
  lines.push(
    `ratio_haproxy (berth / haproxy requests/s) ${r.ratio_haproxy ?? '-'}: aim >= 0.7, ` +
      `${r.ratio_haproxy === null ? 'not measured' : r.ratio_haproxy >= 0.7 ? 'met' : 'NOT met'}`,
  );
  return `${lines.join('\n')}\n`;
}

const USAGE = `usage: npm run bench -- proxy [options]

  HTTP through Berth's L4 proxy vs HAProxy (TCP mode), the direct path as the baseline; wrk
  drives all three in one run. Installs haproxy and wrk with apt when missing (as root).

options:
  --duration T          measured time per target and round (default 10s; whole seconds)
  --rounds N            measure every target N times, interleaved (default 1): figures are the
                        mean requests/s and the median p50/p90/p99 of the rounds
  --warmup T            unmeasured load before each target (default 1s; 0 for none)
  --connections N       wrk connections (default 50)
  --threads N           wrk threads (default 2)
  --haproxy-threads N   HAProxy nbthread (default 1, as Berth's one event loop)
  --body-bytes N        the backend's response body (default 128)
  --targets LIST        direct,berth,haproxy (default all three, in that order)
  --json                only the JSON line on stdout`;

function wholeSeconds(name: string, text: string, min: number): number {
  const s = parseDuration(text) / 1000;
  if (!Number.isInteger(s) || s < min)
    throw new Error(`${name} must be whole seconds >= ${min}, got "${text}"`);
  return s;
}

function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${v}"`);
  return n;
}

/** `npm run bench -- proxy ...` (cli.ts hands over argv after the name); returns the exit code. */
export async function proxyBenchMain(argv: string[]): Promise<number> {
  let opts: ProxyBenchOptions;
  let json: boolean;
  const log = (line: string) => process.stderr.write(`[bench proxy] ${line}\n`);
  try {
    const { values: v } = parseArgs({
      args: argv,
      options: {
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        duration: { type: 'string', default: '10s' },
        rounds: { type: 'string', default: '1' },
        warmup: { type: 'string', default: '1s' },
        connections: { type: 'string', default: '50' },
        threads: { type: 'string', default: '2' },
        'haproxy-threads': { type: 'string', default: '1' },
        'body-bytes': { type: 'string', default: '128' },
        targets: { type: 'string', default: PROXY_TARGETS.join(',') },
      },
    });
    if (v.help) {
      process.stderr.write(`${USAGE}\n`);
      return 0;
    }
    const targets = [...new Set(v.targets.split(',').map((t) => t.trim()))];
    for (const t of targets) {
      if (!PROXY_TARGETS.includes(t as ProxyTarget)) {
        throw new Error(`--targets: unknown target "${t}" (${PROXY_TARGETS.join(', ')})`);
      }
    }
    json = v.json;
    opts = {
      durationS: wholeSeconds('--duration', v.duration, 1),
      rounds: positiveInt('--rounds', v.rounds),
      warmupS: wholeSeconds('--warmup', v.warmup, 0),
      connections: positiveInt('--connections', v.connections),
      threads: positiveInt('--threads', v.threads),
      haproxyThreads: positiveInt('--haproxy-threads', v['haproxy-threads']),
      bodyBytes: positiveInt('--body-bytes', v['body-bytes']),
      targets: targets as ProxyTarget[],
      log,
    };
    if (opts.threads > opts.connections) throw new Error('--threads must not exceed --connections');
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const r = await runProxyBench(opts);
  if (!json) process.stdout.write(formatProxyBench(r));
  process.stdout.write(`${JSON.stringify(r)}\n`);
  return 0;
}
