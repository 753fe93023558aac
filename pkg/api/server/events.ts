// Events: what the system did to an object and why (Scheduled, Pulled, Started, Killing,
// BackOff, FailedScheduling, ...), stored as core/v1 Event objects in the object's namespace.
//
// A repeat of the same event (same object, reason, message and source) updates one Event,
// counting it and moving lastTimestamp, instead of adding another. Events age out after an
// hour the way Kubernetes ages them out of etcd: each is attached to a store lease, shared by
// the events written within a minute, so expiry costs one lease per minute, not one per event.

import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { ApiError, ApiErrorCode } from '../errors.js';
import type { KindInfo } from '../kinds.js';
import { type ApiObject, rfc3339 } from '../types.js';
import { resolveKind } from './names.js';
import type { ObjectStore } from './object-store.js';

export type EventType = 'Normal' | 'Warning';

/** What happened: Kubernetes' reason strings where Kubernetes has one. */
export const EventReason = {
  Scheduled: 'Scheduled',
  FailedScheduling: 'FailedScheduling',
  Pulling: 'Pulling',
  Pulled: 'Pulled',
  Failed: 'Failed',
  Created: 'Created',
  Started: 'Started',
  Killing: 'Killing',
  BackOff: 'BackOff',
  Unhealthy: 'Unhealthy',
  SuccessfulCreate: 'SuccessfulCreate',
  SuccessfulDelete: 'SuccessfulDelete',
  ScalingReplicaSet: 'ScalingReplicaSet',
  NodeReady: 'NodeReady',
  NodeNotReady: 'NodeNotReady',
} as const;

export interface EventSource {
  /** 'scheduler', 'agent', 'replicaset-controller', ... */
  component: string;
  /** The node that saw it. */
  host?: string;
}

/** How long an event is kept after its last occurrence (seconds). */
export const EVENT_TTL_SECONDS = 3600;
/** Events written within this long share one lease (ms). */
const LEASE_SHARE_MS = 60_000;
const ATTEMPTS = 3;

export interface EventRecorderOptions {
  store: ObjectStore;
  source: EventSource;
  logger: Logger;
  now?: () => number;
  ttlSeconds?: number;
}

export class EventRecorder {
  private lease: { id: number; grantedAt: number } | undefined;
  private readonly kind: KindInfo = resolveKind('events');
  private readonly now: () => number;

  constructor(private readonly options: EventRecorderOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Record that `reason` happened to `object`. Resolves with the Event as stored. Events are
   * best-effort for callers that must not fail because of them: use `recordQuietly`.
   */
  async record(object: ApiObject, type: EventType, reason: string, message: string): Promise<ApiObject> {
    const { source } = this.options;
    const namespace = object.metadata.namespace ?? 'default';
    const involved = {
      apiVersion: object.apiVersion,
      kind: object.kind,
      name: object.metadata.name,
      namespace: object.metadata.namespace,
      uid: object.metadata.uid,
      resourceVersion: object.metadata.resourceVersion,
    };
    const digest = createHash('sha256')
      .update(JSON.stringify([involved.kind, involved.name, involved.uid, type, reason, message, source]))
      .digest('hex')
      .slice(0, 16);
    const name = `${object.metadata.name}.${digest}`;
    for (let attempt = 1; ; attempt++) {
      const at = rfc3339(this.now());
      const lease = await this.currentLease();
      const found = await this.options.store.get(this.kind, namespace, name);
      try {
        if (found) {
          const prev = found.object;
          const next: ApiObject = { ...prev, count: Number(prev.count ?? 1) + 1, lastTimestamp: at };
          const rev = await this.options.store.update(this.kind, next, found.revision, lease);
          if (rev !== undefined)
            return { ...next, metadata: { ...next.metadata, resourceVersion: String(rev) } };
        } else {
          const event: ApiObject = {
            apiVersion: 'v1',
            kind: 'Event',
            metadata: { name, namespace, uid: randomUUID(), creationTimestamp: at },
            involvedObject: involved,
            reason,
            message,
            type,
            count: 1,
            firstTimestamp: at,
            lastTimestamp: at,
            source: { component: source.component, ...(source.host ? { host: source.host } : {}) },
            reportingComponent: source.component,
            reportingInstance: source.host ?? '',
          };
          const rev = await this.options.store.create(this.kind, event, lease);
          if (rev !== undefined)
            return { ...event, metadata: { ...event.metadata, resourceVersion: String(rev) } };
        }
      } catch (err) {
        // The shared lease expired under us (a long pause): take a new one and try again.
        if (
          !(
            err instanceof ApiError &&
            err.code === ApiErrorCode.Internal &&
            /lease not found/.test(err.message)
          )
        ) {
          throw err;
        }
        this.lease = undefined;
      }
      if (attempt >= ATTEMPTS) throw new Error(`event ${namespace}/${name} kept changing; not recorded`);
    }
  }

  /** record(), logging instead of failing: an event must never break the work it reports. */
  recordQuietly(object: ApiObject, type: EventType, reason: string, message: string): void {
    this.record(object, type, reason, message).catch((err) =>
      this.options.logger.warn({ err, reason, object: object.metadata.name }, 'could not record an event'),
    );
  }

  private async currentLease(): Promise<number> {
    const now = this.now();
    if (this.lease && now - this.lease.grantedAt < LEASE_SHARE_MS) return this.lease.id;
    const ttl = (this.options.ttlSeconds ?? EVENT_TTL_SECONDS) + LEASE_SHARE_MS / 1000;
    const id = await this.options.store.grantLease(ttl);
    this.lease = { id, grantedAt: now };
    return id;
  }
}
