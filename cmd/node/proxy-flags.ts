// berth-node's flags for the proxy: the Service proxy and Ingress router every node runs,
// and how long a terminating pod waits for the proxies before SIGTERM.
import { type Command, InvalidArgumentError, Option } from 'commander';
import { NodeConfigError } from './config.js';

export interface ProxyConfig {
  enabled: boolean;
  /** The Ingress router's port on the node's address; 0: no Ingress router. */
  ingressPort: number;
  idleTimeoutMs: number;
  drainTimeoutMs: number;
}

export interface RawProxyFlags {
  proxy: boolean;
  ingressPort: string;
  proxyIdleTimeout: number;
  endpointDrainTimeout: number;
}

function ms(flag: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${flag} must be a whole number of ms >= ${min}`);
    return n;
  };
}

export function addProxyFlags(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--no-proxy', 'serve no Services or Ingresses on this machine (its pods still run)'),
    )
    .option('--ingress-port <port>', "the Ingress router's HTTP port on --address (0: none)", '80')
    .option(
      '--proxy-idle-timeout <ms>',
      'close a proxied TCP connection idle this long',
      ms('--proxy-idle-timeout', 1000),
      600_000,
    )
    .option(
      '--endpoint-drain-timeout <ms>',
      "longest a terminating pod's SIGTERM waits for every node's proxy to stop routing to it",
      ms('--endpoint-drain-timeout', 0),
      3000,
    );
}

export function toProxyConfig(f: RawProxyFlags): ProxyConfig {
  const port = Number(f.ingressPort);
  if (!/^\d+$/.test(f.ingressPort) || port > 65535)
    throw new NodeConfigError(`--ingress-port: "${f.ingressPort}" must be a port 0-65535`);
  return {
    enabled: f.proxy !== false,
    ingressPort: port,
    idleTimeoutMs: f.proxyIdleTimeout,
    drainTimeoutMs: f.endpointDrainTimeout,
  };
}
