// The leases of the replicated state: which exist, the TTL each was granted, and which keys
// are attached to each. Time is deliberately absent: when a lease expires is decided outside
// the state machine (lessor.ts, on the leader), which then proposes a LeaseRevoke through the
// log, so every replica deletes the same keys at the same revision.
//
// Attachments follow the MVCC store's commits (observe): a put with a lease attaches the key,
// a put with another (or no) lease moves it, a delete detaches it.

import { keyBytes } from './bytes.js';
import { invalidArgument, leaseExists, leaseNotFound, leaseTtlTooLarge } from './errors.js';
import type { MvccStore } from './mvcc.js';
import type { WatchEvent } from './types.js';
import { StoreLimits } from './types.js';

/** etcd's MaxLeaseTTL (lease/lessor.go), in seconds. */
export const MAX_LEASE_TTL = 9_000_000_000;

export interface LeaseInfo {
  id: number;
  /** Seconds, as granted (after raising to the minimum TTL). */
  ttl: number;
}

/** The lease table as plain data: leases ascending by id, and the auto-id counter. */
export interface LeaseTableDump {
  leases: LeaseInfo[];
  lastAutoId: number;
}

interface Lease {
  ttl: number;
  /** Attached keys as keyStrings. */
  keys: Set<string>;
}

export class LeaseTable {
  private readonly leases = new Map<number, Lease>();
  private lastAutoId = 0;

  /** `minTtl`: granted TTLs are raised to this (etcd's minLeaseTTL); same on every replica. */
  constructor(private readonly minTtl: number = StoreLimits.minLeaseTtl) {}

  /**
   * Create a lease. Id 0 picks the next free id from a counter that is part of the state, so
   * every replica picks the same one and an auto id is never reused.
   */
  grant(id: number, ttl: number): LeaseInfo {
    if (!Number.isSafeInteger(id) || id < 0)
      throw invalidArgument(`lease id must be a non-negative integer, got ${id}`);
    if (!Number.isSafeInteger(ttl) || ttl < 0)
      throw invalidArgument(`ttl must be a non-negative integer, got ${ttl}`);
    if (ttl > MAX_LEASE_TTL) throw leaseTtlTooLarge();
    if (id === 0) {
      do this.lastAutoId++;
      while (this.leases.has(this.lastAutoId));
      id = this.lastAutoId;
    } else if (this.leases.has(id)) {
      throw leaseExists();
    }
    const granted = Math.max(ttl, this.minTtl);
    this.leases.set(id, { ttl: granted, keys: new Set() });
    return { id, ttl: granted };
  }

  /**
   * Delete every key attached to `id` in one write (one revision, one delete event per key,
   * in key order), then the lease. The caller's MvccStore must report its commits to
   * observe() so the keys detach.
   */
  revoke(id: number, store: MvccStore): void {
    const l = this.leases.get(id);
    if (!l) throw leaseNotFound();
    const keys = [...l.keys].sort();
    if (keys.length > 0) {
      store.write((tx) => {
        for (const k of keys) tx.deleteRange({ key: keyBytes(k) });
      });
    }
    this.leases.delete(id);
  }

  has(id: number): boolean {
    return this.leases.has(id);
  }

  /** The granted TTL in seconds, or undefined for an unknown lease. */
  grantedTtl(id: number): number | undefined {
    return this.leases.get(id)?.ttl;
  }

  /** Keys attached to `id`, ascending (empty for an unknown lease). */
  keys(id: number): Uint8Array[] {
    const l = this.leases.get(id);
    return l ? [...l.keys].sort().map(keyBytes) : [];
  }

  /** Every lease id, ascending. */
  ids(): number[] {
    return [...this.leases.keys()].sort((a, b) => a - b);
  }

  list(): LeaseInfo[] {
    return this.ids().map((id) => ({ id, ttl: (this.leases.get(id) as Lease).ttl }));
  }

  get size(): number {
    return this.leases.size;
  }

  /** Follow one committed revision's events: move keys between leases. */
  observe(events: readonly WatchEvent[], keyOf: (ev: WatchEvent) => string): void {
    for (const ev of events) {
      const before = ev.prevKv?.lease ?? 0;
      const after = ev.type === 'put' ? ev.kv.lease : 0;
      if (before === after) continue;
      const k = keyOf(ev);
      if (before !== 0) this.leases.get(before)?.keys.delete(k);
      if (after !== 0) this.leases.get(after)?.keys.add(k);
    }
  }

  dump(): LeaseTableDump {
    return { leases: this.list(), lastAutoId: this.lastAutoId };
  }

  /**
   * Replace the table with `d`, re-attaching keys from the store's live keys. Throws if a
   * live key names a lease the table does not have (the data is inconsistent).
   */
  load(d: LeaseTableDump, store: MvccStore): void {
    const leases = new Map<number, Lease>();
    for (const { id, ttl } of d.leases) leases.set(id, { ttl, keys: new Set() });
    for (const [k, id] of store.leasedKeys()) {
      const l = leases.get(id);
      if (!l) throw new Error(`a key is attached to lease ${id}, which does not exist`);
      l.keys.add(k);
    }
    this.leases.clear();
    for (const [id, l] of leases) this.leases.set(id, l);
    this.lastAutoId = d.lastAutoId;
  }
}
