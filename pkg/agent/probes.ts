// Liveness, readiness and startup probes. `probe` runs one check; ProbeWorker runs a
// container's probes on an injected clock with Kubernetes' thresholds and defaults.
//
// Probes only ever reach loopback: a container port is probed at its published host port
// on the node's 127.0.0.N address, never at the container's bridge address.

import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, isIPv4 } from 'node:net';
import type { ProbeSpec } from './container-spec.js';
import type { ContainerRuntime } from './runtime.js';

export interface ProbeResult {
  result: 'success' | 'failure';
  message: string;
}

export interface ProbeTarget {
  containerId: string;
  /** The node's address, 127.0.0.N. */
  hostIp: string;
  /** A container port (number or name) -> its published host port. */
  portFor(port: number | string): number | undefined;
}

export const PROBE_USER_AGENT = 'berth-probe/1.0';

const success = (message = ''): ProbeResult => ({ result: 'success', message });
const failure = (message: string): ProbeResult => ({ result: 'failure', message });

export function isLoopback(host: string): boolean {
  return isIPv4(host) && host.startsWith('127.');
}

function address(spec: { port: number | string; host?: string }, target: ProbeTarget) {
  const host = spec.host || target.hostIp;
  if (!isLoopback(host)) return { error: `probe refused: host ${host} is not a loopback address` };
  const port = target.portFor(spec.port);
  if (port === undefined) return { error: `probe failed: port ${spec.port} is not published` };
  return { host, port };
}

function httpGet(spec: NonNullable<ProbeSpec['httpGet']>, target: ProbeTarget, timeoutMs: number) {
  const a = address(spec, target);
  if ('error' in a) return Promise.resolve(failure(a.error ?? ''));
  const https = spec.scheme === 'HTTPS';
  let path = spec.path || '/';
  if (!path.startsWith('/')) path = `/${path}`;
  const url = `${https ? 'https' : 'http'}://${a.host}:${a.port}${path}`;
  const headers: Record<string, string> = { 'User-Agent': PROBE_USER_AGENT, Accept: '*/*' };
  for (const h of spec.httpHeaders ?? []) headers[h.name] = h.value;
  return new Promise<ProbeResult>((resolve) => {
    const req = (https ? httpsRequest : httpRequest)(
      url,
      // Kubernetes does not verify certificates of HTTPS probes.
      { method: 'GET', headers, timeout: timeoutMs, rejectUnauthorized: false, agent: false },
      (res) => {
        const status = res.statusCode ?? 0;
        res.resume(); // The body is not needed; drain it so the socket closes.
        // 2xx and 3xx succeed; redirects are not followed (Kubernetes counts a 3xx as success too).
        resolve(
          status >= 200 && status < 400 ? success() : failure(`HTTP probe failed with statuscode: ${status}`),
        );
      },
    );
    req.on('timeout', () => {
      req.destroy();
      resolve(failure(`Get "${url}": timeout after ${timeoutMs}ms`));
    });
    req.on('error', (e) => resolve(failure(`Get "${url}": ${e.message}`)));
    req.end();
  });
}

function tcpSocket(spec: NonNullable<ProbeSpec['tcpSocket']>, target: ProbeTarget, timeoutMs: number) {
  const a = address(spec, target);
  if ('error' in a) return Promise.resolve(failure(a.error ?? ''));
  return new Promise<ProbeResult>((resolve) => {
    const socket = connect({ host: a.host, port: a.port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(failure(`dial tcp ${a.host}:${a.port}: i/o timeout`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(success());
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      resolve(failure(`dial tcp ${a.host}:${a.port}: ${e.message}`));
    });
  });
}

/** Run one probe. Never rejects: every problem is a failure with a message. */
export async function probe(
  spec: ProbeSpec,
  target: ProbeTarget,
  runtime: Pick<ContainerRuntime, 'exec'>,
): Promise<ProbeResult> {
  const timeoutMs = (spec.timeoutSeconds ?? 1) * 1000;
  try {
    if (spec.httpGet) return await httpGet(spec.httpGet, target, timeoutMs);
    if (spec.tcpSocket) return await tcpSocket(spec.tcpSocket, target, timeoutMs);
    if (spec.exec) {
      const r = await runtime.exec(target.containerId, spec.exec.command ?? [], timeoutMs);
      const out = Buffer.concat([r.stdout, r.stderr]).toString('utf8').trim();
      return r.exitCode === 0 ? success(out) : failure(out || `command exited with ${r.exitCode}`);
    }
    return failure('probe has no handler');
  } catch (e) {
    return failure((e as Error).message);
  }
}

/** Timers for ProbeWorker; tests pass a fake. */
export interface ProbeClock {
  now(): number;
  /** Run fn after ms; returns a cancel function. */
  setTimer(ms: number, fn: () => void): () => void;
}

export const realProbeClock: ProbeClock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};

export type ProbeKind = 'startup' | 'liveness' | 'readiness';
export type ProbeState = 'ready' | 'notReady' | 'failed';

export interface ProbeWorkerOptions {
  startupProbe?: ProbeSpec;
  livenessProbe?: ProbeSpec;
  readinessProbe?: ProbeSpec;
  /** Runs one probe: (spec) => probe(spec, target, runtime) in the agent. */
  run(kind: ProbeKind, spec: ProbeSpec): Promise<ProbeResult>;
  clock: ProbeClock;
  /** Transitions only: 'failed' (liveness or startup gave up: restart the container) and readiness changes. */
  onResult(state: ProbeState, detail: { probe: ProbeKind; message: string }): void;
  /** The startup probe succeeded (or there is none): the container counts as started. */
  onStarted?(): void;
}

interface Loop {
  kind: ProbeKind;
  spec: ProbeSpec;
  successes: number;
  failures: number;
  cancel?: () => void;
}

/**
 * One container's probes, from its start until stop() or 'failed'. The startup probe gates
 * the others: liveness and readiness do not run until it has succeeded. Readiness starts
 * false; with no readiness probe the container is ready once started. initialDelaySeconds
 * counts from the container's start, as in Kubernetes.
 */
export class ProbeWorker {
  private loops = new Map<ProbeKind, Loop>();
  private stopped = false;
  private startedAt = 0;
  started = false;
  ready = false;

  constructor(private readonly options: ProbeWorkerOptions) {}

  /** Begin probing a container that started at `startedAt` (ms). */
  start(startedAt: number = this.options.clock.now()): void {
    this.startedAt = startedAt;
    if (this.options.startupProbe) this.begin('startup', this.options.startupProbe);
    else this.markStarted();
  }

  stop(): void {
    this.stopped = true;
    for (const l of this.loops.values()) l.cancel?.();
    this.loops.clear();
  }

  private markStarted(): void {
    this.started = true;
    this.options.onStarted?.();
    if (this.options.livenessProbe) this.begin('liveness', this.options.livenessProbe);
    if (this.options.readinessProbe) this.begin('readiness', this.options.readinessProbe);
    else this.setReady(true, 'readiness', '');
  }

  private setReady(ready: boolean, probe: ProbeKind, message: string): void {
    if (this.ready === ready) return;
    this.ready = ready;
    this.options.onResult(ready ? 'ready' : 'notReady', { probe, message });
  }

  private begin(kind: ProbeKind, spec: ProbeSpec): void {
    const loop: Loop = { kind, spec, successes: 0, failures: 0 };
    this.loops.set(kind, loop);
    const first = this.startedAt + (spec.initialDelaySeconds ?? 0) * 1000 - this.options.clock.now();
    this.schedule(loop, Math.max(0, first));
  }

  private schedule(loop: Loop, ms: number): void {
    if (this.stopped) return;
    loop.cancel = this.options.clock.setTimer(ms, () => void this.tick(loop));
  }

  private async tick(loop: Loop): Promise<void> {
    if (this.stopped || this.loops.get(loop.kind) !== loop) return;
    const began = this.options.clock.now();
    const r = await this.options.run(loop.kind, loop.spec);
    if (this.stopped || this.loops.get(loop.kind) !== loop) return;
    const spec = loop.spec;
    if (r.result === 'success') {
      loop.successes++;
      loop.failures = 0;
    } else {
      loop.failures++;
      loop.successes = 0;
    }
    const passed = loop.successes >= (spec.successThreshold ?? 1);
    const failed = loop.failures >= (spec.failureThreshold ?? 3);
    if (loop.kind === 'startup' && passed) {
      loop.cancel?.();
      this.loops.delete('startup');
      this.markStarted();
      return;
    }
    if (loop.kind !== 'readiness' && failed) {
      this.stop();
      this.options.onResult('failed', { probe: loop.kind, message: r.message });
      return;
    }
    if (loop.kind === 'readiness') {
      if (passed) this.setReady(true, 'readiness', r.message);
      else if (failed) this.setReady(false, 'readiness', r.message);
    }
    const period = (spec.periodSeconds ?? 10) * 1000;
    this.schedule(loop, Math.max(0, began + period - this.options.clock.now()));
  }
}
