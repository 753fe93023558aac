// How a Raft node talks to its peers. The runner depends only on this interface; the
// in-process implementation is local-transport.ts, the gRPC one lives at the package edge.

import type { Message, NodeId } from './types.js';

/**
 * What a transport calls back into, i.e. the runner. Callbacks run on the event loop, never
 * synchronously inside `Transport.send`, and must not throw (a transport ignores what they throw).
 */
export interface MessageHandler {
  /**
   * A message from a peer, fully received (a streamed snapshot arrives as one Snap message
   * once every chunk is in and verified). The handler owns the message and its bytes.
   * Messages from one peer arrive in the order that peer sent them, except that a snapshot
   * stream may be overtaken by small messages sent after it.
   */
  receive(m: Message): void;
  /** A snapshot streamed to `to` finished: `ok` when the peer received all of it intact. */
  snapshotStatus(to: NodeId, ok: boolean): void;
  /** A message for `to` could not be delivered (unknown peer, connection refused or cut). */
  unreachable(to: NodeId): void;
}

/**
 * Carries Raft messages between peers, best effort: Raft itself retries whatever is lost, so a
 * transport may drop messages, but must never corrupt them, reorder those of one sender, or block.
 */
export interface Transport {
  /** Begin accepting messages for `handler`. Nothing is delivered before this resolves. */
  start(handler: MessageHandler): Promise<void>;
  /**
   * Queue messages for their `to` peers and return at once; never throws, never blocks.
   * The transport encodes messages before returning, so the caller may reuse or mutate them
   * afterwards. Snap messages are streamed in chunks, and end in `snapshotStatus`.
   * Messages to unknown or unreachable peers are dropped and reported through `unreachable`.
   */
  send(messages: Message[]): void;
  /** Learn (or update) where peer `id` listens. Idempotent. */
  addPeer(id: NodeId, address: string): void;
  /** Forget peer `id` and drop whatever is still queued for it. Idempotent. */
  removePeer(id: NodeId): void;
  /** Stop sending and receiving; pending deliveries are dropped. Idempotent. */
  stop(): Promise<void>;
}
