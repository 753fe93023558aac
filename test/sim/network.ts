import type { SnapshotChunk } from '../../pkg/raft/snapshot-chunks.js';
import { splitSnapshotMessage } from '../../pkg/raft/snapshot-chunks.js';
import type { Message, NodeId } from '../../pkg/raft/types.js';
import { MessageType } from '../../pkg/raft/types.js';

/** What a seeded virtual network does to traffic: tuned per seed, changed by fault events. */
export interface NetworkConditions {
  dropRate: number;
  dupRate: number;
  minDelay: number;
  maxDelay: number;
}

export type Delivery =
  | { kind: 'message'; m: Message }
  | { kind: 'chunk'; from: NodeId; to: NodeId; stream: number; chunk: SnapshotChunk }
  | { kind: 'snapshot-status'; from: NodeId; to: NodeId; ok: boolean }
  | { kind: 'unreachable'; from: NodeId; to: NodeId };

interface Scheduled {
  at: number;
  seq: number;
  d: Delivery;
}

/** A binary min-heap on (at, seq): equal times keep send order, so runs replay exactly. */
class Heap {
  private a: Scheduled[] = [];
  get size(): number {
    return this.a.length;
  }
  peek(): Scheduled | undefined {
    return this.a[0];
  }
  private less(i: number, j: number): boolean {
    const x = this.a[i] as Scheduled;
    const y = this.a[j] as Scheduled;
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }
  private swap(i: number, j: number): void {
    const t = this.a[i] as Scheduled;
    this.a[i] = this.a[j] as Scheduled;
    this.a[j] = t;
  }
  push(s: Scheduled): void {
    this.a.push(s);
    let i = this.a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): Scheduled | undefined {
    const top = this.a[0];
    const last = this.a.pop();
    if (this.a.length > 0 && last) {
      this.a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.a.length && this.less(l, m)) m = l;
        if (r < this.a.length && this.less(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

/**
 * Ordinary messages are datagrams: delayed at random (so reordered), dropped, duplicated,
 * cut by partitions. Snapshots travel as a stream of chunks, like the gRPC transport: in
 * order, and if any chunk is lost the whole stream fails and the sender is told.
 */
export class SimNetwork {
  private readonly heap = new Heap();
  private seq = 0;
  private streamSeq = 0;
  private readonly failedStreams = new Set<number>();
  /** Directed links that are cut: `${from}>${to}`. */
  readonly cut = new Set<string>();
  sent = 0;
  dropped = 0;

  constructor(
    private readonly rand: () => number,
    public conditions: NetworkConditions,
    private readonly chunkSize: number,
  ) {}

  linkUp(from: NodeId, to: NodeId): boolean {
    return !this.cut.has(`${from}>${to}`);
  }

  private delay(): number {
    const { minDelay, maxDelay } = this.conditions;
    return minDelay + Math.floor(this.rand() * (maxDelay - minDelay + 1));
  }

  private schedule(at: number, d: Delivery): void {
    this.heap.push({ at, seq: this.seq++, d });
  }

  send(now: number, m: Message): void {
    this.sent++;
    if (m.type === MessageType.Snap) {
      this.sendStream(now, m);
      return;
    }
    if (!this.linkUp(m.from, m.to)) {
      this.dropped++;
      // A real transport notices a dead connection; tell the sender now and then.
      if (this.rand() < 0.3)
        this.schedule(now + this.delay(), { kind: 'unreachable', from: m.from, to: m.to });
      return;
    }
    if (this.rand() < this.conditions.dropRate) {
      this.dropped++;
      return;
    }
    this.schedule(now + this.delay(), { kind: 'message', m });
    if (this.rand() < this.conditions.dupRate) this.schedule(now + this.delay(), { kind: 'message', m });
  }

  private sendStream(now: number, m: Message): void {
    const stream = ++this.streamSeq;
    let at = now + this.delay();
    for (const chunk of splitSnapshotMessage(m, this.chunkSize)) {
      this.schedule(at, { kind: 'chunk', from: m.from, to: m.to, stream, chunk });
      at += 1; // chunks of one stream arrive in order, one per time unit
    }
  }

  /** A stream broke at `now` (cut link, lost connection, dead receiver): tell the sender. */
  failStream(now: number, stream: number, from: NodeId, to: NodeId): void {
    if (this.failedStreams.has(stream)) return;
    this.failedStreams.add(stream);
    this.schedule(now + this.delay(), { kind: 'snapshot-status', from, to, ok: false });
  }

  streamFailed(stream: number): boolean {
    return this.failedStreams.has(stream);
  }

  /** Stream chunks face the same drop rate per chunk as datagrams would. */
  chunkLost(from: NodeId, to: NodeId): boolean {
    return !this.linkUp(from, to) || this.rand() < this.conditions.dropRate / 4;
  }

  streamDone(now: number, from: NodeId, to: NodeId): void {
    this.schedule(now + this.delay(), { kind: 'snapshot-status', from, to, ok: true });
  }

  /** Everything due at or before `now`, in (time, send order). */
  due(now: number): Delivery[] {
    const out: Delivery[] = [];
    for (let top = this.heap.peek(); top && top.at <= now; top = this.heap.peek()) {
      out.push((this.heap.pop() as Scheduled).d);
    }
    return out;
  }

  get inFlight(): number {
    return this.heap.size;
  }
}
