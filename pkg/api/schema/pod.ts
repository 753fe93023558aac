// Pod: its spec (volumes, scheduling constraints), status, and the pod template that
// ReplicaSets and Deployments embed.

import { Container, PROTOCOLS } from './container.js';
import {
  arr,
  asArr,
  asObj,
  asStr,
  bool,
  enumOf,
  type Issues,
  int,
  invalid,
  map,
  type Mutable,
  obj,
  own,
  quantity,
  ref,
  required,
  str,
} from './dsl.js';
import { dnsLabel, dnsSubdomain, ipAddress, labelValue, qualifiedName, relativePath } from './formats.js';
import { condition, LabelSelector, ObjectMeta, time } from './meta.js';

const KeyToPath = obj('KeyToPath', 'Maps a key to a file path within a volume.', {
  key: required(str('The key to project.')),
  path: required(str('Relative path of the file to map the key to.', { format: relativePath })),
  mode: int('Mode bits used to set permissions on this file (0-0777).', { min: 0, max: 0o777 }),
});

const defaultMode = int('Mode bits used to set permissions on created files by default (0-0777).', {
  min: 0,
  max: 0o777,
  default: 0o644,
});

const HOST_PATH_TYPES = [
  '',
  'DirectoryOrCreate',
  'Directory',
  'FileOrCreate',
  'File',
  'Socket',
  'CharDevice',
  'BlockDevice',
];

const VOLUME_SOURCES = ['emptyDir', 'hostPath', 'configMap', 'secret', 'persistentVolumeClaim'] as const;

export const Volume = obj(
  'Volume',
  'A named volume in a pod that may be accessed by any container in the pod. An emptyDir unless a source is given.',
  {
    name: required(str('Volume name, a DNS label unique within the pod.', { format: dnsLabel })),
    emptyDir: obj('EmptyDirVolumeSource', "A temporary directory that shares the pod's lifetime.", {
      medium: enumOf(
        ['', 'Memory'],
        'What type of storage medium backs the directory: "" (node disk) or Memory.',
      ),
      sizeLimit: quantity('Total amount of local storage required for this volume.'),
    }),
    hostPath: obj('HostPathVolumeSource', 'A pre-existing file or directory on the host machine.', {
      path: required(str('Path of the directory on the host.')),
      type: enumOf(HOST_PATH_TYPES, 'Type for HostPath volume.', { default: '' }),
    }),
    configMap: obj('ConfigMapVolumeSource', 'A ConfigMap whose keys become files.', {
      name: required(str('Name of the ConfigMap.')),
      items: arr(KeyToPath, 'Keys to project and where; all keys when empty.'),
      defaultMode,
      optional: bool('Whether the ConfigMap or its keys must be defined.'),
    }),
    secret: obj('SecretVolumeSource', 'A Secret whose keys become files.', {
      secretName: required(str("Name of the secret in the pod's namespace.")),
      items: arr(KeyToPath, 'Keys to project and where; all keys when empty.'),
      defaultMode,
      optional: bool('Whether the Secret or its keys must be defined.'),
    }),
    persistentVolumeClaim: obj(
      'PersistentVolumeClaimVolumeSource',
      'A PersistentVolumeClaim in the same namespace.',
      {
        claimName: required(str('Name of the PersistentVolumeClaim.')),
        readOnly: bool('Force the ReadOnly setting in VolumeMounts.'),
      },
    ),
  },
  {
    check: (v: Record<string, unknown>, path: string, out: Issues) => {
      const set = VOLUME_SOURCES.filter((s) => own(v, s) != null);
      if (set.length > 1) out.add(`${path}.${set[1]}`, 'Forbidden: may not specify more than 1 volume type');
    },
    defaults: (v: Mutable) => {
      if (VOLUME_SOURCES.every((s) => v[s] == null)) v.emptyDir = {};
    },
  },
);

const NODE_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'] as const;

function checkNodeRequirement(v: Record<string, unknown>, path: string, out: Issues): void {
  const op = asStr(own(v, 'operator'));
  const values = asArr(own(v, 'values')) ?? [];
  if ((op === 'In' || op === 'NotIn') && values.length === 0)
    out.add(`${path}.values`, "Required value: must be specified when `operator` is 'In' or 'NotIn'");
  if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0)
    out.add(
      `${path}.values`,
      "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
    );
  if ((op === 'Gt' || op === 'Lt') && (values.length !== 1 || !/^-?\d+$/.test(asStr(values[0]) ?? '')))
    out.add(
      `${path}.values`,
      "Required value: must be specified single integer value when `operator` is 'Lt' or 'Gt'",
    );
}

const NodeSelectorRequirement = obj(
  'NodeSelectorRequirement',
  'A selector requirement on node labels: a key, an operator and values.',
  {
    key: required(str('The label key that the selector applies to.', { format: qualifiedName })),
    operator: required(enumOf(NODE_OPERATORS, 'How the key relates to the values.')),
    values: arr(
      str('A value.'),
      'Values: non-empty for In/NotIn, empty for Exists/DoesNotExist, one integer for Gt/Lt.',
    ),
  },
  { check: checkNodeRequirement },
);

const NodeFieldRequirement = obj(
  'NodeSelectorRequirement',
  'A selector requirement on node fields (only metadata.name).',
  {
    key: required(enumOf(['metadata.name'], 'The field the selector applies to.')),
    operator: required(enumOf(['In', 'NotIn'], 'How the field relates to the values.')),
    values: arr(str('A value.'), 'Exactly one node name.'),
  },
  {
    check: (v: Record<string, unknown>, path: string, out: Issues) => {
      if ((asArr(own(v, 'values')) ?? []).length !== 1)
        out.add(
          `${path}.values`,
          "Required value: must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
        );
    },
  },
);

export const NodeSelectorTerm = obj(
  'NodeSelectorTerm',
  'Requirements ANDed together; terms of a NodeSelector are ORed.',
  {
    matchExpressions: arr(NodeSelectorRequirement, "Requirements on the node's labels."),
    matchFields: arr(NodeFieldRequirement, "Requirements on the node's fields."),
  },
);

const weight = required(
  int('Weight associated with matching the term, in the range 1-100.', { min: 1, max: 100 }),
);

const NodeAffinity = obj('NodeAffinity', 'Node affinity scheduling rules for the pod.', {
  requiredDuringSchedulingIgnoredDuringExecution: obj(
    'NodeSelector',
    'The pod is not scheduled onto a node that does not match.',
    {
      nodeSelectorTerms: required(
        arr(NodeSelectorTerm, 'A list of node selector terms, ORed.', { check: nonEmpty }),
      ),
    },
  ),
  preferredDuringSchedulingIgnoredDuringExecution: arr(
    obj('PreferredSchedulingTerm', 'A weighted preference for nodes matching a term.', {
      weight,
      preference: required(ref(NodeSelectorTerm, 'A node selector term.')),
    }),
    'The scheduler prefers nodes that match these terms, by weight.',
  ),
});

function nonEmpty(v: unknown[], path: string, out: Issues): void {
  if (v.length === 0) out.add(path, 'Required value: must have at least one');
}

const PodAffinityTerm = obj(
  'PodAffinityTerm',
  'Pods (matched by a selector in namespaces) this pod should be co-located with, or not, on a topology domain.',
  {
    labelSelector: ref(LabelSelector, 'A label query over a set of pods.'),
    namespaceSelector: ref(LabelSelector, 'A label query over namespaces the term applies to.'),
    namespaces: arr(
      str('A namespace name.'),
      "Namespaces the labelSelector applies to; the pod's own when empty.",
    ),
    topologyKey: required(
      str('Node label key whose values define the co-location domain, e.g. kubernetes.io/hostname.', {
        format: qualifiedName,
      }),
    ),
  },
);

const podAffinity = (name: string, description: string, verb: string) =>
  obj(name, description, {
    requiredDuringSchedulingIgnoredDuringExecution: arr(
      PodAffinityTerm,
      `The pod must be ${verb} pods matching these terms.`,
    ),
    preferredDuringSchedulingIgnoredDuringExecution: arr(
      obj('WeightedPodAffinityTerm', 'A weighted pod affinity term.', {
        weight,
        podAffinityTerm: required(ref(PodAffinityTerm, 'A pod affinity term.')),
      }),
      `The scheduler prefers nodes where the pod would be ${verb} pods matching these terms.`,
    ),
  });

const Affinity = obj('Affinity', "The pod's scheduling constraints.", {
  nodeAffinity: NodeAffinity,
  podAffinity: podAffinity('PodAffinity', 'Inter-pod affinity scheduling rules.', 'co-located with'),
  podAntiAffinity: podAffinity(
    'PodAntiAffinity',
    'Inter-pod anti-affinity scheduling rules.',
    'kept apart from',
  ),
});

export const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const;

const Toleration = obj(
  'Toleration',
  'Tolerates any taint that matches the triple <key,value,effect> using the matching operator.',
  {
    key: str('Taint key the toleration applies to; empty with operator Exists matches all taints.', {
      format: qualifiedName,
    }),
    operator: enumOf(
      ['Exists', 'Equal'],
      "Key's relationship to the value. Exists is a wildcard for value. Default Equal.",
    ),
    value: str('Taint value the toleration matches; empty with operator Exists.'),
    effect: enumOf(TAINT_EFFECTS, 'Taint effect to match; empty matches all effects.'),
    tolerationSeconds: int('How long a NoExecute taint is tolerated before eviction; forever when unset.', {
      int64: true,
    }),
  },
  {
    check: (v: Record<string, unknown>, path: string, out: Issues) => {
      const key = asStr(own(v, 'key')) ?? '';
      const op = asStr(own(v, 'operator')) ?? 'Equal';
      const value = asStr(own(v, 'value')) ?? '';
      if (key === '' && op !== 'Exists')
        out.add(
          `${path}.operator`,
          invalid(
            op,
            'operator must be Exists when `key` is empty, which means "match all values and all keys"',
          ),
        );
      if (op === 'Exists' && value !== '')
        out.add(`${path}.operator`, invalid(value, "value must be empty when `operator` is 'Exists'"));
      if (op === 'Equal' && labelValue(value))
        out.add(`${path}.value`, invalid(value, labelValue(value) ?? ''));
      if (own(v, 'tolerationSeconds') != null && own(v, 'effect') !== 'NoExecute')
        out.add(
          `${path}.effect`,
          invalid(own(v, 'effect') ?? '', "effect must be 'NoExecute' when `tolerationSeconds` is set"),
        );
    },
  },
);

function checkPodSpec(v: Record<string, unknown>, path: string, out: Issues): void {
  const volumes = new Set<string>();
  (asArr(own(v, 'volumes')) ?? []).forEach((vol, i) => {
    const name = asStr(own(asObj(vol), 'name'));
    if (name === undefined) return;
    if (volumes.has(name)) out.add(`${path}.volumes[${i}].name`, `Duplicate value: ${JSON.stringify(name)}`);
    volumes.add(name);
  });
  const names = new Set<string>();
  for (const list of ['initContainers', 'containers']) {
    (asArr(own(v, list)) ?? []).forEach((c, i) => {
      const co = asObj(c);
      const name = asStr(own(co, 'name'));
      if (name !== undefined) {
        if (names.has(name))
          out.add(`${path}.${list}[${i}].name`, `Duplicate value: ${JSON.stringify(name)}`);
        names.add(name);
      }
      (asArr(own(co, 'volumeMounts')) ?? []).forEach((m, j) => {
        const mount = asStr(own(asObj(m), 'name'));
        if (mount !== undefined && !volumes.has(mount))
          out.add(`${path}.${list}[${i}].volumeMounts[${j}].name`, `Not found: ${JSON.stringify(mount)}`);
      });
    });
  }
}

export const PodSpec = obj(
  'PodSpec',
  'The specification of the desired behavior of the pod.',
  {
    containers: required(
      arr(Container, 'Containers of the pod. There must be at least one.', { check: nonEmpty }),
    ),
    initContainers: arr(
      Container,
      'Containers run to completion, in order, before the app containers start.',
    ),
    volumes: arr(Volume, 'Volumes that containers of the pod can mount.'),
    restartPolicy: enumOf(
      ['Always', 'OnFailure', 'Never'],
      'Restart policy for all containers within the pod.',
      {
        default: 'Always',
      },
    ),
    terminationGracePeriodSeconds: int(
      'Seconds the pod is given to terminate gracefully (SIGTERM, then SIGKILL).',
      {
        int64: true,
        min: 0,
        default: 30,
      },
    ),
    activeDeadlineSeconds: int('Seconds the pod may be active on a node before the system fails it.', {
      int64: true,
      min: 1,
    }),
    dnsPolicy: enumOf(
      ['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'],
      'DNS policy for the pod.',
      {
        default: 'ClusterFirst',
      },
    ),
    nodeSelector: map(
      str('Label value.', { format: labelValue }),
      'Labels a node must have for the pod to fit on it.',
      {
        key: qualifiedName,
      },
    ),
    nodeName: str('The node the pod is bound to; set by the scheduler, or by hand to skip it.', {
      format: dnsSubdomain,
    }),
    affinity: Affinity,
    tolerations: arr(Toleration, "The pod's tolerations of node taints."),
    hostname: str("The pod's hostname; the pod's name when unset.", { format: dnsLabel }),
    subdomain: str('With hostname, the pod FQDN is <hostname>.<subdomain>.<namespace>.svc.', {
      format: dnsLabel,
    }),
    serviceAccountName: str('Name of the ServiceAccount to run the pod as (recorded).', {
      format: dnsSubdomain,
    }),
    enableServiceLinks: bool(
      "Whether the namespace's Services are passed to containers as environment variables (<NAME>_SERVICE_HOST and the rest).",
      { default: true },
    ),
  },
  { check: checkPodSpec },
);

const ContainerState = obj(
  'ContainerState',
  'The state of a container: exactly one of waiting, running, terminated.',
  {
    waiting: obj('ContainerStateWaiting', 'A container that is not running yet.', {
      reason: str('Why the container is not yet running, e.g. ContainerCreating, ImagePullBackOff.'),
      message: str('Details about why the container is not yet running.'),
    }),
    running: obj('ContainerStateRunning', 'A running container.', {
      startedAt: time('When the container was last (re)started.'),
    }),
    terminated: obj('ContainerStateTerminated', 'A container that ran and exited.', {
      exitCode: required(int('Exit status from the last termination of the container.')),
      reason: str('Why the container terminated, e.g. Completed, Error, OOMKilled.'),
      message: str('Details about the termination.'),
      startedAt: time('When the container started.'),
      finishedAt: time('When the container exited.'),
      containerID: str("Container's ID in the format '<type>://<container_id>'."),
    }),
  },
);

const ContainerStatus = obj('ContainerStatus', 'The current status of one container.', {
  name: required(str('Name of the container, as in the spec.')),
  state: ref(ContainerState, 'Details about the current condition of the container.'),
  lastState: ref(ContainerState, "Details about the container's last termination."),
  ready: required(bool('Whether the container passes its readiness probe.')),
  restartCount: required(int('Number of times the container has been restarted.', { min: 0 })),
  image: required(str('The image the container is running.')),
  imageID: required(str("The image's ID.")),
  containerID: str("Container's ID in the format '<type>://<container_id>'."),
  started: bool('Whether the container has passed its startup probe.'),
});

const PodIP = obj('PodIP', 'An IP address allocated to the pod.', {
  ip: required(str('The IP address.', { format: ipAddress })),
});

/** Berth extension: where a container port is reachable (a host port mapping). */
const PodEndpoint = obj('PodEndpoint', 'A container port and where Berth published it.', {
  name: str('Port name, as in the container spec.'),
  containerPort: required(int('Port number in the container.', { min: 1, max: 65535 })),
  protocol: enumOf(PROTOCOLS, 'Protocol of the port.'),
  hostIP: str('Host IP the port is published on.'),
  hostPort: int('Host port the port is published on.', { min: 0, max: 65535 }),
});

export const PodStatus = obj('PodStatus', 'The most recently observed status of the pod.', {
  phase: enumOf(
    ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'],
    'Where the pod is in its lifecycle.',
  ),
  conditions: arr(
    condition('PodCondition', 'A condition of the pod: PodScheduled, Initialized, ContainersReady, Ready.', {
      lastProbeTime: 'Last time the condition was probed.',
      lastTransitionTime: 'Last time the condition transitioned from one status to another.',
    }),
    'Current service state of the pod.',
  ),
  message: str('Why the pod is in this condition, for people.'),
  reason: str('Brief CamelCase reason why the pod is in this state, e.g. Evicted.'),
  hostIP: str('IP address of the node the pod is on.'),
  hostIPs: arr(PodIP, 'IP addresses of the node the pod is on.'),
  podIP: str('IP address allocated to the pod.'),
  podIPs: arr(PodIP, 'IP addresses allocated to the pod.'),
  startTime: time('When the kubelet acknowledged the pod, before pulling images.'),
  initContainerStatuses: arr(ContainerStatus, 'Status of each init container.'),
  containerStatuses: arr(ContainerStatus, 'Status of each container.'),
  qosClass: enumOf(
    ['Guaranteed', 'Burstable', 'BestEffort'],
    'QoS class assigned to the pod from its resources.',
  ),
  nominatedNodeName: str('Node the scheduler nominated for the pod after preempting others.'),
  endpoints: arr(PodEndpoint, 'Berth extension: container ports and where they are published on the host.'),
});

export const PodTemplateSpec = obj('PodTemplateSpec', 'Describes the pods that will be created.', {
  metadata: ref(ObjectMeta, "Standard object's metadata of the pods created from this template."),
  spec: required(ref(PodSpec, 'Specification of the desired behavior of the pods.')),
});
