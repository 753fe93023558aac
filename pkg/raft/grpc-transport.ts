// The Transport between real Berth nodes: gRPC over HTTP/2 (proto/raft.proto).
//
//   send(msgs) ──► PeerLink (one per peer) ──► Send stream (long-lived, in order) ──► peer's server
//                      │  bounded queue, back-off         RaftEnvelope{codec bytes}
//                      └─► Snapshot stream per MsgSnap ──► chunks ──► SnapshotAssembler ──► receive()
//                          (own connection)                           then SnapshotAck ──► snapshotStatus()
//
// The proto only wraps bytes: codec.ts and snapshot-chunks.ts define the wire format. Each
// stream carries the sender's cluster and node ids and the receiver's id (request metadata at
// open, and every message), so a node refuses traffic meant for another cluster or node.
//
// Failure model: the transport is best effort, as Raft expects. A peer whose stream broke is
// in back-off: messages for it are dropped and reported unreachable until the back-off ends
// and the next message opens a new stream. Keep-alive pings notice a dead (not just closed)
// peer within keepaliveTimeMs + keepaliveTimeoutMs.
//
// Security: insecure credentials by default. TLS (and later mTLS) plugs in through
// `serverCredentials`, `channelCredentials` and `channelOptions` without other changes.

import {
  type ChannelCredentials,
  type ChannelOptions,
  Client,
  type ClientWritableStream,
  credentials,
  Metadata,
  type MethodDefinition,
  Server,
  ServerCredentials,
  type ServerErrorResponse,
  type ServerReadableStream,
  type ServiceDefinition,
  type ServiceError,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath } from '../rpc/proto-path.js';
import { decodeMessage, encodeMessage } from './codec.js';
import { ConfigError, RaftError, RaftErrorCode, StoppedError } from './errors.js';
import type { RaftNodeLogger } from './runner.js';
import {
  DEFAULT_MAX_SNAPSHOT_SIZE,
  DEFAULT_SNAPSHOT_CHUNK_SIZE,
  decodeSnapshotChunk,
  encodeSnapshotChunk,
  SnapshotAssembler,
  type SnapshotChunk,
  splitSnapshotMessage,
} from './snapshot-chunks.js';
import type { MessageHandler, Transport } from './transport.js';
import type { Message, NodeId } from './types.js';
import { isLocalMessage, MessageType } from './types.js';

/** pino-compatible; the same shape the runner takes. */
export type GrpcTransportLogger = RaftNodeLogger;

export interface GrpcTransportOptions {
  /** This node's Raft id; peers must address their streams to it. */
  id: NodeId;
  /** Traffic from another cluster is refused with FAILED_PRECONDITION. */
  clusterId: string;
  /** 'host:port' to listen on (e.g. '127.0.0.2:7001'); port 0 picks a free port, see `address`. */
  listen: string;
  logger?: GrpcTransportLogger;
  /** Snapshot data bytes per chunk. Default 1 MiB. Must be below maxMessageBytes. */
  chunkSize?: number;
  /** Largest encoded Raft message sent or accepted (larger ones are dropped). Default 16 MiB. */
  maxMessageBytes?: number;
  /** Largest snapshot accepted from a peer. Default just under 2 GiB. */
  maxSnapshotBytes?: number;
  /** Messages queued per peer while its stream is busy; beyond this they are dropped. Default 4096. */
  maxQueuedMessages?: number;
  /** Interval of HTTP/2 keep-alive pings, both directions. Default 1000 ms. */
  keepaliveTimeMs?: number;
  /** A ping unanswered this long closes the connection (and reports the peer). Default 2000 ms. */
  keepaliveTimeoutMs?: number;
  /** First and longest wait before a broken peer stream is retried. Defaults 50 ms and 1000 ms. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** How long stop() lets streams finish before it forces the server down. Default 250 ms. */
  shutdownGraceMs?: number;
  /** TLS seam: server credentials (default insecure). */
  serverCredentials?: ServerCredentials;
  /** TLS seam: credentials for connections to peers (default insecure). */
  channelCredentials?: ChannelCredentials;
  /** Extra channel options for connections to peers (e.g. 'grpc.ssl_target_name_override'). */
  channelOptions?: ChannelOptions;
}

export interface GrpcTransportStats {
  /** Raft messages written to peer streams (not necessarily delivered). */
  sent: number;
  /** Raft messages received and handed to the handler (a snapshot counts once). */
  received: number;
  /** Outgoing messages dropped: unknown peer, peer in back-off, queue full, too large, stopped stream. */
  dropped: number;
  snapshotsSent: number;
  snapshotChunksSent: number;
  snapshotsReceived: number;
  snapshotChunksReceived: number;
  /** Incoming streams refused: wrong cluster or node id, malformed input. */
  refused: number;
}

export interface GrpcTransport extends Transport {
  /** The 'host:port' actually bound (port 0 resolved); undefined until start() resolved. */
  readonly address: string | undefined;
  stats(): GrpcTransportStats;
}

/** Say in words why a bind failed; grpc-js folds the errno into its message. */
function listenProblem(cause: unknown): string {
  const text = cause instanceof Error ? cause.message : String(cause);
  if (text.includes('EADDRINUSE'))
    return 'the address is already in use (another node or process holds the port)';
  if (text.includes('EADDRNOTAVAIL')) return "the address is not one of this machine's addresses";
  if (text.includes('EACCES')) return 'permission denied (ports below 1024 need privileges)';
  return text;
}

/** The listen address cannot be bound (in use, not local, malformed). */
export class TransportListenError extends RaftError {
  constructor(
    readonly address: string,
    cause: unknown,
  ) {
    super(RaftErrorCode.Config, `raft transport: cannot listen on ${address}: ${listenProblem(cause)}`, {
      cause,
    });
    this.name = 'TransportListenError';
  }
}

// --- the service, loaded once from proto/raft.proto ------------------------------------------

interface RaftEnvelope {
  message: Uint8Array;
  clusterId: string;
  from: number;
  to: number;
}

interface SendAck {
  received: number;
}

interface SnapshotChunkMsg {
  chunk: Uint8Array;
  clusterId: string;
  from: number;
  to: number;
}

interface SnapshotAck {
  index: number;
  bytes: number;
}

interface RaftService {
  definition: ServiceDefinition;
  send: MethodDefinition<RaftEnvelope, SendAck>;
  snapshot: MethodDefinition<SnapshotChunkMsg, SnapshotAck>;
}

let service: RaftService | undefined;

function raftService(): RaftService {
  if (service) return service;
  const pkg = loadSync(protoPath('raft.proto'), { longs: Number, defaults: true, keepCase: false });
  const definition = pkg['berth.raft.v1.RaftTransport'] as ServiceDefinition;
  service = {
    definition,
    send: definition.Send as MethodDefinition<RaftEnvelope, SendAck>,
    snapshot: definition.Snapshot as MethodDefinition<SnapshotChunkMsg, SnapshotAck>,
  };
  return service;
}

// Request metadata naming the stream's ends; checked before the receiver reads anything.
const MD_CLUSTER = 'berth-cluster-id';
const MD_FROM = 'berth-from';
const MD_TO = 'berth-to';

const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Room for the envelope and a chunk's header on top of maxMessageBytes / chunkSize. */
const ENVELOPE_OVERHEAD = 64 * 1024;
/** Log a repeated complaint about the same peer at most this often. */
const LOG_EVERY_MS = 30_000;

const silentLogger: GrpcTransportLogger = { debug() {}, info() {}, warn() {}, error() {} };

function statusError(code: status, details: string): ServerErrorResponse {
  return Object.assign(new Error(details), { code, details });
}

function describe(err: ServiceError | null): { code: string; details: string } {
  if (!err) return { code: 'OK', details: 'the peer closed the stream' };
  return { code: status[err.code] ?? String(err.code), details: err.details || err.message };
}

function idFrom(md: Metadata, key: string): number | undefined {
  const v = md.get(key)[0];
  if (typeof v !== 'string' || !/^[0-9]{1,15}$/.test(v)) return undefined;
  return Number(v);
}

/** Handlers must not throw; a transport ignores it if one does. */
function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // ignored on purpose (see MessageHandler)
  }
}

// --- sending side -------------------------------------------------------------------------------

const DIAL_TIMEOUT_MS = 1000;

type LinkState = 'idle' | 'connecting' | 'open' | 'backoff';

/** One outgoing snapshot stream; `cancel` ends it without any report. */
interface OutboundSnapshot {
  cancel(): void;
}

/** Everything this transport sends to one peer: an ordered message stream and snapshot streams. */
class PeerLink {
  private client: Client;
  /** Fires when a stream got no answer in DIAL_TIMEOUT_MS: the connection is replaced. */
  private dialTimer: NodeJS.Timeout | undefined;
  private snapClient: Client | undefined;
  private call: ClientWritableStream<RaftEnvelope> | undefined;
  private state: LinkState = 'idle';
  private queue: Uint8Array[] = [];
  private waitingDrain = false;
  private backoffMs: number;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Consecutive failed streams; 0 once a stream is accepted. */
  private failures = 0;
  private lastQueueWarning = 0;
  private readonly snapshots = new Set<OutboundSnapshot>();
  private closed = false;

  constructor(
    private readonly t: GrpcTransportImpl,
    readonly id: NodeId,
    readonly address: string,
  ) {
    this.client = t.makeClient(address);
    this.backoffMs = t.initialBackoffMs;
  }

  /** Queue one encoded message; drops (and reports) it when the peer is backing off or the queue is full. */
  enqueue(bytes: Uint8Array): void {
    if (this.closed || this.state === 'backoff') {
      this.t.dropped(this.id);
      return;
    }
    if (this.queue.length >= this.t.maxQueued) {
      this.t.dropped(this.id);
      const now = Date.now();
      if (now - this.lastQueueWarning > LOG_EVERY_MS) {
        this.lastQueueWarning = now;
        this.t.log.warn(
          { peer: this.id, address: this.address, queued: this.queue.length },
          'raft transport: queue to peer is full; dropping messages (peer slow or stalled)',
        );
      }
      return;
    }
    this.queue.push(bytes);
    if (this.state === 'idle') this.open();
    this.flush();
  }

  private open(): void {
    const s = raftService().send;
    const call = this.client.makeClientStreamRequest<RaftEnvelope, SendAck>(
      s.path,
      s.requestSerialize,
      s.responseDeserialize,
      this.t.identity(this.id),
      {},
      (err) => this.onStreamEnd(call, err),
    );
    // The status arrives through the callback; this only keeps an 'error' event from being unhandled.
    call.on('error', () => {});
    // The receiver answers an accepted stream with its headers: the peer is up and agrees on who is who.
    call.on('metadata', () => {
      if (this.call !== call) return;
      clearTimeout(this.dialTimer);
      this.state = 'open';
      if (this.failures > 0) {
        this.t.log.info({ peer: this.id, address: this.address }, 'raft transport: peer reachable again');
      }
      this.failures = 0;
      this.backoffMs = this.t.initialBackoffMs;
    });
    call.on('drain', () => {
      if (this.call !== call) return;
      this.waitingDrain = false;
      this.flush();
    });
    this.call = call;
    this.state = 'connecting';
    this.waitingDrain = false;
    // grpc-js has no connect timeout, and a TCP connect whose SYNs were dropped (a partition)
    // retries with the kernel's ever longer back-off. A peer that does not answer a new
    // stream within a second gets a fresh connection instead (etcd dials with 1 s too).
    clearTimeout(this.dialTimer);
    this.dialTimer = setTimeout(() => {
      if (this.call !== call || this.state !== 'connecting' || this.closed) return;
      this.client.close();
      this.client = this.t.makeClient(this.address);
      call.cancel();
    }, DIAL_TIMEOUT_MS);
    this.dialTimer.unref();
  }

  /** Write queued messages while the stream takes them; the rest waits for 'drain'. */
  private flush(): void {
    const call = this.call;
    if (!call || this.waitingDrain) return;
    let n = 0;
    while (n < this.queue.length) {
      const message = this.queue[n] as Uint8Array;
      n++;
      this.t.counters.sent++;
      if (!call.write({ message, clusterId: this.t.clusterId, from: this.t.id, to: this.id })) {
        this.waitingDrain = true;
        break;
      }
    }
    this.queue.splice(0, n);
  }

  private onStreamEnd(call: ClientWritableStream<RaftEnvelope>, err: ServiceError | null): void {
    if (this.call !== call || this.closed) return;
    this.call = undefined;
    this.waitingDrain = false;
    const lost = this.queue.length;
    this.queue = [];
    this.t.counters.dropped += lost;
    this.failures++;
    const { code, details } = describe(err);
    const fields = { peer: this.id, address: this.address, code, details, lost, retryInMs: this.backoffMs };
    if (err?.code === status.FAILED_PRECONDITION) {
      if (this.failures === 1 || this.failures % 30 === 0) {
        this.t.log.error(
          fields,
          'raft transport: peer refused our stream (wrong cluster or node id at that address?)',
        );
      }
    } else if (this.failures === 1) {
      this.t.log.warn(fields, 'raft transport: stream to peer failed; retrying with back-off');
    } else {
      this.t.log.debug(fields, 'raft transport: stream to peer failed again');
    }
    this.t.reportUnreachable(this.id);
    this.state = 'backoff';
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.closed) this.state = 'idle';
    }, this.backoffMs);
    this.retryTimer.unref();
    this.backoffMs = Math.min(this.backoffMs * 2, this.t.maxBackoffMs);
  }

  /** Stream one MsgSnap in chunks on its own connection; ends in snapshotStatus (and unreachable on failure). */
  sendSnapshot(m: Message): void {
    const chunks = splitSnapshotMessage(m, this.t.chunkSize);
    // The first chunk holds the message header: encode it now, as the caller may reuse `m`. The
    // data chunks are views of the snapshot bytes, which the runner never modifies once taken.
    const first = encodeSnapshotChunk(chunks[0] as SnapshotChunk);
    this.snapClient ??= this.t.makeClient(this.address);
    const s = raftService().snapshot;
    const index = m.snapshot?.metadata.index ?? 0;
    const size = m.snapshot?.data.length ?? 0;
    let done = false;
    let next = 0;
    const started = Date.now();
    const entry: OutboundSnapshot = {
      cancel: () => {
        done = true;
        call.cancel();
      },
    };
    const finish = (err: ServiceError | null): void => {
      if (done) return;
      done = true;
      this.snapshots.delete(entry);
      const fields = { peer: this.id, index, bytes: size, chunks: chunks.length, ms: Date.now() - started };
      if (err) {
        this.t.log.warn({ ...fields, ...describe(err) }, 'raft transport: snapshot to peer failed');
        this.t.notifySnapshot(this.id, false);
        this.t.reportUnreachable(this.id);
        return;
      }
      this.t.counters.snapshotsSent++;
      this.t.log.info(fields, 'raft transport: snapshot delivered to peer');
      this.t.notifySnapshot(this.id, true);
    };
    const call = this.snapClient.makeClientStreamRequest<SnapshotChunkMsg, SnapshotAck>(
      s.path,
      s.requestSerialize,
      s.responseDeserialize,
      this.t.identity(this.id),
      {},
      (err) => finish(err),
    );
    call.on('error', () => {});
    const pump = (): void => {
      while (!done && next < chunks.length) {
        const chunk = next === 0 ? first : encodeSnapshotChunk(chunks[next] as SnapshotChunk);
        next++;
        this.t.counters.snapshotChunksSent++;
        const more = call.write({ chunk, clusterId: this.t.clusterId, from: this.t.id, to: this.id });
        if (!more) {
          call.once('drain', pump);
          return;
        }
      }
      if (!done) call.end();
    };
    this.snapshots.add(entry);
    // Off the caller's stack: send() must stay cheap, and chunk encoding copies megabytes.
    setImmediate(pump);
  }

  /** Tear everything down. `reportSnapshots`: tell the handler in-flight snapshots failed. */
  close(reportSnapshots: boolean): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.t.counters.dropped += this.queue.length;
    this.queue = [];
    const call = this.call;
    this.call = undefined;
    call?.cancel();
    for (const snap of this.snapshots) {
      snap.cancel();
      if (reportSnapshots) this.t.notifySnapshot(this.id, false);
    }
    this.snapshots.clear();
    clearTimeout(this.dialTimer);
    this.client.close();
    this.snapClient?.close();
  }
}

// --- the transport --------------------------------------------------------------------------

class GrpcTransportImpl implements GrpcTransport {
  readonly id: NodeId;
  readonly clusterId: string;
  readonly log: GrpcTransportLogger;
  readonly chunkSize: number;
  readonly maxMessageBytes: number;
  readonly maxSnapshotBytes: number;
  readonly maxQueued: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly counters: GrpcTransportStats = {
    sent: 0,
    received: 0,
    dropped: 0,
    snapshotsSent: 0,
    snapshotChunksSent: 0,
    snapshotsReceived: 0,
    snapshotChunksReceived: 0,
    refused: 0,
  };

  private readonly listen: string;
  private readonly keepaliveTimeMs: number;
  private readonly keepaliveTimeoutMs: number;
  private readonly shutdownGraceMs: number;
  private readonly serverCredentials: ServerCredentials;
  private readonly channelCredentials: ChannelCredentials;
  private readonly channelOptions: ChannelOptions;

  private handler: MessageHandler | undefined;
  private server: Server | undefined;
  private bound: string | undefined;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private stopped = false;
  private readonly peers = new Map<NodeId, PeerLink>();
  private readonly inbound = new Set<InboundStream<never>>();
  private readonly unreachable = new Set<NodeId>();
  private unreachableScheduled = false;
  private readonly lastLogged = new Map<string, number>();

  constructor(opts: GrpcTransportOptions) {
    this.id = opts.id;
    this.clusterId = opts.clusterId;
    this.listen = opts.listen;
    this.log =
      opts.logger?.child?.({ component: 'raft-transport', node: opts.id }) ?? opts.logger ?? silentLogger;
    this.chunkSize = opts.chunkSize ?? DEFAULT_SNAPSHOT_CHUNK_SIZE;
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxSnapshotBytes = opts.maxSnapshotBytes ?? DEFAULT_MAX_SNAPSHOT_SIZE;
    this.maxQueued = opts.maxQueuedMessages ?? 4096;
    this.keepaliveTimeMs = opts.keepaliveTimeMs ?? 1000;
    this.keepaliveTimeoutMs = opts.keepaliveTimeoutMs ?? 2000;
    this.initialBackoffMs = opts.initialBackoffMs ?? 50;
    this.maxBackoffMs = opts.maxBackoffMs ?? 1000;
    this.shutdownGraceMs = opts.shutdownGraceMs ?? 250;
    this.serverCredentials = opts.serverCredentials ?? ServerCredentials.createInsecure();
    this.channelCredentials = opts.channelCredentials ?? credentials.createInsecure();
    this.channelOptions = opts.channelOptions ?? {};
  }

  get address(): string | undefined {
    return this.bound;
  }

  stats(): GrpcTransportStats {
    return { ...this.counters };
  }

  start(handler: MessageHandler): Promise<void> {
    if (this.stopped) return Promise.reject(new StoppedError());
    this.starting ??= this.bind(handler);
    return this.starting;
  }

  private async bind(handler: MessageHandler): Promise<void> {
    const { definition } = raftService();
    const limit = this.maxMessageBytes + ENVELOPE_OVERHEAD;
    const server = new Server({
      'grpc.max_receive_message_length': limit,
      'grpc.max_send_message_length': limit,
      'grpc.keepalive_time_ms': this.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': this.keepaliveTimeoutMs,
      'grpc.keepalive_permit_without_calls': 1,
    });
    server.addService(definition, {
      Send: (call: ServerReadableStream<RaftEnvelope, SendAck>, cb: sendUnaryData<SendAck>) =>
        this.onSend(call, cb),
      Snapshot: (call: ServerReadableStream<SnapshotChunkMsg, SnapshotAck>, cb: sendUnaryData<SnapshotAck>) =>
        this.onSnapshot(call, cb),
    });
    let port: number;
    try {
      port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(this.listen, this.serverCredentials, (err, p) => (err ? reject(err) : resolve(p))),
      );
    } catch (err) {
      server.forceShutdown();
      this.starting = undefined;
      throw new TransportListenError(this.listen, err);
    }
    if (this.stopped) {
      server.forceShutdown();
      throw new StoppedError();
    }
    this.server = server;
    this.bound = `${this.listen.slice(0, this.listen.lastIndexOf(':'))}:${port}`;
    this.handler = handler;
    this.log.info({ address: this.bound, clusterId: this.clusterId }, 'raft transport listening');
  }

  send(messages: Message[]): void {
    if (this.stopped || !this.handler) return;
    for (const m of messages) {
      try {
        this.route(m);
      } catch (err) {
        // Best effort: a message that cannot be encoded is dropped like a lost packet.
        this.log.warn({ err, to: m.to, type: m.type }, 'raft transport: dropped a message it cannot encode');
        this.dropped(m.to);
        if (m.type === MessageType.Snap) this.notifySnapshot(m.to, false);
      }
    }
  }

  private route(m: Message): void {
    const peer = this.peers.get(m.to);
    if (!peer) {
      this.dropped(m.to);
      if (m.type === MessageType.Snap) this.notifySnapshot(m.to, false);
      return;
    }
    if (m.type === MessageType.Snap) {
      peer.sendSnapshot(m);
      return;
    }
    const bytes = encodeMessage(m);
    if (bytes.length > this.maxMessageBytes) {
      this.logThrottled(
        `too-large-${m.to}`,
        'error',
        { to: m.to, type: m.type, bytes: bytes.length, limit: this.maxMessageBytes },
        'raft transport: dropped a message larger than maxMessageBytes',
      );
      this.dropped(m.to);
      return;
    }
    peer.enqueue(bytes);
  }

  addPeer(id: NodeId, address: string): void {
    if (this.stopped || id === this.id) return;
    const existing = this.peers.get(id);
    if (existing?.address === address) return;
    existing?.close(true);
    this.peers.set(id, new PeerLink(this, id, address));
    this.log.debug({ peer: id, address }, 'raft transport: peer address set');
  }

  removePeer(id: NodeId): void {
    const link = this.peers.get(id);
    if (!link) return;
    this.peers.delete(id);
    link.close(true);
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.stopped = true;
    this.handler = undefined;
    await this.starting?.catch(() => {});
    for (const link of this.peers.values()) link.close(false);
    this.peers.clear();
    for (const s of this.inbound) s.end(statusError(status.UNAVAILABLE, `node ${this.id} is stopping`));
    this.inbound.clear();
    const server = this.server;
    this.server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, this.shutdownGraceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      this.log.info({ address: this.bound }, 'raft transport stopped');
    }
  }

  // --- helpers used by PeerLink ---

  makeClient(address: string): Client {
    const limit = this.maxMessageBytes + ENVELOPE_OVERHEAD;
    return new Client(address, this.channelCredentials, {
      'grpc.max_send_message_length': limit,
      'grpc.max_receive_message_length': limit,
      'grpc.keepalive_time_ms': this.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': this.keepaliveTimeoutMs,
      'grpc.keepalive_permit_without_calls': 1,
      // gRPC's own reconnect back-off defaults to minutes; a returning peer must be seen within ~1 s.
      'grpc.initial_reconnect_backoff_ms': Math.max(this.initialBackoffMs, 20),
      'grpc.max_reconnect_backoff_ms': this.maxBackoffMs,
      // Own connections per transport and per purpose: a snapshot never queues heartbeats behind
      // it, and stopping one transport never touches another's connections in the same process.
      'grpc.use_local_subchannel_pool': 1,
      ...this.channelOptions,
    });
  }

  identity(to: NodeId): Metadata {
    const md = new Metadata();
    md.set(MD_CLUSTER, this.clusterId);
    md.set(MD_FROM, String(this.id));
    md.set(MD_TO, String(to));
    return md;
  }

  dropped(to: NodeId): void {
    this.counters.dropped++;
    this.reportUnreachable(to);
  }

  /** Report `to` unreachable, at most once per event-loop turn, never inside send(). */
  reportUnreachable(to: NodeId): void {
    if (this.stopped) return;
    this.unreachable.add(to);
    if (this.unreachableScheduled) return;
    this.unreachableScheduled = true;
    setImmediate(() => {
      this.unreachableScheduled = false;
      const ids = [...this.unreachable];
      this.unreachable.clear();
      const h = this.handler;
      if (!h || this.stopped) return;
      for (const id of ids) safely(() => h.unreachable(id));
    });
  }

  notifySnapshot(to: NodeId, ok: boolean): void {
    setImmediate(() => {
      const h = this.handler;
      if (h && !this.stopped) safely(() => h.snapshotStatus(to, ok));
    });
  }

  private logThrottled(key: string, level: 'warn' | 'error', fields: object, msg: string): void {
    const now = Date.now();
    const last = this.lastLogged.get(key);
    if (last !== undefined && now - last < LOG_EVERY_MS) return;
    // Keys can carry what a peer sent (a cluster id): bound the memory a noisy peer can claim.
    if (this.lastLogged.size >= 1000) this.lastLogged.clear();
    this.lastLogged.set(key, now);
    this.log[level](fields, msg);
  }

  // --- receiving side ---

  /**
   * Admit a stream by the identity it opens with, and track it so stop() can end it. Undefined
   * when it was refused (and answered, after a log line saying what and why).
   */
  private admit<Res>(
    call: ServerReadableStream<unknown, Res>,
    cb: sendUnaryData<Res>,
    what: string,
  ): InboundStream<Res> | undefined {
    const peer = call.getPeer();
    const md = call.metadata;
    const cluster = md.get(MD_CLUSTER)[0];
    const from = idFrom(md, MD_FROM);
    const to = idFrom(md, MD_TO);
    const refusal =
      typeof cluster !== 'string' || from === undefined || to === undefined
        ? this.refuse(
            status.INVALID_ARGUMENT,
            `${what} stream without valid ${MD_CLUSTER}, ${MD_FROM} and ${MD_TO} metadata`,
            { peer },
          )
        : this.checkIds({ clusterId: cluster, from, to }, from, peer, what);
    if (refusal || from === undefined) {
      cb(refusal ?? null);
      return undefined;
    }
    if (this.stopped) {
      cb(statusError(status.UNAVAILABLE, `node ${this.id} is stopping`));
      return undefined;
    }
    const stream = new InboundStream(from, peer, cb, this.inbound);
    this.inbound.add(stream);
    call.on('error', () => stream.end(null));
    call.on('cancelled', () => stream.end(null));
    return stream;
  }

  /** Ids of a stream or of one of its messages against ours; `streamFrom` opened the stream. */
  private checkIds(
    ids: { clusterId: string; from: number; to: number },
    streamFrom: NodeId,
    peer: string,
    what: string,
  ): ServerErrorResponse | undefined {
    const { clusterId, from, to } = ids;
    if (clusterId !== this.clusterId) {
      return this.refuse(
        status.FAILED_PRECONDITION,
        `node ${this.id} belongs to cluster "${this.clusterId}", not "${clusterId}": refused ${what} traffic from node ${from}`,
        { peer, from, theirCluster: clusterId, ourCluster: this.clusterId },
      );
    }
    if (to !== this.id) {
      return this.refuse(
        status.FAILED_PRECONDITION,
        `this is node ${this.id}, not node ${to}: refused ${what} traffic from node ${from} (its address for node ${to} is wrong)`,
        { peer, from, to },
      );
    }
    if (from !== streamFrom || from === this.id || from === 0) {
      return this.refuse(
        status.FAILED_PRECONDITION,
        `${what} traffic claims sender ${from} on a stream opened by node ${streamFrom}`,
        { peer, from, streamFrom },
      );
    }
    return undefined;
  }

  private refuse(code: status, details: string, fields: object): ServerErrorResponse {
    this.counters.refused++;
    this.logThrottled(
      `refuse-${details}`,
      'warn',
      { ...fields, code: status[code] },
      `raft transport: ${details}`,
    );
    return statusError(code, details);
  }

  private malformed(s: { from: NodeId; peer: string }, what: string, detail: unknown): ServerErrorResponse {
    const text = detail instanceof Error ? detail.message : String(detail);
    return this.refuse(status.INVALID_ARGUMENT, `malformed ${what} stream from node ${s.from}: ${text}`, {
      peer: s.peer,
      from: s.from,
    });
  }

  private onSend(call: ServerReadableStream<RaftEnvelope, SendAck>, cb: sendUnaryData<SendAck>): void {
    const s = this.admit(call, cb, 'message');
    if (!s) return;
    let received = 0;
    // Headers now: they tell the sender its stream was accepted (PeerLink resets its back-off).
    call.sendMetadata(new Metadata());
    call.on('data', (env: RaftEnvelope) => {
      if (s.done) return;
      const refusal = this.checkIds(env, s.from, s.peer, 'message');
      if (refusal) return s.end(refusal);
      let m: Message;
      try {
        m = decodeMessage(env.message);
      } catch (err) {
        return s.end(this.malformed(s, 'message', err));
      }
      if (isLocalMessage(m.type)) return s.end(this.malformed(s, 'message', `local message type ${m.type}`));
      if (m.from !== s.from || m.to !== this.id) {
        const detail = `a message from ${m.from} to ${m.to} on node ${s.from}'s stream to node ${this.id}`;
        return s.end(this.refuse(status.FAILED_PRECONDITION, detail, { peer: s.peer, from: s.from }));
      }
      received++;
      const h = this.handler;
      if (!h || this.stopped) return;
      this.counters.received++;
      safely(() => h.receive(m));
    });
    call.on('end', () => s.end(null, { received }));
  }

  private onSnapshot(
    call: ServerReadableStream<SnapshotChunkMsg, SnapshotAck>,
    cb: sendUnaryData<SnapshotAck>,
  ): void {
    const s = this.admit(call, cb, 'snapshot');
    if (!s) return;
    const assembler = new SnapshotAssembler(this.maxSnapshotBytes);
    s.onEnd = () => assembler.reset();
    let complete: Message | undefined;
    call.on('data', (msg: SnapshotChunkMsg) => {
      if (s.done) return;
      const refusal = this.checkIds(msg, s.from, s.peer, 'snapshot');
      if (refusal) return s.end(refusal);
      if (complete) return s.end(this.malformed(s, 'snapshot', 'data after the last chunk'));
      try {
        complete = assembler.push(decodeSnapshotChunk(msg.chunk));
      } catch (err) {
        return s.end(this.malformed(s, 'snapshot', err));
      }
      this.counters.snapshotChunksReceived++;
      if (complete && (complete.from !== s.from || complete.to !== this.id)) {
        const detail = `a snapshot from ${complete.from} to ${complete.to} on node ${s.from}'s stream to node ${this.id}`;
        s.end(this.refuse(status.FAILED_PRECONDITION, detail, { peer: s.peer, from: s.from }));
      }
    });
    call.on('end', () => {
      if (s.done) return;
      const snap = complete;
      if (!snap) return s.end(this.malformed(s, 'snapshot', 'the stream ended before its last chunk'));
      const h = this.handler;
      if (!h || this.stopped) return s.end(statusError(status.UNAVAILABLE, `node ${this.id} is stopping`));
      this.counters.snapshotsReceived++;
      this.counters.received++;
      const index = snap.snapshot?.metadata.index ?? 0;
      const bytes = snap.snapshot?.data.length ?? 0;
      this.log.info({ from: s.from, index, bytes }, 'raft transport: received a snapshot');
      // Handed over before the ack: the sender's snapshotStatus(ok) means Raft has it.
      safely(() => h.receive(snap));
      s.end(null, { index, bytes });
    });
  }
}

/** One accepted incoming stream. end() answers it once: an error, a response, or (null) nothing. */
class InboundStream<Res> {
  done = false;
  onEnd: (() => void) | undefined;

  constructor(
    readonly from: NodeId,
    readonly peer: string,
    private readonly cb: sendUnaryData<Res>,
    private readonly registry: Set<InboundStream<never>>,
  ) {}

  end(err: ServerErrorResponse | null, response?: Res): void {
    if (this.done) return;
    this.done = true;
    this.registry.delete(this as InboundStream<never>);
    this.onEnd?.();
    if (err) this.cb(err);
    else if (response) this.cb(null, response);
  }
}

/**
 * A gRPC Transport for node `id`. Nothing listens until start(handler) resolves; it rejects
 * with TransportListenError when the address cannot be bound. Peers come and go with
 * addPeer/removePeer ('host:port'). See the file comment for ordering and failure behaviour.
 */
export function createGrpcTransport(opts: GrpcTransportOptions): GrpcTransport {
  const chunkSize = opts.chunkSize ?? DEFAULT_SNAPSHOT_CHUNK_SIZE;
  const maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (!(chunkSize > 0) || chunkSize > maxMessageBytes) {
    throw new ConfigError(
      `transport chunkSize must be in (0, maxMessageBytes=${maxMessageBytes}], got ${chunkSize}`,
    );
  }
  if (!/^.+:[0-9]+$/.test(opts.listen)) {
    throw new ConfigError(`transport listen address must be 'host:port', got '${opts.listen}'`);
  }
  return new GrpcTransportImpl(opts);
}
