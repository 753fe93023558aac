import type { LeaseChange } from './state-machine.js';

/**
 * Lease deadlines, kept beside the replicated state because they depend on a clock and the
 * state machine must not. Every node feeds it the lease commands it applies; only the
 * leader acts on `expired()`, by proposing revocations through the log, so all members
 * delete the same keys at the same revision. A new leader starts every deadline afresh from
 * the full TTL (`promote`), so a lease never expires early because leadership moved; it
 * may live up to one TTL longer, as in etcd.
 */
export class Lessor {
  private readonly leases = new Map<number, { ttlMs: number; deadline: number }>();

  constructor(private readonly now: () => number) {}

  /** Follow a lease change the state machine applied on this node. */
  follow(change: LeaseChange): void {
    switch (change.type) {
      case 'grant':
        this.track(change.id, change.ttl);
        break;
      case 'renew':
        this.renew(change.id);
        break;
      case 'revoke':
        this.forget(change.id);
        break;
      case 'reset':
        this.clear();
        for (const l of change.leases) this.track(l.id, l.ttl);
        break;
    }
  }

  /** A lease was granted (or exists after a restore): its clock starts now. */
  track(id: number, ttlSeconds: number): void {
    const ttlMs = ttlSeconds * 1000;
    this.leases.set(id, { ttlMs, deadline: this.now() + ttlMs });
  }

  /** A keep-alive was applied. Returns the TTL in seconds, or 0 if the lease is unknown. */
  renew(id: number): number {
    const l = this.leases.get(id);
    if (!l) return 0;
    l.deadline = this.now() + l.ttlMs;
    return l.ttlMs / 1000;
  }

  forget(id: number): void {
    this.leases.delete(id);
  }

  clear(): void {
    this.leases.clear();
  }

  /** This node became leader: restart every lease's clock from its full TTL. */
  promote(): void {
    const now = this.now();
    for (const l of this.leases.values()) l.deadline = now + l.ttlMs;
  }

  /** Seconds left (rounded up), or -1 for an unknown lease. */
  remaining(id: number): number {
    const l = this.leases.get(id);
    if (!l) return -1;
    return Math.max(0, Math.ceil((l.deadline - this.now()) / 1000));
  }

  /** Leases past their deadline, oldest first. */
  expired(): number[] {
    const now = this.now();
    return [...this.leases.entries()]
      .filter(([, l]) => l.deadline <= now)
      .sort((a, b) => a[1].deadline - b[1].deadline)
      .map(([id]) => id);
  }

  ids(): number[] {
    return [...this.leases.keys()];
  }
}
