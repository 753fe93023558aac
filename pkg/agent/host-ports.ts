// Host ports on the node's address for pod ports: every container port is published at a
// host port (an endpoint is nodeAddress:hostPort), picked from a range unless the spec names
// one (hostPort). A port is taken per (address, protocol, port). Allocation walks the range
// from a cursor that moves on, so a port just freed is not handed straight to the next pod
// (a proxy still holding the old endpoint would reach the wrong pod).

import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import type { Protocol } from './container-spec.js';
import type { PortBinding } from './runtime.js';

export interface HostPortAllocatorOptions {
  /** Inclusive; default [40000, 44999]. */
  range?: [number, number];
  /** Whether nothing else on the machine holds the port; default: try to bind it. */
  isFree?: (ip: string, port: number, protocol: Protocol) => Promise<boolean>;
}

export class HostPortError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HostPortError';
  }
}

/**
 * Owns the host ports of one agent. Calls may overlap: a candidate is reserved before the
 * asynchronous isFree check, so two allocations never get the same port.
 */
export interface HostPortAllocator {
  /** The pod's binding for the container port: the existing one, `wanted`, or the next free port. */
  allocate(
    podUid: string,
    containerPort: number,
    protocol: Protocol,
    hostIp: string,
    wanted?: number,
  ): Promise<PortBinding>;
  release(podUid: string): void;
  /** Mark the ports of adopted containers (after an agent restart) as the pod's. */
  adopt(podUid: string, bindings: PortBinding[]): void;
  bindings(podUid: string): PortBinding[];
}

export const DEFAULT_HOST_PORT_RANGE: [number, number] = [40000, 44999];

/** Binds ip:port and lets go: true when that worked. */
export function canBind(ip: string, port: number, protocol: Protocol = 'TCP'): Promise<boolean> {
  return new Promise((resolve) => {
    if (protocol === 'UDP') {
      const s = createSocket(ip.includes(':') ? 'udp6' : 'udp4');
      s.once('error', () => {
        s.close();
        resolve(false);
      });
      s.bind({ address: ip, port, exclusive: true }, () => s.close(() => resolve(true)));
      return;
    }
    if (protocol === 'SCTP') return resolve(true); // Node cannot open SCTP sockets; the engine will say.
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: ip, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

interface Held {
  podUid: string;
  binding: PortBinding;
}

export function createHostPortAllocator(options: HostPortAllocatorOptions = {}): HostPortAllocator {
  const [min, max] = options.range ?? DEFAULT_HOST_PORT_RANGE;
  if (!(Number.isInteger(min) && Number.isInteger(max) && min >= 1 && max <= 65535 && min <= max))
    throw new HostPortError(`invalid host port range ${min}-${max}`);
  const isFree = options.isFree ?? canBind;
  const held = new Map<string, Held>(); // `${ip}/${protocol}/${port}`
  const cursor = new Map<string, number>(); // per address and protocol
  const slot = (ip: string, protocol: string, port: number) => `${ip}/${protocol}/${port}`;

  const existing = (podUid: string, containerPort: number, protocol: Protocol, hostIp: string) => {
    for (const h of held.values())
      if (
        h.podUid === podUid &&
        h.binding.containerPort === containerPort &&
        h.binding.protocol === protocol &&
        h.binding.hostIp === hostIp
      )
        return h.binding;
    return undefined;
  };

  return {
    async allocate(podUid, containerPort, protocol, hostIp, wanted) {
      const have = existing(podUid, containerPort, protocol, hostIp);
      if (have && (!wanted || have.hostPort === wanted)) return have;
      const binding = (hostPort: number): PortBinding => ({ containerPort, protocol, hostIp, hostPort });
      if (wanted) {
        const key = slot(hostIp, protocol, wanted);
        const h = held.get(key);
        if (h) {
          const by =
            h.podUid === podUid ? `port ${h.binding.containerPort} of the same pod` : `pod ${h.podUid}`;
          throw new HostPortError(`host port ${hostIp}:${wanted}/${protocol} is taken by ${by}`);
        }
        const b = binding(wanted);
        held.set(key, { podUid, binding: b });
        if (!(await isFree(hostIp, wanted, protocol))) {
          held.delete(key);
          throw new HostPortError(`host port ${hostIp}:${wanted}/${protocol} is in use on this machine`);
        }
        return b;
      }
      const cKey = `${hostIp}/${protocol}`;
      const size = max - min + 1;
      const start = cursor.get(cKey) ?? min;
      for (let i = 0; i < size; i++) {
        const port = min + ((start - min + i) % size);
        const key = slot(hostIp, protocol, port);
        if (held.has(key)) continue;
        const b = binding(port);
        held.set(key, { podUid, binding: b });
        cursor.set(cKey, port === max ? min : port + 1);
        if (await isFree(hostIp, port, protocol)) return b;
        held.delete(key);
      }
      throw new HostPortError(`no free host port on ${hostIp}/${protocol} in ${min}-${max}`);
    },
    release(podUid) {
      for (const [k, h] of [...held]) if (h.podUid === podUid) held.delete(k);
    },
    adopt(podUid, bindings) {
      for (const b of bindings)
        held.set(slot(b.hostIp, b.protocol, b.hostPort), { podUid, binding: { ...b } });
    },
    bindings(podUid) {
      return [...held.values()]
        .filter((h) => h.podUid === podUid)
        .map((h) => h.binding)
        .sort((a, b) => a.hostPort - b.hostPort || a.protocol.localeCompare(b.protocol));
    },
  };
}
