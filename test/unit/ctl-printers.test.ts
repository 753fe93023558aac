// berthctl's printers against kubectl's exact text: get tables (plain and wide), ages at
// HumanDuration's boundaries, -o yaml/json/name, events, and describe for the main kinds.
import test from 'ava';
import { printEvents, printObjects, tableHeader, tableRow } from '../../cmd/ctl/printers/index.js';
import { createRowAligner, describeObject, formatAge, toYaml } from '../../cmd/ctl/printers/index.js';
import { type KindInfo, kindByName } from '../../pkg/api/kinds.js';
import type { ApiObject } from '../../pkg/api/types.js';

const NOW = Date.parse('2026-11-26T14:00:00Z');
const T0 = '2026-11-26T13:00:00Z';

function kind(name: string): KindInfo {
  const k = kindByName(name);
  if (!k) throw new Error(`no kind ${name}`);
  return k;
}

const lines = (...l: string[]): string => l.join('\n');

const pod: ApiObject = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: 'web-7d9c-abcde',
    namespace: 'default',
    uid: 'p1',
    creationTimestamp: '2026-11-26T13:24:07Z',
    labels: { app: 'web', 'pod-template-hash': '7d9c' },
    ownerReferences: [
      { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9c', uid: 'rs1', controller: true },
    ],
  },
  spec: {
    nodeName: 'node-1',
    containers: [
      {
        name: 'web',
        image: 'nginx:1.25',
        ports: [{ containerPort: 80, protocol: 'TCP' }],
        command: ['nginx'],
        args: ['-g', 'daemon off;'],
        resources: { limits: { cpu: '500m', memory: '128Mi' }, requests: { cpu: '250m', memory: '64Mi' } },
        livenessProbe: { httpGet: { path: '/healthz', port: 80 }, periodSeconds: 10 },
        readinessProbe: { tcpSocket: { port: 80 } },
        env: [
          { name: 'MODE', value: 'prod' },
          { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } },
        ],
        volumeMounts: [{ name: 'config', mountPath: '/etc/web', readOnly: true }],
      },
    ],
    volumes: [{ name: 'config', configMap: { name: 'web-config' } }],
    tolerations: [
      {
        key: 'node.kubernetes.io/not-ready',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 300,
      },
    ],
  },
  status: {
    phase: 'Running',
    hostIP: '10.0.0.1',
    podIP: '10.244.1.5',
    podIPs: [{ ip: '10.244.1.5' }],
    startTime: '2026-11-26T13:24:08Z',
    conditions: [
      { type: 'Initialized', status: 'True' },
      { type: 'Ready', status: 'True' },
    ],
    containerStatuses: [
      {
        name: 'web',
        ready: true,
        restartCount: 2,
        containerID: 'berth://abc',
        imageID: 'nginx@sha256:1',
        state: { running: { startedAt: '2026-11-26T13:24:10Z' } },
      },
    ],
  },
};

const crashing: ApiObject = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'api-1', namespace: 'default', creationTimestamp: '2026-11-20T10:00:00Z' },
  spec: {
    containers: [
      { name: 'a', image: 'x' },
      { name: 'b', image: 'y' },
    ],
  },
  status: {
    phase: 'Pending',
    containerStatuses: [
      { name: 'a', ready: false, restartCount: 5, state: { waiting: { reason: 'CrashLoopBackOff' } } },
      { name: 'b', ready: true, restartCount: 0, state: { running: {} } },
    ],
  },
};

const scheduled: ApiObject = {
  apiVersion: 'v1',
  kind: 'Event',
  metadata: { name: 'web.1', namespace: 'default', creationTimestamp: '2026-11-26T13:24:07Z' },
  involvedObject: { kind: 'Pod', name: 'web-7d9c-abcde' },
  type: 'Normal',
  reason: 'Scheduled',
  message: 'Successfully assigned default/web-7d9c-abcde to node-1',
  source: { component: 'scheduler' },
  firstTimestamp: '2026-11-26T13:24:07Z',
  lastTimestamp: '2026-11-26T13:24:07Z',
  count: 1,
};

const backoff: ApiObject = {
  ...scheduled,
  metadata: { name: 'web.2', namespace: 'default', creationTimestamp: '2026-11-26T13:30:00Z' },
  type: 'Warning',
  reason: 'BackOff',
  message: 'Back-off restarting failed container',
  source: { component: 'kubelet' },
  firstTimestamp: '2026-11-26T13:30:00Z',
  lastTimestamp: '2026-11-26T13:50:00Z',
  count: 4,
};

test('formatAge follows HumanDuration at its boundaries', (t) => {
  const ago = (ms: number) => formatAge(new Date(NOW - ms).toISOString(), NOW);
  const s = 1000;
  const m = 60 * s;
  const h = 60 * m;
  const d = 24 * h;
  t.is(formatAge(undefined, NOW), '<unknown>');
  t.is(formatAge('', NOW), '<unknown>');
  t.is(ago(0), '0s');
  t.is(ago(-1500), '0s');
  t.is(ago(-2500), '<invalid>');
  t.is(ago(5 * s), '5s');
  t.is(ago(119 * s), '119s');
  t.is(ago(120 * s), '2m');
  t.is(ago(3 * m + 12 * s), '3m12s');
  t.is(ago(9 * m + 59 * s), '9m59s');
  t.is(ago(10 * m + 30 * s), '10m');
  t.is(ago(179 * m), '179m');
  t.is(ago(3 * h), '3h');
  t.is(ago(5 * h + 3 * m), '5h3m');
  t.is(ago(8 * h + 30 * m), '8h');
  t.is(ago(47 * h), '47h');
  t.is(ago(48 * h), '2d');
  t.is(ago(3 * d + 4 * h), '3d4h');
  t.is(ago(8 * d + 4 * h), '8d');
  t.is(ago(45 * d), '45d');
  t.is(ago(729 * d), '729d');
  t.is(ago(730 * d), '2y');
  t.is(ago(733 * d), '2y3d');
  t.is(ago(8 * 365 * d + 40 * d), '8y');
});

test('pods: table, wide with namespace and labels', (t) => {
  t.is(
    printObjects(kind('pods'), [pod, crashing], 'table', { now: NOW }),
    lines(
      'NAME             READY   STATUS             RESTARTS   AGE',
      'web-7d9c-abcde   1/1     Running            2          35m',
      'api-1            1/2     CrashLoopBackOff   5          6d4h',
    ),
  );
  t.is(
    printObjects(kind('pods'), [pod, crashing], 'wide', { now: NOW, withNamespace: true, showLabels: true }),
    lines(
      'NAMESPACE   NAME             READY   STATUS             RESTARTS   AGE    IP           NODE     NOMINATED NODE   READINESS GATES   LABELS',
      'default     web-7d9c-abcde   1/1     Running            2          35m    10.244.1.5   node-1   <none>           <none>            app=web,pod-template-hash=7d9c',
      'default     api-1            1/2     CrashLoopBackOff   5          6d4h   <none>       <none>   <none>           <none>            <none>',
    ),
  );
});

test('pod status: Terminating, Pending, terminated reason, init containers', (t) => {
  const k = kind('pods');
  const status = (p: Partial<ApiObject>) => tableRow(k, { ...pod, ...p } as ApiObject, false, false, NOW)[2];
  t.is(status({ metadata: { ...pod.metadata, deletionTimestamp: T0 } }), 'Terminating');
  t.is(status({ status: {} }), 'Pending');
  t.is(
    status({
      status: {
        phase: 'Running',
        containerStatuses: [{ name: 'web', state: { terminated: { reason: 'Error', exitCode: 1 } } }],
      },
    }),
    'Error',
  );
  t.is(
    status({
      spec: { containers: [{ name: 'web' }], initContainers: [{ name: 'init' }] },
      status: { phase: 'Pending', initContainerStatuses: [{ name: 'init', state: { running: {} } }] },
    }),
    'Init:0/1',
  );
});

const template = {
  metadata: { labels: { app: 'web' } },
  spec: {
    containers: [{ name: 'web', image: 'nginx:1.25', ports: [{ containerPort: 80, protocol: 'TCP' }] }],
  },
};

const deployment: ApiObject = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: {
    name: 'web',
    namespace: 'default',
    uid: 'd1',
    creationTimestamp: T0,
    labels: { app: 'web' },
    annotations: { 'deployment.kubernetes.io/revision': '2' },
  },
  spec: {
    replicas: 3,
    selector: { matchLabels: { app: 'web' } },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
    template,
  },
  status: {
    replicas: 3,
    updatedReplicas: 3,
    readyReplicas: 2,
    availableReplicas: 2,
    unavailableReplicas: 1,
    conditions: [
      { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
      { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
    ],
  },
};

const owner = [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'd1', controller: true }];
const rsNew: ApiObject = {
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  metadata: {
    name: 'web-7d9c',
    namespace: 'default',
    uid: 'rs1',
    creationTimestamp: '2026-11-26T13:30:00Z',
    ownerReferences: owner,
  },
  spec: {
    replicas: 3,
    selector: { matchLabels: { app: 'web', 'pod-template-hash': '7d9c' } },
    template: { metadata: { labels: { app: 'web', 'pod-template-hash': '7d9c' } }, spec: template.spec },
  },
  status: { replicas: 3, readyReplicas: 2 },
};
const rsOld: ApiObject = {
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  metadata: {
    name: 'web-5f6b',
    namespace: 'default',
    uid: 'rs0',
    creationTimestamp: T0,
    ownerReferences: owner,
  },
  spec: {
    replicas: 0,
    selector: { matchLabels: { app: 'web', 'pod-template-hash': '5f6b' } },
    template: {
      metadata: { labels: { app: 'web', 'pod-template-hash': '5f6b' } },
      spec: { containers: [{ name: 'web', image: 'nginx:1.24' }] },
    },
  },
  status: { replicas: 0 },
};

test('deployments and replicasets: table and wide, kind-prefixed names', (t) => {
  t.is(
    printObjects(kind('deploy'), [deployment], 'table', { now: NOW }),
    lines('NAME   READY   UP-TO-DATE   AVAILABLE   AGE', 'web    2/3     3            2           60m'),
  );
  t.is(
    printObjects(kind('deploy'), [deployment], 'wide', { now: NOW, withKind: true }),
    lines(
      'NAME                  READY   UP-TO-DATE   AVAILABLE   AGE   CONTAINERS   IMAGES       SELECTOR',
      'deployment.apps/web   2/3     3            2           60m   web          nginx:1.25   app=web',
    ),
  );
  t.is(
    printObjects(kind('rs'), [rsNew, rsOld], 'wide', { now: NOW }),
    lines(
      'NAME       DESIRED   CURRENT   READY   AGE   CONTAINERS   IMAGES       SELECTOR',
      'web-7d9c   3         3         2       30m   web          nginx:1.25   app=web,pod-template-hash=7d9c',
      'web-5f6b   0         0         0       60m   web          nginx:1.24   app=web,pod-template-hash=5f6b',
    ),
  );
});

const service: ApiObject = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'default', creationTimestamp: T0 },
  spec: {
    type: 'NodePort',
    clusterIP: '10.96.0.12',
    clusterIPs: ['10.96.0.12'],
    selector: { app: 'web' },
    ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080, protocol: 'TCP' }],
    sessionAffinity: 'None',
  },
};
const endpoints: ApiObject = {
  apiVersion: 'v1',
  kind: 'Endpoints',
  metadata: { name: 'web', namespace: 'default', creationTimestamp: T0 },
  subsets: [
    {
      addresses: ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'].map((ip) => ({ ip })),
      ports: [{ name: 'http', port: 31000, protocol: 'TCP' }],
    },
  ],
};

test('services and endpoints', (t) => {
  const lb: ApiObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'edge', namespace: 'default', creationTimestamp: T0 },
    spec: {
      type: 'LoadBalancer',
      clusterIP: '10.96.0.13',
      ports: [{ port: 443, protocol: 'TCP', nodePort: 31443 }],
    },
    status: { loadBalancer: { ingress: [{ ip: '192.168.1.10' }] } },
  };
  const ext: ApiObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'db', namespace: 'default', creationTimestamp: T0 },
    spec: { type: 'ExternalName', externalName: 'db.example.com' },
  };
  t.is(
    printObjects(kind('svc'), [service, lb, ext], 'wide', { now: NOW }),
    lines(
      'NAME   TYPE           CLUSTER-IP   EXTERNAL-IP      PORT(S)         AGE   SELECTOR',
      'web    NodePort       10.96.0.12   <none>           80:30080/TCP    60m   app=web',
      'edge   LoadBalancer   10.96.0.13   192.168.1.10     443:31443/TCP   60m   <none>',
      'db     ExternalName   <none>       db.example.com   <none>          60m   <none>',
    ),
  );
  const empty: ApiObject = { ...endpoints, metadata: { name: 'none', creationTimestamp: T0 }, subsets: [] };
  t.is(
    printObjects(kind('ep'), [endpoints, empty], 'table', { now: NOW }),
    lines(
      'NAME   ENDPOINTS                                                     AGE',
      'web    127.0.0.1:31000,127.0.0.2:31000,127.0.0.3:31000 + 2 more...   60m',
      'none   <none>                                                        60m',
    ),
  );
});

const node: ApiObject = {
  apiVersion: 'v1',
  kind: 'Node',
  metadata: {
    name: 'node-1',
    creationTimestamp: '2026-11-01T00:00:00Z',
    labels: { 'kubernetes.io/hostname': 'node-1', 'node-role.kubernetes.io/control-plane': '' },
  },
  spec: {
    unschedulable: true,
    taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }],
  },
  status: {
    conditions: [
      {
        type: 'Ready',
        status: 'True',
        reason: 'KubeletReady',
        message: 'kubelet is posting ready status',
        lastHeartbeatTime: '2026-11-26T13:59:50Z',
        lastTransitionTime: '2026-11-01T00:00:10Z',
      },
    ],
    addresses: [
      { type: 'InternalIP', address: '10.0.0.1' },
      { type: 'Hostname', address: 'node-1' },
    ],
    capacity: { cpu: '4', memory: '8Gi', pods: '110' },
    allocatable: { cpu: '4', memory: '8Gi', pods: '110' },
    nodeInfo: {
      kubeletVersion: 'v1.30.0-berth',
      osImage: 'Ubuntu 24.04 LTS',
      kernelVersion: '6.8.0',
      containerRuntimeVersion: 'docker://27.0.1',
      operatingSystem: 'linux',
      architecture: 'amd64',
    },
  },
};

test('nodes: status, roles, wide', (t) => {
  const notReady: ApiObject = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'node-2', creationTimestamp: '2026-11-26T13:58:00Z' },
    status: { conditions: [{ type: 'Ready', status: 'Unknown' }] },
  };
  const unknown: ApiObject = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-3' } };
  t.is(
    printObjects(kind('nodes'), [node, notReady, unknown], 'table', { now: NOW }),
    lines(
      'NAME     STATUS                     ROLES           AGE         VERSION',
      'node-1   Ready,SchedulingDisabled   control-plane   25d         v1.30.0-berth',
      'node-2   NotReady                   <none>          2m          ',
      'node-3   Unknown                    <none>          <unknown>   ',
    ),
  );
  t.is(
    printObjects(kind('nodes'), [node], 'wide', { now: NOW }),
    lines(
      'NAME     STATUS                     ROLES           AGE   VERSION         INTERNAL-IP   EXTERNAL-IP   OS-IMAGE           KERNEL-VERSION   CONTAINER-RUNTIME',
      'node-1   Ready,SchedulingDisabled   control-plane   25d   v1.30.0-berth   10.0.0.1      <none>        Ubuntu 24.04 LTS   6.8.0            docker://27.0.1',
    ),
  );
});

const secret: ApiObject = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'db', namespace: 'default', creationTimestamp: T0 },
  type: 'Opaque',
  data: {
    password: Buffer.from('s3cr3t!!').toString('base64'),
    username: Buffer.from('admin').toString('base64'),
  },
};

test('configmaps, secrets, namespaces, leases and other kinds', (t) => {
  const cm: ApiObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'web-config', namespace: 'default', creationTimestamp: T0 },
    data: { 'nginx.conf': 'worker_processes 1;', mode: 'prod' },
  };
  t.is(
    printObjects(kind('cm'), [cm], 'table', { now: NOW }),
    lines('NAME         DATA   AGE', 'web-config   2      60m'),
  );
  t.is(
    printObjects(kind('secrets'), [secret], 'table', { now: NOW }),
    lines('NAME   TYPE     DATA   AGE', 'db     Opaque   2      60m'),
  );
  const ns: ApiObject = {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'default', creationTimestamp: T0 },
    status: { phase: 'Active' },
  };
  t.is(
    printObjects(kind('ns'), [ns], 'table', { now: NOW }),
    lines('NAME      STATUS   AGE', 'default   Active   60m'),
  );
  const lease: ApiObject = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: 'node-1',
      namespace: 'kube-node-lease',
      creationTimestamp: T0,
      uid: 'l1',
      resourceVersion: '42',
    },
    spec: { holderIdentity: 'node-1', leaseDurationSeconds: 40 },
  };
  t.is(
    printObjects(kind('leases'), [lease], 'table', { now: NOW, withNamespace: true }),
    lines('NAMESPACE         NAME     HOLDER   AGE', 'kube-node-lease   node-1   node-1   60m'),
  );
  const later: KindInfo = {
    ...kind('cm'),
    kind: 'PodTemplate',
    group: '',
    resource: 'podtemplates',
    singular: 'podtemplate',
  };
  t.is(
    printObjects(later, [{ ...cm, metadata: { name: 'site', creationTimestamp: T0 } }], 'table', {
      now: NOW,
      withKind: true,
    }),
    lines('NAME               AGE', 'podtemplate/site   60m'),
  );
  t.is(
    describeObject(kind('leases'), lease, { events: [], now: NOW }),
    lines(
      'Name:         node-1',
      'Namespace:    kube-node-lease',
      'Labels:       <none>',
      'Annotations:  <none>',
      'API Version:  coordination.k8s.io/v1',
      'Kind:         Lease',
      'Metadata:',
      '  Creation Timestamp:  2026-11-26T13:00:00Z',
      '  Resource Version:    42',
      '  UID:                 l1',
      'Spec:',
      '  Holder Identity:         node-1',
      '  Lease Duration Seconds:  40',
      'Events:                    <none>',
    ),
  );
});

test('events: sorted by last seen, with namespace', (t) => {
  t.is(
    printEvents([backoff, scheduled], NOW, false),
    lines(
      'LAST SEEN   TYPE      REASON      OBJECT               MESSAGE',
      '35m         Normal    Scheduled   pod/web-7d9c-abcde   Successfully assigned default/web-7d9c-abcde to node-1',
      '10m         Warning   BackOff     pod/web-7d9c-abcde   Back-off restarting failed container',
    ),
  );
  t.is(
    printEvents([scheduled], NOW, true).split('\n')[0],
    'NAMESPACE   LAST SEEN   TYPE     REASON      OBJECT               MESSAGE',
  );
  t.is(printEvents([], NOW, false), '');
});

test('watch rows: header cells and remembered widths', (t) => {
  const k = kind('pods');
  t.deepEqual(tableHeader(k, false, false), ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE']);
  t.deepEqual(tableRow(k, pod, false, false, NOW), ['web-7d9c-abcde', '1/1', 'Running', '2', '35m']);
  const align = createRowAligner();
  t.is(align(tableHeader(k, false, false)), 'NAME   READY   STATUS   RESTARTS   AGE');
  t.is(align(tableRow(k, pod, false, false, NOW)), 'web-7d9c-abcde   1/1     Running   2          35m');
  t.is(
    align(tableRow(k, crashing, false, false, NOW)),
    'api-1            1/2     CrashLoopBackOff   5          6d4h',
  );
});

test('yaml, json and name output', (t) => {
  const cm: ApiObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'c', namespace: 'default', creationTimestamp: T0 },
    data: { enabled: 'yes', port: '80', script: 'a\nb\n', empty: '', html: '<b>&</b>' },
  };
  t.is(
    printObjects(kind('cm'), [cm], 'yaml', { now: NOW }),
    lines(
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: c',
      '  namespace: default',
      '  creationTimestamp: "2026-11-26T13:00:00Z"',
      'data:',
      '  enabled: "yes"',
      '  port: "80"',
      '  script: |',
      '    a',
      '    b',
      '  empty: ""',
      '  html: <b>&</b>',
    ),
  );
  const two = printObjects(kind('cm'), [cm, cm], 'yaml', { now: NOW });
  t.true(two.startsWith('apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n'));
  t.true(two.endsWith('kind: List\nmetadata:\n  resourceVersion: ""'));
  t.is(
    printObjects(kind('cm'), [], 'yaml', { now: NOW }),
    lines('apiVersion: v1', 'items: []', 'kind: List', 'metadata:', '  resourceVersion: ""'),
  );
  const json = printObjects(kind('cm'), [cm], 'json', { now: NOW });
  t.true(json.startsWith('{\n    "apiVersion": "v1",\n    "kind": "ConfigMap",\n'));
  t.true(json.includes('"html": "\\u003cb\\u003e\\u0026\\u003c/b\\u003e"'));
  t.deepEqual(JSON.parse(json), cm);
  const list = JSON.parse(printObjects(kind('cm'), [cm], 'json', { now: NOW, asList: true }));
  t.deepEqual(Object.keys(list), ['apiVersion', 'items', 'kind', 'metadata']);
  t.is(
    printObjects(kind('deploy'), [deployment, { ...deployment, metadata: { name: 'api' } }], 'name', {
      now: NOW,
    }),
    lines('deployment.apps/web', 'deployment.apps/api'),
  );
  t.is(printObjects(kind('pods'), [pod], 'name', { now: NOW }), 'pod/web-7d9c-abcde');
  t.is(toYaml({ list: [1, { a: 'on' }] }), 'list:\n- 1\n- a: "on"\n');
});

test('describe pod, with events in their own aligned table', (t) => {
  t.is(
    describeObject(kind('pods'), pod, { events: [backoff, scheduled], now: NOW }),
    lines(
      'Name:         web-7d9c-abcde',
      'Namespace:    default',
      'Node:         node-1/10.0.0.1',
      'Start Time:   Thu, 26 Nov 2026 13:24:08 +0000',
      'Labels:       app=web',
      '              pod-template-hash=7d9c',
      'Annotations:  <none>',
      'Status:       Running',
      'IP:           10.244.1.5',
      'IPs:',
      '  IP:           10.244.1.5',
      'Controlled By:  ReplicaSet/web-7d9c',
      'Containers:',
      '  web:',
      '    Container ID:  berth://abc',
      '    Image:         nginx:1.25',
      '    Image ID:      nginx@sha256:1',
      '    Port:          80/TCP',
      '    Host Port:     0/TCP',
      '    Command:',
      '      nginx',
      '    Args:',
      '      -g',
      '      daemon off;',
      '    State:          Running',
      '      Started:      Thu, 26 Nov 2026 13:24:10 +0000',
      '    Ready:          True',
      '    Restart Count:  2',
      '    Limits:',
      '      cpu:     500m',
      '      memory:  128Mi',
      '    Requests:',
      '      cpu:      250m',
      '      memory:   64Mi',
      '    Liveness:   http-get http://:80/healthz delay=0s timeout=1s period=10s #success=1 #failure=3',
      '    Readiness:  tcp-socket :80 delay=0s timeout=1s period=10s #success=1 #failure=3',
      '    Environment:',
      '      MODE:      prod',
      "      PASSWORD:  <set to the key 'password' in secret 'db'>  Optional: false",
      '    Mounts:',
      '      /etc/web from config (ro)',
      'Conditions:',
      '  Type          Status',
      '  Initialized   True ',
      '  Ready         True ',
      'Volumes:',
      '  config:',
      '    Type:        ConfigMap (a volume populated by a ConfigMap)',
      '    Name:        web-config',
      '    Optional:    false',
      'QoS Class:       Burstable',
      'Node-Selectors:  <none>',
      'Tolerations:     node.kubernetes.io/not-ready:NoExecute op=Exists for 300s',
      'Events:',
      '  Type     Reason     Age                From       Message',
      '  ----     ------     ----               ----       -------',
      '  Normal   Scheduled  35m                scheduler  Successfully assigned default/web-7d9c-abcde to node-1',
      '  Warning  BackOff    10m (x4 over 30m)  kubelet    Back-off restarting failed container',
    ),
  );
});

test('describe deployment with its replica sets and no events', (t) => {
  t.is(
    describeObject(kind('deploy'), deployment, { events: [], related: [rsNew, rsOld], now: NOW }),
    lines(
      'Name:                   web',
      'Namespace:              default',
      'CreationTimestamp:      Thu, 26 Nov 2026 13:00:00 +0000',
      'Labels:                 app=web',
      'Annotations:            deployment.kubernetes.io/revision: 2',
      'Selector:               app=web',
      'Replicas:               3 desired | 3 updated | 3 total | 2 available | 1 unavailable',
      'StrategyType:           RollingUpdate',
      'MinReadySeconds:        0',
      'RollingUpdateStrategy:  25% max unavailable, 25% max surge',
      'Pod Template:',
      '  Labels:  app=web',
      '  Containers:',
      '   web:',
      '    Image:         nginx:1.25',
      '    Port:          80/TCP',
      '    Host Port:     0/TCP',
      '    Environment:   <none>',
      '    Mounts:        <none>',
      '  Volumes:         <none>',
      '  Node-Selectors:  <none>',
      '  Tolerations:     <none>',
      'Conditions:',
      '  Type           Status  Reason',
      '  ----           ------  ------',
      '  Available      True    MinimumReplicasAvailable',
      '  Progressing    True    NewReplicaSetAvailable',
      'OldReplicaSets:  web-5f6b (0/0 replicas created)',
      'NewReplicaSet:   web-7d9c (3/3 replicas created)',
      'Events:          <none>',
    ),
  );
  // Without replica sets the two lines are left out, as kubectl does.
  t.false(describeObject(kind('deploy'), deployment, { events: [], now: NOW }).includes('OldReplicaSets'));
});

test('describe service with endpoints and events', (t) => {
  const text = describeObject(kind('svc'), service, { events: [scheduled], related: [endpoints], now: NOW });
  t.is(
    text,
    lines(
      'Name:              web',
      'Namespace:         default',
      'Labels:            <none>',
      'Annotations:       <none>',
      'Selector:          app=web',
      'Type:              NodePort',
      'IP:                10.96.0.12',
      'IPs:               10.96.0.12',
      'Port:              http  80/TCP',
      'TargetPort:        8080/TCP',
      'NodePort:          http  30080/TCP',
      'Endpoints:         127.0.0.1:31000,127.0.0.2:31000,127.0.0.3:31000 + 2 more...',
      'Session Affinity:  None',
      'Events:',
      '  Type    Reason     Age   From       Message',
      '  ----    ------     ----  ----       -------',
      '  Normal  Scheduled  35m   scheduler  Successfully assigned default/web-7d9c-abcde to node-1',
    ),
  );
});

test('describe secret prints sizes, never values', (t) => {
  const text = describeObject(kind('secrets'), secret, { events: [], now: NOW });
  t.is(
    text,
    lines(
      'Name:         db',
      'Namespace:    default',
      'Labels:       <none>',
      'Annotations:  <none>',
      '',
      'Type:  Opaque',
      '',
      'Data',
      '====',
      'password:  8 bytes',
      'username:  5 bytes',
    ),
  );
  for (const v of ['s3cr3t!!', 'admin', Buffer.from('s3cr3t!!').toString('base64')])
    t.false(text.includes(v));
});

test('describe node with its pods and lease', (t) => {
  const nodePod: ApiObject = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-1', namespace: 'default', creationTimestamp: T0 },
    spec: {
      nodeName: 'node-1',
      containers: [
        {
          name: 'web',
          resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '1', memory: '2Gi' } },
        },
      ],
    },
    status: { phase: 'Running' },
  };
  const done: ApiObject = {
    ...nodePod,
    metadata: { name: 'job-1', namespace: 'default' },
    status: { phase: 'Succeeded' },
  };
  const lease: ApiObject = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'node-1', namespace: 'kube-node-lease' },
    spec: { holderIdentity: 'node-1', renewTime: '2026-11-26T13:59:55Z' },
  };
  const text = describeObject(kind('nodes'), node, { events: [], related: [nodePod, done, lease], now: NOW });
  t.is(
    text,
    lines(
      'Name:               node-1',
      'Roles:              control-plane',
      'Labels:             kubernetes.io/hostname=node-1',
      '                    node-role.kubernetes.io/control-plane=',
      'Annotations:        <none>',
      'CreationTimestamp:  Sun, 01 Nov 2026 00:00:00 +0000',
      'Taints:             node-role.kubernetes.io/control-plane:NoSchedule',
      'Unschedulable:      true',
      'Lease:',
      '  HolderIdentity:  node-1',
      '  AcquireTime:     <unset>',
      '  RenewTime:       Thu, 26 Nov 2026 13:59:55 +0000',
      'Conditions:',
      '  Type    Status  LastHeartbeatTime                 LastTransitionTime                Reason         Message',
      '  ----    ------  -----------------                 ------------------                ------         -------',
      '  Ready   True    Thu, 26 Nov 2026 13:59:50 +0000   Sun, 01 Nov 2026 00:00:10 +0000   KubeletReady   kubelet is posting ready status',
      'Addresses:',
      '  InternalIP:  10.0.0.1',
      '  Hostname:    node-1',
      'Capacity:',
      '  cpu:     4',
      '  memory:  8Gi',
      '  pods:    110',
      'Allocatable:',
      '  cpu:     4',
      '  memory:  8Gi',
      '  pods:    110',
      'System Info:',
      '  Machine ID:                 ',
      '  System UUID:                ',
      '  Boot ID:                    ',
      '  Kernel Version:             6.8.0',
      '  OS Image:                   Ubuntu 24.04 LTS',
      '  Operating System:           linux',
      '  Architecture:               amd64',
      '  Container Runtime Version:  docker://27.0.1',
      '  Kubelet Version:            v1.30.0-berth',
      '  Kube-Proxy Version:         ',
      'Non-terminated Pods:          (1 in total)',
      '  Namespace                   Name     CPU Requests  CPU Limits  Memory Requests  Memory Limits  Age',
      '  ---------                   ----     ------------  ----------  ---------------  -------------  ---',
      '  default                     web-1    500m (12%)    1 (25%)     1Gi (12%)        2Gi (25%)      60m',
      'Allocated resources:',
      '  (Total limits may be over 100 percent, i.e., overcommitted.)',
      '  Resource           Requests    Limits',
      '  --------           --------    ------',
      '  cpu                500m (12%)  1 (25%)',
      '  memory             1Gi (12%)   2Gi (25%)',
      '  ephemeral-storage  0 (0%)      0 (0%)',
      'Events:              <none>',
    ),
  );
});

test('describe configmap prints each key and value', (t) => {
  const cm: ApiObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'web-config', namespace: 'default' },
    data: { mode: 'prod' },
  };
  t.is(
    describeObject(kind('cm'), cm, { events: [], now: NOW }),
    lines(
      'Name:         web-config',
      'Namespace:    default',
      'Labels:       <none>',
      'Annotations:  <none>',
      '',
      'Data',
      '====',
      'mode:',
      '----',
      'prod',
      '',
      '',
      'BinaryData',
      '====',
      '',
      'Events:  <none>',
    ),
  );
});
