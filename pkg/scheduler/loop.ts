// The scheduler as it runs on the leader: informers over nodes and pods keep the Snapshot
// current; pods without a node are queued; each is placed by the pure core (scheduler.ts),
// assumed at once (so the next pod sees it) and bound with a guarded update of
// spec.nodeName. A pod that fits nowhere gets PodScheduled=False with Kubernetes' summary
// and a FailedScheduling event, and waits until nodes or pods change. Claims, volumes and
// storage classes are watched too (when the API has those kinds): a pod using unbound
// WaitForFirstConsumer claims has them annotated with its node before it is bound.

import type { Logger } from 'pino';
import { ApiError, ApiErrorCode } from '../api/errors.js';
import type { ApiServer } from '../api/server/api-server.js';
import { EventRecorder } from '../api/server/events.js';
import { type ApiObject, rfc3339 } from '../api/types.js';
import { Informer, keyOf } from '../controller/informer.js';
import type { LeaderComponent } from '../controller/leader.js';
import { WorkQueue } from '../controller/queue.js';
import { createScheduler, type Scheduler } from './scheduler.js';
import { Snapshot } from './snapshot.js';
import type { SchedulingNode, SchedulingPod } from './types.js';
import {
  SELECTED_NODE_ANNOTATION,
  type SchedulingClaim,
  type SchedulingStorageClass,
  type SchedulingVolume,
} from './volume-binding.js';

/** How many binds may be in flight: binding is a Raft write; placing is microseconds. */
const BIND_CONCURRENCY = 16;
/** Unschedulable pods are tried again at least this often, even without a change (ms). */
const UNSCHEDULABLE_RETRY_MS = 10_000;

export interface SchedulerLoopOptions {
  logger: Logger;
  seed?: number;
}

const needsNode = (p: ApiObject) =>
  !p.spec?.nodeName &&
  !p.metadata.deletionTimestamp &&
  p.status?.phase !== 'Succeeded' &&
  p.status?.phase !== 'Failed';

export class SchedulerLoop implements LeaderComponent {
  readonly name = 'scheduler';
  private api: ApiServer | undefined;
  private pods: Informer | undefined;
  private nodes: Informer | undefined;
  private claims: Informer | undefined;
  private storage: Informer[] = [];
  private queue: WorkQueue | undefined;
  private workers: Promise<void>[] = [];
  private snapshot = new Snapshot();
  private scheduler: Scheduler;
  private events: EventRecorder | undefined;
  /** Pods that fit nowhere last time: tried again when the cluster changes. */
  private readonly parked = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: SchedulerLoopOptions) {
    this.scheduler = createScheduler({ seed: o.seed ?? Date.now() });
  }

  async start(api: ApiServer): Promise<void> {
    this.api = api;
    this.snapshot = new Snapshot();
    this.scheduler = createScheduler({ seed: this.o.seed ?? Date.now() });
    this.events = new EventRecorder({
      store: api.store,
      source: { component: 'scheduler' },
      logger: this.o.logger,
    });
    const queue = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 5000 });
    this.queue = queue;
    const nodes = new Informer(api, 'nodes', this.o.logger);
    const pods = new Informer(api, 'pods', this.o.logger);
    this.nodes = nodes;
    this.pods = pods;
    nodes.on({
      add: (n) => {
        this.snapshot.addNode(n as unknown as SchedulingNode);
        this.unpark();
      },
      update: (_o, n) => {
        this.snapshot.updateNode(n as unknown as SchedulingNode);
        this.unpark();
      },
      delete: (n) => this.snapshot.removeNode(n.metadata.name as string),
    });
    pods.on({
      add: (p) => this.onPod(p),
      update: (_o, p) => this.onPod(p),
      delete: (p) => {
        this.snapshot.removePod(p as unknown as SchedulingPod);
        this.parked.delete(keyOf(p));
        this.unpark();
      },
    });
    this.storage = this.storageInformers(api);
    await Promise.all([nodes.start(), pods.start(), ...this.storage.map((i) => i.start())]);
    for (let i = 0; i < BIND_CONCURRENCY; i++) this.workers.push(this.work(queue));
    this.retryTimer = setInterval(() => this.unpark(), UNSCHEDULABLE_RETRY_MS);
  }

  async stop(): Promise<void> {
    if (this.retryTimer) clearInterval(this.retryTimer);
    this.queue?.shutdown();
    await Promise.allSettled(this.workers);
    this.workers = [];
    await Promise.all([this.pods?.stop(), this.nodes?.stop(), ...this.storage.map((i) => i.stop())]);
    this.storage = [];
    this.claims = undefined;
    this.parked.clear();
  }

  /**
   * Informers over claims, volumes and classes, feeding snapshot.storage; a change may let a
   * parked pod fit. Kinds the API does not serve are left out (their pods then wait, with
   * "persistentvolumeclaim not found").
   */
  private storageInformers(api: ApiServer): Informer[] {
    const s = this.snapshot.storage;
    const kinds: [string, (o: ApiObject) => void, (o: ApiObject) => void][] = [
      [
        'persistentvolumeclaims',
        (o) => s.setClaim(o as SchedulingClaim),
        (o) => s.removeClaim(o as SchedulingClaim),
      ],
      [
        'persistentvolumes',
        (o) => s.setVolume(o as SchedulingVolume),
        (o) => s.removeVolume(o as SchedulingVolume),
      ],
      [
        'storageclasses',
        (o) => s.setClass(o as SchedulingStorageClass),
        (o) => s.removeClass(o as SchedulingStorageClass),
      ],
    ];
    const out: Informer[] = [];
    for (const [resource, set, remove] of kinds) {
      try {
        api.resolve(resource);
      } catch {
        this.o.logger.debug({ resource }, 'kind not served; the scheduler does without it');
        continue;
      }
      const inf = new Informer(api, resource, this.o.logger);
      inf.on({
        add: (o) => {
          set(o);
          this.unpark();
        },
        update: (_o, o) => {
          set(o);
          this.unpark();
        },
        delete: (o) => {
          remove(o);
          this.unpark();
        },
      });
      if (resource === 'persistentvolumeclaims') this.claims = inf;
      out.push(inf);
    }
    return out;
  }

  /**
   * Kubernetes' VolumeBinding PreBind: the claims that wait for their first consumer learn
   * the node, so the provisioner makes their volumes there. A conflict is retried with back-off.
   */
  private async selectNode(keys: readonly string[], node: string): Promise<void> {
    const api = this.api as ApiServer;
    for (const key of keys) {
      const claim = this.claims?.get(key);
      if (!claim) throw new Error(`persistentvolumeclaim ${key} is gone`);
      const annotations = claim.metadata.annotations ?? {};
      if (annotations[SELECTED_NODE_ANNOTATION] === node) continue;
      const updated = await api.update({
        ...claim,
        metadata: { ...claim.metadata, annotations: { ...annotations, [SELECTED_NODE_ANNOTATION]: node } },
      });
      // The next pod sharing the claim must go to the same node, before the watch says so.
      this.snapshot.storage.setClaim(updated as SchedulingClaim);
    }
  }

  private onPod(p: ApiObject): void {
    if (p.spec?.nodeName) {
      this.snapshot.addPod(p as unknown as SchedulingPod);
      this.parked.delete(keyOf(p));
      return;
    }
    if (needsNode(p)) this.queue?.add(keyOf(p));
  }

  /** Something changed: every waiting pod gets another chance. */
  private unpark(): void {
    for (const key of this.parked) this.queue?.add(key);
    this.parked.clear();
  }

  private async work(queue: WorkQueue): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        await this.scheduleOne(key);
        queue.forget(key);
      } catch (err) {
        const delay = queue.retry(key);
        this.o.logger.warn({ err, pod: key, retryInMs: delay }, 'scheduling failed');
      } finally {
        queue.done(key);
      }
    }
  }

  private async scheduleOne(key: string): Promise<void> {
    const pod = this.pods?.get(key);
    if (!pod || !needsNode(pod)) return;
    const api = this.api as ApiServer;
    const result = this.scheduler.schedule(pod as unknown as SchedulingPod, this.snapshot);
    if (result.node === undefined) {
      this.parked.add(key);
      await this.markUnschedulable(pod, result.unschedulable);
      return;
    }
    const node = result.node;
    this.snapshot.assume(pod as unknown as SchedulingPod, node);
    try {
      if (result.claimsToSelect) await this.selectNode(result.claimsToSelect, node);
    } catch (err) {
      this.snapshot.removePod(pod as unknown as SchedulingPod);
      throw err;
    }
    try {
      const bound = await api.update({ ...pod, spec: { ...pod.spec, nodeName: node } });
      this.snapshot.addPod(bound as unknown as SchedulingPod);
      this.events?.recordQuietly(
        bound,
        'Normal',
        'Scheduled',
        `Successfully assigned ${pod.metadata.namespace}/${pod.metadata.name} to ${node}`,
      );
    } catch (err) {
      // Not bound after all: forget the assumption; a changed pod comes back through the watch.
      this.snapshot.removePod(pod as unknown as SchedulingPod);
      if (
        err instanceof ApiError &&
        (err.code === ApiErrorCode.NotFound || err.code === ApiErrorCode.Conflict)
      )
        return;
      throw err;
    }
  }

  private async markUnschedulable(pod: ApiObject, message: string): Promise<void> {
    const api = this.api as ApiServer;
    const conditions = (
      (pod.status?.conditions as { type: string; status: string; message?: string }[]) ?? []
    ).filter((c) => c.type !== 'PodScheduled');
    const prev = ((pod.status?.conditions as { type: string; message?: string }[]) ?? []).find(
      (c) => c.type === 'PodScheduled',
    );
    if (prev?.message === message) return;
    const condition = {
      type: 'PodScheduled',
      status: 'False',
      reason: 'Unschedulable',
      message,
      lastTransitionTime: rfc3339(Date.now()),
    };
    this.events?.recordQuietly(pod, 'Warning', 'FailedScheduling', message);
    try {
      const { resourceVersion: _, ...meta } = pod.metadata;
      await api.update(
        { ...pod, metadata: meta, status: { ...pod.status, conditions: [...conditions, condition] } },
        {},
        true,
      );
    } catch (err) {
      if (!(err instanceof ApiError && err.code === ApiErrorCode.NotFound)) throw err;
    }
  }
}
