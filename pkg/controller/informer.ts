// A watch-fed cache of one kind, as Kubernetes' shared informers: list, then watch from the
// list's revision; handlers hear add/update/delete; a broken or expired watch lists again
// and reports what changed meanwhile (deletions included), so controllers never miss one.
// Objects in the cache are shared: handlers and readers must not change them (copy first).

import type { Logger } from 'pino';
import { ApiError, ApiErrorCode } from '../api/errors.js';
import type { ApiServer } from '../api/server/api-server.js';
import type { WatchHandle } from '../api/server/watch.js';
import type { ApiObject } from '../api/types.js';

export interface InformerHandlers {
  add?(obj: ApiObject): void;
  update?(old: ApiObject, obj: ApiObject): void;
  delete?(obj: ApiObject): void;
}

/** `namespace/name` (or `name` for cluster-scoped objects): the key controllers queue. */
export function keyOf(obj: ApiObject): string {
  const ns = obj.metadata.namespace;
  return ns ? `${ns}/${obj.metadata.name}` : (obj.metadata.name as string);
}

export function splitKey(key: string): { namespace?: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

export class Informer {
  private readonly items = new Map<string, ApiObject>();
  private readonly handlers: InformerHandlers[] = [];
  private readonly indexers = new Map<string, (o: ApiObject) => string[]>();
  private readonly indexes = new Map<string, Map<string, Set<string>>>();
  private watch: WatchHandle | undefined;
  private stopped = false;
  private synced = false;
  private syncedWaiters: (() => void)[] = [];

  constructor(
    private readonly api: ApiServer,
    readonly resource: string,
    private readonly logger: Logger,
  ) {}

  on(h: InformerHandlers): void {
    this.handlers.push(h);
  }

  /** An index: `fn` gives the values an object is filed under (e.g. a pod's node name). */
  addIndex(name: string, fn: (o: ApiObject) => string[]): void {
    this.indexers.set(name, fn);
    const index = new Map<string, Set<string>>();
    this.indexes.set(name, index);
    for (const [k, o] of this.items) for (const v of fn(o)) this.fileUnder(index, v, k);
  }

  byIndex(name: string, value: string): ApiObject[] {
    const keys = this.indexes.get(name)?.get(value);
    return keys ? [...keys].map((k) => this.items.get(k) as ApiObject).filter(Boolean) : [];
  }

  get(key: string): ApiObject | undefined {
    return this.items.get(key);
  }

  list(): ApiObject[] {
    return [...this.items.values()];
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** Start; resolves once the first list is in the cache. */
  start(): Promise<void> {
    void this.run();
    return this.waitSynced();
  }

  waitSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncedWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.watch?.cancel();
    for (const w of this.syncedWaiters.splice(0)) w();
  }

  private async run(): Promise<void> {
    let resourceVersion = '';
    while (!this.stopped) {
      const relist = resourceVersion === '';
      const seen = new Set<string>();
      let listing = relist;
      try {
        const ended = new Promise<ApiError | undefined>((resolve) => {
          this.api
            .watch(
              this.resource,
              { resourceVersion, bookmarkIntervalMs: 5000 },
              {
                event: (e) => {
                  if (this.stopped) return;
                  if (e.type === 'ERROR') {
                    resolve(
                      new ApiError(ApiErrorCode.Expired, (e.object as { message?: string }).message ?? ''),
                    );
                    return;
                  }
                  const obj = e.object as ApiObject;
                  resourceVersion = obj.metadata.resourceVersion ?? resourceVersion;
                  if (e.type === 'BOOKMARK') return;
                  if (listing) seen.add(keyOf(obj));
                  if (e.type === 'DELETED') this.remove(obj);
                  else this.put(obj);
                },
                end: () => resolve(undefined),
              },
            )
            .then((h) => {
              this.watch = h;
              if (listing) {
                // What the cache had and the new list has not was deleted meanwhile.
                listing = false;
                for (const [k, o] of [...this.items]) if (!seen.has(k)) this.remove(o);
              }
              this.markSynced();
            }, resolve);
        });
        const err = await ended;
        if (err?.code === ApiErrorCode.Expired) resourceVersion = '';
      } catch (err) {
        this.logger.warn({ err, resource: this.resource }, 'watch failed; listing again');
        resourceVersion = '';
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, 200));
    }
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    for (const w of this.syncedWaiters.splice(0)) w();
  }

  private put(obj: ApiObject): void {
    const key = keyOf(obj);
    const old = this.items.get(key);
    if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) return;
    if (old) this.unindex(key, old);
    this.items.set(key, obj);
    this.index(key, obj);
    for (const h of this.handlers) {
      if (old) h.update?.(old, obj);
      else h.add?.(obj);
    }
  }

  private remove(obj: ApiObject): void {
    const key = keyOf(obj);
    const old = this.items.get(key);
    if (!old) return;
    this.unindex(key, old);
    this.items.delete(key);
    for (const h of this.handlers) h.delete?.(old);
  }

  private index(key: string, obj: ApiObject): void {
    for (const [name, fn] of this.indexers) {
      const index = this.indexes.get(name) as Map<string, Set<string>>;
      for (const v of fn(obj)) this.fileUnder(index, v, key);
    }
  }

  private unindex(key: string, obj: ApiObject): void {
    for (const [name, fn] of this.indexers) {
      const index = this.indexes.get(name) as Map<string, Set<string>>;
      for (const v of fn(obj)) {
        const set = index.get(v);
        set?.delete(key);
        if (set?.size === 0) index.delete(v);
      }
    }
  }

  private fileUnder(index: Map<string, Set<string>>, value: string, key: string): void {
    let set = index.get(value);
    if (!set) {
      set = new Set();
      index.set(value, set);
    }
    set.add(key);
  }
}
