// wrk, the load generator of `npm run bench -- proxy`: its command line and the figures read
// back from its report (wrk 4.1, --latency).
import { round } from './stats.js';

export interface WrkOptions {
  url: string;
  threads: number;
  connections: number;
  /** Whole seconds (wrk takes no finer duration). */
  durationS: number;
  /** A request that waits this long counts as a timeout error. */
  timeoutS: number;
}

export interface WrkResult {
  rps: number;
  requests: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  /** Socket errors (connect, read, write, timeout) plus non-2xx/3xx answers. */
  errors: number;
}

export function wrkArgs(o: WrkOptions): string[] {
  return [
    '--threads',
    String(o.threads),
    '--connections',
    String(o.connections),
    '--duration',
    `${o.durationS}s`,
    '--timeout',
    `${o.timeoutS}s`,
    '--latency',
    o.url,
  ];
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** wrk's '812.00us', '1.25ms', '2.01s' in milliseconds. */
export function wrkTimeMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`wrk: not a time: "${text}"`);
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}

/** The figures of wrk's text report; throws when a figure the bench needs is missing. */
export function parseWrkReport(out: string): WrkResult {
  const need = (re: RegExp, what: string): RegExpExecArray => {
    const m = re.exec(out);
    if (!m) throw new Error(`wrk: no ${what} in its report:\n${out}`);
    return m;
  };
  const pct = (p: number) =>
    wrkTimeMs(need(new RegExp(`^\\s*${p}%\\s+(\\S+)\\s*$`, 'm'), `${p}% latency`)[1] ?? '');
  const latency = need(/^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)/m, 'latency line');
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const errors =
    (sock ? sock.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0);
  return {
    rps: round(Number(need(/Requests\/sec:\s+(\d+(?:\.\d+)?)/, 'Requests/sec')[1]), 1),
    requests: Number(need(/(\d+) requests in /, 'request count')[1]),
    p50_ms: round(pct(50), 3),
    p90_ms: round(pct(90), 3),
    p99_ms: round(pct(99), 3),
    max_ms: round(wrkTimeMs(latency[3] ?? ''), 3),
    errors,
  };
}
