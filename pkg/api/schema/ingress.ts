// Ingress (networking.k8s.io/v1): field names, descriptions and validation follow Kubernetes'
// pkg/apis/networking/validation. Every berth-node routes Ingresses (pkg/proxy/ingress-*.ts);
// TLS is accepted and stored but not terminated.

import { PROTOCOLS } from './container.js';
import {
  arr,
  asArr,
  asInt,
  asObj,
  asStr,
  enumOf,
  type Issues,
  int,
  invalid,
  type Mutable,
  obj,
  own,
  ref,
  required,
  str,
} from './dsl.js';
import { dns1035Label, dnsSubdomain, ianaSvcName, ipAddress, isIPv4, isIPv6 } from './formats.js';

export const PATH_TYPE_EXACT = 'Exact';
export const PATH_TYPE_PREFIX = 'Prefix';
export const PATH_TYPE_IMPLEMENTATION_SPECIFIC = 'ImplementationSpecific';
export const PATH_TYPES = [PATH_TYPE_EXACT, PATH_TYPE_PREFIX, PATH_TYPE_IMPLEMENTATION_SPECIFIC] as const;
export type PathType = (typeof PATH_TYPES)[number];

const WILDCARD_DNS1123_SUBDOMAIN = /^\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** validation.IsWildcardDNS1123Subdomain: `*.` and a DNS subdomain. */
export function wildcardDnsSubdomain(s: string): string | undefined {
  if (s.length > 253) return 'must be no more than 253 characters';
  if (!WILDCARD_DNS1123_SUBDOMAIN.test(s))
    return "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com')";
  return undefined;
}

/** A rule's or a TLS entry's host: a DNS name, or `*.` and a DNS name; never an IP address. */
function ingressHost(s: string, allowIP: boolean): string | undefined {
  if (!allowIP && (isIPv4(s) || isIPv6(s))) return 'must be a DNS name, not an IP address';
  return s.includes('*') ? wildcardDnsSubdomain(s) : dnsSubdomain(s);
}

/** pathvalidation.IsValidPathSegmentName: the name is a URL path segment. */
function pathSegmentName(s: string): string | undefined {
  if (s === '.' || s === '..') return `may not be '${s}'`;
  for (const c of ['/', '%']) if (s.includes(c)) return `may not contain '${c}'`;
  return undefined;
}

const ServiceBackendPort = obj(
  'ServiceBackendPort',
  'The service port being referenced: by number or by name, not both.',
  {
    name: str(
      'Name of the port on the Service. Mutually exclusive with number. An IANA_SVC_NAME (<= 15 characters).',
      { format: ianaSvcName },
    ),
    number: int('Numerical port number (1-65535) of the port on the Service. Mutually exclusive with name.', {
      min: 0,
      max: 65535,
    }),
  },
);

const IngressServiceBackend = obj('IngressServiceBackend', 'A Service as a backend.', {
  name: required(
    str('Name of the referenced Service. The Service must exist in the same namespace as the Ingress.', {
      format: dns1035Label,
    }),
  ),
  port: ref(ServiceBackendPort, 'Port of the referenced Service. A port name or port number is required.'),
});

const TypedLocalObjectReference = obj(
  'TypedLocalObjectReference',
  'A reference to an object in the same namespace, by API group, kind and name.',
  {
    apiGroup: str('Group of the resource being referenced; empty for the core API group.', {
      format: dnsSubdomain,
    }),
    kind: required(str('Kind of the resource being referenced.', { format: pathSegmentName })),
    name: required(str('Name of the resource being referenced.', { format: pathSegmentName })),
  },
);

/** validateIngressBackend: exactly one of service and resource; a service port by number or by name. */
function checkBackend(v: Record<string, unknown>, path: string, out: Issues): void {
  const service = asObj(own(v, 'service'));
  const resource = own(v, 'resource');
  if (service !== undefined && resource != null) {
    out.add(path, invalid('', 'cannot set both resource and service backends'));
    return;
  }
  if (resource != null) return;
  if (service === undefined) {
    if (own(v, 'service') == null)
      out.add(path, invalid('', 'backend must be specified: `service` or `resource`'));
    return;
  }
  const port = asObj(own(service, 'port'));
  const name = asStr(own(port, 'name')) ?? '';
  const number = asInt(own(port, 'number')) ?? 0;
  if (name !== '' && number !== 0)
    out.add(`${path}.service.port`, invalid('', 'cannot set both port name & port number'));
  else if (name === '' && number === 0)
    out.add(`${path}.service.port`, 'Required value: port name or number is required');
}

const IngressBackend = obj(
  'IngressBackend',
  'Where matching requests go: a Service port, or a resource (exactly one of the two).',
  {
    service: ref(IngressServiceBackend, 'A Service as a backend. Mutually exclusive with resource.'),
    resource: ref(
      TypedLocalObjectReference,
      "An object in the Ingress's namespace as a backend. Mutually exclusive with service. Accepted and stored; Berth's router answers such paths with 503.",
    ),
  },
  { check: checkBackend },
);

const INVALID_PATH_SEQUENCES = ['//', '/./', '/../', '%2f', '%2F'];
const INVALID_PATH_SUFFIXES = ['/..', '/.'];

/** validateHTTPIngressPath: Exact and Prefix paths are absolute and clean. */
function checkHTTPIngressPath(v: Record<string, unknown>, path: string, out: Issues): void {
  const pathType = asStr(own(v, 'pathType'));
  const p = asStr(own(v, 'path')) ?? '';
  const at = `${path}.path`;
  if (pathType === PATH_TYPE_EXACT || pathType === PATH_TYPE_PREFIX) {
    if (!p.startsWith('/')) out.add(at, invalid(p, 'must be an absolute path'));
    for (const seq of INVALID_PATH_SEQUENCES)
      if (p.includes(seq)) out.add(at, invalid(p, `must not contain '${seq}'`));
    for (const suffix of INVALID_PATH_SUFFIXES)
      if (p.endsWith(suffix)) out.add(at, invalid(p, `cannot end with '${suffix}'`));
  } else if (pathType === PATH_TYPE_IMPLEMENTATION_SPECIFIC) {
    if (p !== '' && !p.startsWith('/')) out.add(at, invalid(p, 'must be an absolute path'));
  }
}

const HTTPIngressPath = obj(
  'HTTPIngressPath',
  'A path and the backend requests matching it go to.',
  {
    path: str(
      'Path matched against the path of an incoming request. Must begin with "/" for pathType Exact and Prefix. Other characters of a URL path are allowed; query and fragment are not part of it.',
    ),
    pathType: required(
      enumOf(
        PATH_TYPES,
        'How the path is matched: Exact matches the whole URL path, case-sensitively. Prefix matches by path elements split on "/" (/foo matches /foo, /foo/ and /foo/bar, not /foobar; a trailing "/" is ignored). ImplementationSpecific is matched as Prefix by Berth. The longest matching path wins; on equal length Exact wins over Prefix.',
      ),
    ),
    backend: required(ref(IngressBackend, 'Where the matching requests go.')),
  },
  { check: checkHTTPIngressPath },
);

function checkHTTPRuleValue(v: Record<string, unknown>, path: string, out: Issues): void {
  const paths = asArr(own(v, 'paths'));
  if (paths !== undefined && paths.length === 0) out.add(`${path}.paths`, 'Required value');
}

const HTTPIngressRuleValue = obj(
  'HTTPIngressRuleValue',
  'A list of HTTP paths and the backends they go to.',
  {
    paths: required(arr(HTTPIngressPath, 'Paths and the backends requests matching them go to.')),
  },
  { check: checkHTTPRuleValue },
);

const IngressRule = obj(
  'IngressRule',
  'Requests to a host (or to any host) and the paths that route them to backends.',
  {
    host: str(
      'Fully qualified domain name of a network host, as defined by RFC 3986, without port and without a trailing dot: a "precise" name (foo.bar.com) or a "wildcard" one, a single "*" label first (*.foo.com). An IP address is not allowed. A precise host matches the request\'s Host exactly (the port removed, case-insensitively); a wildcard one matches a Host with exactly one more label (*.foo.com matches bar.foo.com, not foo.com nor baz.bar.foo.com). Empty matches any host. A precise host is tried before a wildcard one, and either before rules without a host.',
      { format: (s) => ingressHost(s, false) },
    ),
    http: ref(HTTPIngressRuleValue, 'HTTP paths of this host and their backends.'),
  },
);

const IngressTLS = obj('IngressTLS', 'TLS settings of some hosts.', {
  hosts: arr(
    str('A host (a DNS name, optionally with a "*." wildcard label first).', {
      format: (s) => ingressHost(s, true),
    }),
    'Hosts in the TLS certificate; they should match the hosts of the rules. Defaults to the wildcard host setting of the load balancer.',
  ),
  secretName: str('Name of the Secret holding the TLS certificate and key. Optional for SNI-only routing.', {
    format: dnsSubdomain,
  }),
});

function checkIngressSpec(v: Record<string, unknown>, path: string, out: Issues): void {
  const rules = asArr(own(v, 'rules'));
  if ((rules === undefined || rules.length === 0) && own(v, 'defaultBackend') == null)
    out.add(path, invalid(rules ?? null, 'either `defaultBackend` or `rules` must be specified'));
}

export const IngressSpec = obj(
  'IngressSpec',
  'How requests to the ingress point are routed, by host and path, to Services.',
  {
    ingressClassName: str(
      'Name of the IngressClass cluster resource of the controller that should implement this Ingress. Stored and shown; every berth-node routes every Ingress whatever its class.',
      { format: dnsSubdomain },
    ),
    defaultBackend: ref(
      IngressBackend,
      "The backend of requests no rule matches. With several Ingresses, the default backend of one whose rules name the request's host is preferred, then the oldest one (by creation time, then namespace and name).",
    ),
    tls: arr(
      IngressTLS,
      'TLS configuration: hosts and the Secret with their certificate. Accepted and stored only: Berth does not terminate TLS, its router serves plain HTTP.',
    ),
    rules: arr(
      IngressRule,
      'Host rules. Requests no rule matches go to the default backend. When two Ingresses give the same host, path and path type, the older one wins.',
    ),
  },
  { check: checkIngressSpec },
);

const IngressPortStatus = obj('IngressPortStatus', 'The status of a port of the ingress point.', {
  port: required(int('Port number of the ingress port.')),
  protocol: required(enumOf(PROTOCOLS, 'Protocol of the ingress port: TCP, UDP or SCTP.')),
  error: str(
    'The problem with this port, if any: a CamelCase name, or a cloud provider specific value like foo.example.com/CamelCase.',
    {
      format: (s) => (s.length > 316 ? 'must be no more than 316 characters' : undefined),
    },
  ),
});

const IngressLoadBalancerIngress = obj(
  'IngressLoadBalancerIngress',
  'An ingress point of the load balancer.',
  {
    ip: str('IP of an ingress point (IPv4 or IPv6).', { format: ipAddress }),
    hostname: str('Hostname of an ingress point (a DNS name).', {
      format: (s) => (isIPv4(s) || isIPv6(s) ? 'must be a DNS name, not an IP address' : dnsSubdomain(s)),
    }),
    ports: arr(IngressPortStatus, 'Ports of this ingress point.'),
  },
);

export const IngressStatus = obj(
  'IngressStatus',
  'The current state of the Ingress.',
  {
    loadBalancer: obj('IngressLoadBalancerStatus', 'The status of the load balancer.', {
      ingress: arr(IngressLoadBalancerIngress, 'Ingress points of the load balancer.'),
    }),
  },
  {
    defaults: (s: Mutable) => {
      if (s.loadBalancer == null) s.loadBalancer = {};
    },
  },
);

/** The root rules of an Ingress: a spec is required, and a status is always there (`loadBalancer: {}`). */
export function checkIngress(v: Record<string, unknown>, _path: string, out: Issues): void {
  if (own(v, 'spec') == null)
    out.add('spec', invalid(null, 'either `defaultBackend` or `rules` must be specified'));
}

export function defaultIngress(o: Mutable): void {
  if (o.status == null) o.status = {};
}
