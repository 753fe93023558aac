// The agent: this node's kubelet. It registers the Node and heartbeats (node-registration.ts),
// watches the pods bound to this node into a cache, and keeps each one real through a
// PodSync (pod-sync.ts): a work queue of pod uids, one sync at a time per pod, a resync of
// every pod every few seconds, and a reaper that removes containers no pod wants (labels
// say whose they are). Restarting the agent does not restart pods: it adopts what runs.
//
//   watch pods (spec.nodeName = me) ─► cache ─► queue(uid) ─► PodSync.sync(pod) ─► engine
//                                                             └─► Pod status (UpdateStatus)

import type { Logger } from 'pino';
import { ApiError, ApiErrorCode } from '../api/errors.js';
import type { ApiServer } from '../api/server/api-server.js';
import { EventRecorder } from '../api/server/events.js';
import type { WatchHandle } from '../api/server/watch.js';
import type { ApiObject } from '../api/types.js';
import { type Backoff, createBackoff, createImagePullBackoff } from './backoff.js';
import type { EndpointsDrain } from './drain.js';
import type { ConfigLookups } from './env.js';
import { createHostPortAllocator, type HostPortAllocator } from './host-ports.js';
import { cleanupLocalPathVolumes } from './local-path-cleanup.js';
import { NodeRegistration } from './node-registration.js';
import {
  type ClaimLookups,
  LOCAL_PATH_ROOT_ANNOTATION,
  type LocalNode,
  localPathRoot,
} from './persistent-volumes.js';
import { PodIO } from './pod-io.js';
import { PodSync } from './pod-sync.js';
import { type ContainerRuntime, Labels, MANAGED_BY } from './runtime.js';

export interface AgentOptions {
  api: ApiServer;
  runtime: ContainerRuntime;
  nodeName: string;
  /** The node's address: pod ports are published here. */
  nodeAddress: string;
  /** This node's client (gRPC) address, advertised for logs and exec. */
  clientAddress: string;
  clusterId: string;
  /** Pod volumes live under <dataDir>/pods/<uid>/, local-path volumes under <dataDir>/local-path/. */
  dataDir: string;
  labels: Record<string, string>;
  taints: { key: string; value?: string; effect: string }[];
  heartbeatMs: number;
  statusMs: number;
  hostPortRange: [number, number];
  logger: Logger;
  /** How often every pod is synced again even without a change (ms). */
  resyncMs?: number;
  /** Waits, before a terminating pod's containers get SIGTERM, until no proxy routes to it. */
  drain?: EndpointsDrain;
}

const DEFAULT_RESYNC_MS = 2000;
const MAX_CONCURRENT_SYNCS = 2;

export class Agent {
  readonly io: PodIO;
  private readonly registration: NodeRegistration;
  private readonly pods = new Map<string, ApiObject>();
  private readonly syncs = new Map<string, PodSync>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly ports: HostPortAllocator;
  private readonly crashBackoff: Backoff;
  private readonly pullBackoff: Backoff;
  private readonly events: EventRecorder;
  private readonly nodeLabels: Record<string, string>;
  private readonly localNode: LocalNode;
  private cleaning = false;
  private watch: WatchHandle | undefined;
  private resync: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The first list of pods has arrived: before it, the reaper must not judge containers. */
  private synced = false;

  constructor(private readonly o: AgentOptions) {
    this.nodeLabels = {
      [Labels.managedBy]: MANAGED_BY,
      [Labels.cluster]: o.clusterId,
      [Labels.node]: o.nodeName,
    };
    this.ports = createHostPortAllocator({ range: o.hostPortRange });
    this.crashBackoff = createBackoff({ now: Date.now });
    this.pullBackoff = createImagePullBackoff(Date.now);
    this.events = new EventRecorder({
      store: o.api.store,
      source: { component: 'berth-agent', host: o.nodeName },
      logger: o.logger,
    });
    this.io = new PodIO({ runtime: o.runtime, nodeLabels: this.nodeLabels });
    this.registration = new NodeRegistration({
      api: o.api,
      runtime: o.runtime,
      nodeName: o.nodeName,
      address: o.nodeAddress,
      clientAddress: o.clientAddress,
      labels: o.labels,
      annotations: { [LOCAL_PATH_ROOT_ANNOTATION]: localPathRoot(o.dataDir) },
      taints: o.taints,
      heartbeatMs: o.heartbeatMs,
      statusMs: o.statusMs,
      logger: o.logger,
    });
    this.localNode = {
      name: o.nodeName,
      labels: this.registration.labels(),
      localPathRoot: localPathRoot(o.dataDir),
    };
  }

  start(): void {
    void this.registration.run();
    void this.watchPods();
    this.resync = setInterval(() => this.resyncAll(), this.o.resyncMs ?? DEFAULT_RESYNC_MS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.registration.stop();
    if (this.resync) clearInterval(this.resync);
    for (const t of this.timers.values()) clearTimeout(t);
    await this.watch?.cancel();
    // Pods keep running: a restarted agent adopts them.
    await Promise.allSettled([...this.running.values()]);
  }

  /** Pods of this node, from the watch cache. */
  localPods(): ApiObject[] {
    return [...this.pods.values()];
  }

  private async watchPods(): Promise<void> {
    let resourceVersion = '';
    while (!this.stopped) {
      try {
        const ended = new Promise<ApiError | undefined>((resolve) => {
          this.o.api
            .watch(
              'pods',
              {
                fieldSelector: `spec.nodeName=${this.o.nodeName}`,
                resourceVersion,
                bookmarkIntervalMs: 5000,
              },
              {
                event: (e) => {
                  if (e.type === 'ERROR') {
                    resolve(
                      new ApiError(ApiErrorCode.Expired, (e.object as { message?: string }).message ?? ''),
                    );
                    return;
                  }
                  const obj = e.object as ApiObject;
                  resourceVersion = obj.metadata.resourceVersion ?? resourceVersion;
                  if (e.type === 'BOOKMARK') {
                    this.markSynced();
                    return;
                  }
                  const uid = obj.metadata.uid as string;
                  if (e.type === 'DELETED') this.pods.delete(uid);
                  else this.pods.set(uid, obj);
                  this.enqueue(uid);
                },
                end: () => resolve(undefined),
              },
            )
            .then((h) => {
              this.watch = h;
              // The initial ADDED events came before watch() resolved: the cache is complete.
              this.markSynced();
            }, resolve);
        });
        const err = await ended;
        if (this.stopped) return;
        if (err && err.code === ApiErrorCode.Expired) resourceVersion = '';
        if (resourceVersion === '') this.pods.clear();
      } catch (err) {
        this.o.logger.warn({ err }, 'pod watch failed; retrying');
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    this.resyncAll();
  }

  /** The node is Ready only while its engine answers (the kubelet's runtime health check). */
  private async checkRuntime(): Promise<void> {
    try {
      await this.o.runtime.version();
      this.registration.setReady(true, 'AgentReady', 'berth agent is posting ready status');
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      this.registration.setReady(false, 'ContainerRuntimeDown', `container runtime is down: ${why}`);
    }
  }

  private resyncAll(): void {
    if (this.stopped) return;
    void this.checkRuntime();
    if (!this.synced) return;
    for (const uid of this.pods.keys()) this.enqueue(uid);
    void this.reap().catch((err) => this.o.logger.warn({ err }, 'reaping containers failed'));
    void this.cleanVolumes();
  }

  /** Deleted local-path volumes of this node: directories removed, then their finalizers. */
  private async cleanVolumes(): Promise<void> {
    if (this.cleaning) return;
    this.cleaning = true;
    try {
      this.o.api.resolve('persistentvolumes');
    } catch {
      this.cleaning = false;
      return; // The API does not serve PersistentVolumes: nothing to clean.
    }
    try {
      await cleanupLocalPathVolumes({
        api: this.o.api,
        node: this.localNode,
        logger: this.o.logger,
      });
    } catch (err) {
      this.o.logger.warn({ err }, 'local-path volume cleanup failed; retrying');
    } finally {
      this.cleaning = false;
    }
  }

  /** Containers of this node whose pod is gone (deleted while the agent was down, say). */
  private async reap(): Promise<void> {
    const all = await this.o.runtime.list(this.nodeLabels);
    const orphans = new Set<string>();
    for (const c of all) {
      const uid = c.labels[Labels.podUid];
      if (uid && !this.pods.has(uid) && !this.syncs.has(uid)) orphans.add(uid);
    }
    for (const uid of orphans) this.enqueue(uid);
  }

  /** Sync `uid` soon; syncs of one pod never overlap (a change during one runs it again). */
  enqueue(uid: string, afterMs = 0): void {
    if (this.stopped) return;
    if (afterMs > 0) {
      if (this.timers.has(uid)) return;
      this.timers.set(
        uid,
        setTimeout(() => {
          this.timers.delete(uid);
          this.enqueue(uid);
        }, afterMs),
      );
      return;
    }
    if (this.running.has(uid)) {
      this.dirty.add(uid);
      return;
    }
    const run = this.syncOne(uid).finally(() => {
      this.running.delete(uid);
      if (this.dirty.delete(uid)) this.enqueue(uid);
    });
    this.running.set(uid, run);
  }

  private active = 0;
  private readonly waiting: (() => void)[] = [];

  /**
   * At most MAX_CONCURRENT_SYNCS pods make containers at once: a burst of pods then starts
   * one after another instead of all finishing together, late (one dockerd does the work
   * either way). Status and probe work never waits for a slot.
   */
  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= MAX_CONCURRENT_SYNCS) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }

  private async syncOne(uid: string): Promise<void> {
    let s = this.syncs.get(uid);
    if (!s) {
      s = new PodSync(
        {
          api: this.o.api,
          runtime: this.o.runtime,
          nodeName: this.o.nodeName,
          nodeAddress: this.o.nodeAddress,
          nodeLabels: this.nodeLabels,
          dataDir: this.o.dataDir,
          ports: this.ports,
          crashBackoff: this.crashBackoff,
          pullBackoff: this.pullBackoff,
          lookups: this.lookups,
          storage: { lookups: this.claimLookups, node: this.localNode },
          drain: this.o.drain,
          events: this.events,
          logger: this.o.logger,
          requeue: (id, after) => this.enqueue(id, after),
          engineSlot: (fn) => this.limited(fn),
          now: Date.now,
        },
        uid,
      );
      this.syncs.set(uid, s);
    }
    try {
      const result = await s.sync(this.pods.get(uid));
      if (result === 'gone' && !this.pods.has(uid)) this.syncs.delete(uid);
    } catch (err) {
      this.o.logger.warn({ err, pod: this.pods.get(uid)?.metadata.name, uid }, 'pod sync failed; retrying');
      this.enqueue(uid, 1000);
    }
  }

  /** ConfigMaps and Secrets for env and volumes, read from the local store. */
  private readonly lookups: ConfigLookups = {
    configMap: async (namespace, name) => {
      const o = await this.getOrUndefined('configmaps', namespace, name);
      return o ? { ...(o.data as Record<string, string>) } : undefined;
    },
    secret: async (namespace, name) => {
      const o = await this.getOrUndefined('secrets', namespace, name);
      if (!o) return undefined;
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries((o.data as Record<string, string>) ?? {})) {
        out[k] = Buffer.from(v, 'base64').toString('utf8');
      }
      return out;
    },
    services: async (namespace) => (await this.o.api.list('services', { namespace })).items,
  };

  /** Claims and volumes for persistentVolumeClaim volumes, read from the local store. */
  private readonly claimLookups: ClaimLookups = {
    claim: (namespace, name) => this.getOrUndefined('persistentvolumeclaims', namespace, name),
    volume: (name) => this.getOrUndefined('persistentvolumes', undefined, name),
  };

  private async getOrUndefined(
    resource: string,
    namespace: string | undefined,
    name: string,
  ): Promise<ApiObject | undefined> {
    try {
      return await this.o.api.get(resource, namespace, name);
    } catch (err) {
      if (err instanceof ApiError && err.code === ApiErrorCode.NotFound) return undefined;
      throw err;
    }
  }
}
