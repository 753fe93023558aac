// Helpers for the real-cluster tests: a BerthCluster tied to one ava test (destroyed in its
// teardown, node logs kept and shown when the test fails), per-node clients, leader
// discovery, serializable per-node dumps, and a background writer that records which writes
// were acknowledged.
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { type Client, createClient, type StatusResponse } from '../../pkg/client/client.js';
import type { StoreError } from '../../pkg/store/errors.js';
import { prefixEnd } from '../../pkg/store/types.js';
import { BerthCluster, type ClusterOptions } from '../support/berth-cluster.js';

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A short description of a client error, for logs and tallies. */
export function errorText(err: unknown): string {
  const e = err as Partial<StoreError> & { message?: string };
  return `${e.grpc ?? '?'} ${e.message ?? String(err)}`.slice(0, 120);
}

// If ava ends this worker early (a timeout: it sends SIGTERM), teardowns do not run: kill the
// nodes and drop the partition rules on the way out anyway (synchronously, all 'exit' allows),
// then let SIGTERM do what it does.
const live = new Set<BerthCluster>();
function cleanUpSync(): void {
  for (const c of live) {
    for (const n of c.nodes) n?.proc?.kill('SIGKILL');
    dropRulesSync(c.subnet);
    if (!process.env.BERTH_KEEP_TEST_DATA) rmSync(c.root, { recursive: true, force: true });
  }
  live.clear();
}
process.once('exit', cleanUpSync);
process.once('SIGTERM', () => {
  cleanUpSync();
  process.kill(process.pid, 'SIGTERM');
});

function dropRulesSync(subnet: number): void {
  try {
    for (const chain of ['INPUT', 'OUTPUT']) {
      const rules = execFileSync('iptables', ['-S', chain], { encoding: 'utf8' }).split('\n');
      for (const r of rules) {
        if (!r.includes(`berth-test-${subnet} `) && !r.endsWith(`berth-test-${subnet}`)) continue;
        execFileSync('iptables', ['-w', '-D', ...r.trim().split(/\s+/).slice(1)]);
      }
    }
  } catch {
    // Best effort on the way out.
  }
}

/** One key as a node holds it: everything a replica must agree on. */
export interface KeyState {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
}

export interface Dump {
  revision: number;
  kvs: KeyState[];
}

export interface ClientSettings {
  /** Node indexes whose client addresses the client gets (default: every node, in order). */
  nodes?: number[];
  requestTimeoutMs?: number;
  retries?: number;
}

export class TestCluster {
  private readonly clients = new Set<Client>();
  private readonly nodeClients = new Map<number, Client>();
  private readonly memberIds = new Map<number, string>();
  private readonly writers = new Set<Writer>();

  private constructor(
    readonly t: ExecutionContext,
    readonly cluster: BerthCluster,
  ) {}

  /** Start a cluster for this test; it is destroyed in the test's teardown, logs kept on failure. */
  static async start(t: ExecutionContext, opts: ClusterOptions): Promise<TestCluster> {
    const cluster = await BerthCluster.start(opts);
    live.add(cluster);
    const tc = new TestCluster(t, cluster);
    t.teardown(async () => {
      if (!t.passed) await tc.keepLogs();
      await tc.close();
    });
    return tc;
  }

  get size(): number {
    return this.cluster.nodes.length;
  }

  /** Indexes of every defined node. */
  all(): number[] {
    return this.cluster.nodes.map((_, i) => i);
  }

  running(i: number): boolean {
    return this.cluster.nodes[i]?.proc !== undefined;
  }

  /** A client over some nodes (default all), closed with the cluster. */
  client(settings: ClientSettings = {}): Client {
    const nodes = settings.nodes ?? this.all();
    const c = createClient({
      endpoints: nodes.map((i) => this.cluster.node(i).clientAddress),
      requestTimeoutMs: settings.requestTimeoutMs ?? 5000,
      retries: settings.retries ?? 5,
      dialTimeoutMs: 1000,
    });
    this.clients.add(c);
    return c;
  }

  /** A client for node i alone, without retries: what that one node says. */
  nodeClient(i: number): Client {
    let c = this.nodeClients.get(i);
    if (!c) {
      c = this.client({ nodes: [i], retries: 0, requestTimeoutMs: 3000 });
      this.nodeClients.set(i, c);
    }
    return c;
  }

  /** startWriter, stopped when the cluster is closed (should the test end early). */
  writer(client: Client, opts: WriterOptions): Writer {
    const w = startWriter(client, opts);
    this.writers.add(w);
    return w;
  }

  async closeClient(c: Client): Promise<void> {
    this.clients.delete(c);
    for (const [i, nc] of this.nodeClients) if (nc === c) this.nodeClients.delete(i);
    await c.close();
  }

  /** Node i's own status, or undefined when it does not answer. */
  async status(i: number): Promise<StatusResponse | undefined> {
    if (!this.running(i)) return undefined;
    try {
      const s = await this.nodeClient(i).cluster.status(this.cluster.node(i).clientAddress);
      this.memberIds.set(i, s.header.memberId);
      return s;
    } catch {
      return undefined;
    }
  }

  /** Node i's member id (asked of node i once, then remembered). */
  async memberId(i: number, timeoutMs = 10_000): Promise<string> {
    return waitFor(`member id of node ${i}`, timeoutMs, async () => {
      const known = this.memberIds.get(i);
      if (known) return known;
      return (await this.status(i))?.header.memberId;
    });
  }

  /** The node whose member id this is, if known. */
  indexOf(memberId: string): number | undefined {
    for (const [i, id] of this.memberIds) if (id === memberId) return i;
    return undefined;
  }

  /**
   * Wait until every node in `among` (default: the running ones) answers and names the same
   * leader, itself one of `among`; returns that leader's index.
   */
  async waitForLeader(among?: number[], timeoutMs = 20_000): Promise<number> {
    return waitFor(`a leader agreed by nodes ${among ?? 'running'}`, timeoutMs, async () => {
      const nodes = among ?? this.all().filter((i) => this.running(i));
      const st = await Promise.all(nodes.map((i) => this.status(i)));
      const leader = st[0]?.leader;
      if (!leader || leader === '0' || st.some((s) => s?.leader !== leader)) return undefined;
      const li = this.indexOf(leader);
      return li !== undefined && nodes.includes(li) ? li : undefined;
    });
  }

  /** Everything node i holds under `prefix` (every key by default), read serializably from it. */
  async dump(i: number, prefix = ''): Promise<Dump> {
    return readDump(this.nodeClient(i), prefix, true);
  }

  /**
   * Wait until the nodes' serializable dumps are identical (same revision, same keys with the
   * same values and revisions); returns the common dump.
   */
  async waitConverged(nodes: number[], timeoutMs = 30_000, prefix = ''): Promise<Dump> {
    let last: (Dump | string)[] = [];
    try {
      return await waitFor(`nodes ${nodes} to converge`, timeoutMs, async () => {
        last = await Promise.all(nodes.map((i) => this.dump(i, prefix).catch((e) => errorText(e))));
        const [first, ...rest] = last;
        if (typeof first !== 'object') return undefined;
        const same = rest.every((d) => typeof d === 'object' && sameDump(first, d));
        return same ? first : undefined;
      });
    } catch (err) {
      const summary = last.map((d, k) =>
        typeof d === 'string'
          ? `node ${nodes[k]}: ${d}`
          : `node ${nodes[k]}: rev ${d.revision}, ${d.kvs.length} keys`,
      );
      throw new Error(`${(err as Error).message}; last seen: ${summary.join('; ')}`);
    }
  }

  async logOf(i: number): Promise<string> {
    const f = this.cluster.node(i).logFile;
    return existsSync(f) ? readFile(f, 'utf8') : '';
  }

  /** Copy the node logs somewhere that outlives the cluster, and say where (and their tails). */
  private async keepLogs(): Promise<void> {
    const slug = this.t.title.replace(/[^a-z0-9]+/gi, '-').slice(0, 60);
    const dir = join(tmpdir(), 'berth-test-logs', `${slug}-${Date.now()}`);
    await mkdir(dir, { recursive: true });
    const tails: string[] = [];
    for (const n of this.cluster.nodes) {
      if (!n) continue;
      if (existsSync(n.logFile)) await copyFile(n.logFile, join(dir, `${n.name}.log`));
      tails.push(`--- ${n.name} (${n.address}) ---\n${await this.cluster.tail(n, 15)}`);
    }
    process.stderr.write(`\n[${this.t.title}] failed; node logs kept in ${dir}\n${tails.join('\n')}\n`);
  }

  async close(): Promise<void> {
    const writers = [...this.writers].map((w) => w.stop());
    await Promise.all([...this.clients].map((c) => c.close().catch(() => undefined)));
    this.clients.clear();
    this.nodeClients.clear();
    await Promise.all(writers);
    await this.cluster.destroy();
    live.delete(this.cluster);
  }
}

/** Every key under `prefix` (every key by default) as `client` reads it. */
export async function readDump(client: Client, prefix = '', serializable = false): Promise<Dump> {
  const key = prefix === '' ? new Uint8Array([0]) : enc(prefix);
  const rangeEnd = prefix === '' ? new Uint8Array([0]) : prefixEnd(enc(prefix));
  const r = await client.range({ key, rangeEnd, serializable });
  return { revision: r.header.revision, kvs: r.kvs.map(keyState) };
}

function keyState(kv: {
  key: Uint8Array;
  value: Uint8Array;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
}): KeyState {
  return {
    key: dec(kv.key),
    value: dec(kv.value),
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  };
}

export function sameDump(a: Dump, b: Dump): boolean {
  return a.revision === b.revision && JSON.stringify(a.kvs) === JSON.stringify(b.kvs);
}

/** Poll `probe` until it returns something other than undefined/false; throw after timeoutMs. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined | false>,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${errorText(lastErr)})` : ''}`,
      );
    }
    await sleep(intervalMs);
  }
}

/** A background writer of unique keys: which were acknowledged, which ended unknown. */
export interface Writer {
  /** key -> value of every acknowledged put. */
  readonly acked: Map<string, string>;
  /** key -> value of puts that failed: they may or may not have been applied. */
  readonly unknown: Map<string, string>;
  /** Error texts of failed puts, with how often each happened. */
  readonly errors: Map<string, number>;
  /** Acknowledgements so far (a snapshot of progress). */
  ackCount(): number;
  /** Resolves once the writer has this many acknowledgements (or rejects after timeoutMs). */
  waitAcked(n: number, timeoutMs: number): Promise<void>;
  /** Stop issuing writes and wait for the ones in flight. */
  stop(): Promise<void>;
  /** Wait (at most timeoutMs) for a writer with `max` to have issued and finished them all. */
  finished(timeoutMs: number): Promise<void>;
}

export interface WriterOptions {
  prefix: string;
  concurrency?: number;
  /** Stop by itself after issuing this many writes. */
  max?: number;
  /** Pause after each write (ms), to spread a writer over a fault. */
  pauseMs?: number;
}

export function startWriter(client: Client, opts: WriterOptions): Writer {
  const acked = new Map<string, string>();
  const unknown = new Map<string, string>();
  const errors = new Map<string, number>();
  let next = 0;
  let stopped = false;
  const worker = async () => {
    while (!stopped && (opts.max === undefined || next < opts.max)) {
      const n = next++;
      const key = `${opts.prefix}${String(n).padStart(6, '0')}`;
      const value = `v${n}-${Math.random().toString(36).slice(2, 8)}`;
      try {
        await client.put({ key: enc(key), value: enc(value) });
        acked.set(key, value);
      } catch (err) {
        unknown.set(key, value);
        const e = errorText(err);
        errors.set(e, (errors.get(e) ?? 0) + 1);
        await sleep(50);
      }
      if (opts.pauseMs) await sleep(opts.pauseMs);
    }
  };
  const done = Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker));
  return {
    acked,
    unknown,
    errors,
    ackCount: () => acked.size,
    waitAcked: (n, timeoutMs) =>
      waitFor(
        `${n} acknowledged writes (have ${acked.size})`,
        timeoutMs,
        async () => acked.size >= n,
        20,
      ).then(() => undefined),
    async stop() {
      stopped = true;
      await done;
    },
    async finished(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`writer not done after ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([done, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Check a writer's keys in a dump: every acknowledged key holds its value; a key whose write
 * failed holds that value or is absent; nothing else appears. Returns the problems found.
 */
export function lostWrites(writer: Writer, dump: Dump, prefix: string): string[] {
  const held = new Map(dump.kvs.filter((kv) => kv.key.startsWith(prefix)).map((kv) => [kv.key, kv.value]));
  const problems: string[] = [];
  for (const [key, value] of writer.acked) {
    const got = held.get(key);
    if (got !== value) problems.push(`acknowledged ${key}=${value} but found ${got ?? '(absent)'}`);
  }
  for (const [key, value] of held) {
    if (writer.acked.has(key)) continue;
    const tried = writer.unknown.get(key);
    if (tried !== value) problems.push(`${key}=${value} was never written (tried ${tried ?? 'nothing'})`);
  }
  return problems;
}
