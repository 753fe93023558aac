// validateObject and validateUpdate: real-world manifests pass, each rule fails at its exact
// path, errors are reported together, and hostile input never throws.

import test from 'ava';
import { parse } from 'yaml';
import { formatFieldError } from '../../pkg/api/errors.js';
import { KINDS } from '../../pkg/api/kinds.js';
import { kindsWithoutSchema } from '../../pkg/api/schema/index.js';
import type { ApiObject } from '../../pkg/api/types.js';
import { validateObject, validateUpdate } from '../../pkg/api/validation.js';

// YAML 1.1, as kubectl reads manifests (0644 is octal there).
const y = (s: string) => parse(s, { version: '1.1' }) as Record<string, unknown>;
const errs = (raw: unknown) => validateObject(raw).map(formatFieldError);

/** Sets (or, given undefined, deletes) the field at a path like 'spec.containers[0].image'. */
function set(o: unknown, path: string, value: unknown): void {
  const keys = path.replace(/\[(\d+)\]/g, '.$1').split('.');
  const last = keys.pop() as string;
  const parent = keys.reduce<unknown>((cur, k) => (cur as Record<string, unknown>)[k], o) as Record<
    string,
    unknown
  >;
  if (value === undefined) delete parent[last];
  else parent[last] = value;
}

/** A manifest with one field set at a dotted path ('spec.replicas'). */
function withField(base: string, path: string, value: unknown): Record<string, unknown> {
  const o = y(base);
  set(o, path, value);
  return o;
}

const DEPLOYMENT = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: { app: web, tier: frontend, app.kubernetes.io/version: "1.4.2" }
  annotations:
    deployment.kubernetes.io/revision: "3"
spec:
  replicas: 3
  revisionHistoryLimit: 5
  selector:
    matchLabels: { app: web }
    matchExpressions:
      - { key: tier, operator: In, values: [frontend] }
  strategy:
    type: RollingUpdate
    rollingUpdate: { maxSurge: 1, maxUnavailable: 0 }
  template:
    metadata:
      labels: { app: web, tier: frontend }
    spec:
      terminationGracePeriodSeconds: 45
      nodeSelector: { kubernetes.io/os: linux }
      tolerations:
        - { key: dedicated, operator: Equal, value: web, effect: NoSchedule }
        - { operator: Exists, effect: NoExecute, tolerationSeconds: 300 }
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                labelSelector: { matchLabels: { app: web } }
                topologyKey: kubernetes.io/hostname
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions:
                  - { key: disk, operator: In, values: [ssd] }
                  - { key: cores, operator: Gt, values: ["2"] }
      containers:
        - name: web
          image: ghcr.io/acme/web:1.4.2
          args: [--port=8080]
          ports:
            - { name: http, containerPort: 8080 }
            - { name: metrics, containerPort: 9090, protocol: TCP }
          env:
            - { name: LOG_LEVEL, value: info }
            - name: DB_PASSWORD
              valueFrom: { secretKeyRef: { name: db, key: password } }
            - name: FEATURE_FLAGS
              valueFrom: { configMapKeyRef: { name: flags, key: web, optional: true } }
            - name: POD_IP
              valueFrom: { fieldRef: { fieldPath: status.podIP } }
            - name: APP
              valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } }
          envFrom:
            - configMapRef: { name: web-config }
            - secretRef: { name: web-secrets }
              prefix: SECRET_
          resources:
            requests: { cpu: 250m, memory: 128Mi }
            limits: { cpu: "1", memory: 512Mi }
          readinessProbe:
            httpGet: { path: /healthz, port: http, httpHeaders: [{ name: X-Probe, value: "1" }] }
            initialDelaySeconds: 5
            periodSeconds: 5
          livenessProbe:
            tcpSocket: { port: 8080 }
            failureThreshold: 5
          startupProbe:
            exec: { command: [cat, /tmp/started] }
          volumeMounts:
            - { name: config, mountPath: /etc/web, readOnly: true }
            - { name: cache, mountPath: /var/cache/web }
            - { name: tls, mountPath: /etc/tls }
        - name: sidecar
          image: busybox
          command: [sh, -c, "tail -f /dev/null"]
      volumes:
        - name: config
          configMap:
            name: web-config
            items: [{ key: app.yaml, path: app.yaml, mode: 0644 }]
        - { name: cache, emptyDir: { medium: Memory, sizeLimit: 64Mi } }
        - name: tls
          secret: { secretName: web-tls, defaultMode: 0400 }
        - { name: data, persistentVolumeClaim: { claimName: web-data } }
        - { name: logs, hostPath: { path: /var/log/web, type: DirectoryOrCreate } }
`;

const POD = `
apiVersion: v1
kind: Pod
metadata: { name: debug, labels: { run: debug } }
spec:
  restartPolicy: Never
  containers:
    - name: debug
      image: alpine:3.20
      command: [sleep, "3600"]
`;

const SERVICE = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  type: NodePort
  selector: { app: web }
  ports:
    - { name: http, port: 80, targetPort: http, nodePort: 30080 }
    - { name: metrics, port: 9090, targetPort: 9090, protocol: TCP }
`;

const MANIFESTS: Record<string, string> = {
  Namespace: 'apiVersion: v1\nkind: Namespace\nmetadata: { name: shop, labels: { team: payments } }\n',
  Node: `
apiVersion: v1
kind: Node
metadata: { name: worker-1.example.com, labels: { kubernetes.io/hostname: worker-1 } }
spec:
  taints: [{ key: dedicated, value: gpu, effect: NoSchedule }]
status:
  capacity: { cpu: "4", memory: 16Gi, pods: "110" }
  allocatable: { cpu: 3800m, memory: 15Gi, pods: 110 }
  conditions:
    - { type: Ready, status: "True", reason: KubeletReady, lastHeartbeatTime: "2026-01-02T15:04:05Z", lastTransitionTime: "2026-01-02T15:00:00Z" }
  addresses: [{ type: InternalIP, address: 10.0.0.11 }, { type: Hostname, address: worker-1 }]
  nodeInfo: { architecture: amd64, operatingSystem: linux, kubeletVersion: berth-0.1.0, containerRuntimeVersion: docker://27.3.1 }
`,
  Pod: POD,
  Service: SERVICE,
  Endpoints: `
apiVersion: v1
kind: Endpoints
metadata: { name: web, namespace: shop }
subsets:
  - addresses:
      - ip: 10.244.1.5
        nodeName: worker-1
        targetRef: { kind: Pod, name: web-6d4b-x2x7z, namespace: shop, uid: 9f0c }
    notReadyAddresses: [{ ip: 10.244.2.9 }]
    ports: [{ name: http, port: 8080, protocol: TCP }]
`,
  ConfigMap: `
apiVersion: v1
kind: ConfigMap
metadata: { name: web-config }
data:
  app.yaml: |
    listen: 8080
  LOG_LEVEL: info
binaryData:
  logo.png: iVBORw0KGgo=
`,
  Secret: `
apiVersion: v1
kind: Secret
metadata: { name: db }
type: Opaque
data: { username: YWRtaW4= }
stringData: { password: s3cr3t }
`,
  Event: `
apiVersion: v1
kind: Event
metadata: { name: web-6d4b-x2x7z.17a2b, namespace: shop }
involvedObject: { kind: Pod, name: web-6d4b-x2x7z, namespace: shop, apiVersion: v1 }
reason: Scheduled
message: Successfully assigned shop/web-6d4b-x2x7z to worker-1
type: Normal
count: 1
firstTimestamp: "2026-01-02T15:04:05Z"
lastTimestamp: "2026-01-02T15:04:05Z"
source: { component: default-scheduler }
`,
  ReplicaSet: `
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-6d4b
  ownerReferences: [{ apiVersion: apps/v1, kind: Deployment, name: web, uid: "1234", controller: true, blockOwnerDeletion: true }]
spec:
  replicas: 2
  selector: { matchLabels: { app: web, pod-template-hash: 6d4b } }
  template:
    metadata: { labels: { app: web, pod-template-hash: 6d4b } }
    spec:
      containers: [{ name: web, image: nginx:1.27 }]
status: { replicas: 2, readyReplicas: 1, availableReplicas: 1, observedGeneration: 1 }
`,
  Deployment: DEPLOYMENT,
  Lease: `
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: { name: worker-1, namespace: berth-node-lease }
spec:
  holderIdentity: worker-1
  leaseDurationSeconds: 40
  renewTime: "2026-01-02T15:04:05.123456Z"
`,
  Ingress: `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: shop
  annotations: { nginx.ingress.kubernetes.io/rewrite-target: / }
spec:
  ingressClassName: nginx
  tls:
    - hosts: [shop.example.com, "*.shop.example.com"]
      secretName: shop-tls
  defaultBackend:
    service: { name: web, port: { name: http } }
  rules:
    - host: shop.example.com
      http:
        paths:
          - { path: /api, pathType: Prefix, backend: { service: { name: api, port: { number: 8080 } } } }
          - { path: /healthz, pathType: Exact, backend: { service: { name: api, port: { number: 8080 } } } }
    - host: "*.shop.example.com"
      http:
        paths:
          - pathType: ImplementationSpecific
            backend: { resource: { apiGroup: k8s.example.com, kind: StorageBucket, name: static-assets } }
status:
  loadBalancer:
    ingress: [{ ip: 127.0.0.2, ports: [{ port: 80, protocol: TCP }] }]
`,
  PersistentVolume: `
apiVersion: v1
kind: PersistentVolume
metadata: { name: pv0001, labels: { type: local } }
spec:
  capacity: { storage: 10Gi }
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: manual
  local: { path: /mnt/disks/ssd1 }
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions: [{ key: kubernetes.io/hostname, operator: In, values: [node-1] }]
`,
  PersistentVolumeClaim: `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: { name: data, namespace: default }
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: local-path
  resources: { requests: { storage: 2Gi } }
`,
  StorageClass: `
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations: { storageclass.kubernetes.io/is-default-class: "true" }
provisioner: berth.io/local-path
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
`,
  HorizontalPodAutoscaler: `
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: { name: web, namespace: shop }
spec:
  scaleTargetRef: { apiVersion: apps/v1, kind: Deployment, name: web }
  minReplicas: 2
  maxReplicas: 10
  metrics:
    - type: Resource
      resource: { name: cpu, target: { type: Utilization, averageUtilization: 50 } }
    - type: Resource
      resource: { name: memory, target: { type: AverageValue, averageValue: 500Mi } }
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 300
      policies: [{ type: Percent, value: 10, periodSeconds: 60 }]
    scaleUp:
      selectPolicy: Max
      policies: [{ type: Pods, value: 4, periodSeconds: 15 }, { type: Percent, value: 100, periodSeconds: 15 }]
status:
  currentReplicas: 2
  desiredReplicas: 2
  currentMetrics:
    - type: Resource
      resource: { name: cpu, current: { averageUtilization: 45, averageValue: 225m } }
  conditions:
    - { type: AbleToScale, status: "True", reason: ReadyForNewScale, message: recommended size matches current size }
`,
};

test('every kind has a schema and a valid real-world manifest', (t) => {
  t.deepEqual(kindsWithoutSchema(), []);
  for (const k of KINDS) {
    const manifest = MANIFESTS[k.kind];
    if (manifest === undefined) return t.fail(`no manifest for ${k.kind}`);
    t.deepEqual(errs(y(manifest)), [], k.kind);
  }
});

test('extra real-world shapes pass: headless and ExternalName services, generateName, creationTimestamp null', (t) => {
  t.deepEqual(
    errs(
      y(
        'apiVersion: v1\nkind: Service\nmetadata: { name: db }\nspec: { clusterIP: None, selector: { app: db } }',
      ),
    ),
    [],
  );
  t.deepEqual(
    errs(
      y(
        'apiVersion: v1\nkind: Service\nmetadata: { name: ext }\nspec: { type: ExternalName, externalName: db.example.com. }',
      ),
    ),
    [],
  );
  t.deepEqual(errs(withField(POD, 'metadata', { generateName: 'debug-', creationTimestamp: null })), []);
  t.deepEqual(
    errs(
      withField(POD, 'status', {
        phase: 'Running',
        podIP: '10.244.0.3',
        endpoints: [{ containerPort: 80, hostPort: 30001, hostIP: '0.0.0.0', protocol: 'TCP' }],
      }),
    ),
    [],
  );
});

test('unknown and known apiVersion/kind are named clearly', (t) => {
  t.deepEqual(errs({ apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'x' } }), [
    'apiVersion: Unsupported value: "batch/v1": supported values: "v1", "apps/v1", "coordination.k8s.io/v1", "networking.k8s.io/v1", "storage.k8s.io/v1", "autoscaling/v2"',
    'kind: Unsupported value: "CronJob": Berth serves Namespace, Node, Pod, Service, Endpoints, ConfigMap, Secret, Event, PersistentVolume, PersistentVolumeClaim, ReplicaSet, Deployment, Lease, Ingress, StorageClass, HorizontalPodAutoscaler',
  ]);
  t.deepEqual(errs({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'x' } }), [
    'kind: Unsupported value: "StatefulSet": Berth serves ReplicaSet, Deployment in apps/v1',
  ]);
  t.deepEqual(errs({ apiVersion: 'extensions/v1beta1', kind: 'Deployment', metadata: { name: 'x' } }), [
    'apiVersion: Unsupported value: "extensions/v1beta1": Deployment is served as apiVersion "apps/v1"',
  ]);
  t.deepEqual(errs({ metadata: { name: 'x' } }), ['apiVersion: Required value', 'kind: Required value']);
  t.regex(errs({ apiVersion: 'apps/v1', kind: 'deployment' })[0] ?? '', /did you mean "Deployment"/);
});

test('metadata rules', (t) => {
  const pod = (metadata: unknown) => errs(withField(POD, 'metadata', metadata));
  t.deepEqual(pod({}), ['metadata.name: Required value: name or generateName is required']);
  t.regex(
    pod({ name: 'Web_1' })[0] ?? '',
    /^metadata\.name: Invalid value: "Web_1": a lowercase RFC 1123 subdomain/,
  );
  t.regex(pod({ name: 'a'.repeat(254) })[0] ?? '', /must be no more than 253 characters/);
  t.deepEqual(pod({ name: 'a.b-c' }), []);
  t.regex(
    pod({ name: 'x', namespace: 'a.b' })[0] ?? '',
    /^metadata\.namespace: Invalid value: "a.b": a lowercase RFC 1123 label/,
  );
  t.deepEqual(pod({ name: 'x', labels: { 'example.com/app': 'web', ok: '' } }), []);
  t.deepEqual(
    pod({ name: 'x', labels: { 'bad key!': 'v', app: 'x'.repeat(64), v: 2 } }).map((e) => e.split(':')[0]),
    ['metadata.labels[bad key!]', 'metadata.labels[app]', 'metadata.labels[v]'],
  );
  t.deepEqual(pod({ name: 'x', labels: { v: 2 } }), ['metadata.labels[v]: must be a string']);
  t.deepEqual(pod({ name: 'x', annotations: { big: 'x'.repeat(256 * 1024) } }), [
    'metadata.annotations: Too long: must have at most 262144 bytes',
  ]);
  t.deepEqual(pod({ name: 'x', ownerReferences: [{ kind: 'ReplicaSet', name: 'rs' }] }), [
    'metadata.ownerReferences[0].apiVersion: Required value',
    'metadata.ownerReferences[0].uid: Required value',
  ]);
  const svc = withField(SERVICE, 'metadata.name', '1web');
  t.regex(errs(svc)[0] ?? '', /^metadata\.name: Invalid value: "1web": a DNS-1035 label/);
  t.regex(errs(y('apiVersion: v1\nkind: Namespace\nmetadata: { name: a.b }'))[0] ?? '', /RFC 1123 label/);
});

test('unknown fields are named at every depth, together with other errors', (t) => {
  const d = y(DEPLOYMENT);
  set(d, 'spec.replica', 3);
  set(d, 'metadata.lables', {});
  set(d, 'spec.template.spec.containers[0].foo', 1);
  set(d, 'spec.template.spec.containers[0].resources.requests.cpu', 'lots');
  set(d, 'spec.template.spec.containers[1].imagePullPolicy', 'Sometimes');
  set(d, 'spec.template.spec.volumes[0].configMap.itemz', []);
  set(d, 'spec.replicas', '3');
  t.deepEqual(errs(d), [
    'metadata.lables: unknown field',
    'spec.replicas: must be an integer',
    'spec.template.spec.containers[0].resources.requests[cpu]: Invalid value: "lots": quantities must match the regular expression \'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$\'',
    'spec.template.spec.containers[0].foo: unknown field',
    'spec.template.spec.containers[1].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"',
    'spec.template.spec.volumes[0].configMap.itemz: unknown field',
    'spec.replica: unknown field',
  ]);
});

const containerErr = (field: string, value: unknown) =>
  errs(withField(DEPLOYMENT, `spec.template.spec.containers[0].${field}`, value));

test('container rules', (t) => {
  t.deepEqual(containerErr('image', undefined), ['spec.template.spec.containers[0].image: Required value']);
  t.deepEqual(containerErr('image', ' '), ['spec.template.spec.containers[0].image: Required value']);
  t.deepEqual(containerErr('name', 'sidecar'), [
    'spec.template.spec.containers[1].name: Duplicate value: "sidecar"',
  ]);
  t.regex(containerErr('name', 'Web')[0] ?? '', /containers\[0\]\.name: Invalid value: "Web"/);
  t.deepEqual(
    containerErr('ports', [
      { containerPort: 0 },
      { name: 'a', containerPort: 80 },
      { name: 'a', containerPort: 81, protocol: 'HTTP' },
    ]),
    [
      'spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535, inclusive',
      'spec.template.spec.containers[0].ports[2].protocol: Unsupported value: "HTTP": supported values: "TCP", "UDP", "SCTP"',
      'spec.template.spec.containers[0].ports[2].name: Duplicate value: "a"',
    ],
  );
  t.regex(
    containerErr('ports', [{ name: 'a-very-long-port-name', containerPort: 1 }])[0] ?? '',
    /no more than 15/,
  );
  t.deepEqual(containerErr('resources', { requests: { cpu: '2' }, limits: { cpu: '1' } }), [
    'spec.template.spec.containers[0].resources.requests[cpu]: Invalid value: "2": must be less than or equal to cpu limit of 1',
  ]);
  t.deepEqual(containerErr('resources', { requests: { memory: '-1Gi' } }), [
    'spec.template.spec.containers[0].resources.requests[memory]: Invalid value: "-1Gi": must be greater than or equal to 0',
  ]);
  t.deepEqual(
    containerErr('env', [
      { name: 'A', value: 'x', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      { value: 'y' },
    ]),
    [
      'spec.template.spec.containers[0].env[0].valueFrom: Invalid value: "": may not be specified when `value` is not empty',
      'spec.template.spec.containers[0].env[1].name: Required value',
    ],
  );
  t.deepEqual(containerErr('env', [{ name: 'A', valueFrom: {} }]), [
    'spec.template.spec.containers[0].env[0].valueFrom: Required value: must specify one of: `configMapKeyRef`, `secretKeyRef`, `fieldRef`',
  ]);
  t.regex(
    containerErr('env', [{ name: 'A', valueFrom: { fieldRef: { fieldPath: 'spec.foo' } } }])[0] ?? '',
    /fieldRef\.fieldPath: Invalid value: "spec.foo"/,
  );
  t.deepEqual(containerErr('envFrom', [{ configMapRef: { name: 'a' }, secretRef: { name: 'b' } }]), [
    'spec.template.spec.containers[0].envFrom[0].secretRef: Forbidden: may not specify more than 1 source',
  ]);
  t.deepEqual(containerErr('volumeMounts', [{ name: 'nope', mountPath: '/x' }]), [
    'spec.template.spec.containers[0].volumeMounts[0].name: Not found: "nope"',
  ]);
});

test('probe rules', (t) => {
  t.deepEqual(containerErr('livenessProbe', { periodSeconds: 10 }), [
    'spec.template.spec.containers[0].livenessProbe: Required value: must specify a handler type',
  ]);
  t.deepEqual(containerErr('readinessProbe', { exec: { command: ['true'] }, tcpSocket: { port: 80 } }), [
    'spec.template.spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type',
  ]);
  t.deepEqual(
    containerErr('livenessProbe', { tcpSocket: { port: 70000 }, successThreshold: 2, periodSeconds: 0 }),
    [
      'spec.template.spec.containers[0].livenessProbe.tcpSocket.port: Invalid value: 70000: must be between 1 and 65535, inclusive',
      'spec.template.spec.containers[0].livenessProbe.periodSeconds: Invalid value: 0: must be greater than or equal to 1',
      'spec.template.spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1',
    ],
  );
  t.deepEqual(containerErr('readinessProbe', { httpGet: { path: '/' } }), [
    'spec.template.spec.containers[0].readinessProbe.httpGet.port: Required value',
  ]);
});

const podSpecErr = (field: string, value: unknown) =>
  errs(withField(DEPLOYMENT, `spec.template.spec.${field}`, value));

test('pod spec rules: volumes, scheduling, restart policy', (t) => {
  t.deepEqual(
    podSpecErr('volumes', [
      { name: 'config', emptyDir: {}, hostPath: { path: '/x' } },
      { name: 'config' },
    ]).slice(0, 2),
    [
      'spec.template.spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type',
      'spec.template.spec.volumes[1].name: Duplicate value: "config"',
    ],
  );
  t.deepEqual(podSpecErr('containers', []), [
    'spec.template.spec.containers: Required value: must have at least one',
  ]);
  t.deepEqual(podSpecErr('restartPolicy', 'Never'), [
    'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
  ]);
  t.deepEqual(
    podSpecErr('tolerations', [
      { operator: 'Equal', value: 'x' },
      { key: 'k', operator: 'Exists', value: 'v' },
      { key: 'k', tolerationSeconds: 5, effect: 'NoSchedule' },
    ]).length,
    3,
  );
  t.deepEqual(
    podSpecErr('affinity', {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            {
              matchExpressions: [
                { key: 'a', operator: 'In' },
                { key: 'b', operator: 'Gt', values: ['x'] },
              ],
            },
          ],
        },
        preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 101, preference: {} }],
      },
      podAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { a: 'b' } } }],
      },
    }),
    [
      "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
      "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].values: Required value: must be specified single integer value when `operator` is 'Lt' or 'Gt'",
      'spec.template.spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 101: must be between 1 and 100, inclusive',
      'spec.template.spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value',
    ],
  );
});

const specErr = (field: string, value: unknown) => errs(withField(DEPLOYMENT, `spec.${field}`, value));

test('deployment rules', (t) => {
  t.deepEqual(specErr('selector', undefined), ['spec.selector: Required value']);
  t.deepEqual(specErr('selector', { matchLabels: { app: 'api' } }), [
    'spec.template.metadata.labels: Invalid value: {"app":"web","tier":"frontend"}: `selector` does not match template `labels`',
  ]);
  t.deepEqual(specErr('selector', {}), [
    'spec.selector: Invalid value: {}: empty selector is invalid for deployment',
  ]);
  t.deepEqual(
    specErr('strategy', { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: '0%' } }),
    ['spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when `maxSurge` is 0'],
  );
  t.deepEqual(
    specErr('strategy', { type: 'Recreate', rollingUpdate: { maxSurge: '150%', maxUnavailable: '101%' } }),
    [
      'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "101%": must not be greater than 100%',
      "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
    ],
  );
  t.regex(
    specErr('strategy', { rollingUpdate: { maxSurge: 'lots' } })[0] ?? '',
    /maxSurge: Invalid value: "lots": a valid percent/,
  );
  t.deepEqual(specErr('minReadySeconds', 600), [
    'spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds',
  ]);
  t.deepEqual(specErr('replicas', -1), [
    'spec.replicas: Invalid value: -1: must be greater than or equal to 0',
  ]);
  t.deepEqual(specErr('template', undefined), ['spec.template: Required value']);
});

test('service rules', (t) => {
  const svc = (spec: unknown) => errs(withField(SERVICE, 'spec', spec));
  t.deepEqual(svc({ selector: { app: 'web' } }), ['spec.ports: Required value']);
  t.deepEqual(svc({ ports: [{ port: 80 }, { port: 81 }] }), [
    'spec.ports[0].name: Required value',
    'spec.ports[1].name: Required value',
  ]);
  t.deepEqual(
    svc({
      ports: [
        { name: 'a', port: 80 },
        { name: 'a', port: 80 },
      ],
    }),
    ['spec.ports[1].name: Duplicate value: "a"', 'spec.ports[1]: Duplicate value: "80/TCP"'],
  );
  t.deepEqual(svc({ ports: [{ port: 80, nodePort: 30000 }] }), [
    "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
  ]);
  t.deepEqual(svc({ type: 'ExternalName' }), ['spec.externalName: Required value']);
  t.deepEqual(
    svc({ type: 'Magic', ports: [{ port: 80, targetPort: 'HTTP' }], sessionAffinity: 'Sticky' }).map(
      (e) => e.split(':')[0],
    ),
    ['spec.type', 'spec.ports[0].targetPort', 'spec.sessionAffinity'],
  );
  t.regex(
    svc({ clusterIP: '10.0.0.300', ports: [{ port: 80 }] })[0] ?? '',
    /^spec\.clusterIP: Invalid value/,
  );
});

test('configmap and secret rules', (t) => {
  const cm = (o: unknown) =>
    errs({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, ...(o as object) });
  t.deepEqual(
    cm({ data: { 'bad/key': 'v', a: 'x' }, binaryData: { a: 'eA==', b: 'not base64!' } }).map(
      (e) => e.split(':')[0],
    ),
    ['data[bad/key]', 'binaryData[b]', 'binaryData[a]'],
  );
  t.deepEqual(cm({ data: { big: 'x'.repeat(1024 * 1024) } }), [
    'data: Too long: must have at most 1048576 bytes',
  ]);
  const secret = (o: unknown) =>
    errs({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, ...(o as object) });
  t.deepEqual(secret({ data: { a: 'YWJj' }, stringData: { b: 'plain' } }), []);
  t.deepEqual(secret({ data: { a: 'abc' } }), ['data[a]: Invalid value: "abc": must be base64-encoded data']);
  t.deepEqual(secret({ type: 'kubernetes.io/tls', stringData: { 'tls.crt': 'x' } }), [
    'data[tls.key]: Required value',
  ]);
});

test('hostile input never throws', (t) => {
  const deep: Record<string, unknown> = {};
  let cur = deep;
  for (let i = 0; i < 10_000; i++) {
    const next = {};
    cur.x = next;
    cur = next;
  }
  const hostile: unknown[] = [
    null,
    undefined,
    42,
    'x',
    [],
    [1, 2],
    {},
    { apiVersion: null, kind: {} },
    { apiVersion: 'v1', kind: '__proto__' },
    { apiVersion: 'v1', kind: 'constructor' },
    JSON.parse(
      '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","__proto__":{"x":1}},"spec":{"constructor":1,"containers":[{"name":"a","image":"b","toString":1}]}}',
    ),
    { apiVersion: 'v1', kind: 'Pod', metadata: [], spec: [] },
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: 'nginx' } },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: { containers: [null, 1, [], { name: 1, image: [] }] },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'd' },
      spec: {
        replicas: Number.NaN,
        selector: [],
        template: {
          spec: {
            containers: [
              {
                name: 'a',
                image: 'b',
                resources: { limits: { cpu: {} }, requests: 'x' },
                livenessProbe: [],
                ports: [null],
              },
            ],
          },
        },
        strategy: { rollingUpdate: 'x' },
      },
    },
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: deep },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'c', labels: deep, annotations: [] },
      data: deep,
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: {
        terminationGracePeriodSeconds: 1e300,
        activeDeadlineSeconds: Infinity,
        containers: [{ name: 'a', image: 'b', ports: [{ containerPort: 2 ** 53 }] }],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 's' },
      spec: { ports: Array.from({ length: 5000 }, () => ({ port: 'x' })) },
    },
  ];
  for (const h of hostile) {
    const result = t.notThrows(() => validateObject(h));
    void result;
    t.true(Array.isArray(validateObject(h)));
    if (h !== null && typeof h === 'object' && !Array.isArray(h) && Object.keys(h).length > 0)
      t.true(validateObject(h).length > 0);
  }
  t.true(validateObject(hostile[hostile.length - 1]).length <= 1001);
  t.deepEqual(errs(hostile[10]), [
    'metadata.__proto__: unknown field',
    'spec.constructor: unknown field',
    'spec.containers[0].toString: unknown field',
  ]);
  t.deepEqual(errs(hostile[17]).slice(0, 3), [
    'spec.terminationGracePeriodSeconds: Invalid value: 1e+300: must be a 64-bit integer',
    'spec.activeDeadlineSeconds: must be an integer',
    'spec.containers[0].ports[0].containerPort: Invalid value: 9007199254740992: must be a 64-bit integer'.replace(
      '64',
      '32',
    ),
  ]);
});

const obj = (s: string) => y(s) as unknown as ApiObject;

test('validateUpdate: immutable fields', (t) => {
  const d = obj(DEPLOYMENT);
  const d2 = structuredClone(d);
  set(d2, 'spec.selector', { matchLabels: { app: 'web2' } });
  set(d2, 'spec.replicas', 10);
  t.deepEqual(validateUpdate(d2, d).map(formatFieldError), [
    'spec.selector: Invalid value: {"matchLabels":{"app":"web2"}}: field is immutable',
  ]);
  t.deepEqual(validateUpdate(structuredClone(d), d), []);

  const pod = obj(POD);
  const p2 = structuredClone(pod);
  set(p2, 'spec.containers[0].image', 'alpine:3.21');
  set(p2, 'spec.activeDeadlineSeconds', 60);
  set(p2, 'spec.tolerations', [{ operator: 'Exists' }]);
  set(p2, 'spec.nodeName', 'worker-1');
  t.deepEqual(validateUpdate(p2, pod), []);
  const p3 = structuredClone(p2);
  set(p3, 'spec.restartPolicy', 'Always');
  set(p3, 'spec.activeDeadlineSeconds', 120);
  set(p3, 'spec.tolerations', []);
  const errors = validateUpdate(p3, p2).map(formatFieldError);
  t.is(errors.length, 2);
  t.regex(errors[0] ?? '', /spec.activeDeadlineSeconds: Invalid value: 120/);
  t.regex(
    errors[1] ?? '',
    /^spec: Forbidden: pod updates may not change fields other than .*changed: spec.restartPolicy, spec.tolerations$/,
  );

  const svc = obj(SERVICE);
  set(svc, 'spec.clusterIP', '10.96.0.10');
  const s2 = structuredClone(svc);
  set(s2, 'spec.clusterIP', '10.96.0.11');
  t.deepEqual(validateUpdate(s2, svc).map(formatFieldError), [
    'spec.clusterIP: Invalid value: "10.96.0.11": field is immutable',
  ]);
  set(s2, 'spec.clusterIP', undefined);
  t.deepEqual(validateUpdate(s2, svc), []);

  const cm = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'c' },
    data: { a: '1' },
    immutable: true,
  } as ApiObject;
  t.deepEqual(validateUpdate({ ...cm, data: { a: '2' }, immutable: false }, cm).map(formatFieldError), [
    'immutable: Forbidden: field is immutable when `immutable` is set',
    'data: Forbidden: field is immutable when `immutable` is set',
  ]);
  const sec = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, type: 'Opaque' } as ApiObject;
  t.deepEqual(validateUpdate({ ...sec, type: 'kubernetes.io/tls' }, sec).map(formatFieldError), [
    'type: Invalid value: "kubernetes.io/tls": field is immutable',
  ]);
});
