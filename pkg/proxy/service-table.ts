// What the proxy should serve, computed from Service and Endpoints objects alone (pure: no
// sockets, no timers). One entry per Service port: where to listen (clusterIP:port, and
// nodeAddress:nodePort for NodePort and LoadBalancer Services), the ClientIP affinity, and
// the ready backends (node address and host port of each ready pod).
//
//   Service ──┐
//             ├─► servicePortEntries() ─► ServicePortEntry[] ─► listeners (proxier.ts)
//   Endpoints ┘                                              └─► backends() (Ingress router)

import type { ApiObject } from '../api/types.js';
import type { EndpointAddress, EndpointPort, EndpointSubset } from '../controller/endpoints.js';
import type { AffinityConfig } from './balancer.js';
import type { Backend, ServiceBackends, ServicePortRef } from './types.js';

/** Where a Service port is served on this node. */
export interface ListenAddress {
  host: string;
  port: number;
  kind: 'ClusterIP' | 'NodePort';
}

/** One Service port as the proxy serves it. */
export interface ServicePortEntry {
  /** `namespace/service:portName` (the port number when the port has no name). */
  key: string;
  namespace: string;
  service: string;
  portName?: string;
  /** The Service port (spec.ports[].port). */
  port: number;
  protocol: string;
  /** Empty for headless and ExternalName Services: they are not proxied. */
  listen: ListenAddress[];
  affinity?: AffinityConfig;
  /** Ready backends, sorted by ip then port, without duplicates. */
  backends: Backend[];
}

/** A Service port the L4 proxy does not serve (UDP, SCTP). */
export interface SkippedPort {
  key: string;
  protocol: string;
}

interface ServicePortView {
  name?: string;
  port: number;
  protocol?: string;
  nodePort?: number;
}

interface ServiceSpecView {
  type?: string;
  clusterIP?: string;
  ports?: ServicePortView[];
  sessionAffinity?: string;
  sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
}

/** Kubernetes' default ClientIP affinity timeout: three hours. */
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10_800;

const specOf = (svc: ApiObject) => (svc.spec ?? {}) as unknown as ServiceSpecView;

export const portKey = (namespace: string, service: string, p: { name?: string; port: number }): string =>
  `${namespace}/${service}:${p.name || p.port}`;

/** Whether a Service gets listeners: not headless (clusterIP None or empty), not ExternalName. */
export function isProxied(svc: ApiObject): boolean {
  const spec = specOf(svc);
  return spec.type !== 'ExternalName' && !!spec.clusterIP && spec.clusterIP !== 'None';
}

export function affinityOf(svc: ApiObject): AffinityConfig | undefined {
  const spec = specOf(svc);
  if (spec.sessionAffinity !== 'ClientIP') return undefined;
  const t = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds;
  return { timeoutSeconds: typeof t === 'number' && t > 0 ? t : DEFAULT_AFFINITY_TIMEOUT_SECONDS };
}

/**
 * The port of one Endpoints subset that serves a Service port: same name (both unnamed
 * counts) and protocol; failing that, a subset's single unnamed port when the Service has a
 * single port (hand-written Endpoints often leave the name out).
 */
export function subsetPort(
  subset: EndpointSubset,
  sp: { name?: string; protocol?: string },
  singleServicePort: boolean,
): EndpointPort | undefined {
  const ports = subset.ports ?? [];
  const protocol = sp.protocol ?? 'TCP';
  const named = ports.find((p) => (p.name ?? '') === (sp.name ?? '') && (p.protocol ?? 'TCP') === protocol);
  if (named) return named;
  const only = ports.length === 1 ? ports[0] : undefined;
  if (singleServicePort && only && !only.name && (only.protocol ?? 'TCP') === protocol) return only;
  return undefined;
}

/** The ready backends of one Service port, sorted (ip, then port) and without duplicates. */
export function readyBackends(
  endpoints: ApiObject | undefined,
  sp: { name?: string; protocol?: string },
  singleServicePort: boolean,
): Backend[] {
  const subsets = ((endpoints as { subsets?: EndpointSubset[] } | undefined)?.subsets ??
    []) as EndpointSubset[];
  const byKey = new Map<string, Backend>();
  for (const subset of subsets) {
    const port = subsetPort(subset, sp, singleServicePort);
    if (!port || !(port.port > 0)) continue;
    for (const a of (subset.addresses ?? []) as EndpointAddress[]) {
      if (!a?.ip) continue;
      const b: Backend = { ip: a.ip, port: port.port };
      if (a.nodeName) b.nodeName = a.nodeName;
      if (a.targetRef?.name)
        b.pod = `${a.targetRef.namespace ?? endpoints?.metadata.namespace}/${a.targetRef.name}`;
      byKey.set(`${b.ip}:${b.port}`, b);
    }
  }
  return [...byKey.values()].sort((x, y) => compareIp(x.ip, y.ip) || x.port - y.port);
}

/**
 * Every port of a Service with its listen addresses and backends. Non-TCP ports come back
 * in `skipped`. ExternalName Services have entries with no listeners and no backends.
 */
export function servicePortEntries(
  svc: ApiObject,
  endpoints: ApiObject | undefined,
  nodeAddress: string,
): { entries: ServicePortEntry[]; skipped: SkippedPort[] } {
  const spec = specOf(svc);
  const namespace = svc.metadata.namespace ?? '';
  const service = svc.metadata.name ?? '';
  const ports = spec.ports ?? [];
  const proxied = isProxied(svc);
  const nodePorts = spec.type === 'NodePort' || spec.type === 'LoadBalancer';
  const affinity = affinityOf(svc);
  const entries: ServicePortEntry[] = [];
  const skipped: SkippedPort[] = [];
  for (const sp of ports) {
    const key = portKey(namespace, service, sp);
    const protocol = sp.protocol ?? 'TCP';
    if (protocol !== 'TCP') {
      skipped.push({ key, protocol });
      continue;
    }
    const listen: ListenAddress[] = [];
    if (proxied) {
      listen.push({ host: spec.clusterIP as string, port: sp.port, kind: 'ClusterIP' });
      if (nodePorts && typeof sp.nodePort === 'number' && sp.nodePort > 0)
        listen.push({ host: nodeAddress, port: sp.nodePort, kind: 'NodePort' });
    }
    const entry: ServicePortEntry = {
      key,
      namespace,
      service,
      port: sp.port,
      protocol,
      listen,
      backends: spec.type === 'ExternalName' ? [] : readyBackends(endpoints, sp, ports.length === 1),
    };
    if (sp.name) entry.portName = sp.name;
    if (affinity) entry.affinity = affinity;
    entries.push(entry);
  }
  return { entries, skipped };
}

/**
 * The current Services and Endpoints, and the entries computed from them (recomputed per
 * Service when it or its Endpoints change). Objects handed in are shared with the informer
 * caches and never changed. Backs ServiceBackends' `backends` lookups.
 */
export class ServiceTable implements Pick<ServiceBackends, 'backends'> {
  private readonly services = new Map<string, ApiObject>();
  private readonly endpoints = new Map<string, ApiObject>();
  private readonly computed = new Map<string, { entries: ServicePortEntry[]; skipped: SkippedPort[] }>();

  constructor(private readonly nodeAddress: string) {}

  setService(svc: ApiObject): void {
    const key = objectKey(svc);
    this.services.set(key, svc);
    this.computed.delete(key);
  }

  deleteService(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    this.services.delete(key);
    this.computed.delete(key);
  }

  setEndpoints(ep: ApiObject): void {
    const key = objectKey(ep);
    this.endpoints.set(key, ep);
    this.computed.delete(key);
  }

  deleteEndpoints(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    this.endpoints.delete(key);
    this.computed.delete(key);
  }

  /** The TCP entries of every Service, ordered by Service then port order. */
  entries(): ServicePortEntry[] {
    return [...this.services.keys()].sort().flatMap((k) => this.compute(k)?.entries ?? []);
  }

  /** Ports the L4 proxy skips (not TCP). */
  skipped(): SkippedPort[] {
    return [...this.services.keys()].sort().flatMap((k) => this.compute(k)?.skipped ?? []);
  }

  backends(namespace: string, service: string, ref: ServicePortRef): Backend[] | undefined {
    const svc = this.services.get(`${namespace}/${service}`);
    if (!svc) return undefined;
    const ports = specOf(svc).ports ?? [];
    const sp =
      ref.name !== undefined && ref.name !== ''
        ? ports.find((p) => p.name === ref.name)
        : ports.find((p) => p.port === ref.number && (p.protocol ?? 'TCP') === 'TCP');
    if (!sp || (sp.protocol ?? 'TCP') !== 'TCP') return undefined;
    const key = portKey(namespace, service, sp);
    return this.compute(`${namespace}/${service}`)?.entries.find((e) => e.key === key)?.backends ?? [];
  }

  private compute(key: string): { entries: ServicePortEntry[]; skipped: SkippedPort[] } | undefined {
    let c = this.computed.get(key);
    if (c) return c;
    const svc = this.services.get(key);
    if (!svc) return undefined;
    c = servicePortEntries(svc, this.endpoints.get(key), this.nodeAddress);
    this.computed.set(key, c);
    return c;
  }
}

const objectKey = (o: ApiObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;

/** Dotted IPv4 addresses in numeric order; anything else by string. */
function compareIp(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  if (pa.length === 4 && pb.length === 4) {
    for (let i = 0; i < 4; i++) {
      const d = Number(pa[i]) - Number(pb[i]);
      if (d !== 0) return d;
    }
    return 0;
  }
  return a.localeCompare(b);
}
