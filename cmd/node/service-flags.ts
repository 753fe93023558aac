// berth-node's flags for Services: the range cluster IPs are allocated from and the node
// port range. Each node's API server allocates from them, so every node of a cluster must
// be given the same values (a node with other ranges would hand out values the others
// reject, or reject values they handed out).
import type { Command } from 'commander';
import {
  checkNodePortRange,
  DEFAULT_NODE_PORT_RANGE,
  DEFAULT_SERVICE_CIDR,
  parseServiceCIDR,
} from '../../pkg/api/server/service-alloc.js';
import { NodeConfigError } from './config.js';

export interface ServiceConfig {
  /** Canonical IPv4 CIDR (ApiServerOptions.serviceCIDR). */
  serviceCIDR: string;
  /** Inclusive (ApiServerOptions.nodePortRange). */
  nodePortRange: [number, number];
}

export interface RawServiceFlags {
  serviceCidr: string;
  serviceNodePortRange: string;
}

const SAME_ON_EVERY_NODE = 'every node of a cluster must use the same value';

export function addServiceFlags(cmd: Command): Command {
  return cmd
    .option(
      '--service-cidr <cidr>',
      `IPv4 range Services' cluster IPs are allocated from, /12 to /30; ${SAME_ON_EVERY_NODE}`,
      DEFAULT_SERVICE_CIDR,
    )
    .option(
      '--service-node-port-range <min-max>',
      `ports NodePort and LoadBalancer Services are given on every node; ${SAME_ON_EVERY_NODE}`,
      DEFAULT_NODE_PORT_RANGE.join('-'),
    );
}

export function toServiceConfig(f: RawServiceFlags): ServiceConfig {
  let serviceCIDR: string;
  try {
    serviceCIDR = parseServiceCIDR(f.serviceCidr).cidr;
  } catch (err) {
    throw new NodeConfigError(`--service-cidr: ${(err as Error).message}`);
  }
  const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(f.serviceNodePortRange);
  if (!m) {
    throw new NodeConfigError(
      `--service-node-port-range: "${f.serviceNodePortRange}" is not min-max (e.g. ${DEFAULT_NODE_PORT_RANGE.join('-')})`,
    );
  }
  const nodePortRange: [number, number] = [Number(m[1]), Number(m[2])];
  try {
    checkNodePortRange(nodePortRange);
  } catch (err) {
    throw new NodeConfigError(`--service-node-port-range: ${(err as Error).message}`);
  }
  return { serviceCIDR, nodePortRange };
}
