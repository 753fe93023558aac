// A steady HTTP load on loopback targets, for the zero-downtime test and the rollout
// benchmark: a few loops per target, each sending GETs back to back (a new connection per
// request unless keepAlive), with every failure kept with its time and reason. A request
// fails on a connection error, a time-out, a status other than 2xx, or an empty body.
import { Agent, request } from 'node:http';

export interface LoadTarget {
  name: string;
  host: string;
  port: number;
  path?: string;
  /** The Host header (for Ingress rules). */
  hostHeader?: string;
}

export interface LoadOptions {
  targets: LoadTarget[];
  /** Loops per target. */
  concurrency?: number;
  /** Pause between one loop's requests (ms). */
  pauseMs?: number;
  timeoutMs?: number;
  keepAlive?: boolean;
}

export interface Failure {
  at: number;
  target: string;
  error: string;
}

export interface TargetReport {
  sent: number;
  ok: number;
  failed: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

export interface LoadReport {
  sent: number;
  ok: number;
  failed: number;
  p99_ms: number;
  targets: Record<string, TargetReport>;
  /** The first failures (at most 50), oldest first. */
  failures: Failure[];
  /** Bodies seen, with counts (which pods answered). */
  bodies: Map<string, number>;
}

interface Tally {
  sent: number;
  ok: number;
  failed: number;
  latencies: number[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

const round = (n: number) => Math.round(n * 100) / 100;

export class HttpLoad {
  private stopped = false;
  private readonly loops: Promise<void>[] = [];
  private readonly tallies = new Map<string, Tally>();
  private readonly failures: Failure[] = [];
  private failedTotal = 0;
  private readonly bodies = new Map<string, number>();
  private readonly agent: Agent | undefined;

  constructor(private readonly o: LoadOptions) {
    for (const t of o.targets) {
      if (!t.host.startsWith('127.')) throw new Error(`refusing to load ${t.host}: loopback only`);
      this.tallies.set(t.name, { sent: 0, ok: 0, failed: 0, latencies: [] });
    }
    this.agent = o.keepAlive ? new Agent({ keepAlive: true, maxSockets: 64 }) : undefined;
  }

  start(): this {
    for (const t of this.o.targets)
      for (let i = 0; i < (this.o.concurrency ?? 2); i++) this.loops.push(this.loop(t));
    return this;
  }

  /** Failures so far. */
  get failed(): number {
    return this.failedTotal;
  }

  get sent(): number {
    return [...this.tallies.values()].reduce((n, t) => n + t.sent, 0);
  }

  async stop(): Promise<LoadReport> {
    this.stopped = true;
    await Promise.all(this.loops);
    this.agent?.destroy();
    return this.report();
  }

  report(): LoadReport {
    const targets: Record<string, TargetReport> = {};
    const all: number[] = [];
    let sent = 0;
    let ok = 0;
    let failed = 0;
    for (const [name, t] of this.tallies) {
      const sorted = [...t.latencies].sort((a, b) => a - b);
      all.push(...sorted);
      sent += t.sent;
      ok += t.ok;
      failed += t.failed;
      targets[name] = {
        sent: t.sent,
        ok: t.ok,
        failed: t.failed,
        p50_ms: round(percentile(sorted, 50)),
        p99_ms: round(percentile(sorted, 99)),
        max_ms: round(sorted[sorted.length - 1] ?? 0),
      };
    }
    all.sort((a, b) => a - b);
    return {
      sent,
      ok,
      failed,
      p99_ms: round(percentile(all, 99)),
      targets,
      failures: [...this.failures],
      bodies: new Map(this.bodies),
    };
  }

  private async loop(t: LoadTarget): Promise<void> {
    const tally = this.tallies.get(t.name) as Tally;
    while (!this.stopped) {
      const started = performance.now();
      tally.sent++;
      try {
        const body = await this.get(t);
        tally.ok++;
        tally.latencies.push(performance.now() - started);
        const key = body.trim();
        this.bodies.set(key, (this.bodies.get(key) ?? 0) + 1);
      } catch (err) {
        tally.failed++;
        this.failedTotal++;
        if (this.failures.length < 50)
          this.failures.push({ at: Date.now(), target: t.name, error: (err as Error).message });
      }
      if (this.o.pauseMs) await new Promise((r) => setTimeout(r, this.o.pauseMs));
    }
  }

  private get(t: LoadTarget): Promise<string> {
    const timeoutMs = this.o.timeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: t.host,
          port: t.port,
          path: t.path ?? '/',
          method: 'GET',
          agent: this.agent ?? false,
          headers: t.hostHeader ? { host: t.hostHeader } : {},
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status < 200 || status > 299)
              reject(new Error(`HTTP ${status}: ${body.slice(0, 80).trim()}`));
            else if (body === '') reject(new Error('empty body'));
            else resolve(body);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
  }
}
