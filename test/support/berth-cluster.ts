// A real Berth cluster for tests: N berth-node processes, each on its own loopback address
// 127.0.K.i (K picked per cluster, so clusters in parallel test files never collide), with
// faults a real machine suffers: SIGKILL, SIGSTOP, restarts, and iptables partitions on lo.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const NODE_MAIN = fileURLToPath(new URL('../../cmd/node/main.js', import.meta.url));
const CTL_MAIN = fileURLToPath(new URL('../../cmd/ctl/main.js', import.meta.url));

export const CLIENT_PORT = 2379;
export const PEER_PORT = 2380;

export interface ClusterNode {
  name: string;
  address: string;
  clientAddress: string;
  peerAddress: string;
  dataDir: string;
  logFile: string;
  proc?: ChildProcess;
  /** Arguments it was first started with (restarts reuse them). */
  args: string[];
}

export interface ClusterOptions {
  size: number;
  tickMs?: number;
  electionTicks?: number;
  snapshotEntries?: number;
  /** Run the agent (pods on Docker); off by default so store and API tests stay lean. */
  agent?: boolean;
  extraArgs?: string[];
  /**
   * Made the way docs/install.md says: `berth-node init` for n1, then `berth-node join` with
   * init's voter token for each other node, one at a time; mutual TLS, Secrets encrypted.
   * The admin's berthctl config is `<root>/admin.conf` (adminConfig).
   */
  secure?: boolean;
}

/** Is this address:port free to listen on? */
function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** Does something accept connections on address:port? */
function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Where test clusters claim their subnets (one directory per K, holding the owner's pid). */
const CLAIMS = join(tmpdir(), 'berth-test-subnets');

/**
 * Claim K for this process: an atomic mkdir, so two clusters starting at once (test files
 * run in parallel) never both take it between a port check and the bind. A claim whose
 * process is gone is stale and taken over.
 */
function claimSubnet(k: number): boolean {
  const dir = join(CLAIMS, String(k));
  mkdirSync(CLAIMS, { recursive: true });
  try {
    mkdirSync(dir);
  } catch {
    let owner = 0;
    try {
      owner = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    } catch {
      return false; // being claimed right now
    }
    if (owner > 0 && processAlive(owner)) return false;
    rmSync(dir, { recursive: true, force: true });
    try {
      mkdirSync(dir);
    } catch {
      return false;
    }
  }
  writeFileSync(join(dir, 'pid'), String(process.pid));
  return true;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function releaseSubnet(k: number): void {
  rmSync(join(CLAIMS, String(k)), { recursive: true, force: true });
}

/** Pick a 127.0.K.0/24 nobody here is using: K in 20..250 (0 is npm start's, 10 etcd's). */
async function pickSubnet(size: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const k = 20 + Math.floor(Math.random() * 230);
    if (!claimSubnet(k)) continue;
    let free = true;
    for (let i = 1; i <= size + 2 && free; i++) {
      free =
        (await portFree(`127.0.${k}.${i}`, CLIENT_PORT)) && (await portFree(`127.0.${k}.${i}`, PEER_PORT));
    }
    if (free) return k;
    releaseSubnet(k);
  }
  throw new Error('no free 127.0.K.0/24 subnet for a test cluster');
}

export class BerthCluster {
  readonly nodes: ClusterNode[] = [];
  private readonly partitionRules: string[][] = [];

  private constructor(
    readonly subnet: number,
    readonly root: string,
    private readonly opts: ClusterOptions,
  ) {}

  /** Start a new cluster of `size` nodes and wait until every node serves clients. */
  /**
   * Start a cluster on a free subnet. A subnet can still be taken between the check and the
   * nodes' binds (by something outside these tests): then the cluster starts again elsewhere.
   */
  static async start(opts: ClusterOptions): Promise<BerthCluster> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await BerthCluster.startOnce(opts);
      } catch (err) {
        if (attempt >= 3 || !/EADDRINUSE/.test(String((err as Error).message))) throw err;
      }
    }
  }

  private static async startOnce(opts: ClusterOptions): Promise<BerthCluster> {
    const subnet = await pickSubnet(opts.size);
    const root = await mkdtemp(join(tmpdir(), 'berth-cluster-'));
    const c = new BerthCluster(subnet, root, opts);
    const initial = Array.from(
      { length: opts.size },
      (_, i) => `n${i + 1}=${c.address(i)}:${PEER_PORT}`,
    ).join(',');
    for (let i = 0; i < opts.size; i++) c.define(i, opts.secure ? [] : ['--initial-cluster', initial]);
    try {
      if (opts.secure) await c.startSecure();
      else await Promise.all(c.nodes.map((_, i) => c.start(i)));
    } catch (err) {
      // Nobody else holds the cluster yet: without this the nodes that did start would leak.
      await c.destroy();
      throw err;
    }
    return c;
  }

  address(i: number): string {
    return `127.0.${this.subnet}.${i + 1}`;
  }

  /** The admin's berthctl config (secure clusters). */
  get adminConfig(): string {
    return join(this.root, 'admin.conf');
  }

  /** Node i's PKI directory (secure clusters). */
  pkiDir(i: number): string {
    return `${this.node(i).dataDir}.pki`;
  }

  /** The voter and worker tokens init printed (secure clusters). */
  tokens: { voter: string; worker: string } = { voter: '', worker: '' };

  /** Run a berth-node command (init, join, leave) to its end. */
  nodeCommand(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, [NODE_MAIN, ...args], { timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
      );
    });
  }

  /** Run berthctl to its end, as the admin unless another config is given (secure clusters). */
  ctl(args: string[], config = this.adminConfig): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [CTL_MAIN, '--config', config, ...args],
        { timeout: 30_000 },
        (err, stdout, stderr) =>
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
      );
    });
  }

  /** init n1 and start it; then join and start each other node once the one before votes. */
  private async startSecure(): Promise<void> {
    const n1 = this.node(0);
    const init = await this.nodeCommand([
      'init',
      '--name',
      n1.name,
      '--address',
      n1.address,
      '--data-dir',
      n1.dataDir,
      '--admin-config',
      this.adminConfig,
    ]);
    if (init.code !== 0) throw new Error(`berth-node init failed: ${init.stderr}`);
    const token = (role: string) =>
      new RegExp(`${role}:\\s+berth-node join \\S+ --token (\\S+)`).exec(init.stdout)?.[1];
    this.tokens = { voter: token('voter') ?? '', worker: token('worker') ?? '' };
    await this.start(0);
    await this.waitVoters(1);
    for (let i = 1; i < this.nodes.length; i++) {
      const n = this.node(i);
      const joined = await this.nodeCommand([
        'join',
        n1.address,
        '--token',
        this.tokens.voter,
        '--name',
        n.name,
        '--address',
        n.address,
        '--data-dir',
        n.dataDir,
      ]);
      if (joined.code !== 0) throw new Error(`berth-node join failed for ${n.name}: ${joined.stderr}`);
      await this.start(i);
      await this.waitVoters(i + 1);
    }
  }

  /** Until `berthctl cluster status` (as the admin) counts `want` voters. */
  private async waitVoters(want: number): Promise<void> {
    const deadline = Date.now() + 30_000;
    let last = '';
    while (Date.now() < deadline) {
      const r = await this.ctl(['cluster', 'status', '-o', 'json']);
      try {
        if ((JSON.parse(r.stdout) as { quorum?: { voters: number } }).quorum?.voters === want) return;
      } catch {
        last = r.stderr;
      }
      await new Promise((res) => setTimeout(res, 300));
    }
    throw new Error(`the secure cluster did not reach ${want} voters: ${last}`);
  }

  /**
   * The group id node i runs with. A node dials its peers from 127.0.0.1 (the kernel's source
   * address for all of 127/8; grpc-js cannot bind a local address), so a packet does not say
   * which node sent it; the owner match on this gid does. The node stays uid 0.
   */
  gid(i: number): number {
    return 50_000 + this.subnet * 16 + i;
  }

  private define(i: number, how: string[]): ClusterNode {
    const name = `n${i + 1}`;
    const address = this.address(i);
    const dataDir = join(this.root, name);
    const args = [
      '--name',
      name,
      '--address',
      address,
      '--data-dir',
      dataDir,
      '--tick-ms',
      String(this.opts.tickMs ?? 50),
      '--election-ticks',
      String(this.opts.electionTicks ?? 10),
      '--snapshot-entries',
      String(this.opts.snapshotEntries ?? 10000),
      '--log-level',
      'debug',
      // Plain text unless secure: those clusters test everything but security.
      ...(this.opts.secure ? [] : ['--insecure']),
      // Each test cluster its own service CIDR: clusters in parallel files share the host.
      ...(this.opts.agent ? ['--service-cidr', `127.97.${this.subnet}.0/24`] : ['--no-agent', '--no-proxy']),
      ...how,
      ...(this.opts.extraArgs ?? []),
    ];
    const node: ClusterNode = {
      name,
      address,
      clientAddress: `${address}:${CLIENT_PORT}`,
      peerAddress: `${address}:${PEER_PORT}`,
      dataDir,
      logFile: join(this.root, `${name}.log`),
      args,
    };
    this.nodes[i] = node;
    return node;
  }

  /** Client addresses of the nodes that are running (or all, with `all`). */
  endpoints(all = false): string[] {
    return this.nodes.filter((n) => all || n.proc).map((n) => n.clientAddress);
  }

  node(i: number): ClusterNode {
    const n = this.nodes[i];
    if (!n) throw new Error(`no node ${i}`);
    return n;
  }

  /** Start (or restart) node i with the arguments it was defined with; resolves once it listens. */
  async start(i: number): Promise<void> {
    const n = this.node(i);
    if (n.proc) throw new Error(`${n.name} is already running`);
    const log = createWriteStream(n.logFile, { flags: 'a' });
    const proc = spawn(process.execPath, [NODE_MAIN, ...n.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      gid: this.gid(i),
    });
    proc.stdout?.pipe(log);
    proc.stderr?.pipe(log);
    n.proc = proc;
    proc.once('exit', () => {
      if (n.proc === proc) n.proc = undefined;
    });
    await this.waitListening(n, proc);
  }

  private async waitListening(n: ClusterNode, proc: ChildProcess): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`${n.name} exited during start-up:\n${await this.tail(n)}`);
      }
      // Connect, never bind: a probe that binds the port could take it from the node.
      if (await listening(n.address, CLIENT_PORT)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${n.name} did not listen on ${n.clientAddress} within 20 s:\n${await this.tail(n)}`);
  }

  /** The last lines of a node's log, for failure messages. */
  async tail(n: ClusterNode, lines = 30): Promise<string> {
    if (!existsSync(n.logFile)) return '(no log)';
    return (await readFile(n.logFile, 'utf8')).split('\n').slice(-lines).join('\n');
  }

  private exited(proc: ChildProcess): Promise<void> {
    if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => proc.once('exit', () => resolve()));
  }

  /** The machine died: SIGKILL, nothing flushed beyond what the node synced. */
  async kill(i: number): Promise<void> {
    const proc = this.node(i).proc;
    if (!proc) return;
    proc.kill('SIGKILL');
    await this.exited(proc);
  }

  /** A clean shutdown (SIGTERM); fails the test if the node does not exit within 10 s. */
  async stop(i: number): Promise<number | null> {
    const proc = this.node(i).proc;
    if (!proc) return null;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await this.exited(proc);
    clearTimeout(timer);
    return proc.exitCode;
  }

  pause(i: number): void {
    this.node(i).proc?.kill('SIGSTOP');
  }

  resume(i: number): void {
    this.node(i).proc?.kill('SIGCONT');
  }

  /** Add node i (new) to the running cluster through --join, and start it. */
  async join(i: number): Promise<void> {
    this.define(i, ['--join', this.endpoints().join(',')]);
    await this.start(i);
  }

  /**
   * Cut every TCP path between the groups, both ways (iptables on lo). Nodes in no group
   * keep talking to everyone. A rule drops what node x's process sends to node y's address
   * (matched by x's gid, see gid()): x's connections to y die, and so do y's to x by the
   * rule the other way round. Clients outside the cluster (this test process) still reach
   * every node.
   */
  async partition(groups: number[][]): Promise<void> {
    for (let a = 0; a < groups.length; a++) {
      for (let b = 0; b < groups.length; b++) {
        if (a === b) continue;
        for (const x of groups[a] ?? []) {
          for (const y of groups[b] ?? []) {
            const rule = [
              'OUTPUT',
              '-o',
              'lo',
              '-m',
              'owner',
              '--gid-owner',
              String(this.gid(x)),
              '-d',
              this.address(y),
              '-p',
              'tcp',
              '-m',
              'comment',
              '--comment',
              `berth-test-${this.subnet}`,
              '-j',
              'DROP',
            ];
            await run('iptables', ['-w', '-A', ...rule]);
            this.partitionRules.push(rule);
          }
        }
      }
    }
  }

  async heal(): Promise<void> {
    while (this.partitionRules.length > 0) {
      const rule = this.partitionRules.pop() as string[];
      await run('iptables', ['-w', '-D', ...rule]).catch(() => undefined);
    }
  }

  /** Kill every node, remove partitions and data. Safe to call twice. */
  async destroy(): Promise<void> {
    await this.heal();
    await Promise.all(this.nodes.map((_, i) => this.kill(i)));
    releaseSubnet(this.subnet);
    if (!process.env.BERTH_KEEP_TEST_DATA) await rm(this.root, { recursive: true, force: true });
  }
}
