// Real etcd clusters for tests: one `etcd` process per member (Debian's etcd 3.4, installed by
// scripts/ensure-etcd.sh), each on its own loopback address, with its own temporary data
// directory. Used to run the store's conformance suite against the reference implementation.
//
// Ownership: a cluster kills only the processes it spawned, by pid, and removes only the
// directory it created. A process-exit hook SIGKILLs any member still running, so a crashed
// test does not leave etcd behind; ports are picked free at start, so a leftover from an
// earlier run cannot block the next one.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface EtcdClusterOptions {
  /** Number of members. */
  size: 1 | 3;
  /**
   * Address of the first member; member i listens on the address i further on
   * (127.0.10.1, 127.0.10.2, ...). Must be in 127.0.0.0/8. Default 127.0.10.1, clear of
   * Berth's own nodes on 127.0.0.1..5.
   */
  baseAddress?: string;
  /** A unique directory is made inside this one (default: the OS temp directory). */
  dataRoot?: string;
  /** How long to wait for the cluster to become healthy, ms (default 30 000). */
  startTimeoutMs?: number;
  /** The etcd binary (default `etcd` on PATH). */
  etcdBinary?: string;
}

export interface EtcdCluster {
  /** Client URLs, one per member, in member order (`http://127.0.10.1:PORT`). */
  readonly endpoints: string[];
  /** The pid of each member's current process (undefined while it is down). */
  readonly pids: (number | undefined)[];
  /** The unique directory holding every member's data and log. */
  readonly dataDir: string;
  /** SIGTERM every member (SIGKILL after 1 s), wait for them to exit, remove dataDir. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL member i and wait until it has exited. Its data stays for restart(i). */
  kill(i: number): Promise<void>;
  /** Start member i again on its data directory and wait until it answers healthy. */
  restart(i: number): Promise<void>;
  /** Wait until every running member answers healthy (after a kill: a new leader is in place). */
  waitHealthy(): Promise<void>;
  /** The last lines of member i's log (for failure messages). */
  logTail(i: number, lines?: number): string;
}

interface Member {
  name: string;
  address: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  logFile: string;
  proc: ChildProcess | undefined;
  exited: Promise<void> | undefined;
}

const DEFAULT_BASE = '127.0.10.1';
// A test cluster's data is thrown away: a member that does not stop at once is not waited for.
const STOP_GRACE_MS = 1_000;

// Every etcd this module started and has not seen exit: killed if the test process exits first.
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const proc of live) {
      if (proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null) {
        try {
          process.kill(proc.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
}

/** Is the etcd binary there? Returns its version line, or undefined. */
export function etcdVersion(etcdBinary = 'etcd'): string | undefined {
  const r = spawnSync(etcdBinary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error || r.status !== 0) return undefined;
  return r.stdout.split('\n')[0]?.trim();
}

/** Start a real etcd cluster and wait until every member answers healthy. */
export async function startEtcdCluster(options: EtcdClusterOptions): Promise<EtcdCluster> {
  const size = options.size;
  const base = parseLoopback(options.baseAddress ?? DEFAULT_BASE);
  if ((base[3] as number) + size - 1 > 254) {
    throw new Error(`baseAddress ${options.baseAddress}: not room for ${size} members in its /24`);
  }
  const etcdBinary = options.etcdBinary ?? 'etcd';
  if (etcdVersion(etcdBinary) === undefined) {
    throw new Error(
      `no usable '${etcdBinary}' binary; install etcd 3.4 with: bash scripts/ensure-etcd.sh (as root)`,
    );
  }
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  installExitHook();

  const dataDir = await mkdtemp(join(options.dataRoot ?? tmpdir(), 'berth-etcd-'));
  const token = `berth-test-${randomBytes(6).toString('hex')}`;
  const members: Member[] = [];
  for (let i = 0; i < size; i++) {
    const address = [base[0], base[1], base[2], (base[3] as number) + i].join('.');
    const name = `m${i}`;
    members.push({
      name,
      address,
      clientPort: await freePort(address),
      peerPort: await freePort(address),
      dataDir: join(dataDir, name),
      logFile: join(dataDir, `${name}.log`),
      proc: undefined,
      exited: undefined,
    });
  }
  const initialCluster = members.map((m) => `${m.name}=http://${m.address}:${m.peerPort}`).join(',');
  const endpoints = members.map((m) => `http://${m.address}:${m.clientPort}`);

  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // An ETCD_* variable would silently configure every member; only ours count.
    if (!k.startsWith('ETCD_')) env[k] = v;
  }
  const goArch = unsupportedGoArch();
  if (goArch !== undefined) env.ETCD_UNSUPPORTED_ARCH = goArch;

  const launch = (m: Member): void => {
    const args = [
      `--name=${m.name}`,
      `--data-dir=${m.dataDir}`,
      `--listen-client-urls=http://${m.address}:${m.clientPort}`,
      `--advertise-client-urls=http://${m.address}:${m.clientPort}`,
      `--listen-peer-urls=http://${m.address}:${m.peerPort}`,
      `--initial-advertise-peer-urls=http://${m.address}:${m.peerPort}`,
      `--initial-cluster=${initialCluster}`,
      '--initial-cluster-state=new',
      `--initial-cluster-token=${token}`,
      '--logger=zap',
      '--log-outputs=stderr',
      '--log-level=warn',
    ];
    const fd = openSync(m.logFile, 'a');
    let proc: ChildProcess;
    try {
      proc = spawn(etcdBinary, args, { env, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    m.proc = proc;
    live.add(proc);
    m.exited = new Promise<void>((resolve) => {
      const done = () => {
        live.delete(proc);
        resolve();
      };
      if (proc.exitCode !== null || proc.signalCode !== null) done();
      else proc.once('exit', done);
      proc.once('error', done);
    });
  };

  const logTail = (i: number, lines = 20): string => {
    const m = members[i];
    if (!m) return '';
    try {
      return readFileSync(m.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };

  const member = (i: number): Member => {
    const m = members[i];
    if (!m) throw new Error(`no member ${i} in a cluster of ${size}`);
    return m;
  };

  const isRunning = (m: Member): boolean =>
    m.proc !== undefined && m.proc.exitCode === null && m.proc.signalCode === null;

  const waitHealthy = async (indexes: number[]): Promise<void> => {
    const deadline = Date.now() + startTimeoutMs;
    const pending = new Set(indexes);
    let lastProblem = '';
    while (pending.size > 0) {
      for (const i of [...pending]) {
        const m = member(i);
        if (!isRunning(m)) {
          throw new Error(
            `etcd member ${m.name} (${m.address}) exited during start-up ` +
              `(code ${m.proc?.exitCode}, signal ${m.proc?.signalCode}); log ${m.logFile}:\n${logTail(i)}`,
          );
        }
        const problem = await healthProblem(`http://${m.address}:${m.clientPort}/health`);
        if (problem === undefined) pending.delete(i);
        else lastProblem = `${m.name}: ${problem}`;
      }
      if (pending.size === 0) break;
      if (Date.now() > deadline) {
        const first = [...pending][0] as number;
        throw new Error(
          `etcd cluster not healthy after ${startTimeoutMs} ms (${lastProblem}); ` +
            `log of ${member(first).name}:\n${logTail(first)}`,
        );
      }
      await sleep(100);
    }
  };

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const m of members) {
      if (isRunning(m) && m.proc?.pid !== undefined) signal(m.proc.pid, 'SIGTERM');
    }
    await Promise.all(
      members.map(async (m) => {
        if (!m.exited) return;
        const timedOut = await Promise.race([
          m.exited.then(() => false),
          sleep(STOP_GRACE_MS).then(() => true),
        ]);
        if (timedOut && isRunning(m) && m.proc?.pid !== undefined) {
          signal(m.proc.pid, 'SIGKILL');
          await m.exited;
        }
      }),
    );
    await rm(dataDir, { recursive: true, force: true, maxRetries: 3 });
  };

  try {
    for (const m of members) launch(m);
    await waitHealthy(members.map((_, i) => i));
  } catch (err) {
    // The error already carries the failing member's log; leave nothing running.
    await stop();
    throw err;
  }

  return {
    endpoints,
    get pids() {
      return members.map((m) => (isRunning(m) ? m.proc?.pid : undefined));
    },
    dataDir,
    stop,
    async kill(i: number) {
      const m = member(i);
      if (isRunning(m) && m.proc?.pid !== undefined) signal(m.proc.pid, 'SIGKILL');
      await m.exited;
    },
    async restart(i: number) {
      if (stopped) throw new Error('cluster is stopped');
      const m = member(i);
      if (isRunning(m))
        throw new Error(`member ${m.name} is still running (pid ${m.proc?.pid}); kill it first`);
      launch(m);
      await waitHealthy([i]);
    },
    waitHealthy: () => waitHealthy(members.flatMap((m, i) => (isRunning(m) ? [i] : []))),
    logTail,
  };
}

/** undefined when healthy, otherwise why not. etcd 3.4's /health does a linearizable read. */
async function healthProblem(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    const body = await res.text();
    if (res.ok && /"health"\s*:\s*"true"/.test(body)) return undefined;
    return `HTTP ${res.status} ${body.trim()}`;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

function parseLoopback(address: string): number[] {
  const parts = address.split('.').map((p) => Number(p));
  if (
    parts.length !== 4 ||
    parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255) ||
    parts[0] !== 127 ||
    parts[3] === 0
  ) {
    throw new Error(`baseAddress ${address}: must be a loopback address 127.x.y.z with z >= 1`);
  }
  return parts;
}

/** A port nobody listens on at `address` right now (the OS picks it). */
function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, address, () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error(`no free port on ${address}`))));
    });
  });
}

// etcd 3.4 refuses to start on architectures other than amd64, arm64 and ppc64le unless
// ETCD_UNSUPPORTED_ARCH names the (Go) architecture.
function unsupportedGoArch(): string | undefined {
  const supported: Record<string, true> = { x64: true, arm64: true, ppc64: true };
  if (supported[process.arch]) return undefined;
  const goNames: Record<string, string> = { ia32: '386', arm: 'arm', s390x: 's390x', riscv64: 'riscv64' };
  return goNames[process.arch] ?? process.arch;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already exited
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
