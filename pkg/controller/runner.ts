// Runs one reconciler: workers take keys from its queue and call `reconcile(key)`; an error
// puts the key back after a back-off, a result may ask for a later re-check. Reconcilers
// are level-triggered and idempotent, so running one twice, or after a restart, is safe;
// tests call `reconcile` directly.

import type { Logger } from 'pino';
import { WorkQueue } from './queue.js';

export interface ReconcileResult {
  /** Look at this key again after this long (a deadline, a minReadySeconds wait). */
  requeueAfterMs?: number;
}

export interface Reconciler {
  readonly name: string;
  reconcile(key: string): Promise<ReconcileResult | undefined>;
}

export class ControllerRunner {
  readonly queue = new WorkQueue();
  private workers: Promise<void>[] = [];

  constructor(
    readonly reconciler: Reconciler,
    private readonly logger: Logger,
    private readonly concurrency = 2,
  ) {}

  start(): void {
    for (let i = 0; i < this.concurrency; i++) this.workers.push(this.work());
  }

  async stop(): Promise<void> {
    this.queue.shutdown();
    await Promise.allSettled(this.workers);
    this.workers = [];
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        const r = await this.reconciler.reconcile(key);
        this.queue.forget(key);
        if (r?.requeueAfterMs !== undefined) this.queue.addAfter(key, r.requeueAfterMs);
      } catch (err) {
        const delay = this.queue.retry(key);
        this.logger.warn(
          { err, controller: this.reconciler.name, key, retryInMs: delay },
          'reconcile failed',
        );
      } finally {
        this.queue.done(key);
      }
    }
  }
}
