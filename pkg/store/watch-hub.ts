// The watchers of one node. The state machine feeds it every committed revision's events
// (notify); a watcher that starts in the past is first replayed from the MVCC history, then
// follows live. Responses go out in revision order, one per revision that has matching
// events, with no gaps and no duplicates:
//
//   register(req) ──► startRevision <= current? ── replay history [start, current] ──┐
//                                                                                     ▼
//   notify(rev, events) ──► each watcher whose next revision is rev ──► filter ──► queue
//                                                                                     │
//   progress() ──► idle progress-notify watchers get an empty response ──────────────┤
//                                                                                     ▼
//                                                  drain (scheduled) ──► onResponse(r)
//
// Every watcher remembers the next revision it needs (nextRev). register() and notify() run
// synchronously on the node's single thread, so nothing can commit between a replay and
// the watcher joining the live set: that is the whole handover. Callbacks never run inside
// notify(): responses are queued and drained later (setImmediate by default), in order, so a
// callback that writes to the store cannot reorder what other watchers see.

import { type KeySpan, keySpan, keyString, spanContains } from './bytes.js';
import { type HeaderFactory, placeholderHeader } from './mvcc.js';
import type { WatchEvent, WatchRequest, WatchResponse } from './types.js';

/** What the hub reads from the store: revisions and history for replays. */
export interface WatchSource {
  readonly revision: number;
  readonly compactRevision: number;
  /** Changes at revision `from` or later to keys in [key, rangeEnd), in revision order. */
  history(from: number, key: Uint8Array, rangeEnd?: Uint8Array): WatchEvent[];
}

export interface WatchHubOptions {
  header?: HeaderFactory;
  /** Runs the queue drain later. Default setImmediate; tests may pass (fn) => fn(). */
  schedule?: (drain: () => void) => void;
  /** A callback threw; the watch stays. Default: ignore. */
  onCallbackError?: (err: unknown, watchId: number) => void;
}

/** Why a watch ended because its start revision is gone (etcd's message). */
export const COMPACTED_REASON = 'mvcc: required revision has been compacted';

interface WatcherState {
  readonly id: number;
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array | undefined;
  readonly span: KeySpan;
  readonly prevKv: boolean;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly progressNotify: boolean;
  readonly onResponse: (r: WatchResponse) => void;
  /** The next revision this watcher needs; everything before it was delivered or skipped. */
  nextRev: number;
  /** Set by cancel(): queued responses are dropped. */
  canceled: boolean;
  /** Something was queued since the last progress() round. */
  active: boolean;
}

export class WatchHub {
  private readonly watchers = new Map<number, WatcherState>();
  private lastId = 0;
  private queue: { w: WatcherState; r: WatchResponse }[] = [];
  private head = 0;
  private scheduled = false;
  private draining = false;
  private readonly header: HeaderFactory;
  private readonly scheduleFn: (drain: () => void) => void;
  private readonly onCallbackError: (err: unknown, watchId: number) => void;

  constructor(
    private readonly source: WatchSource,
    options: WatchHubOptions = {},
  ) {
    this.header = options.header ?? placeholderHeader;
    this.scheduleFn = options.schedule ?? ((fn) => setImmediate(fn));
    this.onCallbackError = options.onCallbackError ?? (() => {});
  }

  /** Number of running watches. */
  get size(): number {
    return this.watchers.size;
  }

  /**
   * Start a watch and return its id. startRevision 0 (or absent) means "changes after now";
   * a start revision below the compaction point gets one response carrying
   * compactRevision, canceled, and the watch ends. `onResponse` is never called from
   * inside this method.
   */
  register(req: WatchRequest, onResponse: (r: WatchResponse) => void): number {
    const id = ++this.lastId;
    const cur = this.source.revision;
    const start = req.startRevision ?? 0;
    const w: WatcherState = {
      id,
      key: req.key.slice(),
      rangeEnd: req.rangeEnd?.slice(),
      span: keySpan(req.key, req.rangeEnd),
      prevKv: req.prevKv === true,
      noPut: req.noPut === true,
      noDelete: req.noDelete === true,
      progressNotify: req.progressNotify === true,
      onResponse,
      nextRev: start > 0 ? start : cur + 1,
      canceled: false,
      active: false,
    };
    this.watchers.set(id, w);
    this.catchUp(w);
    this.kick();
    return id;
  }

  /** Stop a watch; responses not yet delivered are dropped. False if it was not running. */
  cancel(id: number): boolean {
    const w = this.watchers.get(id);
    if (!w) return false;
    w.canceled = true;
    this.watchers.delete(id);
    return true;
  }

  /** Stop every watch (the store is closing). */
  cancelAll(): void {
    for (const id of [...this.watchers.keys()]) this.cancel(id);
  }

  /**
   * The store committed `revision` with these events (in order). Must be called for every
   * revision, in order, right after it is committed.
   */
  notify(revision: number, events: readonly WatchEvent[]): void {
    if (this.watchers.size === 0) return;
    const keys = events.map((e) => keyString(e.kv.key));
    for (const w of this.watchers.values()) {
      if (w.nextRev > revision) continue;
      if (w.nextRev < revision) {
        // Missed revisions (the state was replaced underneath): replay covers this one too.
        this.catchUp(w);
        continue;
      }
      w.nextRev = revision + 1;
      this.deliver(
        w,
        revision,
        events.filter((_e, i) => spanContains(w.span, keys[i] as string)),
      );
    }
    this.kick();
  }

  /**
   * The store's state was replaced (snapshot restore): bring every watcher up to the new
   * revision from the new history, or end it as compacted if its next revision is gone.
   */
  resync(): void {
    for (const w of [...this.watchers.values()]) this.catchUp(w);
    this.kick();
  }

  /**
   * Progress notification, for the caller to invoke periodically: every progress-notify
   * watcher that was sent nothing since the previous call gets an empty response whose
   * header carries the current revision. `all` sends to every watcher regardless
   * (etcd's RequestProgress).
   */
  progress(all = false): void {
    const rev = this.source.revision;
    for (const w of this.watchers.values()) {
      if (all || (w.progressNotify && !w.active)) {
        this.enqueue(w, { header: this.header(rev), watchId: w.id, events: [] });
      }
      w.active = false;
    }
    this.kick();
  }

  /** Deliver everything queued now, synchronously (no-op when called from a callback). */
  flush(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.head < this.queue.length) {
        const { w, r } = this.queue[this.head++] as { w: WatcherState; r: WatchResponse };
        if (w.canceled) continue;
        try {
          w.onResponse(r);
        } catch (err) {
          this.onCallbackError(err, w.id);
        }
      }
      this.queue = [];
      this.head = 0;
    } finally {
      this.draining = false;
    }
  }

  private catchUp(w: WatcherState): void {
    const cur = this.source.revision;
    if (w.nextRev > cur) return;
    const compactRev = this.source.compactRevision;
    if (w.nextRev < compactRev) {
      this.watchers.delete(w.id);
      this.enqueue(w, {
        header: this.header(cur),
        watchId: w.id,
        events: [],
        compactRevision: compactRev,
        canceled: true,
        cancelReason: COMPACTED_REASON,
      });
      return;
    }
    const events = this.source.history(w.nextRev, w.key, w.rangeEnd);
    let batch: WatchEvent[] = [];
    let batchRev = 0;
    for (const ev of events) {
      const rev = ev.kv.modRevision;
      if (rev !== batchRev && batch.length > 0) {
        this.deliver(w, batchRev, batch);
        batch = [];
      }
      batchRev = rev;
      batch.push(ev);
    }
    if (batch.length > 0) this.deliver(w, batchRev, batch);
    w.nextRev = cur + 1;
  }

  private deliver(w: WatcherState, revision: number, events: readonly WatchEvent[]): void {
    const out: WatchEvent[] = [];
    for (const ev of events) {
      if (ev.type === 'put' ? w.noPut : w.noDelete) continue;
      out.push(w.prevKv || !ev.prevKv ? ev : { type: ev.type, kv: ev.kv });
    }
    if (out.length === 0) return;
    this.enqueue(w, { header: this.header(revision), watchId: w.id, events: out });
  }

  private enqueue(w: WatcherState, r: WatchResponse): void {
    w.active = true;
    this.queue.push({ w, r });
  }

  /** Schedule a drain once the caller's bookkeeping is done (never mid-notify). */
  private kick(): void {
    if (this.head >= this.queue.length || this.scheduled || this.draining) return;
    this.scheduled = true;
    this.scheduleFn(() => {
      this.scheduled = false;
      this.flush();
    });
  }
}
