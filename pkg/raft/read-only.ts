import type { Message, NodeId } from './types.js';

interface ReadIndexStatus {
  index: number;
  req: Message;
  acks: Set<NodeId>;
}

function key(ctx: Uint8Array): string {
  return Buffer.from(ctx).toString('hex');
}

/**
 * Pending ReadIndex requests on the leader (Raft thesis §6.4): each waits until a quorum
 * has acknowledged a heartbeat carrying its context, proving the leader was still leader
 * when the commit index was read. Requests are confirmed in order.
 */
export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  addRequest(index: number, req: Message): void {
    const k = key(req.context);
    if (this.pending.has(k)) return;
    this.pending.set(k, { index, req, acks: new Set() });
    this.queue.push(k);
  }

  /** Record an ack; returns how many distinct peers have acknowledged this context. */
  recvAck(id: NodeId, ctx: Uint8Array): Set<NodeId> | undefined {
    const rs = this.pending.get(key(ctx));
    if (!rs) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /** Confirm the request with `ctx` and every request queued before it. */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const k = key(ctx);
    const at = this.queue.indexOf(k);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1).map((q) => this.pending.get(q) as ReadIndexStatus);
    for (const q of this.queue.slice(0, at + 1)) this.pending.delete(q);
    this.queue = this.queue.slice(at + 1);
    return done;
  }

  lastPendingRequestCtx(): Uint8Array | undefined {
    const last = this.queue[this.queue.length - 1];
    return last === undefined ? undefined : this.pending.get(last)?.req.context;
  }
}
