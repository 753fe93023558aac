// The Ingress route table: every Ingress of every namespace compiled into host buckets of
// ordered paths, and the match of one request (Host header and URL path) against them.
// Pure: no I/O, no clock; ingress-server.ts rebuilds a table when Ingresses change.
//
// Matching, after Kubernetes' networking.k8s.io/v1 Ingress and the Gateway API's precedence:
//   1. Hosts: the request's Host (port removed, lower case, no trailing dot) is looked up
//      among precise hosts, then `*.suffix` wildcards (one label exactly), then rules
//      without a host. The first of these buckets with a matching path wins, so a precise
//      host that only routes /api still lets / fall through to a host-less rule.
//   2. Paths within a bucket: the longest path wins (Prefix paths counted without their
//      trailing "/"), Exact before Prefix on equal length. ImplementationSpecific is Prefix.
//   3. The same host, path and match from two Ingresses: the older Ingress (creation time,
//      then namespace/name) wins; within one Ingress the first listed wins.
//   4. No rule matches: a spec.defaultBackend, preferring an Ingress whose rules name the
//      request's host (precise, then wildcard), then the oldest.

import {
  PATH_TYPE_EXACT,
  PATH_TYPE_IMPLEMENTATION_SPECIFIC,
  PATH_TYPE_PREFIX,
  type PathType,
} from '../api/schema/ingress.js';
import type { ApiObject } from '../api/types.js';
import type { ServicePortRef } from './types.js';

/** A Service port of the Ingress's namespace. */
export interface ServiceBackendRef {
  kind: 'service';
  namespace: string;
  name: string;
  port: ServicePortRef;
}

/** A `resource` backend: stored by the API, not served by Berth's router. */
export interface ResourceBackendRef {
  kind: 'resource';
  namespace: string;
  apiGroup: string;
  resourceKind: string;
  name: string;
}

export type IngressBackendRef = ServiceBackendRef | ResourceBackendRef;

/** One path of one rule of one Ingress. */
export interface IngressRoute {
  /** `namespace/name` of the Ingress. */
  ingress: string;
  /** Lower case; `*.foo.com` for a wildcard; '' for any host. */
  host: string;
  path: string;
  pathType: PathType;
  backend: IngressBackendRef;
}

export interface RouteMatch {
  /** `namespace/name` of the Ingress that routed the request. */
  ingress: string;
  backend: IngressBackendRef;
  /** The matching path; undefined when a default backend answered. */
  route?: IngressRoute;
}

export interface IngressRoutes {
  /** Where a request goes: `host` is the Host header as sent, `url` the request target. */
  match(host: string | undefined, url: string): RouteMatch | undefined;
  /** Every Service port some route or default backend names, each once. */
  serviceBackends(): ServiceBackendRef[];
  /** Routes that lost to an older identical one (same host, path and match), for logs. */
  readonly shadowed: readonly IngressRoute[];
}

/** A route compiled for matching. */
interface Compiled {
  route: IngressRoute;
  exact: boolean;
  /** Exact: the path; Prefix: its elements. */
  elements: string[];
  /** Precedence length: the path (Exact) or "/" + elements joined (Prefix). */
  length: number;
  order: number;
}

interface DefaultBackend {
  ingress: string;
  backend: IngressBackendRef;
  hosts: Set<string>;
  wildcards: Set<string>;
}

/** The Host header as routes see it: no port, lower case, no trailing dot ('' when absent). */
export function normalizeHost(host: string | undefined): string {
  let h = (host ?? '').trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    h = end < 0 ? h : h.slice(0, end + 1);
  } else {
    const colon = h.indexOf(':');
    if (colon >= 0 && colon === h.lastIndexOf(':')) h = h.slice(0, colon);
  }
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

/** The path of a request target: query and fragment removed; absolute-form URLs reduced to it. */
export function requestPath(url: string): string {
  let p = url;
  if (!p.startsWith('/')) {
    try {
      p = new URL(p).pathname;
    } catch {
      return p;
    }
  }
  const end = p.search(/[?#]/);
  return end < 0 ? p : p.slice(0, end);
}

const pathElements = (p: string): string[] => p.split('/').filter((e) => e !== '');

/** Whether a Prefix path's elements lead the request path's elements. */
function prefixMatch(prefix: readonly string[], request: readonly string[]): boolean {
  if (prefix.length > request.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== request[i]) return false;
  return true;
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const objAt = (o: unknown, k: string): Record<string, unknown> | undefined =>
  isObj(o) && isObj(o[k]) ? (o[k] as Record<string, unknown>) : undefined;
const strAt = (o: unknown, k: string): string =>
  isObj(o) && typeof o[k] === 'string' ? (o[k] as string) : '';
const listAt = (o: unknown, k: string): unknown[] => (isObj(o) && Array.isArray(o[k]) ? o[k] : []);

/** The backend an Ingress names, or undefined when it is malformed (the API refuses those). */
function backendOf(namespace: string, raw: unknown): IngressBackendRef | undefined {
  const service = objAt(raw, 'service');
  if (service) {
    const port = objAt(service, 'port');
    const number = isObj(port) && typeof port.number === 'number' ? port.number : 0;
    const name = strAt(port, 'name');
    if (strAt(service, 'name') === '' || (number === 0 && name === '')) return undefined;
    return {
      kind: 'service',
      namespace,
      name: strAt(service, 'name'),
      port: number !== 0 ? { number } : { name },
    };
  }
  const resource = objAt(raw, 'resource');
  if (resource) {
    return {
      kind: 'resource',
      namespace,
      apiGroup: strAt(resource, 'apiGroup'),
      resourceKind: strAt(resource, 'kind'),
      name: strAt(resource, 'name'),
    };
  }
  return undefined;
}

const keyOfIngress = (o: ApiObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;

/** Oldest first (creation time, then namespace/name); objects without a time count as newest. */
function byAge(a: ApiObject, b: ApiObject): number {
  const ta = Date.parse(a.metadata.creationTimestamp ?? '');
  const tb = Date.parse(b.metadata.creationTimestamp ?? '');
  const na = Number.isNaN(ta) ? Number.POSITIVE_INFINITY : ta;
  const nb = Number.isNaN(tb) ? Number.POSITIVE_INFINITY : tb;
  if (na !== nb) return na < nb ? -1 : 1;
  const ka = keyOfIngress(a);
  const kb = keyOfIngress(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function compile(route: IngressRoute, order: number): Compiled {
  const exact = route.pathType === PATH_TYPE_EXACT;
  // An ImplementationSpecific path may be empty: it then matches everything, like "/".
  const elements = exact ? [route.path] : pathElements(route.path);
  const length = exact ? route.path.length : 1 + elements.join('/').length;
  return { route, exact, elements, length, order };
}

const precedence = (a: Compiled, b: Compiled): number =>
  b.length - a.length || (a.exact === b.exact ? 0 : a.exact ? -1 : 1) || a.order - b.order;

function firstMatch(list: readonly Compiled[] | undefined, path: string, elements: string[]) {
  if (!list) return undefined;
  for (const c of list) {
    if (c.exact ? c.elements[0] === path : prefixMatch(c.elements, elements)) return c.route;
  }
  return undefined;
}

/** The wildcard suffix a host falls under (`bar.foo.com` → `foo.com`), or undefined. */
function wildcardSuffix(host: string): string | undefined {
  const dot = host.indexOf('.');
  return dot > 0 ? host.slice(dot + 1) : undefined;
}

/** The route table of a set of Ingresses (any namespaces; objects are only read). */
export function buildIngressRoutes(ingresses: readonly ApiObject[]): IngressRoutes {
  const exactHosts = new Map<string, Compiled[]>();
  const wildcardHosts = new Map<string, Compiled[]>();
  const anyHost: Compiled[] = [];
  const defaults: DefaultBackend[] = [];
  const shadowed: IngressRoute[] = [];
  const seen = new Set<string>();
  let order = 0;

  for (const ing of [...ingresses].sort(byAge)) {
    const namespace = ing.metadata.namespace ?? '';
    const ingress = keyOfIngress(ing);
    const spec = ing.spec;
    const hosts = new Set<string>();
    const wildcards = new Set<string>();
    for (const rule of listAt(spec, 'rules')) {
      const host = strAt(rule, 'host').toLowerCase();
      if (host.startsWith('*.')) wildcards.add(host.slice(2));
      else if (host !== '') hosts.add(host);
      for (const p of listAt(objAt(rule, 'http'), 'paths')) {
        const backend = backendOf(namespace, objAt(p, 'backend'));
        const rawType = strAt(p, 'pathType');
        const known =
          rawType === PATH_TYPE_EXACT ||
          rawType === PATH_TYPE_PREFIX ||
          rawType === PATH_TYPE_IMPLEMENTATION_SPECIFIC;
        if (!backend || !known) continue;
        const route: IngressRoute = {
          ingress,
          host,
          path: strAt(p, 'path'),
          pathType: rawType as PathType,
          backend,
        };
        const c = compile(route, order++);
        const key = `${host}|${c.exact ? 'exact' : 'prefix'}|${c.exact ? route.path : c.elements.join('/')}`;
        if (seen.has(key)) {
          shadowed.push(route);
          continue;
        }
        seen.add(key);
        if (host === '') anyHost.push(c);
        else {
          const map = host.startsWith('*.') ? wildcardHosts : exactHosts;
          const bucketKey = host.startsWith('*.') ? host.slice(2) : host;
          const list = map.get(bucketKey);
          if (list) list.push(c);
          else map.set(bucketKey, [c]);
        }
      }
    }
    const def = backendOf(namespace, objAt(spec, 'defaultBackend'));
    if (def) defaults.push({ ingress, backend: def, hosts, wildcards });
  }
  anyHost.sort(precedence);
  for (const list of exactHosts.values()) list.sort(precedence);
  for (const list of wildcardHosts.values()) list.sort(precedence);

  const routes = [...exactHosts.values(), ...wildcardHosts.values(), anyHost].flat();

  return {
    shadowed,
    match(hostHeader, url) {
      const host = normalizeHost(hostHeader);
      const path = requestPath(url);
      const elements = pathElements(path);
      const suffix = wildcardSuffix(host);
      const route =
        firstMatch(exactHosts.get(host), path, elements) ??
        (suffix === undefined ? undefined : firstMatch(wildcardHosts.get(suffix), path, elements)) ??
        firstMatch(anyHost, path, elements);
      if (route) return { ingress: route.ingress, backend: route.backend, route };
      const def =
        defaults.find((d) => d.hosts.has(host)) ??
        (suffix === undefined ? undefined : defaults.find((d) => d.wildcards.has(suffix))) ??
        defaults[0];
      return def ? { ingress: def.ingress, backend: def.backend } : undefined;
    },
    serviceBackends() {
      const out = new Map<string, ServiceBackendRef>();
      for (const b of [...routes.map((c) => c.route.backend), ...defaults.map((d) => d.backend)]) {
        if (b.kind !== 'service') continue;
        out.set(`${b.namespace}/${b.name}/${b.port.number ?? b.port.name}`, b);
      }
      return [...out.values()];
    },
  };
}
