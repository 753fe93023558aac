// berth-node's flags for the agent (the part that runs pods): node labels and taints,
// heartbeat and status intervals, the Docker socket, the host port range.
import { type Command, InvalidArgumentError, Option } from 'commander';
import { NodeConfigError } from './config.js';

export interface Taint {
  key: string;
  value?: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

export interface AgentConfig {
  enabled: boolean;
  labels: Record<string, string>;
  taints: Taint[];
  heartbeatMs: number;
  statusMs: number;
  dockerSocket: string;
  hostPortRange: [number, number];
}

export interface RawAgentFlags {
  agent: boolean;
  nodeLabels?: string;
  registerWithTaints?: string;
  heartbeatInterval: number;
  nodeStatusInterval: number;
  dockerSocket: string;
  hostPortRange: string;
}

const EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const;
const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

function ms(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 100)
      throw new InvalidArgumentError(`${flag} must be a whole number of ms >= 100`);
    return n;
  };
}

export function addAgentFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--no-agent', 'do not run pods on this machine (a store-and-API-only member)'))
    .option('--node-labels <list>', 'labels of this Node, comma-separated key=value (e.g. zone=a,disk=ssd)')
    .option(
      '--register-with-taints <list>',
      'taints of this Node when it registers, comma-separated key[=value]:Effect (e.g. dedicated=db:NoSchedule)',
    )
    .option(
      '--heartbeat-interval <ms>',
      'how often the node renews its Lease',
      ms('--heartbeat-interval'),
      1000,
    )
    .option(
      '--node-status-interval <ms>',
      'how often the node rewrites its status',
      ms('--node-status-interval'),
      10_000,
    )
    .option('--docker-socket <path>', "the Docker engine's socket", '/var/run/docker.sock')
    .option('--host-port-range <min-max>', 'host ports the agent publishes pod ports on', '40000-44999');
}

export function toAgentConfig(f: RawAgentFlags): AgentConfig {
  const labels: Record<string, string> = {};
  for (const part of (f.nodeLabels ?? '').split(',').filter((s) => s.trim() !== '')) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim();
    const value = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (!LABEL_KEY.test(key) || key.length > 316)
      throw new NodeConfigError(`--node-labels: "${key}" is not a valid label key`);
    if (!LABEL_VALUE.test(value))
      throw new NodeConfigError(`--node-labels: "${value}" is not a valid label value for ${key}`);
    labels[key] = value;
  }
  const taints: Taint[] = [];
  for (const part of (f.registerWithTaints ?? '').split(',').filter((s) => s.trim() !== '')) {
    const m = /^([^=:]+)(?:=([^:]*))?:(.+)$/.exec(part.trim());
    const effect = m?.[3] as Taint['effect'] | undefined;
    if (!m || !effect || !EFFECTS.includes(effect)) {
      throw new NodeConfigError(
        `--register-with-taints: "${part}" is not key[=value]:Effect with Effect one of ${EFFECTS.join(', ')}`,
      );
    }
    const key = (m[1] as string).trim();
    if (!LABEL_KEY.test(key))
      throw new NodeConfigError(`--register-with-taints: "${key}" is not a valid taint key`);
    taints.push({ key, ...(m[2] ? { value: m[2] } : {}), effect });
  }
  const range = /^(\d+)-(\d+)$/.exec(f.hostPortRange);
  const lo = Number(range?.[1]);
  const hi = Number(range?.[2]);
  if (!range || lo < 1024 || hi > 65535 || lo > hi) {
    throw new NodeConfigError(`--host-port-range: "${f.hostPortRange}" must be min-max within 1024-65535`);
  }
  if (f.nodeStatusInterval < f.heartbeatInterval) {
    throw new NodeConfigError('--node-status-interval must not be shorter than --heartbeat-interval');
  }
  return {
    enabled: f.agent,
    labels,
    taints,
    heartbeatMs: f.heartbeatInterval,
    statusMs: f.nodeStatusInterval,
    dockerSocket: f.dockerSocket,
    hostPortRange: [lo, hi],
  };
}
