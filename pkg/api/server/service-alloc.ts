// Service cluster IPs and node ports, allocated by the API server (Kubernetes' ipallocator
// and portallocator, without their bitmaps). The Services themselves are the source of
// truth: nothing is reserved apart from them, so deleting a Service frees its values and
// nothing can leak. An allocating write lists every Service (a linearizable read at store
// revision R), picks free values, and writes the Service in one Txn that also requires the
// guard key (SERVICE_RANGES_KEY) to be unchanged since R, and puts it. Two API servers
// (every node runs one) allocating at once therefore conflict on the guard; the loser
// lists again and picks again. Writes that take nothing new (status, labels, a Service
// giving values up) skip the list and the guard.
//
//   update/apply: prepareServiceUpdate (carry over allocated values, drop what the new type
//   forbids) ─► validate ─► ServiceAllocator.admit:
//     nothing new ─► plain guarded write
//     new values  ─► list Services ─► check requested / pick free ─► write + guard, one Txn

import type { Compare, RequestOp } from '../../store/types.js';
import { type FieldError, internal, invalid } from '../errors.js';
import type { KindInfo } from '../kinds.js';
import { jsonEqual } from '../merge.js';
import type { ApiObject } from '../types.js';
import { refOf } from './names.js';
import type { ObjectStore, TxnExtra } from './object-store.js';

/** Where Service IPs come from unless the node is told otherwise (--service-cidr). */
export const DEFAULT_SERVICE_CIDR = '127.96.0.0/16';
/** Node ports, Kubernetes' default range (--service-node-port-range). */
export const DEFAULT_NODE_PORT_RANGE: readonly [number, number] = [30000, 32767];
/** The guard every allocating Service write compares and puts. Not an object: no kind lives here. */
export const SERVICE_RANGES_KEY = '/registry/ranges/services';

/** Kubernetes' limit: a larger IPv4 service range is refused (2^20 addresses). */
const MIN_PREFIX = 12;
const MAX_PREFIX = 30;

/** The configured ranges, checked. Every API server of a cluster must use the same ones. */
export interface ServiceRanges {
  /** The service CIDR, canonical (`127.96.0.0/16`). */
  cidr: string;
  /** The lowest and highest address a Service may hold: the network and broadcast addresses are excluded. */
  firstIP: number;
  lastIP: number;
  nodePorts: readonly [number, number];
}

export function ipv4ToNumber(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  let n = 0;
  for (const part of m.slice(1) as string[]) {
    const v = Number(part);
    if (v > 255 || (part.length > 1 && part.startsWith('0'))) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function numberToIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Parse an IPv4 service CIDR; a RangeError says what is wrong with it (callers name the flag). */
export function parseServiceCIDR(text: string): { cidr: string; network: number; prefix: number } {
  if (/^[0-9a-fA-F:]*:[0-9a-fA-F:.]*(\/\d+)?$/.test(text.trim())) {
    throw new RangeError(`"${text}": only IPv4 service ranges are supported`);
  }
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text.trim());
  const base = m?.[1] === undefined ? undefined : ipv4ToNumber(m[1]);
  const prefix = Number(m?.[2]);
  if (base === undefined || !Number.isInteger(prefix) || prefix > 32) {
    throw new RangeError(`"${text}" is not an IPv4 CIDR such as ${DEFAULT_SERVICE_CIDR}`);
  }
  if (prefix < MIN_PREFIX) {
    throw new RangeError(`"${text}" is too large: the prefix must be /${MIN_PREFIX} or longer`);
  }
  if (prefix > MAX_PREFIX) {
    throw new RangeError(`"${text}" is too small: the prefix must be /${MAX_PREFIX} or shorter`);
  }
  const size = 2 ** (32 - prefix);
  const network = base - (base % size);
  const cidr = `${numberToIPv4(network)}/${prefix}`;
  if (network !== base) throw new RangeError(`"${text}" has host bits set: did you mean ${cidr}?`);
  return { cidr, network, prefix };
}

/** Check a node port range; a RangeError says what is wrong with it. */
export function checkNodePortRange(range: readonly [number, number]): void {
  const [lo, hi] = range;
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 1 || hi > 65535) {
    throw new RangeError(`${lo}-${hi} is not within 1-65535`);
  }
  if (lo > hi) throw new RangeError(`${lo}-${hi}: the first port is above the last`);
}

/** The ranges an API server allocates from; throws a RangeError for a bad configuration. */
export function serviceRanges(
  cidr: string = DEFAULT_SERVICE_CIDR,
  nodePorts: readonly [number, number] = DEFAULT_NODE_PORT_RANGE,
): ServiceRanges {
  const parsed = parseServiceCIDR(cidr);
  checkNodePortRange(nodePorts);
  const size = 2 ** (32 - parsed.prefix);
  return {
    cidr: parsed.cidr,
    firstIP: parsed.network + 1,
    lastIP: parsed.network + size - 2,
    nodePorts: [nodePorts[0], nodePorts[1]],
  };
}

// ---- the Service fields this file reads and writes ----

interface PortView {
  name?: string;
  port?: number;
  protocol?: string;
  nodePort?: number;
}

interface SpecView {
  type?: string;
  clusterIP?: string;
  clusterIPs?: string[];
  ipFamilies?: string[];
  ipFamilyPolicy?: string;
  ports?: PortView[];
}

type Loose = Record<string, unknown>;

const isPlain = (v: unknown): v is Loose => typeof v === 'object' && v !== null && !Array.isArray(v);
const specOf = (svc: ApiObject | undefined): SpecView => (isPlain(svc?.spec) ? (svc.spec as SpecView) : {});
const typeOf = (spec: { type?: unknown }) => (typeof spec.type === 'string' ? spec.type : 'ClusterIP');
const needsClusterIP = (type: string) => type !== 'ExternalName';
const needsNodePorts = (type: string) => type === 'NodePort' || type === 'LoadBalancer';
const isEmpty = (v: unknown) => v === undefined || v === null || v === '';
const protocolOf = (p: { protocol?: unknown }) => (typeof p.protocol === 'string' ? p.protocol : 'TCP');
const nodePortOf = (p: { nodePort?: unknown }) =>
  typeof p.nodePort === 'number' && p.nodePort > 0 ? p.nodePort : 0;

/** The IPs a Service holds (headless and ExternalName Services hold none). */
export function heldIPs(svc: ApiObject): string[] {
  const spec = specOf(svc);
  const ips = [spec.clusterIP, ...(Array.isArray(spec.clusterIPs) ? spec.clusterIPs : [])];
  return [...new Set(ips.filter((ip): ip is string => typeof ip === 'string' && ip !== '' && ip !== 'None'))];
}

/** The node ports a Service holds (one number for every protocol that uses it). */
export function heldNodePorts(svc: ApiObject): number[] {
  const ports = specOf(svc).ports;
  return [...new Set((Array.isArray(ports) ? ports : []).map(nodePortOf).filter((n) => n > 0))];
}

/**
 * Kubernetes' PrepareForUpdate for Services, on an incoming version (a replace or an apply's
 * merge, not yet validated: every read is checked) against the stored one:
 * - values the server allocated and the update leaves out are carried over (clusterIP,
 *   clusterIPs, IP families; a port's nodePort, matched by port name, then number and
 *   protocol), so a manifest without them does not reallocate;
 * - fields the new type forbids are dropped when they are the stored ones (a change to
 *   ClusterIP drops node ports and externalTrafficPolicy; to ExternalName, the cluster IP).
 * A value the user changed is left for validation to judge. Pure: returns a new object.
 */
export function prepareServiceUpdate(incoming: ApiObject, current: ApiObject): ApiObject {
  if (!isPlain(incoming.spec) || !isPlain(current.spec)) return incoming;
  const spec: Loose = { ...incoming.spec };
  const old = current.spec as Loose;
  const type = typeOf(spec);
  const oldType = typeOf(old);

  if (needsClusterIP(oldType) && needsClusterIP(type)) {
    if (isEmpty(spec.clusterIP) && !isEmpty(old.clusterIP)) spec.clusterIP = old.clusterIP;
    if (spec.clusterIP === old.clusterIP) {
      if (!Array.isArray(spec.clusterIPs) || spec.clusterIPs.length === 0) {
        if (Array.isArray(old.clusterIPs)) spec.clusterIPs = [...old.clusterIPs];
      }
      if (spec.ipFamilies == null && Array.isArray(old.ipFamilies)) spec.ipFamilies = [...old.ipFamilies];
      if (spec.ipFamilyPolicy == null && old.ipFamilyPolicy != null) spec.ipFamilyPolicy = old.ipFamilyPolicy;
    }
  }
  if (needsClusterIP(oldType) && !needsClusterIP(type)) {
    if (isEmpty(spec.clusterIP) || spec.clusterIP === old.clusterIP) delete spec.clusterIP;
    for (const f of ['clusterIPs', 'ipFamilies', 'ipFamilyPolicy', 'internalTrafficPolicy']) {
      if (spec[f] != null && jsonEqual(spec[f], old[f])) delete spec[f];
    }
  }

  const oldPorts = (Array.isArray(old.ports) ? old.ports : []).filter(isPlain);
  if (Array.isArray(spec.ports) && needsNodePorts(oldType) && needsNodePorts(type)) {
    // Ports the update gives a nodePort keep it; the others get their stored one back.
    const taken = new Set(spec.ports.filter(isPlain).map((p) => `${nodePortOf(p)}/${protocolOf(p)}`));
    spec.ports = spec.ports.map((p) => {
      if (!isPlain(p) || nodePortOf(p) > 0) return p;
      const match =
        oldPorts.find((o) => (o.name ?? '') === (p.name ?? '')) ??
        oldPorts.find((o) => o.port === p.port && protocolOf(o) === protocolOf(p));
      const nodePort = match ? nodePortOf(match) : 0;
      const key = `${nodePort}/${protocolOf(p)}`;
      if (nodePort === 0 || taken.has(key)) return p;
      taken.add(key);
      return { ...p, nodePort };
    });
  }
  if (Array.isArray(spec.ports) && !needsNodePorts(type)) {
    const stored = new Set(oldPorts.map(nodePortOf));
    spec.ports = spec.ports.map((p) => {
      const stale = isPlain(p) && (p.nodePort === 0 || (nodePortOf(p) > 0 && stored.has(nodePortOf(p))));
      if (!stale) return p;
      const { nodePort: _, ...rest } = p;
      return rest;
    });
  }
  if (!needsNodePorts(type) && spec.externalTrafficPolicy != null) {
    if (spec.externalTrafficPolicy === old.externalTrafficPolicy) delete spec.externalTrafficPolicy;
  }
  return { ...incoming, spec: spec as ApiObject['spec'] };
}

/**
 * Whether writing `next` over `current` (undefined: a create) takes any value the Service
 * does not hold yet: a cluster IP or node port to pick, or a requested one to check.
 */
export function needsAllocation(next: ApiObject, current: ApiObject | undefined): boolean {
  const spec = specOf(next);
  const type = typeOf(spec);
  const ips = new Set(current ? heldIPs(current) : []);
  if (needsClusterIP(type) && spec.clusterIP !== 'None') {
    const ip = spec.clusterIP || spec.clusterIPs?.[0] || '';
    if (ip === '' || !ips.has(ip)) return true;
  }
  if (!needsNodePorts(type)) return false;
  const held = new Set(current ? heldNodePorts(current) : []);
  return (spec.ports ?? []).some((p) => nodePortOf(p) === 0 || !held.has(nodePortOf(p)));
}

/**
 * Berth serves IPv4 single-stack Services: what asks for more is refused, with Kubernetes'
 * messages for a cluster that is not configured for it (PreferDualStack gets IPv4 alone).
 */
export function checkIPFamilies(svc: ApiObject): FieldError[] {
  const spec = specOf(svc);
  if (!needsClusterIP(typeOf(spec))) return [];
  const errors: FieldError[] = [];
  const families = Array.isArray(spec.ipFamilies) ? spec.ipFamilies : [];
  families.forEach((f, i) => {
    if (f !== 'IPv4') {
      errors.push({
        path: `spec.ipFamilies[${i}]`,
        message: `Invalid value: ${JSON.stringify(f)}: not configured on this cluster`,
      });
    }
  });
  if (spec.ipFamilyPolicy === 'RequireDualStack') {
    errors.push({
      path: 'spec.ipFamilyPolicy',
      message: 'Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services',
    });
  }
  const ips = Array.isArray(spec.clusterIPs) ? spec.clusterIPs : [];
  if (ips.length > 1) {
    errors.push({
      path: 'spec.clusterIPs',
      message: `Invalid value: ${JSON.stringify(ips)}: this cluster is not configured for dual-stack services: at most one IP`,
    });
  }
  return errors;
}

/** A free value in [lo, hi]: from a random start, then the next free one (wrapping). */
function pick(
  lo: number,
  hi: number,
  isFree: (n: number) => boolean,
  random: () => number,
): number | undefined {
  const count = hi - lo + 1;
  const start = Math.floor(random() * count) % count;
  for (let i = 0; i < count; i++) {
    const n = lo + ((start + i) % count);
    if (isFree(n)) return n;
  }
  return undefined;
}

/**
 * Check the values `next` asks for and pick the ones it leaves out, given every other
 * Service (`others`: not `next` itself). Values `current` already holds are not checked
 * again (the ranges may have been changed since). Pure; throws an INTERNAL ApiError when a
 * range is full, as Kubernetes does. Random picks skip the range's first address, which
 * Kubernetes keeps for its own `kubernetes` Service; asking for it is allowed.
 */
export function allocate(
  next: ApiObject,
  current: ApiObject | undefined,
  others: readonly ApiObject[],
  ranges: ServiceRanges,
  random: () => number = Math.random,
): { object: ApiObject; errors: FieldError[] } {
  const spec = structuredClone(specOf(next));
  const type = typeOf(spec);
  const errors: FieldError[] = [];
  const usedIPs = new Set(others.flatMap(heldIPs));
  const usedPorts = new Set(others.flatMap(heldNodePorts));
  const myIPs = new Set(current ? heldIPs(current) : []);
  const myPorts = new Set(current ? heldNodePorts(current) : []);
  const ports = Array.isArray(spec.ports) ? spec.ports : [];
  const wantsIP = needsClusterIP(type) && spec.clusterIP !== 'None';
  const wantsPorts = needsNodePorts(type);

  const requestedIP = wantsIP ? spec.clusterIP || spec.clusterIPs?.[0] || '' : '';
  if (requestedIP !== '' && !myIPs.has(requestedIP)) {
    const n = ipv4ToNumber(requestedIP);
    const show = JSON.stringify(requestedIP);
    if (n === undefined || n < ranges.firstIP || n > ranges.lastIP) {
      errors.push({
        path: 'spec.clusterIP',
        message: `Invalid value: ${show}: provided IP is not in the valid range. The range of valid IPs is ${ranges.cidr}`,
      });
    } else if (usedIPs.has(requestedIP)) {
      errors.push({
        path: 'spec.clusterIP',
        message: `Invalid value: ${show}: provided IP is already allocated`,
      });
    }
  }
  const [lo, hi] = ranges.nodePorts;
  if (wantsPorts) {
    ports.forEach((p, i) => {
      const n = nodePortOf(p);
      if (n === 0 || myPorts.has(n)) return;
      const path = `spec.ports[${i}].nodePort`;
      if (n < lo || n > hi) {
        errors.push({
          path,
          message: `Invalid value: ${n}: provided port is not in the valid range. The range of valid ports is ${lo}-${hi}`,
        });
      } else if (usedPorts.has(n)) {
        errors.push({ path, message: `Invalid value: ${n}: provided port is already allocated` });
      }
    });
  }
  if (errors.length > 0) return { object: next, errors };

  if (wantsIP) {
    let ip = requestedIP;
    if (ip === '') {
      const from = ranges.lastIP > ranges.firstIP ? ranges.firstIP + 1 : ranges.firstIP;
      const n = pick(from, ranges.lastIP, (c) => !usedIPs.has(numberToIPv4(c)), random);
      if (n === undefined) throw rangeFull(`serviceIP: range is full (${ranges.cidr})`);
      ip = numberToIPv4(n);
    }
    spec.clusterIP = ip;
    if (!Array.isArray(spec.clusterIPs) || spec.clusterIPs.length === 0) spec.clusterIPs = [ip];
    if (!Array.isArray(spec.ipFamilies) || spec.ipFamilies.length === 0) spec.ipFamilies = ['IPv4'];
    if (isEmpty(spec.ipFamilyPolicy)) spec.ipFamilyPolicy = 'SingleStack';
  }
  if (wantsPorts) {
    const mine = new Set(ports.map(nodePortOf).filter((n) => n > 0));
    const taken = new Set(ports.map((p) => `${nodePortOf(p)}/${protocolOf(p)}`));
    for (const p of ports) {
      if (nodePortOf(p) > 0) continue;
      const proto = protocolOf(p);
      // One port number served over two protocols shares one node port, as in Kubernetes.
      const sibling = ports.find(
        (q) => q !== p && q.port === p.port && nodePortOf(q) > 0 && !taken.has(`${nodePortOf(q)}/${proto}`),
      );
      const n =
        (sibling && nodePortOf(sibling)) || pick(lo, hi, (c) => !usedPorts.has(c) && !mine.has(c), random);
      if (!n) throw rangeFull(`nodePort: range is full (${lo}-${hi})`);
      p.nodePort = n;
      mine.add(n);
      taken.add(`${n}/${proto}`);
    }
  } else {
    for (const p of ports) if (p.nodePort === 0) delete p.nodePort;
  }
  return { object: { ...next, spec: spec as ApiObject['spec'] }, errors };
}

const rangeFull = (what: string) => internal(`failed to allocate a ${what}`);

/** The guard's compare and put for a write whose Service list was read at `revision`. */
function guardAt(revision: number, by: string): TxnExtra {
  const key = new TextEncoder().encode(SERVICE_RANGES_KEY);
  const compare: Compare[] = [{ target: 'mod', result: 'less', key, modRevision: revision + 1 }];
  const success: RequestOp[] = [{ put: { key, value: new TextEncoder().encode(by) } }];
  return { compare, success };
}

/**
 * The API server's allocator. `admit` is called for every Service write (not status-only
 * ones) with the version to store; the caller writes `object` with `guard` (when given) in
 * the same Txn, and on a failed Txn whose object key did not move, calls `admit` again.
 */
export class ServiceAllocator {
  constructor(
    private readonly store: ObjectStore,
    readonly ranges: ServiceRanges,
    private readonly random: () => number = Math.random,
  ) {}

  async admit(
    kind: KindInfo,
    next: ApiObject,
    current: ApiObject | undefined,
  ): Promise<{ object: ApiObject; guard?: TxnExtra }> {
    const familyErrors = checkIPFamilies(next);
    if (familyErrors.length > 0) throw invalid(refOf(kind, next.metadata.name ?? ''), familyErrors);
    if (!needsAllocation(next, current)) return { object: next };
    const { items, revision } = await this.store.list(kind);
    const { namespace, name } = next.metadata;
    const others = items.filter((o) => o.metadata.namespace !== namespace || o.metadata.name !== name);
    const { object, errors } = allocate(next, current, others, this.ranges, this.random);
    if (errors.length > 0) throw invalid(refOf(kind, name ?? ''), errors);
    return { object, guard: guardAt(revision, `${namespace}/${name}`) };
  }
}
