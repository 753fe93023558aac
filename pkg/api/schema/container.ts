// The Container type and what hangs off it: ports, env, resources, probes, volume mounts.

import {
  arr,
  asArr,
  asObj,
  asStr,
  bool,
  enumOf,
  type Issues,
  int,
  intOrString,
  invalid,
  map,
  type Mutable,
  obj,
  own,
  quantity,
  required,
  str,
} from './dsl.js';
import { dnsLabel, ianaSvcName, ipAddress, qualifiedName, relativePath } from './formats.js';
import { tryParseQuantity } from './quantity.js';

export const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;

/** A port given as a number (1-65535) or an IANA service name. */
export function checkPortRef(v: unknown, path: string, out: Issues): void {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) out.add(path, 'must be an integer');
    else if (v < 1 || v > 65535) out.add(path, invalid(v, 'must be between 1 and 65535, inclusive'));
  } else if (typeof v === 'string') {
    const bad = ianaSvcName(v);
    if (bad) out.add(path, invalid(v, bad));
  }
}

export const port = (description: string) => int(description, { min: 1, max: 65535 });

export const ContainerPort = obj('ContainerPort', 'A network port in a single container.', {
  name: str('An IANA_SVC_NAME (<= 15 characters) that services can refer to. Unique within the container.', {
    format: ianaSvcName,
  }),
  containerPort: required(port("Number of the port to expose on the pod's IP address (1-65535).")),
  hostPort: int('Number of the port to expose on the host (1-65535). Most containers do not need this.', {
    min: 0,
    max: 65535,
  }),
  hostIP: str('What host IP to bind the external port to.', { format: ipAddress }),
  protocol: enumOf(PROTOCOLS, 'Protocol for port: TCP, UDP or SCTP.', { default: 'TCP' }),
});

const keyRef = (name: string, what: string) =>
  obj(name, `Selects a key of a ${what}.`, {
    name: required(str(`Name of the ${what}.`)),
    key: required(str(`The key to select.`)),
    optional: bool(`Whether the ${what} or its key must be defined.`),
  });

const FIELD_PATHS = [
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'spec.nodeName',
  'spec.serviceAccountName',
  'status.hostIP',
  'status.hostIPs',
  'status.podIP',
  'status.podIPs',
];

function checkFieldPath(s: string): string | undefined {
  if (FIELD_PATHS.includes(s)) return undefined;
  if (/^metadata\.(labels|annotations)\['[^']+'\]$/.test(s)) return undefined;
  return `supported values: ${[...FIELD_PATHS, "metadata.labels['<KEY>']", "metadata.annotations['<KEY>']"].join(', ')}`;
}

export const ObjectFieldSelector = obj('ObjectFieldSelector', 'Selects a field of the pod.', {
  apiVersion: str('Version of the schema the FieldPath is written in terms of.', { default: 'v1' }),
  fieldPath: required(
    str('Path of the field to select, e.g. metadata.name or status.podIP.', { format: checkFieldPath }),
  ),
});

/** Exactly one of `fields` must be set on `v`. */
export function exactlyOne(fields: readonly string[], what: string) {
  return (v: Record<string, unknown>, path: string, out: Issues): void => {
    const set = fields.filter((f) => own(v, f) !== undefined && own(v, f) !== null);
    if (set.length === 0)
      out.add(path, `Required value: must specify one of: ${fields.map((f) => `\`${f}\``).join(', ')}`);
    else if (set.length > 1) out.add(`${path}.${set[1]}`, `Forbidden: may not specify more than 1 ${what}`);
  };
}

export const EnvVarSource = obj(
  'EnvVarSource',
  "Source for the environment variable's value.",
  {
    configMapKeyRef: keyRef('ConfigMapKeySelector', 'ConfigMap'),
    secretKeyRef: keyRef('SecretKeySelector', 'Secret'),
    fieldRef: ObjectFieldSelector,
  },
  { check: exactlyOne(['configMapKeyRef', 'secretKeyRef', 'fieldRef'], 'source') },
);

export const EnvVar = obj(
  'EnvVar',
  'An environment variable present in a container.',
  {
    name: required(str('Name of the environment variable.')),
    value: str('Value of the variable; $(VAR) references to earlier variables are expanded.'),
    valueFrom: EnvVarSource,
  },
  {
    check: (v: Record<string, unknown>, path: string, out: Issues) => {
      const name = asStr(own(v, 'name'));
      if (name !== undefined && (name.length === 0 || name.includes('=')))
        out.add(
          `${path}.name`,
          invalid(name, "a valid environment variable name must not be empty or contain '='"),
        );
      const value = asStr(own(v, 'value'));
      if (value && own(v, 'valueFrom') != null)
        out.add(`${path}.valueFrom`, invalid('', 'may not be specified when `value` is not empty'));
    },
  },
);

const sourceRef = (name: string, what: string) =>
  obj(name, `Selects a ${what} to populate environment variables with.`, {
    name: required(str(`Name of the ${what}.`)),
    optional: bool(`Whether the ${what} must be defined.`),
  });

export const EnvFromSource = obj(
  'EnvFromSource',
  'A source of a set of environment variables.',
  {
    prefix: str('An identifier to prepend to each key in the source.'),
    configMapRef: sourceRef('ConfigMapEnvSource', 'ConfigMap'),
    secretRef: sourceRef('SecretEnvSource', 'Secret'),
  },
  { check: exactlyOne(['configMapRef', 'secretRef'], 'source') },
);

const resourceList = (description: string) =>
  map(quantity('Amount of the resource.', { check: nonNegativeQuantity }), description, {
    key: qualifiedName,
  });

function nonNegativeQuantity(v: unknown, path: string, out: Issues): void {
  const q = tryParseQuantity(v);
  if (q !== undefined && q < 0) out.add(path, invalid(v, 'must be greater than or equal to 0'));
}

export const ResourceRequirements = obj(
  'ResourceRequirements',
  'Compute resources the container needs (requests) and may use at most (limits).',
  {
    limits: resourceList('Maximum amount of compute resources allowed, e.g. cpu: 500m, memory: 128Mi.'),
    requests: resourceList(
      'Minimum amount of compute resources required; the scheduler places the pod by these. Defaults to limits.',
    ),
  },
  {
    check: (v: Record<string, unknown>, path: string, out: Issues) => {
      const limits = asObj(own(v, 'limits')) ?? {};
      for (const [name, req] of Object.entries(asObj(own(v, 'requests')) ?? {})) {
        const r = tryParseQuantity(req);
        const l = tryParseQuantity(own(limits, name));
        if (r !== undefined && l !== undefined && r > l)
          out.add(
            `${path}.requests[${name}]`,
            invalid(req, `must be less than or equal to ${name} limit of ${own(limits, name)}`),
          );
      }
    },
  },
);

const HTTPHeader = obj('HTTPHeader', 'A custom header to be used in HTTP probes.', {
  name: required(str('The header field name.')),
  value: required(str('The header field value.')),
});

const probePort = (description: string) => required(intOrString(description, { check: checkPortRef }));

export const ExecAction = obj('ExecAction', 'Runs a command in the container.', {
  command: arr(str('An argument.'), 'Command line to run in the container; exit status 0 is healthy.'),
});

export const HTTPGetAction = obj('HTTPGetAction', 'An HTTP GET request.', {
  path: str('Path to access on the HTTP server.'),
  port: probePort('Number or name of the port to access on the container.'),
  host: str('Host name to connect to, defaults to the pod IP.'),
  scheme: enumOf(['HTTP', 'HTTPS'], 'Scheme to use for connecting to the host.', { default: 'HTTP' }),
  httpHeaders: arr(HTTPHeader, 'Custom headers to set in the request.'),
});

export const TCPSocketAction = obj('TCPSocketAction', 'Opens a TCP connection.', {
  port: probePort('Number or name of the port to access on the container.'),
  host: str('Host name to connect to, defaults to the pod IP.'),
});

const HANDLERS = ['exec', 'httpGet', 'tcpSocket'] as const;

function checkProbe(v: Record<string, unknown>, path: string, out: Issues): void {
  const set = HANDLERS.filter((h) => own(v, h) != null);
  if (set.length === 0) out.add(path, 'Required value: must specify a handler type');
  else if (set.length > 1)
    out.add(`${path}.${set[1]}`, 'Forbidden: may not specify more than 1 handler type');
}

export const Probe = obj(
  'Probe',
  'A health check performed against a container: exactly one of exec, httpGet, tcpSocket.',
  {
    exec: ExecAction,
    httpGet: HTTPGetAction,
    tcpSocket: TCPSocketAction,
    initialDelaySeconds: int('Seconds after the container has started before the probe is initiated.', {
      min: 0,
    }),
    periodSeconds: int('How often (in seconds) to perform the probe.', { min: 1, default: 10 }),
    timeoutSeconds: int('Seconds after which the probe times out.', { min: 1, default: 1 }),
    successThreshold: int('Minimum consecutive successes for the probe to be considered successful.', {
      min: 1,
      default: 1,
    }),
    failureThreshold: int('Minimum consecutive failures for the probe to be considered failed.', {
      min: 1,
      default: 3,
    }),
    terminationGracePeriodSeconds: int(
      "Grace period for the pod when this probe fails (overrides the pod's).",
      {
        int64: true,
        min: 1,
      },
    ),
  },
  { check: checkProbe },
);

/** Liveness and startup probes must have successThreshold 1. */
const probeMustSucceedOnce = (description: string) =>
  ({
    ...Probe,
    description,
    check: (v: Record<string, unknown>, path: string, out: Issues) => {
      checkProbe(v, path, out);
      const s = own(v, 'successThreshold');
      if (typeof s === 'number' && s !== 1) out.add(`${path}.successThreshold`, invalid(s, 'must be 1'));
    },
  }) as typeof Probe;

export const VolumeMount = obj('VolumeMount', 'Mounting of a volume within a container.', {
  name: required(str('Must match the name of a volume of the pod.')),
  mountPath: required(
    str("Path within the container at which the volume should be mounted. Must not contain ':'."),
  ),
  subPath: str("Path within the volume from which the container's volume should be mounted.", {
    format: relativePath,
  }),
  readOnly: bool('Mounted read-only if true.'),
});

const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;

/** Always for ':latest' or no tag, else IfNotPresent (Kubernetes' rule; a digest counts as a tag). */
export function defaultPullPolicy(image: string): string {
  if (image.includes('@')) return 'IfNotPresent';
  const lastSlash = image.lastIndexOf('/');
  const colon = image.indexOf(':', lastSlash + 1);
  const tag = colon < 0 ? '' : image.slice(colon + 1);
  return tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

function checkContainer(v: Record<string, unknown>, path: string, out: Issues): void {
  const image = asStr(own(v, 'image'));
  if (image !== undefined && image.trim() === '') out.add(`${path}.image`, 'Required value');
  const names = new Set<string>();
  (asArr(own(v, 'ports')) ?? []).forEach((p, i) => {
    const name = asStr(own(asObj(p), 'name'));
    if (!name) return;
    if (names.has(name)) out.add(`${path}.ports[${i}].name`, `Duplicate value: ${JSON.stringify(name)}`);
    names.add(name);
  });
  const mountPaths = new Set<string>();
  (asArr(own(v, 'volumeMounts')) ?? []).forEach((m, i) => {
    const mp = asStr(own(asObj(m), 'mountPath'));
    if (mp === undefined) return;
    if (mountPaths.has(mp)) out.add(`${path}.volumeMounts[${i}].mountPath`, invalid(mp, 'must be unique'));
    mountPaths.add(mp);
  });
}

export const Container = obj(
  'Container',
  'A single application container to run within a pod.',
  {
    name: required(str('Name of the container, a DNS label unique within the pod.', { format: dnsLabel })),
    image: required(str('Container image name, e.g. nginx:1.27.')),
    imagePullPolicy: enumOf(
      PULL_POLICIES,
      'Image pull policy. Defaults to Always if the :latest tag (or no tag) is used, else IfNotPresent.',
    ),
    command: arr(str('An argument.'), "Entrypoint array, replacing the image's ENTRYPOINT."),
    args: arr(str('An argument.'), "Arguments to the entrypoint, replacing the image's CMD."),
    workingDir: str("Container's working directory."),
    env: arr(EnvVar, 'Environment variables to set in the container.'),
    envFrom: arr(EnvFromSource, 'Sources (ConfigMaps, Secrets) whose keys become environment variables.'),
    ports: arr(ContainerPort, 'Ports to expose from the container.'),
    resources: ResourceRequirements,
    livenessProbe: probeMustSucceedOnce(
      'Periodic probe of container liveness; the container restarts if it fails.',
    ),
    readinessProbe: {
      ...Probe,
      description: 'Periodic probe of readiness; the pod leaves service endpoints if it fails.',
    },
    startupProbe: probeMustSucceedOnce(
      'Probe that the container has started; other probes wait until it succeeds.',
    ),
    volumeMounts: arr(VolumeMount, "Pod volumes to mount into the container's filesystem."),
  },
  {
    check: checkContainer,
    defaults: (c: Mutable) => {
      if (c.imagePullPolicy == null && typeof c.image === 'string')
        c.imagePullPolicy = defaultPullPolicy(c.image);
    },
  },
);
