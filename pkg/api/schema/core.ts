// The smaller kinds' parts: Namespace, Node, ConfigMap, Secret, Event (core/v1) and Lease.
// Root fields other than apiVersion/kind/metadata are given as field maps; index.ts adds those.

import {
  arr,
  asObj,
  asStr,
  bool,
  enumOf,
  type Issues,
  int,
  map,
  type Mutable,
  obj,
  own,
  quantity,
  ref,
  required,
  type Schema,
  str,
} from './dsl.js';
import { base64, configKey } from './formats.js';
import { condition, ObjectReference, time } from './meta.js';
import { TAINT_EFFECTS } from './pod.js';

export const NamespaceSpec = obj('NamespaceSpec', 'The attributes a user sets on a namespace.', {
  finalizers: arr(str('A finalizer name.'), 'Must be empty before the namespace is removed from storage.'),
});

export const NamespaceStatus = obj('NamespaceStatus', 'The current status of a namespace.', {
  phase: enumOf(['Active', 'Terminating'], 'The current lifecycle phase of the namespace.', {
    default: 'Active',
  }),
});

const Taint = obj('Taint', 'Makes a node repel pods that do not tolerate the taint.', {
  key: required(str('The taint key to be applied to a node.')),
  value: str('The taint value corresponding to the taint key.'),
  effect: required(enumOf(TAINT_EFFECTS, 'The effect of the taint on pods that do not tolerate it.')),
  timeAdded: time('When the taint was added (only for NoExecute taints).'),
});

export const NodeSpec = obj('NodeSpec', 'The attributes a node is created with.', {
  unschedulable: bool('Unschedulable controls node schedulability of new pods (cordon).'),
  taints: arr(Taint, "The node's taints."),
  podCIDR: str('The pod IP range assigned to the node.'),
  podCIDRs: arr(str('A CIDR.'), 'The pod IP ranges assigned to the node.'),
  providerID: str('ID of the node assigned by the cloud provider.'),
});

const resourceList = (d: string) => map(quantity('Amount of the resource.'), d);

export const NodeStatus = obj(
  'NodeStatus',
  'The most recently observed status of the node.',
  {
    capacity: resourceList('Total resources of the node.'),
    allocatable: resourceList('Resources of the node available for scheduling. Defaults to capacity.'),
    conditions: arr(
      condition('NodeCondition', 'A condition of the node, e.g. Ready, MemoryPressure.', {
        lastHeartbeatTime: 'Last time the condition was probed.',
        lastTransitionTime: 'Last time the condition transitioned from one status to another.',
      }),
      'Current observed conditions of the node.',
    ),
    addresses: arr(
      obj('NodeAddress', 'An address of the node.', {
        type: required(
          enumOf(
            ['Hostname', 'InternalIP', 'ExternalIP', 'InternalDNS', 'ExternalDNS'],
            'Node address type.',
          ),
        ),
        address: required(str('The node address.')),
      }),
      'Addresses reachable to the node.',
    ),
    nodeInfo: obj('NodeSystemInfo', 'Set of ids/uuids to uniquely identify the node.', {
      machineID: str('MachineID reported by the node.'),
      systemUUID: str('SystemUUID reported by the node.'),
      bootID: str('Boot ID reported by the node.'),
      kernelVersion: str('Kernel Version reported by the node (uname -r).'),
      osImage: str('OS Image reported by the node.'),
      containerRuntimeVersion: str('Container runtime version reported by the node, e.g. docker://27.3.1.'),
      kubeletVersion: str('Berth agent version reported by the node.'),
      operatingSystem: str('The operating system reported by the node, e.g. linux.'),
      architecture: str('The architecture reported by the node, e.g. amd64.'),
    }),
    daemonEndpoints: obj('NodeDaemonEndpoints', 'Endpoints of daemons run on the node.', {
      kubeletEndpoint: obj('DaemonEndpoint', 'Endpoint on which the node agent is listening.', {
        Port: required(int('Port number of the given endpoint.', { min: 0, max: 65535 })),
      }),
    }),
  },
  {
    defaults: (s: Mutable) => {
      if (s.allocatable == null && s.capacity != null) s.allocatable = structuredClone(s.capacity);
    },
  },
);

const CONFIG_MAX_BYTES = 1024 * 1024;

/** Decoded size of a base64 string. */
const decodedSize = (s: string) =>
  Math.floor((s.length * 3) / 4) - (s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0);

function sizeOf(root: Record<string, unknown>, fields: readonly [string, boolean][]): number {
  let total = 0;
  for (const [field, encoded] of fields) {
    for (const [k, v] of Object.entries(asObj(own(root, field)) ?? {})) {
      const s = asStr(v) ?? '';
      total += k.length + (encoded ? decodedSize(s) : Buffer.byteLength(s));
    }
  }
  return total;
}

const tooLong = () => `Too long: must have at most ${CONFIG_MAX_BYTES} bytes`;

export const ConfigMapFields: Record<string, Schema> = {
  data: map(str('A value.'), 'Configuration data: keys of [-._a-zA-Z0-9] and UTF-8 values.', {
    key: configKey,
  }),
  binaryData: map(
    str('Base64-encoded bytes.', { format: base64 }),
    'Binary data, base64-encoded. Keys must not be in data.',
    {
      key: configKey,
    },
  ),
  immutable: bool('If true, data cannot be updated (only the object deleted and recreated).'),
};

export function checkConfigMap(v: Record<string, unknown>, _path: string, out: Issues): void {
  const data = asObj(own(v, 'data')) ?? {};
  for (const k of Object.keys(asObj(own(v, 'binaryData')) ?? {})) {
    if (Object.hasOwn(data, k))
      out.add(`binaryData[${k}]`, `Invalid value: ${JSON.stringify(k)}: duplicate of key present in data`);
  }
  if (
    sizeOf(v, [
      ['data', false],
      ['binaryData', true],
    ]) > CONFIG_MAX_BYTES
  )
    out.add('data', tooLong());
}

export const SecretFields: Record<string, Schema> = {
  type: str('Used to facilitate programmatic handling of secret data, e.g. kubernetes.io/tls.', {
    default: 'Opaque',
  }),
  data: map(
    str('Base64-encoded bytes.', { format: base64 }),
    'Secret data: keys of [-._a-zA-Z0-9], base64-encoded values.',
    {
      key: configKey,
    },
  ),
  stringData: map(str('A value.'), 'Write-only convenience: merged into data (encoded) on write.', {
    key: configKey,
  }),
  immutable: bool('If true, data cannot be updated (only the object deleted and recreated).'),
};

const REQUIRED_SECRET_KEYS: ReadonlyMap<string, readonly string[]> = new Map([
  ['kubernetes.io/tls', ['tls.crt', 'tls.key']],
  ['kubernetes.io/dockerconfigjson', ['.dockerconfigjson']],
  ['kubernetes.io/dockercfg', ['.dockercfg']],
  ['kubernetes.io/ssh-auth', ['ssh-privatekey']],
]);

export function checkSecret(v: Record<string, unknown>, _path: string, out: Issues): void {
  const data = asObj(own(v, 'data')) ?? {};
  const stringData = asObj(own(v, 'stringData')) ?? {};
  const type = asStr(own(v, 'type')) ?? 'Opaque';
  for (const key of REQUIRED_SECRET_KEYS.get(type) ?? []) {
    if (!Object.hasOwn(data, key) && !Object.hasOwn(stringData, key))
      out.add(`data[${key}]`, 'Required value');
  }
  if (
    sizeOf(v, [
      ['data', true],
      ['stringData', false],
    ]) > CONFIG_MAX_BYTES
  )
    out.add('data', tooLong());
}

/** As Kubernetes does on write: stringData entries win over data and are stored encoded. */
export function mergeStringData(s: Mutable): void {
  const stringData = asObj(s.stringData);
  if (stringData === undefined) return;
  const data: Record<string, unknown> = { ...(asObj(s.data) ?? {}) };
  for (const [k, v] of Object.entries(stringData))
    data[k] = Buffer.from(asStr(v) ?? '', 'utf8').toString('base64');
  s.data = data;
  delete s.stringData;
}

export const EventFields: Record<string, Schema> = {
  involvedObject: required(ref(ObjectReference, 'The object this event is about.')),
  reason: str('Short, machine understandable CamelCase reason for the transition, e.g. Scheduled.'),
  message: str('A human-readable description of the status of this operation.'),
  type: enumOf(['Normal', 'Warning'], 'Type of this event: Normal or Warning.', { default: 'Normal' }),
  count: int('The number of times this event has occurred.', { min: 0 }),
  firstTimestamp: time('The time at which the event was first recorded.'),
  lastTimestamp: time('The time at which the most recent occurrence of this event was recorded.'),
  eventTime: time('Time when this event was first observed (microsecond precision).'),
  source: obj('EventSource', 'The component reporting this event.', {
    component: str('Component from which the event is generated, e.g. scheduler.'),
    host: str('Node name on which the event is generated.'),
  }),
  reportingComponent: str('Name of the controller that emitted this event, e.g. berth.io/scheduler.'),
  reportingInstance: str('ID of the controller instance.'),
  action: str('What action was taken/failed regarding the involved object.'),
  related: ref(ObjectReference, 'Optional secondary object for more complex actions.'),
  series: obj('EventSeries', 'Data about the event series this event represents.', {
    count: int('Number of occurrences in this series up to the last heartbeat time.', { min: 0 }),
    lastObservedTime: time('Time of the last occurrence observed.'),
  }),
};

export const LeaseSpec = obj('LeaseSpec', 'The specification of a Lease.', {
  holderIdentity: str('Identity of the holder of the current lease.'),
  leaseDurationSeconds: int('Seconds candidates wait to force-acquire the lease, from the last renewTime.', {
    min: 1,
  }),
  acquireTime: time('When the current lease was acquired (RFC 3339 micro time).'),
  renewTime: time('When the current holder last updated the lease (RFC 3339 micro time).'),
  leaseTransitions: int('Number of transitions of the lease between holders.', { min: 0 }),
});
