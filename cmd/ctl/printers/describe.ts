// kubectl describe, kind by kind (k8s.io/kubectl/pkg/describe): text written with tabs into a
// Go-tabwriter port, so labels and values align exactly as kubectl aligns them.
import type { KindInfo } from '../../../pkg/api/kinds.js';
import type { ApiObject } from '../../../pkg/api/types.js';
import { formatAge, rfc1123z } from './age.js';
import { formatEndpoints, hpaMetric, ingressAddress, nodeRoles, sortEvents } from './columns.js';
import {
  describePod,
  writeAnnotations,
  writeLabels,
  writePodTemplate,
  writeWorkloadConditions,
} from './describe-pod.js';
import {
  arr,
  at,
  controllerOf,
  formatLabels,
  formatSelector,
  goValue,
  num,
  type Obj,
  obj,
  objs,
  str,
} from './fields.js';
import { formatQuantity, parseQuantity } from './quantity.js';
import { describeClaim, describeStorageClass, describeVolume } from './describe-storage.js';
import { DescribeWriter } from './tabwriter.js';

export interface DescribeExtras {
  /** Events about the object, any order (sorted here, oldest first). */
  events: ApiObject[];
  /** Objects the description mentions: a Deployment's ReplicaSets, a Node's pods and Lease, a Service's Endpoints, a ReplicaSet's pods, an Ingress's Services and Endpoints, a claim's namespace's pods. */
  related?: ApiObject[];
  now: number;
}

/** kubectl's DescribeEvents: a flushed, separately aligned table, or 'Events:  <none>' aligned with what precedes it. */
function writeEvents(w: DescribeWriter, events: ApiObject[], now: number): void {
  if (events.length === 0) {
    w.write(0, 'Events:\t<none>\n');
    return;
  }
  w.flush();
  w.write(0, 'Events:\n  Type\tReason\tAge\tFrom\tMessage\n');
  w.write(1, '----\t------\t----\t----\t-------\n');
  for (const e of sortEvents(events)) {
    const first = formatAge(str(e.eventTime) || str(e.firstTimestamp) || e.metadata.creationTimestamp, now);
    const series = obj(e.series);
    let interval = first;
    if (e.series !== undefined) {
      interval = `${formatAge(str(series.lastObservedTime), now)} (x${num(series.count)} over ${first})`;
    } else if (num(e.count) > 1) {
      interval = `${formatAge(str(e.lastTimestamp), now)} (x${num(e.count)} over ${first})`;
    }
    const source = str(at(e, 'source.component')) || str(e.reportingController);
    w.write(1, `${str(e.type)}\t${str(e.reason)}\t${interval}\t${source}\t${str(e.message).trim()}\n`);
  }
}

function header(w: DescribeWriter, o: ApiObject, withNamespace: boolean): void {
  w.write(0, `Name:\t${o.metadata.name ?? ''}\n`);
  if (withNamespace) w.write(0, `Namespace:\t${o.metadata.namespace ?? ''}\n`);
}

function ownedBy(o: ApiObject, owner: ApiObject): boolean {
  const refs = o.metadata.ownerReferences ?? [];
  return refs.some((r) =>
    owner.metadata.uid ? r.uid === owner.metadata.uid : r.name === owner.metadata.name,
  );
}

function withoutHash(template: unknown): string {
  const t = structuredClone(obj(template));
  const labels = obj(at(t, 'metadata.labels'));
  delete labels['pod-template-hash'];
  return JSON.stringify(t);
}

const rsLine = (list: ApiObject[]): string =>
  list
    .map(
      (rs) =>
        `${rs.metadata.name} (${num(at(rs, 'status.replicas'))}/${num(at(rs, 'spec.replicas'))} replicas created)`,
    )
    .join(', ') || '<none>';

function describeDeployment(w: DescribeWriter, d: ApiObject, related: ApiObject[]): void {
  const spec = obj(d.spec);
  const status = obj(d.status);
  header(w, d, true);
  w.write(0, `CreationTimestamp:\t${rfc1123z(d.metadata.creationTimestamp)}\n`);
  writeLabels(w, 'Labels', d.metadata.labels);
  writeAnnotations(w, 'Annotations', d.metadata.annotations);
  w.write(0, `Selector:\t${formatSelector(spec.selector)}\n`);
  w.write(
    0,
    `Replicas:\t${num(spec.replicas)} desired | ${num(status.updatedReplicas)} updated | ${num(status.replicas)} total | ` +
      `${num(status.availableReplicas)} available | ${num(status.unavailableReplicas)} unavailable\n`,
  );
  const strategy = obj(spec.strategy);
  w.write(0, `StrategyType:\t${str(strategy.type)}\n`);
  w.write(0, `MinReadySeconds:\t${num(spec.minReadySeconds)}\n`);
  if (strategy.rollingUpdate !== undefined) {
    const ru = obj(strategy.rollingUpdate);
    w.write(
      0,
      `RollingUpdateStrategy:\t${str(ru.maxUnavailable)} max unavailable, ${str(ru.maxSurge)} max surge\n`,
    );
  }
  writePodTemplate(w, spec.template);
  writeWorkloadConditions(w, d);
  const sets = related.filter((o) => o.kind === 'ReplicaSet' && ownedBy(o, d));
  if (sets.length > 0) {
    // The new ReplicaSet is the one whose template is the Deployment's (ignoring pod-template-hash).
    const want = withoutHash(spec.template);
    const newRs = sets.find((rs) => withoutHash(at(rs, 'spec.template')) === want);
    w.write(0, `OldReplicaSets:\t${rsLine(sets.filter((rs) => rs !== newRs))}\n`);
    w.write(0, `NewReplicaSet:\t${rsLine(newRs ? [newRs] : [])}\n`);
  }
}

function describeReplicaSet(w: DescribeWriter, rs: ApiObject, related: ApiObject[]): void {
  header(w, rs, true);
  w.write(0, `Selector:\t${formatSelector(at(rs, 'spec.selector'))}\n`);
  writeLabels(w, 'Labels', rs.metadata.labels);
  writeAnnotations(w, 'Annotations', rs.metadata.annotations);
  const controller = controllerOf(rs.metadata);
  if (controller !== '') w.write(0, `Controlled By:\t${controller}\n`);
  w.write(
    0,
    `Replicas:\t${num(at(rs, 'status.replicas'))} current / ${num(at(rs, 'spec.replicas'))} desired\n`,
  );
  const pods = related.filter((o) => o.kind === 'Pod' && ownedBy(o, rs));
  const phase = (p: string): number =>
    pods.filter((o) => (str(at(o, 'status.phase')) || 'Pending') === p).length;
  w.write(
    0,
    `Pods Status:\t${phase('Running')} Running / ${phase('Pending')} Waiting / ${phase('Succeeded')} Succeeded / ${phase('Failed')} Failed\n`,
  );
  writePodTemplate(w, at(rs, 'spec.template'));
  writeWorkloadConditions(w, rs);
}

function describeService(w: DescribeWriter, svc: ApiObject, related: ApiObject[]): void {
  const spec = obj(svc.spec);
  header(w, svc, true);
  writeLabels(w, 'Labels', svc.metadata.labels);
  writeAnnotations(w, 'Annotations', svc.metadata.annotations);
  w.write(0, `Selector:\t${formatLabels(spec.selector)}\n`);
  w.write(0, `Type:\t${str(spec.type) || 'ClusterIP'}\n`);
  if (str(spec.ipFamilyPolicy) !== '') w.write(0, `IP Family Policy:\t${str(spec.ipFamilyPolicy)}\n`);
  if (arr(spec.ipFamilies).length > 0)
    w.write(0, `IP Families:\t${arr(spec.ipFamilies).map(str).join(',')}\n`);
  w.write(0, `IP:\t${str(spec.clusterIP)}\n`);
  if (arr(spec.clusterIPs).length > 0) w.write(0, `IPs:\t${arr(spec.clusterIPs).map(str).join(',')}\n`);
  if (arr(spec.externalIPs).length > 0)
    w.write(0, `External IPs:\t${arr(spec.externalIPs).map(str).join(',')}\n`);
  if (str(spec.loadBalancerIP) !== '') w.write(0, `Desired LoadBalancer IP:\t${str(spec.loadBalancerIP)}\n`);
  if (str(spec.externalName) !== '') w.write(0, `External Name:\t${str(spec.externalName)}\n`);
  const ingress = objs(at(svc, 'status.loadBalancer.ingress')).map((i) => str(i.ip) || str(i.hostname));
  if (ingress.length > 0) w.write(0, `LoadBalancer Ingress:\t${ingress.join(', ')}\n`);
  const endpoints = related.find((o) => o.kind === 'Endpoints' && o.metadata.name === svc.metadata.name);
  for (const p of objs(spec.ports)) {
    const name = str(p.name) || '<unset>';
    const proto = str(p.protocol) || 'TCP';
    w.write(0, `Port:\t${name}\t${num(p.port)}/${proto}\n`);
    w.write(0, `TargetPort:\t${str(p.targetPort) || String(num(p.port))}/${proto}\n`);
    if (num(p.nodePort) !== 0) w.write(0, `NodePort:\t${name}\t${num(p.nodePort)}/${proto}\n`);
    w.write(0, `Endpoints:\t${formatEndpoints(endpoints, str(p.name))}\n`);
  }
  w.write(0, `Session Affinity:\t${str(spec.sessionAffinity) || 'None'}\n`);
  if (str(spec.externalTrafficPolicy) !== '')
    w.write(0, `External Traffic Policy:\t${str(spec.externalTrafficPolicy)}\n`);
  if (str(spec.internalTrafficPolicy) !== '')
    w.write(0, `Internal Traffic Policy:\t${str(spec.internalTrafficPolicy)}\n`);
}

/**
 * kubectl's describeBackendV1: `svc:port (endpoints)` for a Service, read from `related`
 * (the Services and Endpoints of the Ingress's namespace); kubectl's error text when missing.
 */
function ingressBackend(backend: unknown, related: ApiObject[]): string {
  const b = obj(backend);
  if (b.service !== undefined) {
    const svc = obj(b.service);
    const port = obj(svc.port);
    const name = str(svc.name);
    const sb = `${name}:${num(port.number) !== 0 ? String(num(port.number)) : str(port.name)}`;
    const find = (kind: string) => related.find((o) => o.kind === kind && o.metadata.name === name);
    const endpoints = find('Endpoints');
    if (endpoints === undefined) return `${sb} (<error: endpoints "${name}" not found>)`;
    const service = find('Service');
    if (service === undefined) return `${sb} (<error: services "${name}" not found>)`;
    let portName = '';
    for (const sp of objs(at(service, 'spec.ports'))) {
      if (num(port.number) !== 0 && num(port.number) === num(sp.port)) portName = str(sp.name);
      else if (str(port.name) !== '' && str(port.name) === str(sp.name)) portName = str(sp.name);
    }
    return `${sb} (${formatEndpoints(endpoints, portName)})`;
  }
  if (b.resource !== undefined) {
    const r = obj(b.resource);
    return `APIGroup: ${str(r.apiGroup) || '<none>'}, Kind: ${str(r.kind)}, Name: ${str(r.name)}`;
  }
  return '';
}

/** kubectl's describeIngressV1. */
function describeIngress(w: DescribeWriter, ing: ApiObject, related: ApiObject[]): void {
  const spec = obj(ing.spec);
  w.write(0, `Name:\t${ing.metadata.name ?? ''}\n`);
  writeLabels(w, 'Labels', ing.metadata.labels);
  w.write(0, `Namespace:\t${ing.metadata.namespace ?? ''}\n`);
  w.write(0, `Address:\t${ingressAddress(ing, true)}\n`);
  w.write(0, `Ingress Class:\t${str(spec.ingressClassName) || '<none>'}\n`);
  const def = spec.defaultBackend === undefined ? '<default>' : ingressBackend(spec.defaultBackend, related);
  w.write(0, `Default backend:\t${def}\n`);
  const tls = objs(spec.tls);
  if (tls.length > 0) {
    w.write(0, 'TLS:\n');
    for (const t of tls) {
      const hosts = arr(t.hosts).map(str).join(',');
      if (str(t.secretName) === '') w.write(1, `SNI routes ${hosts}\n`);
      else w.write(1, `${str(t.secretName)} terminates ${hosts}\n`);
    }
  }
  w.write(0, 'Rules:\n  Host\tPath\tBackends\n');
  w.write(1, '----\t----\t--------\n');
  let count = 0;
  for (const rule of objs(spec.rules)) {
    if (rule.http === undefined) continue;
    count++;
    w.write(1, `${str(rule.host) || '*'}\t\n`);
    for (const p of objs(at(rule, 'http.paths')))
      w.write(2, `\t${str(p.path)} \t${ingressBackend(p.backend, related)}\n`);
  }
  if (count === 0) w.write(1, `*\t*\t${def}\n`);
  writeAnnotations(w, 'Annotations', ing.metadata.annotations);
}

/** Secret values never print: only their decoded sizes, like kubectl. */
function describeSecret(w: DescribeWriter, s: ApiObject): void {
  header(w, s, true);
  writeLabels(w, 'Labels', s.metadata.labels);
  writeAnnotations(w, 'Annotations', s.metadata.annotations);
  w.write(0, `\nType:\t${str(s.type) || 'Opaque'}\n`);
  w.write(0, '\nData\n====\n');
  const sizes = new Map<string, number>();
  for (const [k, v] of Object.entries(obj(s.data))) sizes.set(k, Buffer.from(str(v), 'base64').length);
  for (const [k, v] of Object.entries(obj(s.stringData))) sizes.set(k, Buffer.byteLength(str(v), 'utf8'));
  for (const k of [...sizes.keys()].sort()) w.write(0, `${k}:\t${sizes.get(k)} bytes\n`);
}

function describeConfigMap(w: DescribeWriter, cm: ApiObject): void {
  header(w, cm, true);
  writeLabels(w, 'Labels', cm.metadata.labels);
  writeAnnotations(w, 'Annotations', cm.metadata.annotations);
  w.write(0, '\nData\n====\n');
  const data = obj(cm.data);
  for (const k of Object.keys(data).sort()) w.write(0, `${k}:\n----\n${str(data[k])}\n\n`);
  w.write(0, '\nBinaryData\n====\n');
  const bin = obj(cm.binaryData);
  for (const k of Object.keys(bin).sort())
    w.write(0, `${k}: ${Buffer.from(str(bin[k]), 'base64').length} bytes\n`);
  w.write(0, '\n');
}

function describeNamespace(w: DescribeWriter, ns: ApiObject): void {
  header(w, ns, false);
  writeLabels(w, 'Labels', ns.metadata.labels);
  writeAnnotations(w, 'Annotations', ns.metadata.annotations);
  w.write(0, `Status:\t${str(at(ns, 'status.phase'))}\n`);
  w.write(0, '\nNo resource quota.\n\nNo LimitRange resource.\n');
}

function describeEndpoints(w: DescribeWriter, ep: ApiObject): void {
  header(w, ep, true);
  writeLabels(w, 'Labels', ep.metadata.labels);
  writeAnnotations(w, 'Annotations', ep.metadata.annotations);
  w.write(0, 'Subsets:\n');
  for (const ss of objs(ep.subsets)) {
    const ips = (v: unknown): string =>
      objs(v)
        .map((a) => str(a.ip))
        .join(',') || '<none>';
    w.write(1, `Addresses:\t${ips(ss.addresses)}\n`);
    w.write(1, `NotReadyAddresses:\t${ips(ss.notReadyAddresses)}\n`);
    const ports = objs(ss.ports);
    if (ports.length > 0) {
      w.write(1, 'Ports:\n');
      w.write(2, 'Name\tPort\tProtocol\n');
      w.write(2, '----\t----\t--------\n');
      for (const p of ports)
        w.write(2, `${str(p.name) || '<unset>'}\t${num(p.port)}\t${str(p.protocol) || 'TCP'}\n`);
    }
    w.write(0, '\n');
  }
}

/** Sum of a resource over a pod's containers, in base units (cores, bytes), and its format. */
function podTotal(
  pods: ApiObject[],
  field: 'requests' | 'limits',
  resource: string,
): { value: number; unit: string } {
  let value = 0;
  let unit = '';
  for (const p of pods) {
    for (const c of objs(at(p, 'spec.containers'))) {
      const q = parseQuantity(str(obj(at(c, `resources.${field}`))[resource]));
      if (q === undefined) continue;
      value += q.value;
      if (unit === '') unit = q.unit;
    }
  }
  return { value, unit };
}

const pct = (v: number, of: number): number => (of === 0 ? 0 : Math.trunc((v / of) * 100));

function describeNode(w: DescribeWriter, node: ApiObject, related: ApiObject[], now: number): void {
  const status = obj(node.status);
  header(w, node, false);
  w.write(0, `Roles:\t${nodeRoles(node).join(',') || '<none>'}\n`);
  writeLabels(w, 'Labels', node.metadata.labels);
  writeAnnotations(w, 'Annotations', node.metadata.annotations);
  w.write(0, `CreationTimestamp:\t${rfc1123z(node.metadata.creationTimestamp)}\n`);
  const taints = objs(at(node, 'spec.taints'));
  const effects = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];
  const ordered = effects.flatMap((e) => taints.filter((t) => t.effect === e));
  w.write(0, 'Taints:\t');
  if (ordered.length === 0) w.line('<none>');
  ordered.forEach((t, i) => {
    if (i !== 0) w.write(0, '\t');
    w.line(`${str(t.key)}${str(t.value) === '' ? '' : `=${str(t.value)}`}:${str(t.effect)}`);
  });
  w.write(0, `Unschedulable:\t${at(node, 'spec.unschedulable') === true}\n`);
  const lease = related.find((o) => o.kind === 'Lease' && o.metadata.name === node.metadata.name);
  const leaseTime = (f: string): string =>
    str(at(lease, f)) === '' ? '<unset>' : rfc1123z(str(at(lease, f)));
  w.write(0, 'Lease:\n');
  w.write(1, `HolderIdentity:\t${str(at(lease, 'spec.holderIdentity')) || '<unset>'}\n`);
  w.write(1, `AcquireTime:\t${leaseTime('spec.acquireTime')}\n`);
  w.write(1, `RenewTime:\t${leaseTime('spec.renewTime')}\n`);
  const conditions = objs(status.conditions);
  if (conditions.length > 0) {
    w.write(0, 'Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n');
    w.write(1, '----\t------\t-----------------\t------------------\t------\t-------\n');
    for (const c of conditions) {
      w.write(
        1,
        `${str(c.type)} \t${str(c.status)} \t${rfc1123z(str(c.lastHeartbeatTime))} \t` +
          `${rfc1123z(str(c.lastTransitionTime))} \t${str(c.reason)} \t${str(c.message)}\n`,
      );
    }
  }
  w.write(0, 'Addresses:\n');
  for (const a of objs(status.addresses)) w.write(1, `${str(a.type)}:\t${str(a.address)}\n`);
  for (const [title, list] of [
    ['Capacity', status.capacity],
    ['Allocatable', status.allocatable],
  ] as const) {
    const m = obj(list);
    if (Object.keys(m).length === 0) continue;
    w.write(0, `${title}:\n`);
    for (const k of Object.keys(m).sort()) w.write(1, `${k}:\t${str(m[k])}\n`);
  }
  const info = obj(status.nodeInfo);
  w.write(0, 'System Info:\n');
  for (const [label, key] of [
    ['Machine ID', 'machineID'],
    ['System UUID', 'systemUUID'],
    ['Boot ID', 'bootID'],
    ['Kernel Version', 'kernelVersion'],
    ['OS Image', 'osImage'],
    ['Operating System', 'operatingSystem'],
    ['Architecture', 'architecture'],
    ['Container Runtime Version', 'containerRuntimeVersion'],
    ['Kubelet Version', 'kubeletVersion'],
    ['Kube-Proxy Version', 'kubeProxyVersion'],
  ] as const) {
    w.write(1, `${label}:\t${str(info[key])}\n`);
  }
  const podCIDRs = arr(at(node, 'spec.podCIDRs')).map(str);
  if (str(at(node, 'spec.podCIDR')) !== '') w.write(0, `PodCIDR:\t${str(at(node, 'spec.podCIDR'))}\n`);
  if (podCIDRs.length > 0) w.write(0, `PodCIDRs:\t${podCIDRs.join(',')}\n`);
  if (str(at(node, 'spec.providerID')) !== '')
    w.write(0, `ProviderID:\t${str(at(node, 'spec.providerID'))}\n`);
  describeNodePods(w, node, related, now);
}

function describeNodePods(w: DescribeWriter, node: ApiObject, related: ApiObject[], now: number): void {
  const pods = related.filter(
    (o) =>
      o.kind === 'Pod' &&
      str(at(o, 'spec.nodeName')) === node.metadata.name &&
      !['Succeeded', 'Failed'].includes(str(at(o, 'status.phase'))),
  );
  const alloc =
    Object.keys(obj(at(node, 'status.allocatable'))).length > 0 ? 'status.allocatable' : 'status.capacity';
  const allocOf = (r: string): number => parseQuantity(str(at(node, `${alloc}.${r}`)))?.value ?? 0;
  const cell = (list: ApiObject[], field: 'requests' | 'limits', r: string): string => {
    const t = podTotal(list, field, r);
    return `${formatQuantity(t.value, t.unit)} (${pct(t.value, allocOf(r))}%)`;
  };
  w.write(0, `Non-terminated Pods:\t(${pods.length} in total)\n`);
  w.write(1, 'Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n');
  w.write(1, '---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n');
  for (const p of pods) {
    w.write(
      1,
      `${p.metadata.namespace ?? ''}\t${p.metadata.name ?? ''}\t\t${cell([p], 'requests', 'cpu')}\t${cell([p], 'limits', 'cpu')}\t` +
        `${cell([p], 'requests', 'memory')}\t${cell([p], 'limits', 'memory')}\t${formatAge(p.metadata.creationTimestamp, now)}\n`,
    );
  }
  w.write(0, 'Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n');
  w.write(1, 'Resource\tRequests\tLimits\n');
  w.write(1, '--------\t--------\t------\n');
  for (const r of ['cpu', 'memory', 'ephemeral-storage']) {
    w.write(1, `${r}\t${cell(pods, 'requests', r)}\t${cell(pods, 'limits', r)}\n`);
  }
}

function writeScalingRules(w: DescribeWriter, direction: string, rules: unknown): void {
  if (rules === undefined) return;
  const r = obj(rules);
  w.write(1, `${direction}:\n`);
  if (r.stabilizationWindowSeconds !== undefined)
    w.write(2, `Stabilization Window: ${num(r.stabilizationWindowSeconds)} seconds\n`);
  const policies = objs(r.policies);
  if (policies.length === 0) return;
  w.write(2, `Select Policy: ${str(r.selectPolicy) || 'Max'}\n`);
  w.write(2, 'Policies:\n');
  for (const p of policies)
    w.write(3, `- Type: ${str(p.type)}\tValue: ${num(p.value)}\tPeriod: ${num(p.periodSeconds)} seconds\n`);
}

/** kubectl's describeHorizontalPodAutoscalerV2. */
function describeHorizontalPodAutoscaler(w: DescribeWriter, hpa: ApiObject): void {
  const spec = obj(hpa.spec);
  const status = obj(hpa.status);
  header(w, hpa, true);
  writeLabels(w, 'Labels', hpa.metadata.labels);
  writeAnnotations(w, 'Annotations', hpa.metadata.annotations);
  w.write(0, `CreationTimestamp:\t${rfc1123z(hpa.metadata.creationTimestamp)}\n`);
  const kind = str(at(spec, 'scaleTargetRef.kind'));
  w.write(0, `Reference:\t${kind}/${str(at(spec, 'scaleTargetRef.name'))}\n`);
  w.write(0, 'Metrics:\t( current / target )\n');
  const statuses = objs(status.currentMetrics);
  for (const [i, m] of objs(spec.metrics).entries()) {
    if (str(m.type) !== 'Resource') continue;
    const x = hpaMetric(m, statuses[i]);
    if (!x.utilization) {
      w.write(1, `resource ${x.name} on pods:\t${x.current} / ${x.target}\n`);
      continue;
    }
    const value = at(statuses[i], 'resource.current.averageValue');
    const current =
      x.current === '<unknown>' || value === undefined ? x.current : `${x.current} (${String(value)})`;
    w.write(1, `resource ${x.name} on pods  (as a percentage of request):\t${current} / ${x.target}\n`);
  }
  w.write(0, `Min replicas:\t${spec.minReplicas === undefined ? '<unset>' : num(spec.minReplicas)}\n`);
  w.write(0, `Max replicas:\t${num(spec.maxReplicas)}\n`);
  if (spec.behavior !== undefined) {
    w.write(0, 'Behavior:\n');
    writeScalingRules(w, 'Scale Up', at(spec, 'behavior.scaleUp'));
    writeScalingRules(w, 'Scale Down', at(spec, 'behavior.scaleDown'));
  }
  w.write(
    0,
    `${kind} pods:\t${num(status.currentReplicas)} current / ${num(status.desiredReplicas)} desired\n`,
  );
  const conditions = objs(status.conditions);
  if (conditions.length > 0) {
    w.write(0, 'Conditions:\n');
    w.write(1, 'Type\tStatus\tReason\tMessage\n');
    w.write(1, '----\t------\t------\t-------\n');
    for (const c of conditions)
      w.write(1, `${str(c.type)}\t${str(c.status)}\t${str(c.reason)}\t${str(c.message)}\n`);
  }
}

/** kubectl's camel-case field to label ('apiVersion' → 'API Version'). */
function smartLabel(field: string): string {
  if (/[^A-Za-z-]/.test(field)) return field;
  const parts = field.match(/[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[A-Z]+|-/g) ?? [field];
  return parts
    .map((p) =>
      ['API', 'URL', 'UID', 'OSB', 'GUID'].includes(p.toUpperCase())
        ? p.toUpperCase()
        : p[0]?.toUpperCase() + p.slice(1),
    )
    .join(' ');
}

function writeUnstructured(
  w: DescribeWriter,
  level: number,
  content: Obj,
  prefix: string,
  skip: Set<string>,
): void {
  for (const field of Object.keys(content).sort()) {
    const path = `${prefix}.${field}`;
    if (skip.has(path)) continue;
    const value = content[field];
    if (Array.isArray(value)) {
      w.write(level, `${smartLabel(field)}:\n`);
      for (const child of value) {
        if (typeof child === 'object' && child !== null && !Array.isArray(child)) {
          writeUnstructured(w, level + 1, child as Obj, path, skip);
        } else w.write(level + 1, `${goValue(child)}\n`);
      }
    } else if (typeof value === 'object' && value !== null) {
      w.write(level, `${smartLabel(field)}:\n`);
      writeUnstructured(w, level + 1, value as Obj, path, skip);
    } else w.write(level, `${smartLabel(field)}:\t${goValue(value)}\n`);
  }
}

/** kubectl's generic describer (Lease, Event, and kinds without their own describer). */
function describeGeneric(w: DescribeWriter, kind: KindInfo, o: ApiObject): void {
  header(w, o, kind.namespaced);
  writeLabels(w, 'Labels', o.metadata.labels);
  writeAnnotations(w, 'Annotations', o.metadata.annotations);
  const skip = new Set([
    '.metadata.managedFields',
    '.metadata.name',
    '.metadata.namespace',
    '.metadata.labels',
    '.metadata.annotations',
  ]);
  writeUnstructured(w, 0, o as unknown as Obj, '', skip);
}

/** kubectl describe for one object, ending with its events (Secret and Namespace have none, as in kubectl). */
export function describeObject(kind: KindInfo, o: ApiObject, extras: DescribeExtras): string {
  const w = new DescribeWriter();
  const related = extras.related ?? [];
  switch (kind.kind) {
    case 'Pod':
      describePod(w, o);
      break;
    case 'Deployment':
      describeDeployment(w, o, related);
      break;
    case 'ReplicaSet':
      describeReplicaSet(w, o, related);
      break;
    case 'Service':
      describeService(w, o, related);
      break;
    case 'Secret':
      describeSecret(w, o);
      return w.toString();
    case 'ConfigMap':
      describeConfigMap(w, o);
      break;
    case 'Namespace':
      describeNamespace(w, o);
      return w.toString();
    case 'Node':
      describeNode(w, o, related, extras.now);
      break;
    case 'Endpoints':
      describeEndpoints(w, o);
      break;
    case 'Ingress':
      describeIngress(w, o, related);
      break;
    case 'PersistentVolumeClaim':
      describeClaim(w, o, related);
      break;
    case 'PersistentVolume':
      describeVolume(w, o);
      break;
    case 'StorageClass':
      describeStorageClass(w, o);
      break;
    case 'HorizontalPodAutoscaler':
      describeHorizontalPodAutoscaler(w, o);
      break;
    default:
      describeGeneric(w, kind, o);
  }
  writeEvents(w, extras.events, extras.now);
  return w.toString();
}
