// Making a Service's cluster IP bindable on this machine. Addresses in 127/8 and those on an
// interface already are; any other is added to the loopback device (`ip addr add IP/32 dev
// lo`) while some listener needs it, and removed once none does, or on stop. Only addresses
// this proxy added are ever removed. The `ip` command sits behind LocalAddressAdapter so
// tests pass a fake and never change the machine.

import { execFile } from 'node:child_process';
import { isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';

/** The machine's addresses, as the proxy needs them. */
export interface LocalAddressAdapter {
  /** Whether `ip` can be bound now without adding it. */
  isLocal(ip: string): boolean;
  /** Add `ip` to the loopback device. Rejects when the system refuses. */
  add(ip: string): Promise<void>;
  /** Remove an address `add` added. */
  remove(ip: string): Promise<void>;
}

/** Runs a command; rejects with its stderr on a non-zero exit. */
export type CommandRunner = (file: string, args: string[]) => Promise<void>;

export interface IpCommandAdapterOptions {
  /** The device cluster IPs go on; `lo` by default. */
  device?: string;
  run?: CommandRunner;
}

/** All of 127/8 is local on Linux without configuration. */
export function isLoopbackV4(ip: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(ip);
}

/** Whether `ip` is 127/8, ::1, or on one of this machine's interfaces. */
export function isLocalAddress(ip: string): boolean {
  if (isLoopbackV4(ip) || ip === '::1') return true;
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.address === ip) return true;
  return false;
}

const runCommand: CommandRunner = (file, args) =>
  new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 5000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });

/** The real adapter: iproute2's `ip addr add|del IP/32 dev lo` (needs CAP_NET_ADMIN). */
export function createIpCommandAdapter(options: IpCommandAdapterOptions = {}): LocalAddressAdapter {
  const device = options.device ?? 'lo';
  const run = options.run ?? runCommand;
  const prefix = (ip: string) => `${ip}/${isIPv6(ip) ? 128 : 32}`;
  return {
    isLocal: isLocalAddress,
    add: (ip) => run('ip', ['addr', 'add', prefix(ip), 'dev', device]),
    remove: (ip) => run('ip', ['addr', 'del', prefix(ip), 'dev', device]),
  };
}

/** After a failed add, wait this long before trying the same address again. */
const ADD_RETRY_MS = 30_000;

export interface LocalAddressesOptions {
  adapter: LocalAddressAdapter;
  logger: Logger;
  now?: () => number;
}

/**
 * Reference counts of the cluster IPs listeners use. `acquire` before binding (adds the
 * address when needed), `release` when the listener closes; `releaseAll` on stop.
 */
export class LocalAddresses {
  private readonly users = new Map<string, number>();
  /** Addresses this proxy added and must remove. */
  private readonly added = new Set<string>();
  private readonly failedAt = new Map<string, number>();
  private readonly pending = new Map<string, Promise<void>>();
  private readonly now: () => number;

  constructor(private readonly options: LocalAddressesOptions) {
    this.now = options.now ?? Date.now;
  }

  /** One more listener needs `ip`: makes it local if it is not. Never rejects. */
  async acquire(ip: string): Promise<void> {
    this.users.set(ip, (this.users.get(ip) ?? 0) + 1);
    await this.ensure(ip);
  }

  /**
   * Make `ip` local again if it is not (a failed add is retried after a while). Listeners
   * call it before each bind attempt. Never rejects.
   */
  async ensure(ip: string): Promise<void> {
    const inFlight = this.pending.get(ip);
    if (inFlight) return inFlight;
    if (this.added.has(ip) || this.options.adapter.isLocal(ip)) return;
    const failed = this.failedAt.get(ip);
    if (failed !== undefined && this.now() - failed < ADD_RETRY_MS) return;
    const p = this.options.adapter.add(ip).then(
      () => {
        this.failedAt.delete(ip);
        if ((this.users.get(ip) ?? 0) === 0) return this.options.adapter.remove(ip).catch(() => {});
        this.added.add(ip);
        this.options.logger.info({ ip }, 'added cluster IP to loopback');
      },
      (err: unknown) => {
        this.failedAt.set(ip, this.now());
        this.options.logger.warn({ ip, err: String(err) }, 'cannot add cluster IP to loopback');
      },
    );
    const done = p.finally(() => this.pending.delete(ip));
    this.pending.set(ip, done);
    return done;
  }

  /** A listener no longer needs `ip`: removed when it was ours and nobody else needs it. */
  async release(ip: string): Promise<void> {
    const n = (this.users.get(ip) ?? 0) - 1;
    if (n > 0) {
      this.users.set(ip, n);
      return;
    }
    this.users.delete(ip);
    this.failedAt.delete(ip);
    await this.pending.get(ip);
    if ((this.users.get(ip) ?? 0) > 0) return;
    await this.removeOwned(ip);
  }

  /** Remove every address this proxy added. */
  async releaseAll(): Promise<void> {
    this.users.clear();
    await Promise.all([...this.pending.values()]);
    await Promise.all([...this.added].map((ip) => this.removeOwned(ip)));
  }

  /** Addresses this proxy added and still holds. */
  owned(): string[] {
    return [...this.added];
  }

  private async removeOwned(ip: string): Promise<void> {
    if (!this.added.delete(ip)) return;
    try {
      await this.options.adapter.remove(ip);
      this.options.logger.info({ ip }, 'removed cluster IP from loopback');
    } catch (err) {
      this.options.logger.warn({ ip, err: String(err) }, 'cannot remove cluster IP from loopback');
    }
  }
}
