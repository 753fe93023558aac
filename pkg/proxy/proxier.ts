// The node's Service proxy: watches Services and Endpoints and keeps one TcpProxy listening
// per Service port address (clusterIP:port on every node, nodeAddress:nodePort for NodePort
// and LoadBalancer Services). Level-triggered: every change schedules one reconcile (bursts
// coalesce), which compares the wanted listeners with the open ones.
//
//   Informer(services) ──┐                       ┌─► open new listeners (bind, retry every 2 s)
//                        ├─► ServiceTable ─► reconcile ─► close removed ones
//   Informer(endpoints) ─┘                       └─► swap backends / affinity in place
//                                                    └─► onApplied(highest Endpoints revision)
//
// Several nodes may share one machine (127.0.0.N each) and so one cluster IP: whichever
// binds clusterIP:port first serves it, the others retry every bindRetryMs and take over
// when it goes. A cluster IP not local to the machine is added to `lo` while used.

import type { Logger } from 'pino';
import type { ApiServer } from '../api/server/api-server.js';
import type { ApiObject } from '../api/types.js';
import { Informer } from '../controller/informer.js';
import type { AffinityConfig } from './balancer.js';
import { createIpCommandAdapter, type LocalAddressAdapter, LocalAddresses } from './local-address.js';
import { type ListenAddress, type ServicePortEntry, ServiceTable } from './service-table.js';
import { TcpProxy } from './tcp-proxy.js';
import type { Backend, ServiceBackends, ServicePortRef } from './types.js';

export interface ProxierOptions {
  api: ApiServer;
  nodeName: string;
  /** This node's address: NodePort listeners bind here. */
  nodeAddress: string;
  /** Close proxied connections idle this long (10 minutes by default). */
  idleTimeoutMs?: number;
  /** Give up on an endpoint not accepting within this (1 s by default). */
  connectTimeoutMs?: number;
  /** Retry a bind that failed (address taken by another node on this machine) this often. */
  bindRetryMs?: number;
  logger: Logger;
  /** How cluster IPs are made local; `ip addr add IP/32 dev lo` by default. */
  localAddress?: LocalAddressAdapter;
  /**
   * Called after each reconcile with the highest Endpoints resourceVersion applied so far:
   * from then on, new connections only go to the backends that Endpoints lists.
   */
  onApplied?: (endpointsRevision: number) => void;
}

export const DEFAULT_BIND_RETRY_MS = 2000;

export type ListenerState = 'binding' | 'listening' | 'waiting' | 'closed';

/** One listen address of a Service port, for status and tests. */
export interface ListenerStatus {
  service: string;
  host: string;
  port: number;
  kind: ListenAddress['kind'];
  state: ListenerState;
  /** Why the last bind failed (EADDRINUSE: another node on this machine holds it). */
  error?: string;
}

interface Slot {
  address: ListenAddress;
  service: string;
  /** What the slot's TcpProxy reads per connection; replaced on each reconcile. */
  backends: Backend[];
  affinity: AffinityConfig | undefined;
  proxy: TcpProxy;
  state: ListenerState;
  error?: string;
  timer?: NodeJS.Timeout;
  /** The bind attempt in flight, if any. */
  binding: Promise<void>;
}

const addressKey = (a: { host: string; port: number }) => `${a.host}:${a.port}`;

export class Proxier implements ServiceBackends {
  private readonly table: ServiceTable;
  private readonly logger: Logger;
  private readonly local: LocalAddresses;
  private readonly bindRetryMs: number;
  private readonly slots = new Map<string, Slot>();
  /** Closing listeners by address: a new one on the same address binds after. */
  private readonly closing = new Map<string, Promise<void>>();
  private readonly changeListeners: (() => void)[] = [];
  private readonly warned = new Set<string>();
  private services: Informer | undefined;
  private endpoints: Informer | undefined;
  private endpointsRevision = 0;
  private ready = false;
  private stopped = false;
  private scheduled: NodeJS.Immediate | undefined;

  constructor(private readonly options: ProxierOptions) {
    this.logger = options.logger.child({ component: 'proxy' });
    this.table = new ServiceTable(options.nodeAddress);
    this.bindRetryMs = options.bindRetryMs ?? DEFAULT_BIND_RETRY_MS;
    this.local = new LocalAddresses({
      adapter: options.localAddress ?? createIpCommandAdapter(),
      logger: this.logger,
    });
  }

  /**
   * Watch Services and Endpoints; resolves once both are listed and the first reconcile has
   * made its first bind attempts (a listener whose address is taken keeps retrying).
   */
  async start(): Promise<void> {
    const { api } = this.options;
    const informerLogger = this.logger.child({ part: 'informer' });
    this.services = new Informer(api, 'services', informerLogger);
    this.endpoints = new Informer(api, 'endpoints', informerLogger);
    this.services.on({
      add: (svc) => this.changed(() => this.table.setService(svc)),
      update: (_old, svc) => this.changed(() => this.table.setService(svc)),
      delete: (svc) => this.changed(() => this.table.deleteService(nsOf(svc), nameOf(svc))),
    });
    this.endpoints.on({
      add: (ep) => this.changed(() => this.setEndpoints(ep)),
      update: (_old, ep) => this.changed(() => this.setEndpoints(ep)),
      delete: (ep) => this.changed(() => this.table.deleteEndpoints(nsOf(ep), nameOf(ep))),
    });
    await Promise.all([this.services.start(), this.endpoints.start()]);
    if (this.stopped) return;
    this.ready = true;
    await this.reconcile();
  }

  /** Stop watching, close every listener and its connections, remove added cluster IPs. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    await Promise.all([this.services?.stop(), this.endpoints?.stop()]);
    await Promise.all([...this.slots.values()].map((s) => this.closeSlot(s)));
    this.slots.clear();
    await Promise.all([...this.closing.values()]);
    await this.local.releaseAll();
  }

  backends(namespace: string, service: string, port: ServicePortRef): Backend[] | undefined {
    return this.table.backends(namespace, service, port);
  }

  /** `listener` runs after each reconcile (coalesced over bursts of changes). */
  onChange(listener: () => void): void {
    this.changeListeners.push(listener);
  }

  /** The highest Endpoints resourceVersion applied so far. */
  get appliedRevision(): number {
    return this.endpointsRevision;
  }

  /** Every wanted listen address and how it is doing. */
  listeners(): ListenerStatus[] {
    return [...this.slots.values()].map((s) => {
      const st: ListenerStatus = {
        service: s.service,
        host: s.address.host,
        port: s.address.port,
        kind: s.address.kind,
        state: s.state,
      };
      if (s.error) st.error = s.error;
      return st;
    });
  }

  private setEndpoints(ep: ApiObject): void {
    this.table.setEndpoints(ep);
    const rv = Number(ep.metadata.resourceVersion);
    if (Number.isFinite(rv) && rv > this.endpointsRevision) this.endpointsRevision = rv;
  }

  private changed(apply: () => void): void {
    apply();
    if (!this.ready || this.stopped || this.scheduled) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      void this.reconcile();
    });
  }

  /**
   * Make the listeners match the table: close those no longer wanted (or now wanted by
   * another Service port), open new ones, and swap backends and affinity of the others.
   * Resolves after the new listeners' first bind attempts.
   */
  private async reconcile(): Promise<void> {
    if (this.stopped) return;
    const wanted = new Map<string, { entry: ServicePortEntry; address: ListenAddress }>();
    for (const entry of this.table.entries()) {
      for (const address of entry.listen) {
        const k = addressKey(address);
        const holder = wanted.get(k);
        if (holder) {
          this.warnOnce(
            `conflict|${k}|${entry.key}`,
            { address: k, service: entry.key, holder: holder.entry.key },
            'address already used by another service port; skipped',
          );
          continue;
        }
        wanted.set(k, { entry, address });
      }
    }
    for (const s of this.table.skipped())
      this.warnOnce(
        `skip|${s.key}|${s.protocol}`,
        { service: s.key, protocol: s.protocol },
        'only TCP ports are proxied; port skipped',
      );

    for (const [k, slot] of this.slots) {
      const w = wanted.get(k);
      if (w && w.entry.key === slot.service) continue;
      this.slots.delete(k);
      const closed = this.closeSlot(slot).finally(() => {
        if (this.closing.get(k) === closed) this.closing.delete(k);
      });
      this.closing.set(k, closed);
    }
    const opened: Promise<void>[] = [];
    for (const [k, { entry, address }] of wanted) {
      const slot = this.slots.get(k);
      if (slot) {
        slot.backends = entry.backends;
        if (slot.affinity?.timeoutSeconds !== entry.affinity?.timeoutSeconds) {
          slot.affinity = entry.affinity;
          slot.proxy.setAffinity(entry.affinity);
        }
        continue;
      }
      opened.push(this.openSlot(k, entry, address));
    }

    const callbacks = [() => this.options.onApplied?.(this.endpointsRevision), ...this.changeListeners];
    for (const callback of callbacks) {
      try {
        callback();
      } catch (err) {
        this.logger.warn({ err }, 'proxy change callback failed');
      }
    }
    await Promise.all(opened);
  }

  private openSlot(k: string, entry: ServicePortEntry, address: ListenAddress): Promise<void> {
    const slot: Slot = {
      address,
      service: entry.key,
      backends: entry.backends,
      affinity: entry.affinity,
      state: 'binding',
      binding: Promise.resolve(),
      proxy: new TcpProxy({
        host: address.host,
        port: address.port,
        name: entry.key,
        backends: () => slot.backends,
        affinity: entry.affinity,
        idleTimeoutMs: this.options.idleTimeoutMs,
        connectTimeoutMs: this.options.connectTimeoutMs,
        logger: this.logger,
      }),
    };
    this.slots.set(k, slot);
    const before = this.closing.get(k);
    slot.binding = (async () => {
      await before;
      if (address.kind === 'ClusterIP') await this.local.acquire(address.host);
      await this.bind(slot);
    })();
    return slot.binding;
  }

  private async bind(slot: Slot): Promise<void> {
    if (isClosed(slot)) return;
    const { address } = slot;
    const where = addressKey(address);
    if (address.kind === 'ClusterIP') await this.local.ensure(address.host);
    if (isClosed(slot)) return;
    try {
      await slot.proxy.listen();
      if (isClosed(slot)) {
        await slot.proxy.close();
        return;
      }
      slot.state = 'listening';
      slot.error = undefined;
      this.logger.info({ service: slot.service, address: where, kind: address.kind }, 'listening');
    } catch (err) {
      if (isClosed(slot)) return;
      const code = (err as { code?: string }).code ?? String(err);
      const fields = { service: slot.service, address: where, err: code };
      // Another node on this machine holding a cluster IP is normal: say so quietly.
      if (code === 'EADDRINUSE' && address.kind === 'ClusterIP')
        this.logger.debug(fields, 'address in use; retrying');
      else if (code !== slot.error) this.logger.warn(fields, 'cannot listen; retrying');
      slot.error = code;
      slot.state = 'waiting';
      slot.timer = setTimeout(() => {
        slot.timer = undefined;
        slot.binding = this.bind(slot);
      }, this.bindRetryMs);
    }
  }

  private async closeSlot(slot: Slot): Promise<void> {
    const wasListening = slot.state === 'listening';
    slot.state = 'closed';
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
    await slot.binding;
    await slot.proxy.close();
    if (wasListening)
      this.logger.info({ service: slot.service, address: addressKey(slot.address) }, 'stopped listening');
    if (slot.address.kind === 'ClusterIP') await this.local.release(slot.address.host);
  }

  private warnOnce(key: string, fields: Record<string, unknown>, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.logger.warn(fields, msg);
  }
}

/** A slot's state, read afresh after an await (the compiler would keep an earlier narrowing). */
const isClosed = (slot: Slot) => slot.state === 'closed';
const nsOf = (o: ApiObject) => o.metadata.namespace ?? '';
const nameOf = (o: ApiObject) => o.metadata.name ?? '';
