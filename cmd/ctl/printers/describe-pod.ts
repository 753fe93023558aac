// kubectl describe for pods and the workloads that template them (Deployment, ReplicaSet):
// containers, probes, environment, mounts, volumes, conditions, as k8s.io/kubectl's describe.go.
import type { ApiObject } from '../../../pkg/api/types.js';
import { rfc1123z } from './age.js';
import { arr, at, bool, controllerOf, num, type Obj, obj, objs, str } from './fields.js';
import type { DescribeWriter } from './tabwriter.js';

/** printLabelsMultilineWithIndent: sorted 'k=v', continuation lines aligned under the first. */
export function writeLabels(w: DescribeWriter, title: string, labels: unknown, indent = ''): void {
  const m = obj(labels);
  w.write(0, `${indent}${title}:\t`);
  const keys = Object.keys(m).sort();
  if (keys.length === 0) {
    w.line('<none>');
    return;
  }
  keys.forEach((k, i) => {
    if (i !== 0) w.write(0, `${indent}\t`);
    w.line(`${k}=${str(m[k])}`);
  });
}

const SKIP_ANNOTATIONS = new Set(['kubectl.kubernetes.io/last-applied-configuration']);
const MAX_ANNOTATION_LEN = 140;

/** printAnnotationsMultiline: long or multi-line values go on their own indented lines. */
export function writeAnnotations(w: DescribeWriter, title: string, annotations: unknown, indent = ''): void {
  const m = obj(annotations);
  w.write(0, `${indent}${title}:\t`);
  const keys = Object.keys(m)
    .filter((k) => !SKIP_ANNOTATIONS.has(k))
    .sort();
  if (keys.length === 0) {
    w.line('<none>');
    return;
  }
  keys.forEach((k, i) => {
    if (i !== 0) w.write(0, `${indent}\t`);
    const value = str(m[k]).replace(/\n$/, '');
    if (value.length + k.length + 2 > MAX_ANNOTATION_LEN || value.includes('\n')) {
      w.line(`${k}:`);
      for (const s of value.split('\n')) {
        const short = s.length > MAX_ANNOTATION_LEN - 2 ? `${s.slice(0, MAX_ANNOTATION_LEN - 5)}...` : s;
        w.write(0, `${indent}\t  ${short}\n`);
      }
    } else w.line(`${k}: ${value}`);
  });
}

/** printTolerationsMultilineWithIndent. */
export function writeTolerations(w: DescribeWriter, title: string, tolerations: unknown, indent = ''): void {
  w.write(0, `${indent}${title}:\t`);
  const list = objs(tolerations).sort((a, b) =>
    str(a.key) < str(b.key) ? -1 : str(a.key) > str(b.key) ? 1 : 0,
  );
  if (list.length === 0) {
    w.line('<none>');
    return;
  }
  list.forEach((t, i) => {
    if (i !== 0) w.write(0, `${indent}\t`);
    let s = str(t.key);
    if (str(t.value) !== '') s += `=${str(t.value)}`;
    if (str(t.effect) !== '') s += `:${str(t.effect)}`;
    if (t.operator === 'Exists' && str(t.value) === '') {
      s += str(t.key) !== '' || str(t.effect) !== '' ? ' op=Exists' : 'op=Exists';
    }
    if (typeof t.tolerationSeconds === 'number') s += ` for ${t.tolerationSeconds}s`;
    w.line(s);
  });
}

/** kubectl's DescribeProbe; missing fields take the API server's defaults. */
function describeProbe(p: Obj): string {
  const attrs =
    `delay=${num(p.initialDelaySeconds)}s timeout=${num(p.timeoutSeconds) || 1}s ` +
    `period=${num(p.periodSeconds) || 10}s #success=${num(p.successThreshold) || 1} ` +
    `#failure=${num(p.failureThreshold) || 3}`;
  if (p.exec !== undefined) return `exec [${arr(at(p, 'exec.command')).map(str).join(' ')}] ${attrs}`;
  if (p.httpGet !== undefined) {
    const h = obj(p.httpGet);
    const scheme = (str(h.scheme) || 'HTTP').toLowerCase();
    const port = str(h.port);
    const host = port === '' ? str(h.host) : `${str(h.host)}:${port}`;
    return `http-get ${scheme}://${host}${str(h.path)} ${attrs}`;
  }
  if (p.tcpSocket !== undefined)
    return `tcp-socket ${str(at(p, 'tcpSocket.host'))}:${str(at(p, 'tcpSocket.port'))} ${attrs}`;
  if (p.grpc !== undefined)
    return `grpc <pod>:${num(at(p, 'grpc.port'))} ${str(at(p, 'grpc.service'))} ${attrs}`;
  return `unknown ${attrs}`;
}

function describeState(w: DescribeWriter, name: string, state: Obj): void {
  if (state.running !== undefined) {
    w.write(2, `${name}:\tRunning\n`);
    w.write(3, `Started:\t${rfc1123z(str(at(state, 'running.startedAt')))}\n`);
  } else if (state.waiting !== undefined) {
    w.write(2, `${name}:\tWaiting\n`);
    if (str(at(state, 'waiting.reason')) !== '') w.write(3, `Reason:\t${str(at(state, 'waiting.reason'))}\n`);
  } else if (state.terminated !== undefined) {
    const t = obj(state.terminated);
    w.write(2, `${name}:\tTerminated\n`);
    if (str(t.reason) !== '') w.write(3, `Reason:\t${str(t.reason)}\n`);
    if (str(t.message) !== '') w.write(3, `Message:\t${str(t.message)}\n`);
    w.write(3, `Exit Code:\t${num(t.exitCode)}\n`);
    if (num(t.signal) > 0) w.write(3, `Signal:\t${num(t.signal)}\n`);
    w.write(3, `Started:\t${rfc1123z(str(t.startedAt))}\n`);
    w.write(3, `Finished:\t${rfc1123z(str(t.finishedAt))}\n`);
  } else w.write(2, `${name}:\tWaiting\n`);
}

/** Limits/Requests, resource names in sorted order as kubectl prints them. */
function writeResources(w: DescribeWriter, title: string, list: unknown): void {
  const m = obj(list);
  const names = Object.keys(m).sort();
  if (names.length === 0) return;
  w.write(2, `${title}:\n`);
  for (const n of names) w.write(3, `${n}:\t${str(m[n])}\n`);
}

function writeEnv(w: DescribeWriter, c: Obj): void {
  const envFrom = objs(c.envFrom);
  if (envFrom.length > 0) {
    w.write(2, 'Environment Variables from:\n');
    for (const e of envFrom) {
      const ref = e.configMapRef !== undefined ? obj(e.configMapRef) : obj(e.secretRef);
      const from = e.configMapRef !== undefined ? 'ConfigMap' : 'Secret';
      const prefix = str(e.prefix) === '' ? from : `${from} with prefix '${str(e.prefix)}'`;
      w.write(3, `${str(ref.name)}\t${prefix}\tOptional: ${bool(ref.optional)}\n`);
    }
  }
  const env = objs(c.env);
  w.write(2, `Environment:${env.length === 0 ? '\t<none>' : ''}\n`);
  for (const e of env) {
    const from = obj(e.valueFrom);
    if (e.valueFrom === undefined) {
      for (const [i, s] of str(e.value).split('\n').entries()) {
        w.write(3, i === 0 ? `${str(e.name)}:\t${s}\n` : `\t${s}\n`);
      }
    } else if (from.secretKeyRef !== undefined) {
      const r = obj(from.secretKeyRef);
      w.write(
        3,
        `${str(e.name)}:\t<set to the key '${str(r.key)}' in secret '${str(r.name)}'>\tOptional: ${bool(r.optional)}\n`,
      );
    } else if (from.configMapKeyRef !== undefined) {
      const r = obj(from.configMapKeyRef);
      w.write(
        3,
        `${str(e.name)}:\t<set to the key '${str(r.key)}' of config map '${str(r.name)}'>\tOptional: ${bool(r.optional)}\n`,
      );
    } else if (from.fieldRef !== undefined) {
      const r = obj(from.fieldRef);
      w.write(3, `${str(e.name)}:\t (${str(r.apiVersion) || 'v1'}:${str(r.fieldPath)})\n`);
    } else w.write(3, `${str(e.name)}:\t\n`);
  }
}

/** describeContainers: `space` is '  ' inside a pod template, which also indents names by one. */
export function writeContainers(
  w: DescribeWriter,
  label: string,
  containers: Obj[],
  statuses: Obj[],
  space = '',
): void {
  w.write(0, `${space}${label}:${containers.length === 0 ? ' <none>' : ''}\n`);
  const byName = new Map(statuses.map((s) => [str(s.name), s]));
  for (const c of containers) {
    const status = byName.get(str(c.name));
    w.write(1, `${space === '' ? '' : ' '}${str(c.name)}:\n`);
    if (status) w.write(2, `Container ID:\t${str(status.containerID)}\n`);
    w.write(2, `Image:\t${str(c.image)}\n`);
    if (status) w.write(2, `Image ID:\t${str(status.imageID)}\n`);
    const ports = objs(c.ports);
    const portStr = ports.map((p) => `${num(p.containerPort)}/${str(p.protocol) || 'TCP'}`).join(', ');
    const hostStr = ports.map((p) => `${num(p.hostPort)}/${str(p.protocol) || 'TCP'}`).join(', ');
    w.write(2, portStr.includes(',') ? `Ports:\t${portStr}\n` : `Port:\t${portStr || '<none>'}\n`);
    w.write(2, hostStr.includes(',') ? `Host Ports:\t${hostStr}\n` : `Host Port:\t${hostStr || '<none>'}\n`);
    for (const [title, list] of [
      ['Command', c.command],
      ['Args', c.args],
    ] as const) {
      if (arr(list).length === 0) continue;
      w.write(2, `${title}:\n`);
      for (const s of arr(list).flatMap((x) => str(x).split('\n'))) w.write(3, `${s}\n`);
    }
    if (status) {
      describeState(w, 'State', obj(status.state));
      if (at(status, 'lastState.terminated') !== undefined)
        describeState(w, 'Last State', obj(status.lastState));
      w.write(2, `Ready:\t${bool(status.ready) ? 'True' : 'False'}\n`);
      w.write(2, `Restart Count:\t${num(status.restartCount)}\n`);
    }
    writeResources(w, 'Limits', at(c, 'resources.limits'));
    writeResources(w, 'Requests', at(c, 'resources.requests'));
    if (c.livenessProbe !== undefined) w.write(2, `Liveness:\t${describeProbe(obj(c.livenessProbe))}\n`);
    if (c.readinessProbe !== undefined) w.write(2, `Readiness:\t${describeProbe(obj(c.readinessProbe))}\n`);
    if (c.startupProbe !== undefined) w.write(2, `Startup:\t${describeProbe(obj(c.startupProbe))}\n`);
    writeEnv(w, c);
    const mounts = objs(c.volumeMounts).sort((a, b) => (str(a.mountPath) < str(b.mountPath) ? -1 : 1));
    w.write(2, `Mounts:${mounts.length === 0 ? '\t<none>' : ''}\n`);
    for (const m of mounts) {
      const flags = [bool(m.readOnly) ? 'ro' : 'rw'];
      if (str(m.subPath) !== '') flags.push(`path=${JSON.stringify(str(m.subPath))}`);
      w.write(3, `${str(m.mountPath)} from ${str(m.name)} (${flags.join(',')})\n`);
    }
  }
}

export function writeVolumes(w: DescribeWriter, volumes: Obj[], space = ''): void {
  if (volumes.length === 0) {
    w.write(0, `${space}Volumes:\t<none>\n`);
    return;
  }
  w.write(0, `${space}Volumes:\n`);
  for (const v of volumes) {
    w.write(1, `${space === '' ? '' : ' '}${str(v.name)}:\n`);
    if (v.hostPath !== undefined) {
      w.write(2, 'Type:\tHostPath (bare host directory volume)\n');
      w.write(2, `Path:\t${str(at(v, 'hostPath.path'))}\n`);
      w.write(
        2,
        `HostPathType:\t${at(v, 'hostPath.type') === undefined ? '<none>' : str(at(v, 'hostPath.type'))}\n`,
      );
    } else if (v.emptyDir !== undefined) {
      w.write(2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n");
      w.write(2, `Medium:\t${str(at(v, 'emptyDir.medium'))}\n`);
      w.write(2, `SizeLimit:\t${str(at(v, 'emptyDir.sizeLimit')) || '<unset>'}\n`);
    } else if (v.configMap !== undefined) {
      w.write(2, 'Type:\tConfigMap (a volume populated by a ConfigMap)\n');
      w.write(2, `Name:\t${str(at(v, 'configMap.name'))}\n`);
      w.write(2, `Optional:\t${bool(at(v, 'configMap.optional'))}\n`);
    } else if (v.secret !== undefined) {
      w.write(2, 'Type:\tSecret (a volume populated by a Secret)\n');
      w.write(2, `SecretName:\t${str(at(v, 'secret.secretName'))}\n`);
      w.write(2, `Optional:\t${bool(at(v, 'secret.optional'))}\n`);
    } else if (v.persistentVolumeClaim !== undefined) {
      w.write(
        2,
        'Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n',
      );
      w.write(2, `ClaimName:\t${str(at(v, 'persistentVolumeClaim.claimName'))}\n`);
      w.write(2, `ReadOnly:\t${bool(at(v, 'persistentVolumeClaim.readOnly'))}\n`);
    } else w.write(1, '<unknown>\n');
  }
}

/** Kubernetes' QoS class: no requests or limits anywhere → BestEffort; limits = requests for cpu and memory everywhere → Guaranteed. */
function qosClass(containers: Obj[]): string {
  let any = false;
  let guaranteed = true;
  for (const c of containers) {
    const req = obj(at(c, 'resources.requests'));
    const lim = obj(at(c, 'resources.limits'));
    if (Object.keys(req).length + Object.keys(lim).length > 0) any = true;
    for (const r of ['cpu', 'memory']) {
      if (lim[r] === undefined || (req[r] !== undefined && str(req[r]) !== str(lim[r]))) guaranteed = false;
    }
  }
  return !any ? 'BestEffort' : guaranteed ? 'Guaranteed' : 'Burstable';
}

export function describePod(w: DescribeWriter, pod: ApiObject): void {
  const spec = obj(pod.spec);
  const status = obj(pod.status);
  w.write(0, `Name:\t${pod.metadata.name ?? ''}\n`);
  w.write(0, `Namespace:\t${pod.metadata.namespace ?? ''}\n`);
  if (typeof spec.priority === 'number') w.write(0, `Priority:\t${spec.priority}\n`);
  if (str(spec.priorityClassName) !== '')
    w.write(0, `Priority Class Name:\t${str(spec.priorityClassName)}\n`);
  if (str(spec.serviceAccountName) !== '') w.write(0, `Service Account:\t${str(spec.serviceAccountName)}\n`);
  const node = str(spec.nodeName);
  w.write(0, `Node:\t${node === '' ? '<none>' : `${node}/${str(status.hostIP)}`}\n`);
  if (str(status.startTime) !== '') w.write(0, `Start Time:\t${rfc1123z(str(status.startTime))}\n`);
  writeLabels(w, 'Labels', pod.metadata.labels);
  writeAnnotations(w, 'Annotations', pod.metadata.annotations);
  const phase = str(status.phase);
  if (pod.metadata.deletionTimestamp !== undefined && phase !== 'Failed' && phase !== 'Succeeded') {
    w.write(0, `Status:\tTerminating (lasts ${rfc1123z(pod.metadata.deletionTimestamp)})\n`);
    w.write(0, `Termination Grace Period:\t${pod.metadata.deletionGracePeriodSeconds ?? 0}s\n`);
  } else w.write(0, `Status:\t${phase}\n`);
  if (str(status.reason) !== '') w.write(0, `Reason:\t${str(status.reason)}\n`);
  if (str(status.message) !== '') w.write(0, `Message:\t${str(status.message)}\n`);
  w.write(0, `IP:\t${str(status.podIP)}\n`);
  const ips = objs(status.podIPs);
  if (ips.length === 0) w.write(0, 'IPs:\t<none>\n');
  else {
    w.write(0, 'IPs:\n');
    for (const ip of ips) w.write(1, `IP:\t${str(ip.ip)}\n`);
  }
  const controller = controllerOf(pod.metadata);
  if (controller !== '') w.write(0, `Controlled By:\t${controller}\n`);
  if (str(status.nominatedNodeName) !== '')
    w.write(0, `NominatedNodeName:\t${str(status.nominatedNodeName)}\n`);
  const inits = objs(spec.initContainers);
  if (inits.length > 0) writeContainers(w, 'Init Containers', inits, objs(status.initContainerStatuses));
  writeContainers(w, 'Containers', objs(spec.containers), objs(status.containerStatuses));
  const conditions = objs(status.conditions);
  if (conditions.length > 0) {
    w.write(0, 'Conditions:\n  Type\tStatus\n');
    for (const c of conditions) w.write(1, `${str(c.type)} \t${str(c.status)} \n`);
  }
  writeVolumes(w, objs(spec.volumes));
  w.write(0, `QoS Class:\t${str(status.qosClass) || qosClass([...inits, ...objs(spec.containers)])}\n`);
  writeLabels(w, 'Node-Selectors', spec.nodeSelector);
  writeTolerations(w, 'Tolerations', spec.tolerations);
}

/** DescribePodTemplate, shared by Deployment and ReplicaSet. */
export function writePodTemplate(w: DescribeWriter, template: unknown): void {
  const t = obj(template);
  const spec = obj(t.spec);
  w.write(0, 'Pod Template:\n');
  writeLabels(w, 'Labels', at(t, 'metadata.labels'), '  ');
  if (Object.keys(obj(at(t, 'metadata.annotations'))).length > 0) {
    writeAnnotations(w, 'Annotations', at(t, 'metadata.annotations'), '  ');
  }
  if (str(spec.serviceAccountName) !== '') w.write(1, `Service Account:\t${str(spec.serviceAccountName)}\n`);
  const inits = objs(spec.initContainers);
  if (inits.length > 0) writeContainers(w, 'Init Containers', inits, [], '  ');
  writeContainers(w, 'Containers', objs(spec.containers), [], '  ');
  writeVolumes(w, objs(spec.volumes), '  ');
  if (str(spec.priorityClassName) !== '')
    w.write(1, `Priority Class Name:\t${str(spec.priorityClassName)}\n`);
  writeLabels(w, 'Node-Selectors', spec.nodeSelector, '  ');
  writeTolerations(w, 'Tolerations', spec.tolerations, '  ');
}

/** Conditions table of Deployments and ReplicaSets: Type, Status, Reason. */
export function writeWorkloadConditions(w: DescribeWriter, o: ApiObject): void {
  const conditions = objs(at(o, 'status.conditions'));
  if (conditions.length === 0) return;
  w.write(0, 'Conditions:\n  Type\tStatus\tReason\n');
  w.write(1, '----\t------\t------\n');
  for (const c of conditions) w.write(1, `${str(c.type)} \t${str(c.status)}\t${str(c.reason)}\n`);
}
