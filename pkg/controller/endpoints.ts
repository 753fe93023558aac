// The Endpoints controller, after Kubernetes' pkg/controller/endpoint: for each Service with
// a selector, keeps an Endpoints object of the same name listing where its pods can be
// reached. Berth's addressing: a pod is reached on its node (status.endpoints hostIP) at the
// host port the agent published the container port on, so every pod has its own ports and
// addresses are packed into subsets by identical port lists (Kubernetes' RepackSubsets).
//
//   service/pod/endpoints event ─► namespace/service key ─► reconcile:
//     desired subsets from the cached pods ─► create / update / delete when different

import { ApiError, ApiErrorCode } from '../api/errors.js';
import { matches, type Selector, selectorFromSet } from '../api/labels.js';
import { jsonEqual } from '../api/merge.js';
import type { ApiObject, JsonObject } from '../api/types.js';
import { type Informer, keyOf, splitKey } from './informer.js';
import type { ControllerContext, ControllerDefinition } from './manager.js';
import { indexByNamespace, NAMESPACE_INDEX } from './replicaset.js';
import { isPodReady } from './replicaset-pods.js';
import type { Reconciler } from './runner.js';

/** Label on the Endpoints this controller writes; only those are ever deleted by it. */
export const MANAGED_BY_LABEL = 'endpoints.berth.io/managed-by';
export const MANAGED_BY_VALUE = 'endpoints-controller';

interface ServicePortView {
  name?: string;
  port: number;
  protocol?: string;
  targetPort?: number | string;
}

interface ServiceSpecView {
  type?: string;
  selector?: Record<string, string>;
  ports?: ServicePortView[];
}

interface ContainerPortView {
  name?: string;
  containerPort: number;
  protocol?: string;
}

interface PodEndpointView {
  name?: string;
  containerPort: number;
  protocol?: string;
  hostIP?: string;
  hostPort?: number;
}

export interface EndpointPort {
  name?: string;
  port: number;
  protocol: string;
}

export interface EndpointAddress {
  ip: string;
  nodeName: string;
  targetRef: { kind: 'Pod'; namespace: string; name: string; uid: string };
}

export interface EndpointSubset {
  addresses?: EndpointAddress[];
  notReadyAddresses?: EndpointAddress[];
  ports?: EndpointPort[];
}

const serviceSpec = (svc: ApiObject) => (svc.spec ?? {}) as unknown as ServiceSpecView;

/** The pods a Service selects; ExternalName services and empty selectors select none. */
export function serviceSelector(svc: ApiObject): Selector | undefined {
  const spec = serviceSpec(svc);
  if (spec.type === 'ExternalName') return undefined;
  const sel = spec.selector;
  if (!sel || Object.keys(sel).length === 0) return undefined;
  return selectorFromSet(sel);
}

/**
 * Where a pod serves one Service port: the pod's status.endpoints entry for the container
 * port the targetPort names (a number is the container port itself; a name is looked up in
 * the pod's spec, so pods may differ), or undefined when the pod does not publish it.
 */
export function resolvePort(pod: ApiObject, sp: ServicePortView): PodEndpointView | undefined {
  const protocol = sp.protocol ?? 'TCP';
  const target = sp.targetPort ?? sp.port;
  let containerPort: number | undefined;
  if (typeof target === 'number') {
    containerPort = target;
  } else {
    const containers = ((pod.spec as { containers?: { ports?: ContainerPortView[] }[] } | undefined)
      ?.containers ?? []) as { ports?: ContainerPortView[] }[];
    for (const c of containers) {
      const p = (c.ports ?? []).find((x) => x.name === target && (x.protocol ?? 'TCP') === protocol);
      if (p) {
        containerPort = p.containerPort;
        break;
      }
    }
  }
  if (containerPort === undefined) return undefined;
  const eps = ((pod.status as { endpoints?: PodEndpointView[] } | undefined)?.endpoints ??
    []) as PodEndpointView[];
  const ep = eps.find((e) => e.containerPort === containerPort && (e.protocol ?? 'TCP') === protocol);
  return ep?.hostIP && typeof ep.hostPort === 'number' && ep.hostPort > 0 ? ep : undefined;
}

const comparePorts = (a: EndpointPort, b: EndpointPort) =>
  (a.name ?? '').localeCompare(b.name ?? '') || a.port - b.port || a.protocol.localeCompare(b.protocol);

const compareAddresses = (a: EndpointAddress, b: EndpointAddress) =>
  a.ip.localeCompare(b.ip) || a.targetRef.name.localeCompare(b.targetRef.name);

const portsKey = (ports: EndpointPort[]) =>
  JSON.stringify(ports.map((p) => [p.name ?? '', p.port, p.protocol]));

/**
 * The subsets for a Service and the pods it selects, packed by identical port lists and
 * sorted (subsets by port list, addresses by ip then pod name), so equal states compare equal.
 */
export function desiredSubsets(svc: ApiObject, pods: ApiObject[]): EndpointSubset[] {
  const servicePorts = serviceSpec(svc).ports ?? [];
  const groups = new Map<
    string,
    { ports: EndpointPort[]; ready: EndpointAddress[]; notReady: EndpointAddress[] }
  >();
  const add = (ports: EndpointPort[], addr: EndpointAddress, ready: boolean) => {
    const sorted = [...ports].sort(comparePorts);
    const k = portsKey(sorted);
    let g = groups.get(k);
    if (!g) {
      g = { ports: sorted, ready: [], notReady: [] };
      groups.set(k, g);
    }
    (ready ? g.ready : g.notReady).push(addr);
  };
  for (const pod of pods) {
    const nodeName = (pod.spec as { nodeName?: string } | undefined)?.nodeName;
    if (!nodeName || pod.metadata.deletionTimestamp) continue;
    const targetRef = {
      kind: 'Pod' as const,
      namespace: pod.metadata.namespace ?? '',
      name: pod.metadata.name ?? '',
      uid: pod.metadata.uid ?? '',
    };
    const ready = isPodReady(pod);
    // Ports published on different host addresses make one address each.
    const byIp = new Map<string, EndpointPort[]>();
    for (const sp of servicePorts) {
      const ep = resolvePort(pod, sp);
      if (!ep) continue;
      const port: EndpointPort = { port: ep.hostPort as number, protocol: sp.protocol ?? 'TCP' };
      if (sp.name) port.name = sp.name;
      const list = byIp.get(ep.hostIP as string) ?? [];
      list.push(port);
      byIp.set(ep.hostIP as string, list);
    }
    for (const [ip, ports] of byIp) add(ports, { ip, nodeName, targetRef }, ready);
  }
  const subsets: EndpointSubset[] = [];
  for (const k of [...groups.keys()].sort()) {
    const g = groups.get(k) as {
      ports: EndpointPort[];
      ready: EndpointAddress[];
      notReady: EndpointAddress[];
    };
    const s: EndpointSubset = {};
    if (g.ready.length > 0) s.addresses = g.ready.sort(compareAddresses);
    if (g.notReady.length > 0) s.notReadyAddresses = g.notReady.sort(compareAddresses);
    if (g.ports.length > 0) s.ports = g.ports;
    subsets.push(s);
  }
  return subsets;
}

const isCode = (err: unknown, code: string) => err instanceof ApiError && err.code === code;
const isManaged = (ep: ApiObject) => ep.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;

export class EndpointsReconciler implements Reconciler {
  readonly name = 'endpoints';
  private readonly services: Informer;
  private readonly pods: Informer;
  private readonly endpoints: Informer;

  constructor(
    private readonly ctx: ControllerContext,
    enqueue: (key: string) => void,
  ) {
    this.services = ctx.informers.get('services');
    this.pods = ctx.informers.get('pods');
    this.endpoints = ctx.informers.get('endpoints');
    indexByNamespace(this.services);
    indexByNamespace(this.pods);
    this.services.on({
      add: (svc) => enqueue(keyOf(svc)),
      update: (_old, svc) => enqueue(keyOf(svc)),
      delete: (svc) => enqueue(keyOf(svc)),
    });
    const podChanged = (...versions: ApiObject[]) => {
      const keys = new Set<string>();
      for (const pod of versions) for (const svc of this.servicesSelecting(pod)) keys.add(keyOf(svc));
      for (const k of keys) enqueue(k);
    };
    this.pods.on({
      add: (pod) => podChanged(pod),
      update: (old, pod) => podChanged(old, pod),
      delete: (pod) => podChanged(pod),
    });
    // Someone else changed or deleted an Endpoints we keep: put it back.
    this.endpoints.on({
      update: (_old, ep) => this.services.get(keyOf(ep)) && enqueue(keyOf(ep)),
      delete: (ep) => this.services.get(keyOf(ep)) && enqueue(keyOf(ep)),
    });
  }

  initialKeys(): string[] {
    // Services, and Endpoints we made whose Service went while no leader watched.
    const keys = new Set(this.services.list().map(keyOf));
    for (const ep of this.endpoints.list()) if (isManaged(ep)) keys.add(keyOf(ep));
    return [...keys];
  }

  private servicesSelecting(pod: ApiObject): ApiObject[] {
    return this.services.byIndex(NAMESPACE_INDEX, pod.metadata.namespace ?? '').filter((svc) => {
      const sel = serviceSelector(svc);
      return sel !== undefined && matches(sel, pod.metadata.labels);
    });
  }

  async reconcile(key: string): Promise<undefined> {
    const svc = this.services.get(key);
    const current = this.endpoints.get(key);
    const selector = svc ? serviceSelector(svc) : undefined;
    if (!svc || !selector) {
      // Endpoints of selector-less Services are the user's; only ours are removed.
      if (current && isManaged(current)) await this.deleteEndpoints(current);
      return undefined;
    }
    const pods = this.pods
      .byIndex(NAMESPACE_INDEX, svc.metadata.namespace ?? '')
      .filter((p) => matches(selector, p.metadata.labels));
    const subsets = desiredSubsets(svc, pods);
    const labels = { ...svc.metadata.labels, [MANAGED_BY_LABEL]: MANAGED_BY_VALUE };
    const { namespace, name } = splitKey(key);
    if (!current) {
      await this.ctx.api.create({
        apiVersion: 'v1',
        kind: 'Endpoints',
        metadata: { name, namespace, labels },
        subsets: subsets as unknown as JsonObject[],
      });
      return undefined;
    }
    const currentSubsets = (current as { subsets?: unknown }).subsets ?? [];
    if (jsonEqual(currentSubsets, subsets) && jsonEqual(current.metadata.labels ?? {}, labels))
      return undefined;
    // A conflict (stale cache) is thrown and retried with back-off once the watch catches up.
    await this.ctx.api.update({
      ...current,
      metadata: { ...current.metadata, labels },
      subsets: subsets as unknown as JsonObject[],
    });
    return undefined;
  }

  private async deleteEndpoints(ep: ApiObject): Promise<void> {
    try {
      await this.ctx.api.delete('endpoints', ep.metadata.namespace, ep.metadata.name as string, {
        preconditions: { uid: ep.metadata.uid as string },
      });
    } catch (err) {
      if (!isCode(err, ApiErrorCode.NotFound)) throw err;
    }
  }
}

export const endpointsController: ControllerDefinition = {
  name: 'endpoints',
  create: (ctx, enqueue) => new EndpointsReconciler(ctx, enqueue),
};
