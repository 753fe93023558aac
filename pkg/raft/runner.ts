// The runner: wires the pure core (RawNode) to LevelDB, a Transport and real timers, and
// turns its Ready batches into durable writes, network sends and state machine calls.
//
//   transport.receive ─┐            ┌─ storage.save (one synced batch)
//   setInterval tick ──┼─► RawNode ─► Ready ─┼─ transport.send
//   propose/read/... ──┘            ├─ stateMachine.restore / apply ─► resolve proposals, reads
//                                   └─ advance ─► maybe snapshot + compact
//
// One Ready is handled at a time. Inputs that arrive meanwhile go straight into the RawNode
// (it is synchronous and queues them); the loop asks for the next Ready once it has advanced.

import { randomInt } from 'node:crypto';
import { Reader, Writer } from './codec.js';
import {
  ConfigError,
  DropReason,
  ProposalDroppedError,
  RaftError,
  RaftErrorCode,
  RaftInvariantError,
  StoppedError,
} from './errors.js';
import { type LevelDBStorage, openLevelDBStorage } from './leveldb-storage.js';
import { createRandom } from './rand.js';
import { bootstrapState, decodeConfChange, type RaftStatus, RawNode } from './raw-node.js';
import type { MessageHandler, Transport } from './transport.js';
import type { ConfChange, ConfState, Entry, Message, NodeId, Ready, Snapshot } from './types.js';
import { ConfChangeType, EMPTY, EntryType, NONE } from './types.js';

/**
 * The replicated application. The runner calls it from one place only, strictly in sequence:
 * it awaits each returned promise before the next call, so an implementation never sees two
 * calls overlap. Every replica makes the same calls in the same order, so apply() and
 * restore() must be deterministic (no clocks, no randomness, no I/O that can differ).
 */
export interface StateMachine {
  /**
   * Apply one committed proposal, in log order. `entry.data` is exactly what was passed to
   * `RaftNode.propose`; the state machine owns the entry. No-op entries and membership
   * changes are not passed here. A throw is fatal: the node stops (its log stays intact).
   */
  apply(entry: Entry): void | Promise<void>;
  /**
   * The whole state as of the last applied entry. The runner owns the returned bytes (it
   * stores them and may send them to peers): do not modify them afterwards.
   */
  snapshot(): Uint8Array | Promise<Uint8Array>;
  /** Replace the whole state with what snapshot() produced (here or on another replica). */
  restore(data: Uint8Array): void | Promise<void>;
}

/** pino-compatible; `child` is used when present. */
/** How long the link to a removed member stays up after its removal is applied (ms). */
const REMOVED_PEER_LINGER_MS = 3000;

export interface RaftNodeLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  child?(bindings: object): RaftNodeLogger;
}

export interface PeerAddress {
  id: NodeId;
  address: string;
}

export interface RaftNodeOptions {
  id: NodeId;
  clusterId: string;
  dataDir: string;
  /**
   * Addresses of cluster members. On a brand-new data directory without `join`, exactly the
   * initial voters, this node included: the cluster is bootstrapped with them. With `join`,
   * or when restarting, where to reach existing members (membership then comes from the log).
   */
  peers?: PeerAddress[];
  /** Start with an empty log and wait to be added by the leader (addLearner on a member). */
  join?: boolean;
  transport: Transport;
  stateMachine: StateMachine;
  /** Milliseconds per Raft tick. Default 100. */
  tickMs?: number;
  /** Ticks before a follower without a leader campaigns. Default 10. */
  electionTick?: number;
  /** Ticks between leader heartbeats. Default 1. */
  heartbeatTick?: number;
  /** Take a state machine snapshot once this many entries were applied since the last one. Default 10000. */
  snapshotEntries?: number;
  /** Entries kept in the log behind a snapshot so slow followers need not get the snapshot. Default 5000. */
  catchUpEntries?: number;
  /** How long propose(), read() and membership calls wait before failing. Default 10000 ms. */
  requestTimeoutMs?: number;
  /** Election timeout randomness; default seeded from a random number. */
  random?: () => number;
  logger?: RaftNodeLogger;
}

export interface RaftNodeStatus extends RaftStatus {
  /** Index of the newest snapshot in storage. */
  snapshotIndex: number;
  /** First index still in the log (snapshot and compaction move it). */
  firstIndex: number;
  /** Membership as of the last applied entry. */
  appliedConfState: ConfState;
  stopped: boolean;
}

/** A request that got no answer in time; retrying may succeed once a leader is elected. */
export class RequestTimeoutError extends RaftError {
  constructor(
    readonly operation: string,
    readonly timeoutMs: number,
  ) {
    super(
      RaftErrorCode.Timeout,
      `raft: ${operation} timed out after ${timeoutMs} ms (no leader, no quorum, or the request was lost; retry)`,
    );
    this.name = 'RequestTimeoutError';
  }
}

/**
 * A proposal forwarded to a leader that then became unreachable: it may or may not have
 * been applied. Same code as a timeout (the outcome is unknown), said at once.
 */
export class LeaderUnreachableError extends RaftError {
  constructor(readonly leader: NodeId) {
    super(
      RaftErrorCode.Timeout,
      `raft: the leader (${leader}) became unreachable; the proposal may or may not have been applied (read to check, then retry)`,
    );
    this.name = 'LeaderUnreachableError';
  }
}

export interface RaftNode {
  readonly id: NodeId;
  /**
   * Replicate `data` and resolve with its log index once this node applied it (after
   * StateMachine.apply returned). Rejects with ProposalDroppedError when it cannot be
   * proposed now (e.g. no leader), RequestTimeoutError when it was not applied in time
   * (it may still be applied later), StoppedError when the node stops first.
   */
  propose(data: Uint8Array): Promise<number>;
  /** Linearizable read barrier: resolves once this node's state reflects every write acknowledged before the call. */
  read(): Promise<void>;
  /** Add a non-voting member that receives the log; resolves when the change is applied here. */
  addLearner(id: NodeId, address: string): Promise<void>;
  /** Make a caught-up learner a voter. Rejects with ProposalDroppedError (LearnerNotReady) until it caught up. */
  promote(id: NodeId): Promise<void>;
  /** Remove a member (the leader included: it hands over and steps down). */
  removeMember(id: NodeId): Promise<void>;
  /** Ask the leader to hand leadership to `to`; resolves when this node sees `to` lead. */
  transferLeadership(to: NodeId): Promise<void>;
  status(): RaftNodeStatus;
  /** The current Raft term (cheap: for response headers). */
  term(): number;
  /** Called with the new leader (0: none) whenever this node's view changes. Returns an unsubscribe function. */
  onLeaderChange(listener: (leader: NodeId) => void): () => void;
  /**
   * Called once if the node hits an error it cannot continue from (disk failure, a throwing
   * state machine, a broken invariant); the node has stopped by then. Without any listener
   * such an error is rethrown asynchronously, crashing the process loudly.
   */
  onFatal(listener: (err: unknown) => void): () => void;
  /** Stop timers and the transport, wait for the Ready in progress, close the database. Idempotent. */
  stop(): Promise<void>;
}

// --- envelopes ---------------------------------------------------------------------------

const ENVELOPE_VERSION = 1;

/** Who proposed an entry, so the proposing node can resolve its waiter when it applies. */
interface ProposalTag {
  nodeId: NodeId;
  incarnation: number;
  seq: number;
}

function encodeProposal(tag: ProposalTag, payload: Uint8Array): Uint8Array {
  return new Writer(payload.length + 24)
    .u8(ENVELOPE_VERSION)
    .uvarint(tag.nodeId)
    .uvarint(tag.incarnation)
    .uvarint(tag.seq)
    .raw(payload)
    .finish();
}

function decodeProposal(b: Uint8Array): { tag: ProposalTag; payload: Uint8Array } {
  const r = new Reader(b, 'proposal envelope');
  r.version();
  const tag = { nodeId: r.uvarint(), incarnation: r.uvarint(), seq: r.uvarint() };
  return { tag, payload: r.rest() };
}

/** Snapshot data = the members' addresses + the state machine's bytes, so both travel together. */
function encodeSnapshotData(peers: Map<NodeId, string>, data: Uint8Array): Uint8Array {
  const w = new Writer(data.length + 64 * (peers.size + 1)).u8(ENVELOPE_VERSION).uvarint(peers.size);
  for (const [id, address] of peers) w.uvarint(id).bytes(textEncoder.encode(address));
  return w.bytes(data).finish();
}

function decodeSnapshotData(b: Uint8Array): { peers: PeerAddress[]; data: Uint8Array } {
  const r = new Reader(b, 'snapshot envelope');
  r.version();
  const n = r.uvarint();
  const peers: PeerAddress[] = [];
  for (let i = 0; i < n; i++) peers.push({ id: r.uvarint(), address: textDecoder.decode(r.bytes()) });
  const data = r.bytes();
  r.end();
  return { peers, data };
}

function encodeReadContext(nodeId: NodeId, incarnation: number, seq: number): Uint8Array {
  return new Writer(24).uvarint(nodeId).uvarint(incarnation).uvarint(seq).finish();
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

function ctxKey(ctx: Uint8Array): string {
  return Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString('base64');
}

function applyToConfState(cs: ConfState, cc: ConfChange): ConfState {
  const voters = cs.voters.filter((id) => id !== cc.nodeId);
  const learners = cs.learners.filter((id) => id !== cc.nodeId);
  if (cc.type === ConfChangeType.AddNode) voters.push(cc.nodeId);
  if (cc.type === ConfChangeType.AddLearnerNode) learners.push(cc.nodeId);
  return { voters, learners };
}

// --- the node ------------------------------------------------------------------------------

interface Waiter<T> {
  resolve(v: T): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout;
}

interface ReadWaiter extends Waiter<void> {
  /** Set when the ReadState arrives: the index to reach before the read may proceed. */
  index?: number;
}

interface ConfWaiter extends Waiter<void> {
  type: ConfChangeType;
  nodeId: NodeId;
}

const silentLogger: RaftNodeLogger = { debug() {}, info() {}, warn() {}, error() {} };

class Node implements RaftNode, MessageHandler {
  private readonly incarnation = randomInt(2 ** 32);
  private seq = 0;
  private readonly proposals = new Map<number, Waiter<number>>();
  private readonly reads = new Map<string, ReadWaiter>();
  private confWaiters: ConfWaiter[] = [];
  private leaderWaiters: (Waiter<void> & { to: NodeId })[] = [];
  private readonly leaderListeners = new Set<(leader: NodeId) => void>();
  private readonly fatalListeners = new Set<(err: unknown) => void>();

  private leader: NodeId = NONE;
  private applied: number;
  private snapshotIndex: number;
  private appliedConf: ConfState;
  private ticker: NodeJS.Timeout | undefined;
  private processing = false;
  private loopDone: Promise<void> = Promise.resolve();
  private stopped = false;
  private stopping: Promise<void> | undefined;
  /** Waiters satisfied by the Ready in progress; resolved after advance(), so status() agrees with them. */
  private settled: (() => void)[] = [];

  private readonly snapshotEntries: number;
  private readonly catchUpEntries: number;
  private readonly timeoutMs: number;

  constructor(
    readonly id: NodeId,
    private readonly rawNode: RawNode,
    private readonly storage: LevelDBStorage,
    private readonly transport: Transport,
    private readonly sm: StateMachine,
    private readonly addresses: Map<NodeId, string>,
    private readonly logger: RaftNodeLogger,
    opts: RaftNodeOptions,
  ) {
    const snap = storage.snapshot().metadata;
    this.applied = snap.index;
    this.snapshotIndex = snap.index;
    this.appliedConf = { voters: [...snap.confState.voters], learners: [...snap.confState.learners] };
    this.snapshotEntries = opts.snapshotEntries ?? 10000;
    this.catchUpEntries = opts.catchUpEntries ?? 5000;
    this.timeoutMs = opts.requestTimeoutMs ?? 10000;
  }

  async start(tickMs: number): Promise<void> {
    for (const [id, address] of this.addresses) if (id !== this.id) this.transport.addPeer(id, address);
    await this.transport.start(this);
    this.ticker = setInterval(() => {
      if (this.stopped) return;
      this.rawNode.tick();
      this.kick();
    }, tickMs);
    this.kick();
  }

  // --- MessageHandler (called by the transport) ---

  receive(m: Message): void {
    if (this.stopped) return;
    if (m.from === this.leader) this.leaderUnreachable = false;
    try {
      this.rawNode.step(m);
    } catch (err) {
      if (err instanceof RaftInvariantError) {
        this.fatal(err);
        return;
      }
      this.logger.debug({ err, type: m.type, from: m.from }, 'dropped a message from a peer');
      return;
    }
    this.kick();
  }

  snapshotStatus(to: NodeId, ok: boolean): void {
    if (this.stopped) return;
    this.rawNode.reportSnapshot(to, ok);
    this.kick();
  }

  /**
   * The transport could not reach the leader (its stream broke or a send was dropped).
   * Proposals forwarded to it may be lost without a trace; until the leader is heard from
   * again (or another is elected) they are failed at once instead of waiting out a deadline.
   */
  private leaderUnreachable = false;
  /** Proposals waiting for the next flush (see queueProposal). */
  private batch: { seq: number; env: Uint8Array }[] = [];

  unreachable(to: NodeId): void {
    if (this.stopped) return;
    if (to === this.leader && to !== this.id && !this.leaderUnreachable) {
      this.leaderUnreachable = true;
      // Forwarded and not yet applied here: they may or may not have reached the leader, so
      // the outcome is unknown (a timeout, which clients do not retry for writes).
      for (const [seq, w] of this.proposals) {
        this.proposals.delete(seq);
        clearTimeout(w.timer);
        w.reject(new LeaderUnreachableError(to));
      }
    }
    this.rawNode.reportUnreachable(to);
    this.kick();
  }

  // --- public API ---

  propose(data: Uint8Array): Promise<number> {
    // Certainly not sent: safe for the client to retry elsewhere ('etcdserver: no leader').
    if (this.leaderUnreachable && this.leader !== this.id)
      return Promise.reject(new ProposalDroppedError(DropReason.NoLeader, 'the leader is unreachable'));
    const seq = ++this.seq;
    const env = encodeProposal({ nodeId: this.id, incarnation: this.incarnation, seq }, data);
    return this.request('proposal', this.proposals, seq, () => this.queueProposal(seq, env));
  }

  /**
   * Proposals arriving in one turn of the event loop go to Raft as one batch: one append,
   * one message per follower, one fsync, however many clients wrote at once.
   */
  private queueProposal(seq: number, env: Uint8Array): void {
    this.batch.push({ seq, env });
    if (this.batch.length === 1) setImmediate(() => this.flushProposals());
  }

  private flushProposals(): void {
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0 || this.stopped) return;
    try {
      this.rawNode.proposeBatch(batch.map((b) => b.env));
    } catch (err) {
      for (const { seq } of batch) {
        const w = this.proposals.get(seq);
        if (!w) continue;
        this.proposals.delete(seq);
        clearTimeout(w.timer);
        w.reject(err);
      }
    }
    this.kick();
  }

  term(): number {
    return this.rawNode.term();
  }

  read(): Promise<void> {
    const ctx = encodeReadContext(this.id, this.incarnation, ++this.seq);
    return this.request('read', this.reads, ctxKey(ctx), () => this.rawNode.readIndex(ctx));
  }

  addLearner(id: NodeId, address: string): Promise<void> {
    return this.confChange({
      type: ConfChangeType.AddLearnerNode,
      nodeId: id,
      context: textEncoder.encode(address),
    });
  }

  promote(id: NodeId): Promise<void> {
    const address = this.addresses.get(id);
    const context = address === undefined ? EMPTY : textEncoder.encode(address);
    return this.confChange({ type: ConfChangeType.AddNode, nodeId: id, context });
  }

  removeMember(id: NodeId): Promise<void> {
    return this.confChange({ type: ConfChangeType.RemoveNode, nodeId: id, context: EMPTY });
  }

  transferLeadership(to: NodeId): Promise<void> {
    if (this.stopped) return Promise.reject(new StoppedError());
    if (this.leader === to) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = {
        to,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.leaderWaiters = this.leaderWaiters.filter((x) => x !== w);
          reject(new RequestTimeoutError(`leadership transfer to ${to}`, this.timeoutMs));
        }, this.timeoutMs),
      };
      this.leaderWaiters.push(w);
      this.rawNode.transferLeadership(to);
      this.kick();
    });
  }

  status(): RaftNodeStatus {
    return {
      ...this.rawNode.status(),
      snapshotIndex: this.storage.snapshot().metadata.index,
      firstIndex: this.storage.firstIndex(),
      appliedConfState: { voters: [...this.appliedConf.voters], learners: [...this.appliedConf.learners] },
      stopped: this.stopped,
    };
  }

  onLeaderChange(listener: (leader: NodeId) => void): () => void {
    this.leaderListeners.add(listener);
    return () => this.leaderListeners.delete(listener);
  }

  onFatal(listener: (err: unknown) => void): () => void {
    this.fatalListeners.add(listener);
    return () => this.fatalListeners.delete(listener);
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.ticker);
    this.failAll(new StoppedError());
    await this.loopDone;
    await this.transport.stop();
    await this.storage.close();
    this.logger.info({}, 'raft node stopped');
  }

  // --- requests ---

  private request<K, T>(what: string, waiters: Map<K, Waiter<T>>, key: K, submit: () => void): Promise<T> {
    if (this.stopped) return Promise.reject(new StoppedError());
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(key);
        reject(new RequestTimeoutError(what, this.timeoutMs));
      }, this.timeoutMs);
      waiters.set(key, { resolve, reject, timer });
      try {
        submit();
      } catch (err) {
        clearTimeout(timer);
        waiters.delete(key);
        reject(err);
        return;
      }
      this.kick();
    });
  }

  private confChange(cc: ConfChange): Promise<void> {
    if (this.stopped) return Promise.reject(new StoppedError());
    return new Promise<void>((resolve, reject) => {
      const w: ConfWaiter = {
        type: cc.type,
        nodeId: cc.nodeId,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.confWaiters = this.confWaiters.filter((x) => x !== w);
          reject(
            new RequestTimeoutError(`membership change (type ${cc.type}, node ${cc.nodeId})`, this.timeoutMs),
          );
        }, this.timeoutMs),
      };
      try {
        this.rawNode.proposeConfChange(cc);
      } catch (err) {
        clearTimeout(w.timer);
        reject(err);
        return;
      }
      this.confWaiters.push(w);
      this.kick();
    });
  }

  private failAll(err: unknown): void {
    const all: Waiter<never>[] = [
      ...(this.proposals.values() as Iterable<Waiter<never>>),
      ...(this.reads.values() as Iterable<Waiter<never>>),
      ...this.confWaiters,
      ...this.leaderWaiters,
    ];
    this.proposals.clear();
    this.reads.clear();
    this.confWaiters = [];
    this.leaderWaiters = [];
    for (const w of all) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }

  // --- the Ready loop ---

  /** Make sure a pass of the loop runs (soon) if the core has something to hand out. */
  private kick(): void {
    // A running loop re-checks hasReady() after each advance, so nothing is lost by returning.
    if (this.processing || this.stopped) return;
    if (!this.rawNode.hasReady()) return;
    this.processing = true;
    this.loopDone = this.loop();
  }

  private async loop(): Promise<void> {
    try {
      while (!this.stopped && this.rawNode.hasReady()) {
        const rd = this.rawNode.ready();
        await this.handleReady(rd);
        this.rawNode.advance(rd);
        const settled = this.settled;
        this.settled = [];
        for (const settle of settled) settle();
        await this.maybeSnapshot();
      }
    } catch (err) {
      // What the failed Ready applied did happen: tell its waiters before failing the rest.
      const settled = this.settled;
      this.settled = [];
      for (const settle of settled) settle();
      this.fatal(err);
    } finally {
      this.processing = false;
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState && rd.softState.leader !== this.leader) this.leaderChanged(rd.softState.leader);
    // A leader's appends may travel while its own disk write is in progress (§10.2.1).
    const early = this.rawNode.leaderMaySendEarly(rd);
    if (early && rd.messages.length > 0) this.transport.send(rd.messages);
    // 1. Durable first: nothing below may promise peers what the disk does not hold yet.
    if (rd.snapshot || rd.entries.length > 0 || rd.hardState) {
      await this.storage.save({
        hardState: rd.hardState,
        entries: rd.entries,
        snapshot: rd.snapshot,
        sync: rd.mustSync,
      });
    }
    // 2. Then the network.
    if (!early && rd.messages.length > 0) this.transport.send(rd.messages);
    // 3. Then the state machine, in log order.
    if (rd.snapshot) await this.restore(rd.snapshot);
    for (const e of rd.committedEntries) await this.applyEntry(e);
    // 4. Reads wait until what they must see is applied.
    for (const rs of rd.readStates) {
      const w = this.reads.get(ctxKey(rs.requestCtx));
      if (w) w.index = rs.index;
    }
    this.releaseReads();
  }

  private async restore(snap: Snapshot): Promise<void> {
    const { peers, data } = decodeSnapshotData(snap.data);
    for (const p of peers) this.learnAddress(p.id, p.address);
    await this.sm.restore(data);
    this.applied = snap.metadata.index;
    this.snapshotIndex = snap.metadata.index;
    const cs = snap.metadata.confState;
    this.appliedConf = { voters: [...cs.voters], learners: [...cs.learners] };
    this.logger.info(
      { index: snap.metadata.index, term: snap.metadata.term },
      'restored a snapshot from the leader',
    );
  }

  private async applyEntry(e: Entry): Promise<void> {
    if (e.index <= this.applied) return;
    if (e.type === EntryType.ConfChange) {
      this.applyConfChange(decodeConfChange(e.data), e.index);
    } else if (e.data.length > 0) {
      const { tag, payload } = decodeProposal(e.data);
      await this.sm.apply({ ...e, data: payload });
      if (tag.nodeId === this.id && tag.incarnation === this.incarnation) {
        const w = this.proposals.get(tag.seq);
        if (w) {
          this.proposals.delete(tag.seq);
          clearTimeout(w.timer);
          this.settled.push(() => w.resolve(e.index));
        }
      }
    }
    this.applied = e.index;
  }

  private applyConfChange(cc: ConfChange, index: number): void {
    this.appliedConf = applyToConfState(this.appliedConf, cc);
    if (cc.type === ConfChangeType.RemoveNode) {
      if (cc.nodeId === this.id) {
        this.logger.warn({ index }, 'this node was removed from the cluster');
      } else {
        this.addresses.delete(cc.nodeId);
        // The leader's last word to the removed member (its removal, committed) goes out with
        // the next Ready: keep the link a little longer so it is not dropped on the way.
        const id = cc.nodeId;
        const linger = setTimeout(() => {
          const conf = this.appliedConf;
          if (!conf.voters.includes(id) && !conf.learners.includes(id)) this.transport.removePeer(id);
        }, REMOVED_PEER_LINGER_MS);
        linger.unref();
      }
    } else if (cc.context.length > 0) {
      this.learnAddress(cc.nodeId, textDecoder.decode(cc.context));
    }
    this.logger.info(
      { index, type: cc.type, nodeId: cc.nodeId, conf: this.appliedConf },
      'applied a membership change',
    );
    const done = this.confWaiters.filter((w) => w.type === cc.type && w.nodeId === cc.nodeId);
    if (done.length === 0) return;
    this.confWaiters = this.confWaiters.filter((w) => !done.includes(w));
    for (const w of done) {
      clearTimeout(w.timer);
      this.settled.push(() => w.resolve());
    }
  }

  private learnAddress(id: NodeId, address: string): void {
    if (address === '') return;
    this.addresses.set(id, address);
    if (id !== this.id) this.transport.addPeer(id, address);
  }

  private releaseReads(): void {
    for (const [key, w] of this.reads) {
      if (w.index === undefined || w.index > this.applied) continue;
      this.reads.delete(key);
      clearTimeout(w.timer);
      this.settled.push(() => w.resolve());
    }
  }

  private leaderChanged(leader: NodeId): void {
    this.leader = leader;
    this.leaderUnreachable = false;
    this.logger.info({ leader }, leader === NONE ? 'lost the leader' : 'new leader');
    for (const l of this.leaderListeners) {
      try {
        l(leader);
      } catch (err) {
        this.logger.warn({ err }, 'leader change listener threw');
      }
    }
    const done = this.leaderWaiters.filter((w) => w.to === leader);
    this.leaderWaiters = this.leaderWaiters.filter((w) => w.to !== leader);
    for (const w of done) {
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  /** Snapshot the state machine every `snapshotEntries` applied entries; keep `catchUpEntries` behind it. */
  private async maybeSnapshot(): Promise<void> {
    if (this.applied - this.snapshotIndex < this.snapshotEntries) return;
    const index = this.applied;
    const data = encodeSnapshotData(this.addresses, await this.sm.snapshot());
    // The membership as of `index` (the core's current one may already include later changes).
    await this.storage.createSnapshot(index, this.appliedConf, data);
    this.snapshotIndex = index;
    const compactTo = index - this.catchUpEntries;
    if (compactTo >= this.storage.firstIndex()) await this.storage.compact(compactTo);
    this.logger.info({ index, bytes: data.length, firstIndex: this.storage.firstIndex() }, 'took a snapshot');
  }

  private fatal(err: unknown): void {
    this.logger.error({ err }, 'raft node failed; stopping');
    this.failAll(err);
    void this.stop().catch(() => {});
    if (this.fatalListeners.size === 0) {
      queueMicrotask(() => {
        throw err;
      });
      return;
    }
    for (const l of this.fatalListeners) l(err);
  }
}

/**
 * Open the data directory, bootstrap or restart the core, restore the state machine from
 * the stored snapshot (committed entries after it are replayed through apply()), start the
 * transport and the tick timer. Fails with DataDirMismatchError for another node's directory
 * and ConfigError for inconsistent options.
 */
export async function createRaftNode(opts: RaftNodeOptions): Promise<RaftNode> {
  const { id, peers = [], join = false } = opts;
  const logger = opts.logger?.child?.({ component: 'raft', node: id }) ?? opts.logger ?? silentLogger;
  const tickMs = opts.tickMs ?? 100;
  if (!(tickMs > 0)) throw new ConfigError(`tickMs must be positive, got ${tickMs}`);
  const storage = await openLevelDBStorage(opts.dataDir, { clusterId: opts.clusterId, nodeId: id });
  try {
    const addresses = new Map<NodeId, string>();
    for (const p of peers) addresses.set(p.id, p.address);
    if (storage.isEmpty() && !join) {
      if (!peers.some((p) => p.id === id)) {
        throw new ConfigError(`a new cluster needs its initial voters in peers, this node (${id}) included`);
      }
      const contexts = new Map(peers.map((p) => [p.id, textEncoder.encode(p.address)]));
      const { entries, hardState } = bootstrapState(
        peers.map((p) => p.id),
        contexts,
      );
      await storage.save({ entries, hardState });
      logger.info({ voters: peers.map((p) => p.id) }, 'bootstrapped a new cluster');
    }
    const snap = storage.snapshot();
    if (snap.metadata.index > 0) {
      const { peers: known, data } = decodeSnapshotData(snap.data);
      for (const p of known) if (!addresses.has(p.id)) addresses.set(p.id, p.address);
      await opts.stateMachine.restore(data);
    }
    const rawNode = new RawNode({
      id,
      storage,
      electionTick: opts.electionTick ?? 10,
      heartbeatTick: opts.heartbeatTick ?? 1,
      applied: snap.metadata.index,
      random: opts.random ?? createRandom(randomInt(2 ** 32)),
      logger,
    });
    const node = new Node(id, rawNode, storage, opts.transport, opts.stateMachine, addresses, logger, opts);
    await node.start(tickMs);
    logger.info({ snapshotIndex: snap.metadata.index, lastIndex: storage.lastIndex() }, 'raft node started');
    return node;
  } catch (err) {
    await storage.close();
    throw err;
  }
}
