// The controllers' work queue, Kubernetes' workqueue in small: keys, not objects; a key
// queued while it waits is queued once; a key being processed is never handed to a second
// worker at the same time (a change meanwhile queues it again for after); failures come back
// after a per-key exponential back-off, successes forget it.

export interface WorkQueueOptions {
  /** First retry delay (ms); doubles per failure of the same key. */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private waiters: (() => void)[] = [];
  private shut = false;
  private readonly base: number;
  private readonly max: number;

  constructor(options: WorkQueueOptions = {}) {
    this.base = options.baseDelayMs ?? 50;
    this.max = options.maxDelayMs ?? 10_000;
  }

  add(key: string): void {
    if (this.shut) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.waiters.shift()?.();
  }

  /** Add after `ms` (a delayed re-check: a back-off that ends, a deadline that passes). */
  addAfter(key: string, ms: number): void {
    if (this.shut) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const prev = this.timers.get(key);
    if (prev) clearTimeout(prev);
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        this.add(key);
      }, ms),
    );
  }

  /** The key failed: try again after its back-off. */
  retry(key: string): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const delay = Math.min(this.max, this.base * 2 ** (n - 1));
    this.addAfter(key, delay);
    return delay;
  }

  /** The key succeeded: its back-off starts over. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** The next key, once there is one; undefined after shutdown. */
  async get(): Promise<string | undefined> {
    while (this.queue.length === 0) {
      if (this.shut) return undefined;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    const key = this.queue.shift() as string;
    this.queued.delete(key);
    this.processing.add(key);
    return key;
  }

  /** Processing of `key` ended; if it changed meanwhile, it goes back in the queue. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  get length(): number {
    return this.queue.length;
  }

  shutdown(): void {
    this.shut = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w();
  }
}
