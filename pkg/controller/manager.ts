// The controller manager: one LeaderComponent that, on the leader, builds the shared
// informers, the controllers on top of them, and a runner (queue + workers) per controller.
// Each controller is a ControllerDefinition: it wires informer events to keys of its own
// queue and reconciles a key at a time. Everything is made anew on each leadership, from
// the store alone.

import type { Logger } from 'pino';
import type { ApiServer } from '../api/server/api-server.js';
import { EventRecorder } from '../api/server/events.js';
import { Informer } from './informer.js';
import type { LeaderComponent } from './leader.js';
import type { PodMetricsSource } from './pod-metrics.js';
import { ControllerRunner, type Reconciler } from './runner.js';

/** Timings of the controllers; Berth's defaults are seconds where Kubernetes' are minutes. */
export interface ControllerOptions {
  /** A node whose Lease is not renewed for this long is NotReady/Unreachable (ms). */
  nodeGracePeriodMs: number;
  /** Pods on a NotReady/Unreachable node are evicted after this (ms), unless their tolerationSeconds says otherwise. */
  podEvictionTimeoutMs: number;
  /** How often each HorizontalPodAutoscaler is evaluated (ms); Kubernetes' default 15 s when absent. */
  hpaSyncPeriodMs?: number;
  /** Where the autoscaler reads pods' usage; without one, autoscalers report ScalingActive False. */
  podMetrics?: PodMetricsSource;
}

export const DEFAULT_CONTROLLER_OPTIONS: ControllerOptions = {
  nodeGracePeriodMs: 5000,
  podEvictionTimeoutMs: 3000,
  hpaSyncPeriodMs: 15_000,
};

/** The shared informers, one per resource, made on first use and started by the manager. */
export class Informers {
  private readonly all = new Map<string, Informer>();

  constructor(
    private readonly api: ApiServer,
    private readonly logger: Logger,
  ) {}

  get(resource: string): Informer {
    let i = this.all.get(resource);
    if (!i) {
      i = new Informer(this.api, resource, this.logger);
      this.all.set(resource, i);
    }
    return i;
  }

  async startAll(): Promise<void> {
    await Promise.all([...this.all.values()].map((i) => i.start()));
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.all.values()].map((i) => i.stop()));
  }
}

export interface ControllerContext {
  /** Fenced to this leadership: writes fail once another node leads. */
  api: ApiServer;
  informers: Informers;
  events: EventRecorder;
  logger: Logger;
  options: ControllerOptions;
  now(): number;
}

export interface ControllerDefinition {
  readonly name: string;
  /**
   * Make the reconciler; subscribe to the informers it needs, calling `enqueue(key)` for
   * the keys an event concerns. `initialKeys` (optional) are queued once the informers
   * have synced (level-triggered start: every object is looked at once).
   */
  create(ctx: ControllerContext, enqueue: (key: string) => void): Reconciler & { initialKeys?(): string[] };
}

export class ControllerManager implements LeaderComponent {
  readonly name = 'controller-manager';
  private informers: Informers | undefined;
  private runners: ControllerRunner[] = [];

  constructor(
    private readonly definitions: ControllerDefinition[],
    private readonly logger: Logger,
    private readonly options: ControllerOptions = DEFAULT_CONTROLLER_OPTIONS,
  ) {}

  async start(api: ApiServer): Promise<void> {
    const informers = new Informers(api, this.logger);
    this.informers = informers;
    const events = new EventRecorder({
      store: api.store,
      source: { component: 'controller-manager' },
      logger: this.logger,
    });
    const ctx: ControllerContext = {
      api,
      informers,
      events,
      logger: this.logger,
      options: this.options,
      now: Date.now,
    };
    const made: { runner: ControllerRunner; reconciler: Reconciler & { initialKeys?(): string[] } }[] = [];
    for (const d of this.definitions) {
      let runner: ControllerRunner | undefined;
      const reconciler = d.create({ ...ctx, logger: this.logger.child({ controller: d.name }) }, (key) =>
        runner?.queue.add(key),
      );
      runner = new ControllerRunner(reconciler, this.logger.child({ controller: d.name }));
      made.push({ runner, reconciler });
    }
    this.runners = made.map((m) => m.runner);
    await informers.startAll();
    for (const { runner, reconciler } of made) {
      runner.start();
      for (const key of reconciler.initialKeys?.() ?? []) runner.queue.add(key);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.runners.map((r) => r.stop()));
    this.runners = [];
    await this.informers?.stopAll();
    this.informers = undefined;
  }
}
