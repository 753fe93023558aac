// How a terminating pod is taken out of traffic before its containers get SIGTERM, with no
// preStop sleep. Every node's proxy records, under /berth/proxy/<node>, the highest
// Endpoints resourceVersion it has applied. One watch delivers Endpoints in revision order,
// so a proxy at revision >= R has seen every Endpoints change up to R.
//
//   pod deleted ─► endpoints controller drops it (Endpoints at revision R)
//     agent: waitRemoved(pod): no Endpoints lists it as ready ─► R = newest Endpoints of
//     its namespace ─► every Ready node's proxy reports >= R ─► SIGTERM
//   bounded by timeoutMs: a partitioned or frozen node must not hold a deletion up.

import type { Logger } from 'pino';
import type { ApiServer } from '../api/server/api-server.js';
import type { ApiObject } from '../api/types.js';
import type { EndpointsDrain } from '../agent/drain.js';
import { type KV, prefixEnd } from '../store/types.js';

export const PROXY_SYNC_PREFIX = '/berth/proxy/';
export const DEFAULT_DRAIN_TIMEOUT_MS = 3000;

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface ProxyDrainOptions {
  kv: KV;
  api: ApiServer;
  nodeName: string;
  logger: Logger;
  /** The longest a pod's SIGTERM waits for the proxies (ms). */
  timeoutMs?: number;
  pollMs?: number;
}

interface SyncRecord {
  revision: number;
}

/** Ready addresses' pod uids of an Endpoints object. */
function readyPodUids(ep: ApiObject): string[] {
  const subsets = ((ep as { subsets?: { addresses?: { targetRef?: { uid?: string } }[] }[] }).subsets ??
    []) as { addresses?: { targetRef?: { uid?: string } }[] }[];
  return subsets.flatMap((s) => (s.addresses ?? []).map((a) => a.targetRef?.uid ?? ''));
}

function isReady(node: ApiObject): boolean {
  const conditions = ((node.status as { conditions?: { type: string; status: string }[] } | undefined)
    ?.conditions ?? []) as { type: string; status: string }[];
  return conditions.some((c) => c.type === 'Ready' && c.status === 'True');
}

export class ProxyDrain implements EndpointsDrain {
  private readonly timeoutMs: number;
  private readonly pollMs: number;
  private readonly key: Uint8Array;
  private wanted = 0;
  private written = 0;
  private writing: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly o: ProxyDrainOptions) {
    this.timeoutMs = o.timeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    this.pollMs = o.pollMs ?? 100;
    this.key = enc.encode(`${PROXY_SYNC_PREFIX}${o.nodeName}`);
  }

  /** The local proxy applied Endpoints up to `revision`: record it (coalesced, one write in flight). */
  report(revision: number): void {
    if (revision <= this.wanted) return;
    this.wanted = revision;
    this.writing ??= this.flush();
  }

  private async flush(): Promise<void> {
    while (!this.closed && this.written < this.wanted) {
      const revision = this.wanted;
      try {
        await this.o.kv.put({ key: this.key, value: enc.encode(JSON.stringify({ revision })) });
        this.written = revision;
      } catch (err) {
        this.o.logger.debug({ err: (err as Error).message }, 'proxy sync not recorded yet; retrying');
        await sleep(500);
      }
    }
    this.writing = undefined;
  }

  /** This node runs no proxy: nobody should wait for it. */
  async withdraw(): Promise<void> {
    this.closed = true;
    await this.o.kv.deleteRange({ key: this.key }).catch(() => {});
  }

  close(): void {
    this.closed = true;
  }

  async waitRemoved(pod: ApiObject): Promise<void> {
    const started = Date.now();
    const deadline = started + this.timeoutMs;
    const uid = pod.metadata.uid ?? '';
    const namespace = pod.metadata.namespace ?? 'default';
    try {
      let revision = 0;
      for (;;) {
        const { items } = await this.o.api.list('endpoints', { namespace });
        if (!items.some((ep) => readyPodUids(ep).includes(uid))) {
          revision = Math.max(0, ...items.map((ep) => Number(ep.metadata.resourceVersion ?? 0)));
          break;
        }
        if (Date.now() >= deadline) return this.late(pod, 'the endpoints still list it');
        await sleep(this.pollMs);
      }
      if (revision === 0) return;
      for (;;) {
        const behind = await this.nodesBehind(revision);
        if (behind.length === 0) {
          this.o.logger.debug({ pod: pod.metadata.name, ms: Date.now() - started }, 'proxies drained');
          return;
        }
        if (Date.now() >= deadline)
          return this.late(pod, `proxies of ${behind.join(', ')} have not caught up`);
        await sleep(this.pollMs);
      }
    } catch (err) {
      this.o.logger.warn(
        { err: (err as Error).message, pod: pod.metadata.name },
        'cannot tell whether proxies drained the pod',
      );
    }
  }

  private late(pod: ApiObject, why: string): void {
    this.o.logger.warn(
      { pod: `${pod.metadata.namespace}/${pod.metadata.name}`, timeoutMs: this.timeoutMs },
      `stopping the pod although ${why}`,
    );
  }

  /** Ready nodes whose proxy has recorded a revision below `revision` (nodes without a record run no proxy). */
  private async nodesBehind(revision: number): Promise<string[]> {
    const prefix = enc.encode(PROXY_SYNC_PREFIX);
    const [records, nodes] = await Promise.all([
      this.o.kv.range({ key: prefix, rangeEnd: prefixEnd(prefix), serializable: true }),
      this.o.api.list('nodes'),
    ]);
    const synced = new Map<string, number>();
    for (const kv of records.kvs) {
      const name = dec.decode(kv.key).slice(PROXY_SYNC_PREFIX.length);
      try {
        synced.set(name, (JSON.parse(dec.decode(kv.value)) as SyncRecord).revision);
      } catch {
        // A record this version cannot read counts as absent.
      }
    }
    return nodes.items
      .filter(isReady)
      .map((n) => n.metadata.name as string)
      .filter((name) => synced.has(name) && (synced.get(name) as number) < revision);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
