// Which backend a new connection of a Service port tries, and in what order: round-robin
// over the ready backends, the client's sticky backend first under ClientIP affinity. Pure:
// no sockets, no timers; time comes from an injected clock, so tests step it.
//
//   pick(clientIp) ─► [sticky backend?, rr cursor, cursor+1, ...]  (each backend once)
//   connected(clientIp, backend) ─► sticky entry refreshed (affinity only)

import type { Backend } from './types.js';

export interface AffinityConfig {
  /** How long a client IP keeps its backend after its last connection. */
  timeoutSeconds: number;
}

export interface BalancerOptions {
  affinity?: AffinityConfig;
  /** Milliseconds; Date.now by default. */
  now?: () => number;
}

interface StickyEntry {
  backend: string;
  expiresAt: number;
}

/** Expired sticky entries are swept at most this often (they are also dropped on lookup). */
const SWEEP_EVERY_MS = 60_000;

export const backendKey = (b: Backend): string => `${b.ip}:${b.port}`;

export class Balancer {
  private backends: Backend[] = [];
  private keys = new Set<string>();
  private lastList: readonly Backend[] | undefined;
  private cursor = 0;
  private affinity: AffinityConfig | undefined;
  private readonly sticky = new Map<string, StickyEntry>();
  private readonly now: () => number;
  private lastSweep: number;

  constructor(options: BalancerOptions = {}) {
    this.affinity = options.affinity;
    this.now = options.now ?? Date.now;
    this.lastSweep = this.now();
  }

  /**
   * Replace the backend list (cheap when unchanged: same array, or same members in the same
   * order). Sticky entries whose backend left are dropped.
   */
  setBackends(list: readonly Backend[]): void {
    if (list === this.lastList) return;
    this.lastList = list;
    const next = dedupe(list);
    const unchanged = sameOrder(next, this.backends);
    this.backends = next;
    if (unchanged) return;
    this.keys = new Set(next.map(backendKey));
    if (this.backends.length > 0) this.cursor %= this.backends.length;
    else this.cursor = 0;
    for (const [ip, e] of this.sticky) if (!this.keys.has(e.backend)) this.sticky.delete(ip);
  }

  /** Turn ClientIP affinity on, change its timeout, or (undefined) turn it off. */
  setAffinity(affinity: AffinityConfig | undefined): void {
    if (affinity?.timeoutSeconds === this.affinity?.timeoutSeconds) return;
    this.affinity = affinity;
    if (!affinity) this.sticky.clear();
    else {
      // Entries keep their last-use time; re-derive their expiry from the new timeout.
      for (const e of this.sticky.values()) e.expiresAt = Math.min(e.expiresAt, this.expiry());
    }
  }

  get size(): number {
    return this.backends.length;
  }

  /**
   * The backends a new connection from `clientIp` tries, in order, each once: its sticky
   * backend first (affinity on, entry live), then round-robin from the cursor. Advances the
   * cursor by one. Empty when there are no backends.
   */
  pick(clientIp: string): Backend[] {
    const n = this.backends.length;
    if (n === 0) return [];
    this.sweep();
    const start = this.cursor;
    this.cursor = (this.cursor + 1) % n;
    const order: Backend[] = [];
    const stuck = this.stickyBackend(clientIp);
    if (stuck) order.push(stuck);
    for (let i = 0; i < n; i++) {
      const b = this.backends[(start + i) % n] as Backend;
      if (b !== stuck) order.push(b);
    }
    return order;
  }

  /** A connection from `clientIp` reached `backend`: remember (affinity on) or refresh it. */
  connected(clientIp: string, backend: Backend): void {
    if (!this.affinity) return;
    const key = backendKey(backend);
    if (!this.keys.has(key)) return;
    this.sticky.set(clientIp, { backend: key, expiresAt: this.expiry() });
  }

  /** The live sticky mapping of a client IP, for tests and logs. */
  stickyOf(clientIp: string): string | undefined {
    return this.stickyBackend(clientIp) ? this.sticky.get(clientIp)?.backend : undefined;
  }

  get stickyCount(): number {
    return this.sticky.size;
  }

  private stickyBackend(clientIp: string): Backend | undefined {
    if (!this.affinity) return undefined;
    const e = this.sticky.get(clientIp);
    if (!e) return undefined;
    if (e.expiresAt <= this.now() || !this.keys.has(e.backend)) {
      this.sticky.delete(clientIp);
      return undefined;
    }
    return this.backends.find((b) => backendKey(b) === e.backend);
  }

  private expiry(): number {
    return this.now() + (this.affinity?.timeoutSeconds ?? 0) * 1000;
  }

  private sweep(): void {
    const now = this.now();
    if (now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    for (const [ip, e] of this.sticky) if (e.expiresAt <= now) this.sticky.delete(ip);
  }
}

function dedupe(list: readonly Backend[]): Backend[] {
  const seen = new Set<string>();
  const out: Backend[] = [];
  for (const b of list) {
    const k = backendKey(b);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(b);
  }
  return out;
}

function sameOrder(a: readonly Backend[], b: readonly Backend[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++)
    if (backendKey(a[i] as Backend) !== backendKey(b[i] as Backend)) return false;
  return true;
}
