// The environment variables the kubelet gives every container for the Services of its
// namespace (getServiceEnvVarMap + Docker-link style FromServices): for a Service `web-api`
// with clusterIP 127.96.0.10 and a port `http` 80/TCP:
//   WEB_API_SERVICE_HOST=127.96.0.10  WEB_API_SERVICE_PORT=80  WEB_API_SERVICE_PORT_HTTP=80
//   WEB_API_PORT=tcp://127.96.0.10:80  WEB_API_PORT_80_TCP=tcp://127.96.0.10:80
//   WEB_API_PORT_80_TCP_PROTO=tcp  WEB_API_PORT_80_TCP_PORT=80  WEB_API_PORT_80_TCP_ADDR=127.96.0.10
// Only Services with a cluster IP count (not headless, not ExternalName). Like the kubelet,
// these are set once, when the container is created.

import type { ApiObject } from '../api/types.js';

interface PortView {
  name?: string;
  port: number;
  protocol?: string;
}

const envName = (s: string) => s.toUpperCase().replace(/-/g, '_');

/** Services' variables in a stable order (services by name, then as the kubelet lists them). */
export function serviceEnv(services: ApiObject[]): [string, string][] {
  const out: [string, string][] = [];
  const sorted = [...services].sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
  for (const svc of sorted) {
    const spec = (svc.spec ?? {}) as { clusterIP?: string; ports?: PortView[]; type?: string };
    const ip = spec.clusterIP ?? '';
    if (ip === '' || ip === 'None' || spec.type === 'ExternalName') continue;
    const ports = spec.ports ?? [];
    const first = ports[0];
    if (!first) continue;
    const name = envName(svc.metadata.name ?? '');
    out.push([`${name}_SERVICE_HOST`, ip], [`${name}_SERVICE_PORT`, String(first.port)]);
    for (const p of ports) if (p.name) out.push([`${name}_SERVICE_PORT_${envName(p.name)}`, String(p.port)]);
    const url = (p: PortView) => `${(p.protocol ?? 'TCP').toLowerCase()}://${ip}:${p.port}`;
    out.push([`${name}_PORT`, url(first)]);
    for (const p of ports) {
      const proto = p.protocol ?? 'TCP';
      const prefix = `${name}_PORT_${p.port}_${proto.toUpperCase()}`;
      out.push(
        [prefix, url(p)],
        [`${prefix}_PROTO`, proto.toLowerCase()],
        [`${prefix}_PORT`, String(p.port)],
        [`${prefix}_ADDR`, ip],
      );
    }
  }
  return out;
}
