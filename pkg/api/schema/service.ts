// Service and Endpoints (core/v1).

import { checkPortRef, port, PROTOCOLS } from './container.js';
import {
  arr,
  asArr,
  asObj,
  asStr,
  enumOf,
  type Issues,
  int,
  intOrString,
  invalid,
  map,
  type Mutable,
  obj,
  own,
  ref,
  required,
  str,
} from './dsl.js';
import { dnsLabel, dnsSubdomain, ipAddress, labelValue, qualifiedName } from './formats.js';
import { ObjectReference } from './meta.js';

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;

const ServicePort = obj(
  'ServicePort',
  'A port the service exposes and where it sends the traffic.',
  {
    name: str(
      'Name of this port within the service, a DNS label. Required when there is more than one port.',
      {
        format: dnsLabel,
      },
    ),
    protocol: enumOf(PROTOCOLS, 'IP protocol for this port: TCP, UDP or SCTP.', { default: 'TCP' }),
    appProtocol: str('Application protocol for this port, e.g. http.'),
    port: required(port('The port that will be exposed by this service.')),
    targetPort: intOrString('Number or name of the port on the pods. Defaults to port.', {
      check: checkPortRef,
    }),
    nodePort: int('Port on each node for NodePort and LoadBalancer services; allocated when unset.', {
      min: 0,
      max: 65535,
    }),
  },
  {
    defaults: (p: Mutable) => {
      if (p.targetPort == null) p.targetPort = p.port;
    },
  },
);

function checkClusterIP(s: string): string | undefined {
  return s === '' || s === 'None' ? undefined : ipAddress(s);
}

function checkServiceSpec(v: Record<string, unknown>, path: string, out: Issues): void {
  const type = asStr(own(v, 'type')) ?? 'ClusterIP';
  const clusterIP = asStr(own(v, 'clusterIP')) ?? '';
  const ports = asArr(own(v, 'ports')) ?? [];
  if (type === 'ExternalName') {
    const name = own(v, 'externalName');
    if (name == null || name === '') out.add(`${path}.externalName`, 'Required value');
    else if (typeof name === 'string' && dnsSubdomain(name.replace(/\.$/, '')))
      out.add(`${path}.externalName`, invalid(name, dnsSubdomain(name.replace(/\.$/, '')) ?? ''));
    if (clusterIP !== '') out.add(`${path}.clusterIP`, 'Forbidden: may not be set for ExternalName services');
  } else if (ports.length === 0 && clusterIP !== 'None') {
    out.add(`${path}.ports`, 'Required value');
  }
  if (clusterIP === 'None' && type !== 'ClusterIP' && type !== 'ExternalName')
    out.add(
      `${path}.clusterIP`,
      invalid(clusterIP, "may not be set to 'None' for LoadBalancer or NodePort services"),
    );
  const ips = asArr(own(v, 'clusterIPs'));
  if (ips && ips.length > 0 && clusterIP !== '' && ips[0] !== clusterIP)
    out.add(`${path}.clusterIPs[0]`, invalid(ips[0], 'must match `clusterIP`'));
  const names = new Set<string>();
  const portKeys = new Set<string>();
  const nodePorts = new Set<string>();
  ports.forEach((p, i) => {
    const po = asObj(p);
    const name = asStr(own(po, 'name')) ?? '';
    if (ports.length > 1 && name === '') out.add(`${path}.ports[${i}].name`, 'Required value');
    if (name !== '' && names.has(name))
      out.add(`${path}.ports[${i}].name`, `Duplicate value: ${JSON.stringify(name)}`);
    names.add(name);
    const key = `${own(po, 'port')}/${asStr(own(po, 'protocol')) ?? 'TCP'}`;
    if (portKeys.has(key)) out.add(`${path}.ports[${i}]`, `Duplicate value: ${JSON.stringify(key)}`);
    portKeys.add(key);
    const nodePort = own(po, 'nodePort');
    if (typeof nodePort === 'number' && nodePort !== 0 && type !== 'NodePort' && type !== 'LoadBalancer')
      out.add(`${path}.ports[${i}].nodePort`, `Forbidden: may not be used when \`type\` is '${type}'`);
    // One node port may serve a port number over TCP and UDP, not twice over one protocol.
    const nodePortKey = `${nodePort}/${asStr(own(po, 'protocol')) ?? 'TCP'}`;
    if (typeof nodePort === 'number' && nodePort !== 0 && nodePorts.has(nodePortKey))
      out.add(`${path}.ports[${i}].nodePort`, `Duplicate value: ${nodePort}`);
    nodePorts.add(nodePortKey);
  });
  const affinity = own(v, 'sessionAffinity') ?? 'None';
  if (own(v, 'sessionAffinityConfig') != null && affinity !== 'ClientIP')
    out.add(`${path}.sessionAffinityConfig`, "Forbidden: must not be set when `sessionAffinity` is 'None'");
  if (own(v, 'externalTrafficPolicy') != null && type !== 'NodePort' && type !== 'LoadBalancer')
    out.add(
      `${path}.externalTrafficPolicy`,
      'Invalid value: may only be set for externally-accessible services',
    );
}

export const ServiceSpec = obj(
  'ServiceSpec',
  'The attributes a user creates on a service.',
  {
    type: enumOf(
      SERVICE_TYPES,
      'How the Service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName.',
      {
        default: 'ClusterIP',
      },
    ),
    selector: map(
      str('Label value.', { format: labelValue }),
      'Route traffic to pods with label keys and values matching this selector.',
      {
        key: qualifiedName,
      },
    ),
    ports: arr(ServicePort, 'The ports exposed by this service.'),
    clusterIP: str(
      'IP address of the service, allocated when unset; "None" for a headless service. Immutable once set.',
      {
        format: checkClusterIP,
      },
    ),
    clusterIPs: arr(
      str('An IP address.', { format: checkClusterIP }),
      'IP addresses of the service; the first equals clusterIP.',
    ),
    ipFamilies: arr(enumOf(['IPv4', 'IPv6'], 'An IP family.'), 'IP families assigned to the service.'),
    ipFamilyPolicy: enumOf(
      ['SingleStack', 'PreferDualStack', 'RequireDualStack'],
      'Dual-stack-ness of the service.',
    ),
    externalName: str('DNS name the service is an alias (CNAME) of. Required for type ExternalName.'),
    sessionAffinity: enumOf(['None', 'ClientIP'], 'ClientIP sends a client to the same pod each time.', {
      default: 'None',
    }),
    sessionAffinityConfig: obj('SessionAffinityConfig', 'Configurations of session affinity.', {
      clientIP: obj('ClientIPConfig', 'Configurations of client IP based session affinity.', {
        timeoutSeconds: int('Seconds of ClientIP sticky sessions (1-86400).', {
          min: 1,
          max: 86400,
          default: 10800,
        }),
      }),
    }),
    externalTrafficPolicy: enumOf(
      ['Cluster', 'Local'],
      'How external traffic is routed to node-local or cluster-wide endpoints.',
    ),
    internalTrafficPolicy: enumOf(['Cluster', 'Local'], 'How cluster-internal traffic is routed.'),
    loadBalancerIP: str('IP the load balancer should use, if the provider supports it.', {
      format: ipAddress,
    }),
  },
  {
    check: checkServiceSpec,
    defaults: (s: Mutable) => {
      if (s.sessionAffinity === 'ClientIP' && s.sessionAffinityConfig == null)
        s.sessionAffinityConfig = { clientIP: {} };
      if ((s.type === 'NodePort' || s.type === 'LoadBalancer') && s.externalTrafficPolicy == null)
        s.externalTrafficPolicy = 'Cluster';
      if (s.type !== 'ExternalName' && s.internalTrafficPolicy == null) s.internalTrafficPolicy = 'Cluster';
    },
  },
);

export const ServiceStatus = obj('ServiceStatus', 'The current status of a service.', {
  loadBalancer: obj('LoadBalancerStatus', 'The status of the load balancer, if one is present.', {
    ingress: arr(
      obj('LoadBalancerIngress', 'An ingress point of the load balancer.', {
        ip: str('IP of the ingress point.', { format: ipAddress }),
        hostname: str('Hostname of the ingress point.'),
      }),
      'Ingress points of the load balancer.',
    ),
  }),
});

const EndpointAddress = obj('EndpointAddress', 'A single IP address of an endpoint.', {
  ip: required(str('The IP of this endpoint.', { format: ipAddress })),
  hostname: str('The hostname of this endpoint.', { format: dnsLabel }),
  nodeName: str('The node hosting this endpoint.'),
  targetRef: ref(ObjectReference, 'Reference to the object providing the endpoint (a pod).'),
});

const EndpointPort = obj('EndpointPort', 'A port of an endpoint.', {
  name: str('Name of this port; must match the service port name.', { format: dnsLabel }),
  port: required(port('The port number of the endpoint.')),
  protocol: enumOf(PROTOCOLS, 'IP protocol for this port.', { default: 'TCP' }),
  appProtocol: str('Application protocol for this port.'),
});

export const EndpointSubset = obj('EndpointSubset', 'A group of addresses with a common set of ports.', {
  addresses: arr(EndpointAddress, 'IP addresses ready to receive traffic.'),
  notReadyAddresses: arr(EndpointAddress, 'IP addresses not ready to receive traffic yet.'),
  ports: arr(EndpointPort, 'Port numbers available on the addresses.'),
});
