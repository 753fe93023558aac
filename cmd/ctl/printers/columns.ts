// kubectl get's columns for each kind (k8s.io/kubernetes/pkg/printers/internalversion), as cells.
// Rendering (tab alignment) is separate so watch output can reuse the same cells.
import type { KindInfo } from '../../../pkg/api/kinds.js';
import type { ApiObject } from '../../../pkg/api/types.js';
import { formatAge } from './age.js';
import { STORAGE_COLUMNS } from './columns-storage.js';
import {
  arr,
  at,
  bool,
  formatLabels,
  formatSelector,
  num,
  type Obj,
  obj,
  objs,
  orNone,
  str,
} from './fields.js';

/** One kind's columns after NAME (events have no NAME column, kubectl leads with LAST SEEN). */
export interface KindColumns {
  head: string[];
  wideHead: string[];
  hasName: boolean;
  /** The NAME cell when it is more than the name (a default StorageClass: `local-path (default)`). */
  displayName?(o: ApiObject): string;
  cells(o: ApiObject, now: number): string[];
  wideCells(o: ApiObject): string[];
}

const age = (o: ApiObject, now: number): string => formatAge(o.metadata.creationTimestamp, now);

/** kubectl's printPod STATUS and READY/RESTARTS, including the init-container states. */
export function podSummary(pod: ApiObject): { ready: string; status: string; restarts: number } {
  const status = obj(pod.status);
  const containers = arr(at(pod, 'spec.containers'));
  const initContainers = arr(at(pod, 'spec.initContainers'));
  let reason = str(status.phase) || 'Pending';
  if (str(status.reason) !== '') reason = str(status.reason);
  let restarts = 0;
  let ready = 0;
  let initializing = false;
  const inits = objs(status.initContainerStatuses);
  for (const [i, c] of inits.entries()) {
    restarts += num(c.restartCount);
    const term = obj(at(c, 'state.terminated'));
    const waiting = obj(at(c, 'state.waiting'));
    const hasTerm = at(c, 'state.terminated') !== undefined;
    if (hasTerm && num(term.exitCode) === 0) continue;
    if (hasTerm) {
      if (str(term.reason) !== '') reason = `Init:${str(term.reason)}`;
      else if (num(term.signal) !== 0) reason = `Init:Signal:${num(term.signal)}`;
      else reason = `Init:ExitCode:${num(term.exitCode)}`;
    } else if (str(waiting.reason) !== '' && str(waiting.reason) !== 'PodInitializing') {
      reason = `Init:${str(waiting.reason)}`;
    } else {
      reason = `Init:${i}/${initContainers.length}`;
    }
    initializing = true;
    break;
  }
  const conditions = objs(status.conditions);
  const initialized = conditions.some((c) => c.type === 'Initialized' && c.status === 'True');
  if (!initializing || initialized) {
    restarts = 0;
    let hasRunning = false;
    const statuses = objs(status.containerStatuses);
    // kubectl walks the statuses backwards, so the first container's reason wins.
    for (let i = statuses.length - 1; i >= 0; i--) {
      const c = statuses[i] ?? {};
      restarts += num(c.restartCount);
      const waiting = obj(at(c, 'state.waiting'));
      const termRaw = at(c, 'state.terminated');
      const term = obj(termRaw);
      if (str(waiting.reason) !== '') reason = str(waiting.reason);
      else if (str(term.reason) !== '') reason = str(term.reason);
      else if (termRaw !== undefined) {
        reason = num(term.signal) !== 0 ? `Signal:${num(term.signal)}` : `ExitCode:${num(term.exitCode)}`;
      } else if (bool(c.ready) && at(c, 'state.running') !== undefined) {
        hasRunning = true;
        ready++;
      }
    }
    if (reason === 'Completed' && hasRunning) {
      reason = conditions.some((c) => c.type === 'Ready' && c.status === 'True') ? 'Running' : 'NotReady';
    }
  }
  if (pod.metadata.deletionTimestamp !== undefined) {
    reason = str(status.reason) === 'NodeLost' ? 'Unknown' : 'Terminating';
  }
  return { ready: `${ready}/${containers.length}`, status: reason, restarts };
}

function templateColumns(o: ApiObject): string[] {
  const containers = objs(at(o, 'spec.template.spec.containers'));
  return [
    containers.map((c) => str(c.name)).join(','),
    containers.map((c) => str(c.image)).join(','),
    formatSelector(at(o, 'spec.selector')),
  ];
}

function servicePorts(svc: ApiObject): string {
  const ports = objs(at(svc, 'spec.ports')).map((p) => {
    const proto = str(p.protocol) || 'TCP';
    return num(p.nodePort) > 0 ? `${num(p.port)}:${num(p.nodePort)}/${proto}` : `${num(p.port)}/${proto}`;
  });
  return orNone(ports.join(','));
}

function loadBalancerIps(svc: ApiObject, wide: boolean): string {
  const ips = objs(at(svc, 'status.loadBalancer.ingress'))
    .map((i) => str(i.ip) || str(i.hostname))
    .filter((s) => s !== '')
    .join(',');
  return !wide && ips.length > 16 ? `${ips.slice(0, 13)}...` : ips;
}

/** kubectl's getServiceExternalIP. */
function serviceExternalIp(svc: ApiObject, wide: boolean): string {
  const external = arr(at(svc, 'spec.externalIPs')).map(str);
  switch (str(at(svc, 'spec.type')) || 'ClusterIP') {
    case 'ClusterIP':
    case 'NodePort':
      return orNone(external.join(','));
    case 'LoadBalancer': {
      const lb = loadBalancerIps(svc, wide);
      const all = [...(lb === '' ? [] : lb.split(',')), ...external];
      return all.length > 0 ? all.join(',') : '<pending>';
    }
    case 'ExternalName':
      return str(at(svc, 'spec.externalName'));
  }
  return '<unknown>';
}

const joinHostPort = (ip: string, port: number): string =>
  ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;

/** kubectl's formatEndpoints: at most 3 addresses, then ' + N more...'; `portName` filters (describe). */
export function formatEndpoints(ep: ApiObject | undefined, portName?: string): string {
  const subsets = objs(ep?.subsets);
  if (subsets.length === 0) return '<none>';
  const max = 3;
  const list: string[] = [];
  let more = false;
  let count = 0;
  for (const ss of subsets) {
    const addresses = objs(ss.addresses);
    const ports = objs(ss.ports);
    if (ports.length === 0) {
      count += addresses.length;
      for (const a of addresses) {
        if (list.length === max) {
          more = true;
          break;
        }
        list.push(str(a.ip));
      }
      continue;
    }
    for (const p of ports) {
      if (portName !== undefined && str(p.name) !== portName) continue;
      count += addresses.length;
      for (const a of addresses) {
        if (list.length === max) {
          more = true;
          break;
        }
        list.push(joinHostPort(str(a.ip), num(p.port)));
      }
    }
  }
  const ret = list.join(',');
  return more ? `${ret} + ${count - max} more...` : ret;
}

/** kubectl's formatHosts: at most 3 hosts, then ' + N more...'; '*' when no rule names one. */
export function ingressHosts(ing: ApiObject): string {
  const rules = objs(at(ing, 'spec.rules'));
  const max = 3;
  const list: string[] = [];
  let more = false;
  for (const rule of rules) {
    if (list.length === max) more = true;
    if (!more && str(rule.host) !== '') list.push(str(rule.host));
  }
  if (list.length === 0) return '*';
  return more ? `${list.join(',')} + ${rules.length - max} more...` : list.join(',');
}

/** One Resource metric as kubectl shows it: current and target (`45%`, `250m`), `<unknown>` unmeasured. */
export function hpaMetric(
  spec: Obj,
  status: Obj | undefined,
): { name: string; current: string; target: string; utilization: boolean } {
  const name = str(at(spec, 'resource.name'));
  const target = obj(at(spec, 'resource.target'));
  const current = obj(at(status, 'resource.current'));
  if (target.averageValue !== undefined) {
    const v = current.averageValue;
    return {
      name,
      current: v === undefined ? '<unknown>' : String(v),
      target: String(target.averageValue),
      utilization: false,
    };
  }
  const u = current.averageUtilization;
  return {
    name,
    current: u === undefined ? '<unknown>' : `${num(u)}%`,
    target: target.averageUtilization === undefined ? '<auto>' : `${num(target.averageUtilization)}%`,
    utilization: true,
  };
}

/** kubectl's formatHPAMetrics: the first two metrics, `cpu: 45%/50%`, then `+ N more...`. */
export function hpaTargets(hpa: ApiObject): string {
  const specs = objs(at(hpa, 'spec.metrics'));
  if (specs.length === 0) return '<none>';
  const statuses = objs(at(hpa, 'status.currentMetrics'));
  const shown = specs.slice(0, 2).map((m, i) => {
    if (str(m.type) !== 'Resource') return `<unknown>/<unknown> (${str(m.type)})`;
    const x = hpaMetric(m, statuses[i]);
    return `${x.name}: ${x.current}/${x.target}`;
  });
  const more = specs.length - shown.length;
  return more > 0 ? `${shown.join(', ')} + ${more} more...` : shown.join(', ');
}

/** kubectl's ingressLoadBalancerStatusStringer: the distinct IPs (else hostnames), sorted. */
export function ingressAddress(ing: ApiObject, wide: boolean): string {
  const set = new Set<string>();
  for (const i of objs(at(ing, 'status.loadBalancer.ingress'))) {
    const a = str(i.ip) || str(i.hostname);
    if (a !== '') set.add(a);
  }
  const r = [...set].sort().join(',');
  return !wide && r.length > 16 ? `${r.slice(0, 13)}...` : r;
}

/** Ready/NotReady/Unknown from the Ready condition, plus SchedulingDisabled when cordoned. */
export function nodeStatus(node: ApiObject): string {
  const ready = objs(at(node, 'status.conditions')).find((c) => c.type === 'Ready');
  const parts = [ready === undefined ? 'Unknown' : ready.status === 'True' ? 'Ready' : 'NotReady'];
  if (bool(at(node, 'spec.unschedulable'))) parts.push('SchedulingDisabled');
  return parts.join(',');
}

/** Roles from node-role.kubernetes.io/<role> labels and the older kubernetes.io/role label. */
export function nodeRoles(node: ApiObject): string[] {
  const roles = new Set<string>();
  for (const [k, v] of Object.entries(node.metadata.labels ?? {})) {
    if (k.startsWith('node-role.kubernetes.io/')) {
      const role = k.slice('node-role.kubernetes.io/'.length);
      if (role !== '') roles.add(role);
    } else if (k === 'kubernetes.io/role' && v !== '') roles.add(v);
  }
  return [...roles].sort();
}

function nodeAddress(node: ApiObject, type: string): string {
  const a = objs(at(node, 'status.addresses')).find((x) => x.type === type);
  return a === undefined ? '<none>' : str(a.address);
}

/** The time an event last happened, for LAST SEEN and for sorting. */
export function eventLastSeen(ev: ApiObject): string | undefined {
  for (const v of [at(ev, 'series.lastObservedTime'), ev.lastTimestamp, ev.eventTime, ev.firstTimestamp]) {
    if (typeof v === 'string' && v !== '') return v;
  }
  return ev.metadata.creationTimestamp;
}

function eventFirstSeen(ev: ApiObject): string | undefined {
  for (const v of [ev.firstTimestamp, ev.eventTime]) if (typeof v === 'string' && v !== '') return v;
  return ev.metadata.creationTimestamp;
}

/** 'pod/web-1', or just the lower-case kind when the event names no object. */
export function eventTarget(ev: ApiObject): string {
  const io: Obj = obj(ev.involvedObject);
  const kind = str(io.kind).toLowerCase();
  return str(io.name) !== '' ? `${kind}/${str(io.name)}` : kind;
}

export function eventSource(ev: ApiObject): string {
  const src = obj(ev.source);
  const component = str(src.component) || str(ev.reportingController);
  const host = str(src.host) || str(ev.reportingInstance);
  return host === '' ? component : `${component}, ${host}`;
}

const COLUMNS: Record<string, KindColumns> = {
  Pod: {
    head: ['READY', 'STATUS', 'RESTARTS', 'AGE'],
    wideHead: ['IP', 'NODE', 'NOMINATED NODE', 'READINESS GATES'],
    hasName: true,
    cells(o, now) {
      const s = podSummary(o);
      return [s.ready, s.status, String(s.restarts), age(o, now)];
    },
    wideCells(o) {
      const gates = arr(at(o, 'spec.readinessGates')).length;
      const trueGates = objs(at(o, 'spec.readinessGates')).filter((g) =>
        objs(at(o, 'status.conditions')).some((c) => c.type === g.conditionType && c.status === 'True'),
      ).length;
      return [
        orNone(str(at(o, 'status.podIP'))),
        orNone(str(at(o, 'spec.nodeName'))),
        orNone(str(at(o, 'status.nominatedNodeName'))),
        gates === 0 ? '<none>' : `${trueGates}/${gates}`,
      ];
    },
  },
  Deployment: {
    head: ['READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE'],
    wideHead: ['CONTAINERS', 'IMAGES', 'SELECTOR'],
    hasName: true,
    cells: (o, now) => [
      `${num(at(o, 'status.readyReplicas'))}/${num(at(o, 'spec.replicas'))}`,
      String(num(at(o, 'status.updatedReplicas'))),
      String(num(at(o, 'status.availableReplicas'))),
      age(o, now),
    ],
    wideCells: templateColumns,
  },
  ReplicaSet: {
    head: ['DESIRED', 'CURRENT', 'READY', 'AGE'],
    wideHead: ['CONTAINERS', 'IMAGES', 'SELECTOR'],
    hasName: true,
    cells: (o, now) => [
      String(num(at(o, 'spec.replicas'))),
      String(num(at(o, 'status.replicas'))),
      String(num(at(o, 'status.readyReplicas'))),
      age(o, now),
    ],
    wideCells: templateColumns,
  },
  Service: {
    head: ['TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE'],
    wideHead: ['SELECTOR'],
    hasName: true,
    cells: (o, now) => [
      str(at(o, 'spec.type')) || 'ClusterIP',
      orNone(str(arr(at(o, 'spec.clusterIPs'))[0]) || str(at(o, 'spec.clusterIP'))),
      serviceExternalIp(o, false),
      servicePorts(o),
      age(o, now),
    ],
    wideCells: (o) => [formatLabels(at(o, 'spec.selector'))],
  },
  Endpoints: {
    head: ['ENDPOINTS', 'AGE'],
    wideHead: [],
    hasName: true,
    cells: (o, now) => [formatEndpoints(o), age(o, now)],
    wideCells: () => [],
  },
  ConfigMap: {
    head: ['DATA', 'AGE'],
    wideHead: [],
    hasName: true,
    cells: (o, now) => [
      String(Object.keys(obj(o.data)).length + Object.keys(obj(o.binaryData)).length),
      age(o, now),
    ],
    wideCells: () => [],
  },
  Secret: {
    head: ['TYPE', 'DATA', 'AGE'],
    wideHead: [],
    hasName: true,
    cells: (o, now) => [
      str(o.type) || 'Opaque',
      String(new Set([...Object.keys(obj(o.data)), ...Object.keys(obj(o.stringData))]).size),
      age(o, now),
    ],
    wideCells: () => [],
  },
  Namespace: {
    head: ['STATUS', 'AGE'],
    wideHead: [],
    hasName: true,
    cells: (o, now) => [str(at(o, 'status.phase')), age(o, now)],
    wideCells: () => [],
  },
  Node: {
    head: ['STATUS', 'ROLES', 'AGE', 'VERSION'],
    wideHead: ['INTERNAL-IP', 'EXTERNAL-IP', 'OS-IMAGE', 'KERNEL-VERSION', 'CONTAINER-RUNTIME'],
    hasName: true,
    cells: (o, now) => [
      nodeStatus(o),
      orNone(nodeRoles(o).join(',')),
      age(o, now),
      str(at(o, 'status.nodeInfo.kubeletVersion')),
    ],
    wideCells: (o) => [
      nodeAddress(o, 'InternalIP'),
      nodeAddress(o, 'ExternalIP'),
      str(at(o, 'status.nodeInfo.osImage')) || '<unknown>',
      str(at(o, 'status.nodeInfo.kernelVersion')) || '<unknown>',
      str(at(o, 'status.nodeInfo.containerRuntimeVersion')) || '<unknown>',
    ],
  },
  Event: {
    head: ['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE'],
    wideHead: [
      'LAST SEEN',
      'TYPE',
      'REASON',
      'OBJECT',
      'SUBOBJECT',
      'SOURCE',
      'MESSAGE',
      'FIRST SEEN',
      'COUNT',
      'NAME',
    ],
    hasName: false,
    cells: (o, now) => [
      formatAge(eventLastSeen(o), now),
      str(o.type),
      str(o.reason),
      eventTarget(o),
      str(o.message).trim(),
    ],
    wideCells: () => [],
  },
  Ingress: {
    head: ['CLASS', 'HOSTS', 'ADDRESS', 'PORTS', 'AGE'],
    wideHead: [],
    hasName: true,
    cells: (o, now) => [
      str(at(o, 'spec.ingressClassName')) || '<none>',
      ingressHosts(o),
      ingressAddress(o, false),
      arr(at(o, 'spec.tls')).length > 0 ? '80, 443' : '80',
      age(o, now),
    ],
    wideCells: () => [],
  },
  HorizontalPodAutoscaler: {
    head: ['REFERENCE', 'TARGETS', 'MINPODS', 'MAXPODS', 'REPLICAS', 'AGE'],
    wideHead: [],
    hasName: true,
    cells: (o, now) => [
      `${str(at(o, 'spec.scaleTargetRef.kind'))}/${str(at(o, 'spec.scaleTargetRef.name'))}`,
      hpaTargets(o),
      at(o, 'spec.minReplicas') === undefined ? '<unset>' : String(num(at(o, 'spec.minReplicas'))),
      String(num(at(o, 'spec.maxReplicas'))),
      String(num(at(o, 'status.currentReplicas'))),
      age(o, now),
    ],
    wideCells: () => [],
  },
  Lease: {
    head: ['HOLDER', 'AGE'],
    wideHead: [],
    hasName: true,
    cells: (o, now) => [str(at(o, 'spec.holderIdentity')), age(o, now)],
    wideCells: () => [],
  },
};

const DEFAULT_COLUMNS: KindColumns = {
  head: ['AGE'],
  wideHead: [],
  hasName: true,
  cells: (o, now) => [age(o, now)],
  wideCells: () => [],
};

function columnsOf(kind: KindInfo): KindColumns {
  return COLUMNS[kind.kind] ?? STORAGE_COLUMNS[kind.kind] ?? DEFAULT_COLUMNS;
}

function eventWideCells(o: ApiObject, now: number): string[] {
  const count = num(at(o, 'series.count')) || num(o.count) || 1;
  return [
    formatAge(eventLastSeen(o), now),
    str(o.type),
    str(o.reason),
    eventTarget(o),
    str(at(o, 'involvedObject.fieldPath')),
    eventSource(o),
    str(o.message).trim(),
    formatAge(eventFirstSeen(o), now),
    String(count),
    o.metadata.name ?? '',
  ];
}

/** Header cells; `showLabels` appends LABELS as kubectl's --show-labels does. */
export function tableHeader(
  kind: KindInfo,
  wide: boolean,
  withNamespace: boolean,
  showLabels = false,
): string[] {
  const c = columnsOf(kind);
  const head =
    kind.kind === 'Event' && wide
      ? [...c.wideHead]
      : [...(c.hasName ? ['NAME'] : []), ...c.head, ...(wide ? c.wideHead : [])];
  if (withNamespace) head.unshift('NAMESPACE');
  if (showLabels) head.push('LABELS');
  return head;
}

/** Row cells for one object; `withKind` prefixes the name ('deployment.apps/web'). */
export function tableRow(
  kind: KindInfo,
  o: ApiObject,
  wide: boolean,
  withNamespace: boolean,
  now: number,
  opts: { withKind?: boolean; showLabels?: boolean } = {},
): string[] {
  const c = columnsOf(kind);
  const prefix = opts.withKind ? `${kind.group ? `${kind.singular}.${kind.group}` : kind.singular}/` : '';
  const name = `${prefix}${c.displayName?.(o) ?? o.metadata.name ?? ''}`;
  const row =
    kind.kind === 'Event' && wide
      ? eventWideCells(o, now)
      : [...(c.hasName ? [name] : []), ...c.cells(o, now), ...(wide ? c.wideCells(o) : [])];
  if (withNamespace) row.unshift(o.metadata.namespace ?? '');
  if (opts.showLabels) row.push(formatLabels(o.metadata.labels));
  return row;
}

/** Events oldest first, as kubectl sorts them, by last-seen time (stable for ties). */
export function sortEvents(events: readonly ApiObject[]): ApiObject[] {
  const t = (e: ApiObject): number => {
    const ts = eventLastSeen(e);
    const ms = ts === undefined ? Number.NaN : Date.parse(ts);
    return Number.isNaN(ms) ? 0 : ms;
  };
  return events
    .map((e, i) => ({ e, i, t: t(e) }))
    .sort((a, b) => a.t - b.t || a.i - b.i)
    .map((x) => x.e);
}
