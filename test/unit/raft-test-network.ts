// A tiny in-memory cluster of RawNodes for the core's unit tests, after etcd's `network` in
// raft_test.go. Every node is a real RawNode over a MemoryStorage (which plays the disk), and
// every Ready is handled in the order its doc comment gives: persist, then send, then apply,
// then advance. Nothing here uses timers or Math.random(): time is `tick()`, faults are
// `drop`/`cut`/`isolate`, and the same seed replays the same run.

import type { RaftOptions } from '../../pkg/raft/raft.js';
import { Raft } from '../../pkg/raft/raft.js';
import { createRandom } from '../../pkg/raft/rand.js';
import { bootstrapState, RawNode } from '../../pkg/raft/raw-node.js';
import { MemoryStorage } from '../../pkg/raft/storage.js';
import type {
  ConfChange,
  Entry,
  HardState,
  Message,
  NodeId,
  ReadState,
  Ready,
  Snapshot,
  StateRole,
} from '../../pkg/raft/types.js';
import { EMPTY, EntryType, MessageType, message, StateRole as Role } from '../../pkg/raft/types.js';

/** Options shared by every node of a test cluster; `random` is derived from the seed per node. */
export type NodeOptions = Partial<Omit<RaftOptions, 'id' | 'storage'>>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function enc(s: string): Uint8Array {
  return encoder.encode(s);
}

export function dec(b: Uint8Array): string {
  return decoder.decode(b);
}

/** noUncheckedIndexedAccess helper: a test that reaches a missing value should fail loudly. */
export function must<T>(v: T | undefined | null, what = 'value'): T {
  if (v === undefined || v === null) throw new Error(`expected a ${what}`);
  return v;
}

export function entry(index: number, term: number, data: Uint8Array = EMPTY): Entry {
  return { index, term, type: EntryType.Normal, data };
}

/** `[index, term]` pairs: the shape most log assertions compare. */
export function shape(ents: Entry[]): [number, number][] {
  return ents.map((e) => [e.index, e.term]);
}

/**
 * A MemoryStorage as a freshly bootstrapped member of `voters` would persist it, followed by
 * one entry per element of `extraTerms` (with that term), as if written by earlier leaders.
 * The hard state's term defaults to the last term in the log; commit to the bootstrap entries.
 */
export function bootstrappedStorage(
  voters: NodeId[],
  extraTerms: number[] = [],
  hs: Partial<HardState> = {},
): MemoryStorage {
  const { entries, hardState } = bootstrapState(voters);
  const extra = extraTerms.map((term, i) => entry(entries.length + i + 1, term, enc(`t${term}#${i}`)));
  const storage = new MemoryStorage();
  storage.append([...entries, ...extra]);
  const lastTerm = extraTerms.length > 0 ? Math.max(hardState.term, ...extraTerms) : hardState.term;
  storage.setHardState({ ...hardState, term: lastTerm, ...hs });
  return storage;
}

/** One member: a RawNode, its storage, and everything the application saw. */
export class TestNode {
  raw: RawNode;
  /** Committed entries handed to the application, in order (across restarts). */
  readonly applied: Entry[] = [];
  readonly readStates: ReadState[] = [];
  /** Snapshots the application restored from, in order. */
  readonly snapshots: Snapshot[] = [];
  /** Every Ready handled, for tests of the Ready contract. */
  readonly readys: Ready[] = [];
  appliedIndex: number;

  constructor(
    readonly id: NodeId,
    readonly storage: MemoryStorage,
    private readonly opts: NodeOptions = {},
  ) {
    this.appliedIndex = storage.snapshot().metadata.index;
    this.raw = new RawNode({ random: createRandom(id), ...opts, id, storage });
  }

  /**
   * Handle one Ready in the documented order. `send` is called after persisting and before
   * applying, with the Ready, so a caller can check what was durable when each message left.
   */
  processReady(send?: (rd: Ready) => void): Ready {
    const rd = this.raw.ready();
    this.readys.push(rd);
    // 1. persist: snapshot, entries, hard state.
    if (rd.snapshot) this.storage.applySnapshot(rd.snapshot);
    this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    // 2. send.
    send?.(rd);
    // 3. apply.
    if (rd.snapshot) {
      this.snapshots.push(rd.snapshot);
      this.appliedIndex = rd.snapshot.metadata.index;
    }
    for (const e of rd.committedEntries) {
      this.applied.push(e);
      this.appliedIndex = e.index;
    }
    this.readStates.push(...rd.readStates);
    // 4. advance.
    this.raw.advance(rd);
    return rd;
  }

  /** Crash and come back: the MemoryStorage is the disk, everything else is rebuilt. */
  restart(opts: NodeOptions = {}, keepApplied = true): void {
    this.raw = new RawNode({
      random: createRandom(this.id + 7919),
      ...this.opts,
      ...(keepApplied ? { applied: this.appliedIndex } : {}),
      ...opts,
      id: this.id,
      storage: this.storage,
    });
  }

  /** Data of the normal, non-empty entries applied so far. */
  appliedData(): string[] {
    return this.applied
      .filter((e) => e.type === EntryType.Normal && e.data.length > 0)
      .map((e) => dec(e.data));
  }
}

export interface NetworkOptions extends NodeOptions {
  /** Seeds election timeouts and drop decisions. */
  seed?: number;
  /** Start some nodes from a prepared log instead of a fresh bootstrap. */
  storages?: Map<NodeId, MemoryStorage>;
  /**
   * Act like a streaming transport: tell the sender reportSnapshot(ok) once a Snap was
   * delivered, and reportSnapshot(false) when the network lost it. Off by default, so tests
   * can look at a leader with a snapshot in flight.
   */
  reportSnapshots?: boolean;
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}->${to}`;
}

/**
 * An in-memory network of TestNodes. Messages are delivered in FIFO order, one at a time; after
 * each delivery the receiving node's Readys are handled at once, so causality is preserved.
 */
export class Network {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Every message a node emitted, including those the network then dropped. */
  readonly sent: Message[] = [];
  /** Every message stepped into a node, in delivery order. */
  readonly delivered: Message[] = [];
  /** Return false to drop a message after the drop/cut rules passed it (and maybe keep it). */
  filter: ((m: Message) => boolean) | undefined;
  /** Called after a Ready was persisted and before its messages leave. */
  onReady: ((node: TestNode, rd: Ready) => void) | undefined;

  private readonly dropRates = new Map<string, number>();
  private readonly ignored = new Set<MessageType>();
  private readonly down = new Set<NodeId>();
  private readonly queue: Message[] = [];
  private readonly snapshotReports: { from: NodeId; to: NodeId; ok: boolean }[] = [];
  private readonly rand: () => number;
  private readonly seed: number;

  constructor(
    voters: NodeId[],
    private readonly opts: NetworkOptions = {},
  ) {
    this.seed = opts.seed ?? 1;
    this.rand = createRandom(this.seed * 65599 + 17);
    for (const id of voters) {
      this.addNode(id, opts.storages?.get(id) ?? bootstrappedStorage(voters));
    }
    this.settle();
  }

  private nodeOptions(id: NodeId): NodeOptions {
    const { seed: _seed, storages: _storages, reportSnapshots: _report, ...rest } = this.opts;
    return { random: createRandom((this.seed * 7919 + id * 104729) >>> 0), ...rest };
  }

  /** A new machine (empty storage by default): it joins once a conf change adds it. */
  addNode(id: NodeId, storage: MemoryStorage = new MemoryStorage(), opts: NodeOptions = {}): TestNode {
    const n = new TestNode(id, storage, { ...this.nodeOptions(id), ...opts });
    this.nodes.set(id, n);
    return n;
  }

  node(id: NodeId): TestNode {
    return must(this.nodes.get(id), `node ${id}`);
  }

  raw(id: NodeId): RawNode {
    return this.node(id).raw;
  }

  ids(): NodeId[] {
    return [...this.nodes.keys()].sort((a, b) => a - b);
  }

  // --- faults -------------------------------------------------------------------------------

  /** Drop messages from `from` to `to` with probability `rate` (1 drops all). */
  drop(from: NodeId, to: NodeId, rate: number): void {
    this.dropRates.set(linkKey(from, to), rate);
  }

  /** Both directions between a and b. */
  cut(a: NodeId, b: NodeId): void {
    this.drop(a, b, 1);
    this.drop(b, a, 1);
  }

  /** Cut `id` off from every other node (it keeps running and ticking). */
  isolate(id: NodeId): void {
    for (const other of this.ids()) if (other !== id) this.cut(id, other);
  }

  /** Drop every message of this type. */
  ignore(type: MessageType): void {
    this.ignored.add(type);
  }

  /** Heal every drop, cut, isolation and ignore (not the filter). */
  recover(): void {
    this.dropRates.clear();
    this.ignored.clear();
  }

  /** The node stops: it neither ticks nor receives. Its storage survives for restart(). */
  stop(id: NodeId): void {
    this.down.add(id);
  }

  /** Bring a node back with a new RawNode over its storage. */
  restart(id: NodeId, opts: NodeOptions = {}, keepApplied = true): TestNode {
    this.down.delete(id);
    const n = this.node(id);
    n.restart(opts, keepApplied);
    return n;
  }

  // --- driving ------------------------------------------------------------------------------

  /** Deliver `msgs` (subject to the fault rules), then everything they cause, until quiet. */
  send(msgs: Message[]): void {
    for (const m of msgs) this.enqueue(m);
    this.settle();
  }

  /**
   * Step several messages into one node before it handles its next Ready, as a runner does
   * when they arrive while it is still persisting the previous one; then settle.
   */
  deliverBatch(msgs: Message[]): void {
    for (const m of msgs) {
      const n = this.nodes.get(m.to);
      if (!n || this.down.has(m.to)) continue;
      this.delivered.push(m);
      n.raw.step(structuredClone(m));
    }
    this.settle();
  }

  /** Handle every pending Ready and deliver every queued message until nothing moves. */
  settle(): void {
    let budget = 200_000;
    for (;;) {
      let busy = false;
      for (const id of this.ids()) {
        if (this.down.has(id)) continue;
        const n = this.node(id);
        while (n.raw.hasReady()) {
          this.handleReady(n);
          busy = true;
        }
      }
      for (let m = this.queue.shift(); m !== undefined; m = this.queue.shift()) {
        if (--budget < 0) throw new Error('network did not settle (message storm?)');
        this.deliver(m);
        busy = true;
      }
      // Reported between Readys, never while one is being handled.
      for (let r = this.snapshotReports.shift(); r !== undefined; r = this.snapshotReports.shift()) {
        if (this.down.has(r.from)) continue;
        this.raw(r.from).reportSnapshot(r.to, r.ok);
        busy = true;
      }
      if (!busy) return;
    }
  }

  /** Advance logical time: each running node (or only `ids`) ticks once per round. */
  tick(rounds = 1, ids?: NodeId[]): void {
    for (let i = 0; i < rounds; i++) {
      for (const id of ids ?? this.ids()) {
        if (!this.down.has(id)) this.raw(id).tick();
      }
      this.settle();
    }
  }

  /** Tick until `pred` holds; returns the number of rounds, or throws after `max`. */
  tickUntil(pred: () => boolean, max = 500): number {
    for (let i = 1; i <= max; i++) {
      this.tick();
      if (pred()) return i;
    }
    throw new Error(`condition not reached within ${max} ticks`);
  }

  campaign(id: NodeId): void {
    this.raw(id).campaign();
    this.settle();
  }

  propose(id: NodeId, data: string | Uint8Array): void {
    this.raw(id).propose(typeof data === 'string' ? enc(data) : data);
    this.settle();
  }

  proposeConfChange(id: NodeId, cc: Omit<ConfChange, 'context'> & { context?: Uint8Array }): void {
    this.raw(id).proposeConfChange({ context: EMPTY, ...cc });
    this.settle();
  }

  // --- observing ----------------------------------------------------------------------------

  /** The running leader with the highest term, if any. */
  leader(): NodeId | undefined {
    let best: NodeId | undefined;
    let bestTerm = -1;
    for (const id of this.ids()) {
      if (this.down.has(id)) continue;
      const st = this.raw(id).status();
      if (st.role === Role.Leader && st.term > bestTerm) {
        best = id;
        bestTerm = st.term;
      }
    }
    return best;
  }

  role(id: NodeId): StateRole {
    return this.raw(id).status().role;
  }

  term(id: NodeId): number {
    return this.raw(id).status().term;
  }

  /** `[index, term]` of every entry node `id` holds (from its first index). */
  logShape(id: NodeId): [number, number][] {
    return shape(this.raw(id).debugLog().entries);
  }

  /** Messages emitted (sent: true) or delivered since `mark`, matching the given fields. */
  since(mark: number, match: Partial<Pick<Message, 'type' | 'from' | 'to'>> = {}, sent = false): Message[] {
    const list = sent ? this.sent : this.delivered;
    return list
      .slice(mark)
      .filter(
        (m) =>
          (match.type === undefined || m.type === match.type) &&
          (match.from === undefined || m.from === match.from) &&
          (match.to === undefined || m.to === match.to),
      );
  }

  // --- internals ----------------------------------------------------------------------------

  private handleReady(n: TestNode): void {
    n.processReady((rd) => {
      this.onReady?.(n, rd);
      for (const m of rd.messages) {
        this.sent.push(m);
        this.enqueue(m);
      }
    });
  }

  private enqueue(m: Message): void {
    if (this.ignored.has(m.type) || this.dropped(m) || (this.filter && !this.filter(m))) {
      this.reportSnapshot(m, false);
      return;
    }
    // A real transport serializes: never let a receiver share objects with the sender.
    this.queue.push(structuredClone(m));
  }

  private dropped(m: Message): boolean {
    const rate = this.dropRates.get(linkKey(m.from, m.to)) ?? 0;
    return rate > 0 && this.rand() < rate;
  }

  private deliver(m: Message): void {
    const n = this.nodes.get(m.to);
    if (!n || this.down.has(m.to)) {
      this.reportSnapshot(m, false);
      return;
    }
    this.delivered.push(m);
    n.raw.step(m);
    while (n.raw.hasReady()) this.handleReady(n);
    this.reportSnapshot(m, true);
  }

  private reportSnapshot(m: Message, ok: boolean): void {
    if (m.type !== MessageType.Snap || !this.opts.reportSnapshots) return;
    this.snapshotReports.push({ from: m.from, to: m.to, ok });
  }
}

// --- driving a bare Raft ------------------------------------------------------------------------

/** A Raft state machine over `storage`, without RawNode: for stepping messages one by one. */
export function newRaft(id: NodeId, storage: MemoryStorage, opts: NodeOptions = {}): Raft {
  return new Raft({ random: createRandom(id), ...opts, id, storage });
}

/** The messages `r` produced since the last call. */
export function takeMsgs(r: Raft): Message[] {
  const out = r.msgs;
  r.msgs = [];
  return out;
}

/** Make `r` leader by campaigning and granting it every (pre-)vote it asks for. */
export function electRaft(r: Raft): void {
  r.step(message({ type: MessageType.Hup, from: r.id }));
  for (let round = 0; round < 3 && r.state !== Role.Leader; round++) {
    for (const m of takeMsgs(r)) {
      if (m.type !== MessageType.PreVote && m.type !== MessageType.Vote) continue;
      const resp = m.type === MessageType.PreVote ? MessageType.PreVoteResp : MessageType.VoteResp;
      r.step(message({ type: resp, from: m.to, to: r.id, term: m.term }));
    }
  }
  if (r.state !== Role.Leader) throw new Error(`node ${r.id} did not become leader`);
  takeMsgs(r);
}

/** Every peer acknowledges the leader's whole log, so all are in Replicate. */
export function ackAll(r: Raft): void {
  for (const id of r.tracker.progress.keys()) {
    if (id === r.id) continue;
    r.step(
      message({ type: MessageType.AppResp, from: id, to: r.id, term: r.term, index: r.log.lastIndex() }),
    );
  }
  takeMsgs(r);
}

/** A message from a peer, with the fields a test cares about. */
export function msg(fields: Partial<Message> & Pick<Message, 'type' | 'from' | 'to'>): Message {
  return message(fields);
}
