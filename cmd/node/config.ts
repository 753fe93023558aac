import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { Command, InvalidArgumentError } from 'commander';
import { type AgentConfig, addAgentFlags, type RawAgentFlags, toAgentConfig } from './agent-flags.js';
import {
  addEncryptionFlags,
  type EncryptionConfig,
  type RawEncryptionFlags,
  toEncryptionConfig,
} from './encryption-flags.js';
import { addProxyFlags, type ProxyConfig, type RawProxyFlags, toProxyConfig } from './proxy-flags.js';
import {
  addServiceFlags,
  type RawServiceFlags,
  type ServiceConfig,
  toServiceConfig,
} from './service-flags.js';

/** Everything berth-node needs to start, after flags are parsed and checked. */
export interface NodeConfig {
  name: string;
  /** Raft member id, derived from the name and the cluster token (stable across restarts). */
  id: number;
  clusterToken: string;
  dataDir: string;
  peerListen: string;
  peerAdvertise: string;
  clientListen: string;
  clientAdvertise: string;
  /** Bootstrap a new cluster with these members (this node included). */
  initialCluster?: { name: string; id: number; peerAddress: string }[];
  /** Join an existing cluster through these members' client addresses. */
  join?: string[];
  tickMs: number;
  electionTicks: number;
  snapshotEntries: number;
  logLevel: string;
  agent: AgentConfig;
  proxy: ProxyConfig;
  services: ServiceConfig;
  encryption: EncryptionConfig;
  /** Run the scheduler and controllers while this node leads (default). */
  controllers: boolean;
  /** How often the autoscaler re-reads metrics (kube-controller-manager's 15 s by default). */
  hpaSyncPeriodMs: number;
  /** Certificates and keys (init/join write them); mutual TLS everywhere unless `insecure`. */
  pkiDir: string;
  /** Plain text, no certificates, no access control: a test cluster on one machine. */
  insecure: boolean;
  /** The join service's address (voters only). */
  joinListen: string;
  /** Lifetime of renewed node certificates (days; renewed at two thirds). */
  nodeCertDays: number;
}

export class NodeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NodeConfigError';
  }
}

export const DEFAULT_PEER_PORT = 2380;
export const DEFAULT_CLIENT_PORT = 2379;
export const DEFAULT_JOIN_PORT = 2381;

/** A member id in [1, 2^48): etcd shows ids in hex, so do we. */
export function memberId(name: string, clusterToken: string): number {
  const digest = createHash('sha256').update(`${clusterToken}/${name}`).digest();
  return digest.readUIntBE(0, 6) || 1;
}

export function formatMemberId(id: number): string {
  return id.toString(16).padStart(12, '0');
}

/** Parse "host:port" (IPv4, [IPv6] or a name) with a clear error naming the flag. */
export function parseHostPort(value: string, flag: string, defaultPort?: number): string {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(value.trim());
  if (!m?.[1]) throw new NodeConfigError(`${flag}: "${value}" is not host:port`);
  const host = m[1];
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (port === undefined) throw new NodeConfigError(`${flag}: "${value}" needs a port (host:port)`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new NodeConfigError(`${flag}: port ${m[2]} is out of range 1-65535`);
  }
  const bare = host.replace(/^\[|\]$/g, '');
  if (!isIP(bare) && !/^[a-zA-Z0-9.-]+$/.test(bare))
    throw new NodeConfigError(`${flag}: "${host}" is not a host`);
  return `${host}:${port}`;
}

/** The host of 'host:port' (IPv6 in brackets too). */
export function hostOf(address: string): string {
  const i = address.lastIndexOf(':');
  return address.slice(0, i).replace(/^\[|\]$/g, '');
}

function positiveNumber(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`${flag} must be a positive number`);
    return n;
  };
}

function positiveInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${flag} must be a positive integer`);
    return n;
  };
}

const NAME_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function buildCommand(): Command {
  const cmd = addServiceFlags(
    addProxyFlags(
      addAgentFlags(
        new Command('berth-node')
          .description(
            "Run one Berth node: a Raft peer with the replicated store, the object API, and the agent that runs this machine's pods on Docker.\n\n" +
              'A new cluster, secure (mutual TLS, Secrets encrypted), see docs/install.md:\n' +
              '  berth-node init --name n1 --address 10.0.0.1          # first machine, once\n' +
              '  berth-node --name n1 --address 10.0.0.1               # run it\n' +
              '  berth-node join 10.0.0.1 --token BERTH1-... --name n2 --address 10.0.0.2   # each other machine, once\n' +
              '  berth-node --name n2 --address 10.0.0.2               # run it\n' +
              '  berth-node leave --data-dir /var/lib/berth            # take a machine out\n' +
              'A plain-text test cluster on one machine:\n' +
              '  berth-node --insecure --name n1 --address 127.0.0.1 --initial-cluster n1=127.0.0.1:2380,n2=127.0.0.2:2380,n3=127.0.0.3:2380\n\n' +
              'Commands: init, join, leave, encryption-key (berth-node <command> --help)',
          )
          .requiredOption('--name <name>', "this member's name, unique in the cluster (DNS-1123 label)")
          .option(
            '--address <host>',
            "this machine's address: default host for the four addresses below",
            '127.0.0.1',
          )
          .option('--data-dir <dir>', 'where the log, snapshots and identity live (default ./<name>.berth)')
          .option('--pki-dir <dir>', 'certificates and keys from init or join (default <data-dir>.pki)')
          .option(
            '--insecure',
            'no TLS, no certificates, no access control: only for a test cluster on one machine',
          )
          .option(
            '--listen-join <host:port>',
            `join service address, served by voters (default <address>:${DEFAULT_JOIN_PORT})`,
          )
          .option(
            '--node-cert-days <days>',
            "lifetime of this node's renewed certificates; renewal starts at two thirds",
            positiveNumber('--node-cert-days'),
            365,
          )
          .option(
            '--listen-peer <host:port>',
            `peer (Raft) listen address (default <address>:${DEFAULT_PEER_PORT})`,
          )
          .option('--advertise-peer <host:port>', 'peer address other members use (default: --listen-peer)')
          .option(
            '--listen-client <host:port>',
            `client API listen address (default <address>:${DEFAULT_CLIENT_PORT})`,
          )
          .option(
            '--advertise-client <host:port>',
            'client address given to others (default: --listen-client)',
          )
          .option(
            '--initial-cluster <list>',
            "bootstrap a new cluster: name=host:port of every member's peer address, comma-separated",
          )
          .option(
            '--join <addresses>',
            "join a running cluster through one or more members' client addresses, comma-separated",
          )
          .option(
            '--cluster-token <token>',
            'distinguishes clusters built from the same member names',
            'berth',
          )
          .option('--tick-ms <ms>', 'length of one Raft tick', positiveInt('--tick-ms'), 100)
          .option(
            '--election-ticks <n>',
            'ticks without a leader before an election',
            positiveInt('--election-ticks'),
            10,
          )
          .option(
            '--snapshot-entries <n>',
            'applied entries between snapshots',
            positiveInt('--snapshot-entries'),
            10000,
          )
          .option('--log-level <level>', 'trace, debug, info, warn or error', 'info')
          .option(
            '--hpa-sync-period <seconds>',
            'how often the autoscaler reads pod metrics and resizes (while this node leads)',
            positiveInt('--hpa-sync-period'),
            15,
          )
          .option(
            '--no-controllers',
            'never run the scheduler and controllers, even as leader (a store-and-API cluster, for tests)',
          )
          .exitOverride()
          // Errors come back as NodeConfigError and are printed once, by main.
          .configureOutput({ outputError: () => {} }),
      ),
    ),
  );
  return addEncryptionFlags(cmd);
}

interface RawFlags extends RawAgentFlags, RawProxyFlags, RawServiceFlags, RawEncryptionFlags {
  controllers: boolean;
  hpaSyncPeriod: number;
  pkiDir?: string;
  insecure?: boolean;
  listenJoin?: string;
  nodeCertDays: number;
  name: string;
  address: string;
  dataDir?: string;
  listenPeer?: string;
  advertisePeer?: string;
  listenClient?: string;
  advertiseClient?: string;
  initialCluster?: string;
  join?: string;
  clusterToken: string;
  tickMs: number;
  electionTicks: number;
  snapshotEntries: number;
  logLevel: string;
}

/** Turn parsed flags into a NodeConfig, or a NodeConfigError that says what to change. */
export function toConfig(f: RawFlags): NodeConfig {
  if (!NAME_RE.test(f.name)) {
    throw new NodeConfigError(
      `--name: "${f.name}" must be lowercase letters, digits and '-', at most 63 characters`,
    );
  }
  const address = f.address;
  const peerListen = parseHostPort(f.listenPeer ?? `${address}:${DEFAULT_PEER_PORT}`, '--listen-peer');
  const clientListen = parseHostPort(
    f.listenClient ?? `${address}:${DEFAULT_CLIENT_PORT}`,
    '--listen-client',
  );
  if (peerListen === clientListen) throw new NodeConfigError('--listen-peer and --listen-client must differ');
  const levels = ['trace', 'debug', 'info', 'warn', 'error'];
  if (!levels.includes(f.logLevel))
    throw new NodeConfigError(`--log-level must be one of ${levels.join(', ')}`);
  if (f.electionTicks < 3) throw new NodeConfigError('--election-ticks must be at least 3');
  const cfg: NodeConfig = {
    name: f.name,
    id: memberId(f.name, f.clusterToken),
    clusterToken: f.clusterToken,
    dataDir: f.dataDir ?? `./${f.name}.berth`,
    peerListen,
    peerAdvertise: parseHostPort(f.advertisePeer ?? peerListen, '--advertise-peer'),
    clientListen,
    clientAdvertise: parseHostPort(f.advertiseClient ?? clientListen, '--advertise-client'),
    tickMs: f.tickMs,
    electionTicks: f.electionTicks,
    snapshotEntries: f.snapshotEntries,
    logLevel: f.logLevel,
    agent: toAgentConfig(f),
    proxy: toProxyConfig(f),
    services: toServiceConfig(f),
    encryption: toEncryptionConfig(f),
    controllers: f.controllers !== false,
    hpaSyncPeriodMs: f.hpaSyncPeriod * 1000,
    pkiDir: f.pkiDir ?? `${f.dataDir ?? `./${f.name}.berth`}.pki`,
    insecure: f.insecure === true,
    joinListen: parseHostPort(f.listenJoin ?? `${address}:${DEFAULT_JOIN_PORT}`, '--listen-join'),
    nodeCertDays: f.nodeCertDays,
  };
  if (f.initialCluster && f.join)
    throw new NodeConfigError('give either --initial-cluster or --join, not both');
  if (f.initialCluster) cfg.initialCluster = parseInitialCluster(f.initialCluster, cfg);
  if (f.join) {
    cfg.join = f.join
      .split(',')
      .filter((s) => s.trim() !== '')
      .map((a) => parseHostPort(a, '--join', DEFAULT_CLIENT_PORT));
    if (cfg.join.length === 0) throw new NodeConfigError('--join needs at least one member address');
  }
  return cfg;
}

function parseInitialCluster(list: string, cfg: NodeConfig): NodeConfig['initialCluster'] {
  const members: { name: string; id: number; peerAddress: string }[] = [];
  for (const part of list.split(',').filter((s) => s.trim() !== '')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new NodeConfigError(`--initial-cluster: "${part}" is not name=host:port`);
    const name = part.slice(0, eq).trim();
    if (!NAME_RE.test(name))
      throw new NodeConfigError(`--initial-cluster: "${name}" is not a valid member name`);
    if (members.some((m) => m.name === name))
      throw new NodeConfigError(`--initial-cluster: "${name}" appears twice`);
    const peerAddress = parseHostPort(part.slice(eq + 1), `--initial-cluster (${name})`, DEFAULT_PEER_PORT);
    members.push({ name, id: memberId(name, cfg.clusterToken), peerAddress });
  }
  const self = members.find((m) => m.name === cfg.name);
  if (!self) throw new NodeConfigError(`--initial-cluster does not list this node (--name ${cfg.name})`);
  if (self.peerAddress !== cfg.peerAdvertise) {
    throw new NodeConfigError(
      `--initial-cluster gives ${cfg.name} the peer address ${self.peerAddress}, but this node advertises ${cfg.peerAdvertise}`,
    );
  }
  return members;
}

/** Parse argv (without node and script). Throws NodeConfigError, or commander's help/version exits. */
export function parseNodeArgs(argv: string[]): NodeConfig {
  const cmd = buildCommand();
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (e) {
    const err = e as { code?: string; message: string };
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') throw e;
    throw new NodeConfigError(err.message.replace(/^error: /, ''));
  }
  return toConfig(cmd.opts<RawFlags>());
}

/** A stable cluster id for a bootstrapped cluster: the token and the initial members. */
export function clusterIdOf(token: string, members: { name: string; peerAddress: string }[]): string {
  const spec = members
    .map((m) => `${m.name}=${m.peerAddress}`)
    .sort()
    .join(',');
  // etcd shows cluster ids as uint64; decimal, as they go on the wire.
  return BigInt(`0x${createHash('sha256').update(`${token}|${spec}`).digest('hex').slice(0, 15)}`).toString();
}
