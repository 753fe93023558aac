// An in-process network for tests: each node gets a Transport from one hub. Everything a
// real transport does to a message happens here too — encoding, asynchronous delivery,
// snapshots cut into chunks and reassembled — so bugs in those paths show up in unit tests.
// Links can be cut per node (isolate) and restored (heal).

import { decodeMessage, encodeMessage } from './codec.js';
import {
  DEFAULT_SNAPSHOT_CHUNK_SIZE,
  decodeSnapshotChunk,
  encodeSnapshotChunk,
  SnapshotAssembler,
  splitSnapshotMessage,
} from './snapshot-chunks.js';
import type { MessageHandler, Transport } from './transport.js';
import type { Message, NodeId } from './types.js';
import { MessageType } from './types.js';

export interface LocalNetworkOptions {
  /** Bytes of snapshot data per chunk (default 1 MiB). */
  chunkSize?: number;
}

export interface LocalNetworkStats {
  /** Messages delivered (a snapshot counts once, when complete). */
  delivered: number;
  /** Messages dropped because a link was cut, a peer unknown or stopped. */
  dropped: number;
  snapshotsDelivered: number;
  snapshotChunksDelivered: number;
}

export interface LocalNetwork {
  /** The transport of node `id` (the same object on every call). */
  transport(id: NodeId): Transport;
  /** Cut every link to and from `id`, in flight deliveries included. */
  isolate(id: NodeId): void;
  /** Cut the link between `a` and `b`, both ways. */
  cut(a: NodeId, b: NodeId): void;
  /** Restore every link. */
  heal(): void;
  stats(): LocalNetworkStats;
}

class LocalTransport implements Transport {
  handler: MessageHandler | undefined;
  readonly peers = new Map<NodeId, string>();

  constructor(
    readonly id: NodeId,
    private readonly net: LocalNetworkImpl,
  ) {}

  async start(handler: MessageHandler): Promise<void> {
    this.handler = handler;
  }

  send(messages: Message[]): void {
    for (const m of messages) {
      try {
        this.net.route(this, m);
      } catch {
        // Best effort: a message that cannot even be encoded is dropped like a lost packet.
        this.net.counters.dropped++;
      }
    }
  }

  addPeer(id: NodeId, address: string): void {
    this.peers.set(id, address);
  }

  removePeer(id: NodeId): void {
    this.peers.delete(id);
  }

  async stop(): Promise<void> {
    this.handler = undefined;
  }
}

/** Handlers must not throw; if one does anyway, the network carries on like a real one would. */
function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // ignored on purpose
  }
}

class LocalNetworkImpl implements LocalNetwork {
  private readonly nodes = new Map<NodeId, LocalTransport>();
  private readonly isolated = new Set<NodeId>();
  private readonly cuts = new Set<string>();
  readonly counters: LocalNetworkStats = {
    delivered: 0,
    dropped: 0,
    snapshotsDelivered: 0,
    snapshotChunksDelivered: 0,
  };

  constructor(private readonly chunkSize: number) {}

  transport(id: NodeId): Transport {
    let t = this.nodes.get(id);
    if (!t) {
      t = new LocalTransport(id, this);
      this.nodes.set(id, t);
    }
    return t;
  }

  isolate(id: NodeId): void {
    this.isolated.add(id);
  }

  cut(a: NodeId, b: NodeId): void {
    this.cuts.add(`${a}-${b}`);
    this.cuts.add(`${b}-${a}`);
  }

  heal(): void {
    this.isolated.clear();
    this.cuts.clear();
  }

  stats(): LocalNetworkStats {
    return { ...this.counters };
  }

  private linked(from: NodeId, to: NodeId): boolean {
    return !this.isolated.has(from) && !this.isolated.has(to) && !this.cuts.has(`${from}-${to}`);
  }

  /** The receiving transport, if the link is up, the sender knows the peer and both run. */
  private target(sender: LocalTransport, to: NodeId): LocalTransport | undefined {
    if (!sender.handler || !sender.peers.has(to) || !this.linked(sender.id, to)) return undefined;
    const target = this.nodes.get(to);
    return target?.handler ? target : undefined;
  }

  private unreachable(sender: LocalTransport, to: NodeId, snapshot: boolean): void {
    this.counters.dropped++;
    setImmediate(() => {
      const h = sender.handler;
      if (!h) return;
      if (snapshot) safely(() => h.snapshotStatus(to, false));
      safely(() => h.unreachable(to));
    });
  }

  route(sender: LocalTransport, m: Message): void {
    if (m.type === MessageType.Snap) {
      this.stream(sender, m);
      return;
    }
    if (!this.target(sender, m.to)) {
      this.unreachable(sender, m.to, false);
      return;
    }
    const bytes = encodeMessage(m);
    setImmediate(() => {
      const target = this.target(sender, m.to);
      if (!target) {
        this.unreachable(sender, m.to, false);
        return;
      }
      this.counters.delivered++;
      const msg = decodeMessage(bytes);
      safely(() => target.handler?.receive(msg));
    });
  }

  /** Deliver a snapshot chunk by chunk, one per event-loop turn, like a slow stream would. */
  private stream(sender: LocalTransport, m: Message): void {
    if (!this.target(sender, m.to)) {
      this.unreachable(sender, m.to, true);
      return;
    }
    const chunks = splitSnapshotMessage(m, this.chunkSize).map(encodeSnapshotChunk);
    const assembler = new SnapshotAssembler();
    let next = 0;
    const step = (): void => {
      const target = this.target(sender, m.to);
      if (!target) {
        this.unreachable(sender, m.to, true);
        return;
      }
      let msg: Message | undefined;
      try {
        msg = assembler.push(decodeSnapshotChunk(chunks[next++] as Uint8Array));
      } catch {
        this.unreachable(sender, m.to, true);
        return;
      }
      this.counters.snapshotChunksDelivered++;
      if (!msg) {
        setImmediate(step);
        return;
      }
      this.counters.delivered++;
      this.counters.snapshotsDelivered++;
      const snap = msg;
      safely(() => target.handler?.receive(snap));
      safely(() => sender.handler?.snapshotStatus(m.to, true));
    };
    setImmediate(step);
  }
}

/** A fresh in-process network; nodes join it by asking for their transport. */
export function createLocalNetwork(opts: LocalNetworkOptions = {}): LocalNetwork {
  return new LocalNetworkImpl(opts.chunkSize ?? DEFAULT_SNAPSHOT_CHUNK_SIZE);
}
