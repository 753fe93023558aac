import { createRandom } from '../../pkg/raft/rand.js';
import { bootstrapState, decodeConfChange } from '../../pkg/raft/raw-node.js';
import { SnapshotAssembler } from '../../pkg/raft/snapshot-chunks.js';
import type { Entry, Message, NodeId, Ready } from '../../pkg/raft/types.js';
import { ConfChangeType, EntryType, StateRole } from '../../pkg/raft/types.js';
import { ClusterChecker, SimViolation } from './checker.js';
import { encodeCommand, KvStateMachine } from './kv.js';
import type { Operation } from './linearizability.js';
import { checkLinearizable } from './linearizability.js';
import type { Delivery } from './network.js';
import { SimNetwork } from './network.js';
import { emptyDisk, SimNode } from './sim-node.js';

/**
 * Deliberate bugs, to show that the checks catch them:
 *  - send-before-sync: messages leave before the Ready is fsynced (breaks the Ready contract);
 *  - stale-read: reads served from local state without ReadIndex.
 */
export type SimBug = 'send-before-sync' | 'stale-read';

export interface SimOptions {
  seed: number;
  /** Virtual time units to run; a tick is TICK units. Faults stop at 70%, then liveness. */
  duration?: number;
  bug?: SimBug;
  verbose?: boolean;
  log?: (line: string) => void;
}

export interface SimResult {
  seed: number;
  voters: number;
  violation?: string;
  elections: number;
  committed: number;
  snapshots: number;
  snapshotsInstalled: number;
  confChanges: number;
  transfers: number;
  crashes: number;
  partitions: number;
  readsOk: number;
  writesOk: number;
  ops: number;
  livenessTime?: number;
  trace: string;
}

const TICK = 10;
const ELECTION_TICK = 10;
const CLIENT_TIMEOUT = 400;
const LIVENESS_BOUND = 4000;
const KEYS = ['x', 'y', 'z'];
/** As configured in SimNode. */
const LEARNER_MAX_LAG = 10;

interface PendingOp {
  op: Operation;
  node: NodeId;
  /** The incarnation asked: if it crashes, the answer never comes. */
  nodeObj: SimNode;
  deadline: number;
  seq: number;
}

/** FNV-1a over the trace, so "the same seed replays exactly" can be checked cheaply. */
function fnv(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h;
}

export class Simulation {
  private readonly rand: () => number;
  private readonly nodes = new Map<NodeId, SimNode>();
  /** Disks of crashed machines, waiting for a restart. */
  private readonly crashed = new Map<NodeId, SimNode>();
  private readonly removed = new Set<NodeId>();
  private readonly incarnations = new Map<NodeId, number>();
  private readonly assemblers = new Map<number, SnapshotAssembler>();
  private readonly net: SimNetwork;
  private readonly checker: ClusterChecker;
  private readonly history: Operation[] = [];
  private readonly pending = new Map<number, PendingOp>();
  private readonly clientSeq = new Map<number, number>();
  private now = 0;
  private nextNodeId: number;
  private nextValue = 1;
  private nextOpId = 1;
  private readCtx = 1;
  private traceHash = 2166136261;
  private readonly result: SimResult;
  private readonly duration: number;
  private readonly faultEnd: number;
  private readonly clients: number;
  private readonly snapInterval: number;
  private readonly snapKeep: number;
  private readonly crashMidReadyRate: number;
  private probe: { value: string; appliedBy: Set<NodeId> } | undefined;
  private lastProbeAt = 0;

  constructor(private readonly opts: SimOptions) {
    this.rand = createRandom(opts.seed);
    this.duration = opts.duration ?? 6000;
    this.faultEnd = Math.floor(this.duration * 0.7);
    const voters = this.rand() < 0.5 ? 3 : 5;
    this.clients = 2 + Math.floor(this.rand() * 4);
    this.snapInterval = 8 + Math.floor(this.rand() * 40);
    this.snapKeep = Math.floor(this.rand() * 6);
    this.crashMidReadyRate = opts.bug === 'send-before-sync' ? 0.02 : 0.002;
    const maxDelay = 2 + Math.floor(this.rand() * 30);
    this.net = new SimNetwork(
      this.rand,
      { dropRate: this.rand() * 0.1, dupRate: this.rand() * 0.05, minDelay: 1, maxDelay },
      32 + Math.floor(this.rand() * 200),
    );
    this.checker = new ClusterChecker();
    this.result = {
      seed: opts.seed,
      voters,
      elections: 0,
      committed: 0,
      snapshots: 0,
      snapshotsInstalled: 0,
      confChanges: 0,
      transfers: 0,
      crashes: 0,
      partitions: 0,
      readsOk: 0,
      writesOk: 0,
      ops: 0,
      trace: '',
    };
    const ids = Array.from({ length: voters }, (_, i) => i + 1);
    this.nextNodeId = voters + 1;
    const boot = bootstrapState(ids);
    for (const id of ids) {
      this.startNode(id, { ...emptyDisk(), hardState: boot.hardState, entries: boot.entries });
    }
  }

  private log(line: string): void {
    this.traceHash = fnv(this.traceHash, `${this.now} ${line}\n`);
    if (this.opts.verbose) (this.opts.log ?? console.log)(`[t=${this.now}] ${line}`);
  }

  private startNode(id: NodeId, disk: ReturnType<typeof emptyDisk>): SimNode {
    const inc = (this.incarnations.get(id) ?? 0) + 1;
    this.incarnations.set(id, inc);
    const node = new SimNode(id, disk, this.opts.seed, inc, ELECTION_TICK);
    this.nodes.set(id, node);
    this.checker.nodeStarted(node);
    return node;
  }

  run(): SimResult {
    try {
      for (this.now = 0; this.now < this.duration; this.now++) this.step();
      this.finish();
    } catch (e) {
      if (e instanceof SimViolation || (e instanceof Error && e.name === 'RaftInvariantError')) {
        this.result.violation = `${e.message}`;
        this.log(`VIOLATION ${e.message}`);
      } else {
        throw e;
      }
    }
    this.result.elections = this.checker.elections;
    this.result.committed = this.checker.committedCount();
    this.result.trace = this.traceHash.toString(16);
    return this.result;
  }

  private step(): void {
    for (const d of this.net.due(this.now)) this.deliver(d);
    for (const node of this.nodes.values()) {
      if ((this.now + node.id) % TICK === 0) node.raw.tick();
    }
    if (this.now < this.faultEnd) this.injectFaults();
    else if (this.now === this.faultEnd) this.heal();
    this.runClients();
    for (const node of [...this.nodes.values()]) this.drain(node);
    this.expireOps();
    if (this.now % 25 === 0) this.checker.checkLogs([...this.nodes.values()]);
    if (this.now > this.faultEnd) this.checkLiveness();
  }

  // --- network ---------------------------------------------------------------------------

  private deliver(d: Delivery): void {
    switch (d.kind) {
      case 'message': {
        const node = this.nodes.get(d.m.to);
        if (!node || !this.net.linkUp(d.m.from, d.m.to)) return;
        node.raw.step(d.m);
        return;
      }
      case 'unreachable':
        this.nodes.get(d.from)?.raw.reportUnreachable(d.to);
        return;
      case 'snapshot-status':
        this.nodes.get(d.from)?.raw.reportSnapshot(d.to, d.ok);
        return;
      case 'chunk':
        this.deliverChunk(d);
        return;
    }
  }

  private deliverChunk(d: Extract<Delivery, { kind: 'chunk' }>): void {
    if (this.net.streamFailed(d.stream)) return;
    const node = this.nodes.get(d.to);
    if (!node || this.net.chunkLost(d.from, d.to)) {
      this.assemblers.delete(d.stream);
      this.net.failStream(this.now, d.stream, d.from, d.to);
      return;
    }
    let asm = this.assemblers.get(d.stream);
    if (!asm) {
      asm = new SnapshotAssembler();
      this.assemblers.set(d.stream, asm);
    }
    const m = asm.push(d.chunk);
    if (m) {
      this.assemblers.delete(d.stream);
      this.log(`${d.to} received snapshot@${m.snapshot?.metadata.index} from ${d.from}`);
      node.raw.step(m);
      this.net.streamDone(this.now, d.from, d.to);
    }
  }

  private send(msgs: Message[]): void {
    for (const m of msgs) this.net.send(this.now, m);
  }

  // --- the Ready loop, with crashes between write and fsync ----------------------------------

  private drain(node: SimNode): void {
    for (let guard = 0; guard < 100 && this.nodes.get(node.id) === node && node.raw.hasReady(); guard++) {
      this.handleReady(node, node.raw.ready());
    }
  }

  private handleReady(node: SimNode, rd: Ready): void {
    const s = node.storage;
    // As the runner does: a leader's appends may leave before its own write (§10.2.1).
    const early = node.raw.leaderMaySendEarly(rd);
    if (early) this.send(rd.messages);
    if (rd.snapshot) s.applySnapshot(rd.snapshot);
    s.append(rd.entries);
    if (rd.hardState) s.setHardState(rd.hardState);
    if (this.opts.bug === 'send-before-sync' && !early) this.send(rd.messages);
    if (this.now < this.faultEnd && this.rand() < this.crashMidReadyRate) {
      this.crash(node, 'between write and fsync');
      return;
    }
    if (rd.mustSync) node.sync();
    if (this.opts.bug !== 'send-before-sync' && !early) this.send(rd.messages);
    this.checker.readyHandled(node, rd.entries, rd.hardState?.commit);
    this.checker.leaderAppended(node, rd.entries, LEARNER_MAX_LAG);
    if (rd.softState) this.checker.softState(node, rd.softState, this.now);
    if (rd.softState?.role === StateRole.Leader)
      this.log(`${node.id} became leader term ${node.raw.status().term}`);
    if (rd.snapshot) {
      node.kv = KvStateMachine.restore(rd.snapshot.data);
      node.applied = rd.snapshot.metadata.index;
      this.checker.snapshotInstalled(node, rd.snapshot.metadata.index);
      this.result.snapshotsInstalled++;
    }
    for (const e of rd.committedEntries) this.apply(node, e);
    for (const rs of rd.readStates) {
      const key = Buffer.from(rs.requestCtx).toString('hex');
      const r = node.pendingReads.get(key);
      if (r) r.index = rs.index;
    }
    node.raw.advance(rd);
    if (this.probe && node.kv.get('__probe__') === this.probe.value) this.probe.appliedBy.add(node.id);
    this.completeReads(node);
    this.maybeSnapshot(node);
  }

  private apply(node: SimNode, e: Entry): void {
    const first = this.checker.applied(node, e);
    node.applied = e.index;
    if (e.type === EntryType.ConfChange) {
      const cc = decodeConfChange(e.data);
      if (first && e.index > this.result.voters) {
        this.result.confChanges++;
        this.log(`conf change ${cc.type} ${cc.nodeId} committed at ${e.index}`);
      }
      // The runner shuts a removed member down; here it simply stops once it applies that.
      if (cc.type === ConfChangeType.RemoveNode) this.removed.add(cc.nodeId);
      return;
    }
    if (e.data.length === 0) return;
    const res = node.kv.apply(e.data);
    if (!res) return;
    for (const [id, p] of this.pending) {
      if (p.node === node.id && p.op.client === res.client && p.seq === res.seq && p.op.kind !== 'get') {
        p.op.ret = this.now + 0.5;
        if (p.op.kind === 'cas') p.op.output = res.output;
        this.pending.delete(id);
        this.result.writesOk++;
      }
    }
  }

  private maybeSnapshot(node: SimNode): void {
    const s = node.storage;
    if (node.applied - s.snapshot().metadata.index < this.snapInterval) return;
    s.createSnapshot(node.applied, node.raw.confState(), node.kv.snapshot());
    const compactTo = node.applied - this.snapKeep;
    if (compactTo >= s.firstIndex()) s.compact(compactTo);
    node.sync();
    this.result.snapshots++;
  }

  // --- faults ------------------------------------------------------------------------------

  private crash(node: SimNode, why: string): void {
    this.log(`crash ${node.id} (${why})`);
    this.nodes.delete(node.id);
    this.crashed.set(node.id, node);
    this.result.crashes++;
  }

  private restart(id: NodeId): void {
    const dead = this.crashed.get(id);
    if (!dead) return;
    this.crashed.delete(id);
    if (this.removed.has(id)) return;
    this.log(`restart ${id}`);
    this.startNode(id, dead.disk);
  }

  private pick<T>(xs: T[]): T | undefined {
    return xs.length === 0 ? undefined : xs[Math.floor(this.rand() * xs.length)];
  }

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      const st = n.raw.status();
      if (st.role === StateRole.Leader && (!best || st.term > best.raw.status().term)) best = n;
    }
    return best;
  }

  private injectFaults(): void {
    const r = this.rand();
    const ids = [...this.nodes.keys()];
    const all = [...ids, ...this.crashed.keys()];
    if (r < 0.004) {
      this.partition(all);
    } else if (r < 0.008) {
      if (this.net.cut.size > 0) this.log('heal partitions');
      this.net.cut.clear();
    } else if (r < 0.0105) {
      const id = this.pick(ids);
      if (id !== undefined && this.crashed.size < 2) this.crash(this.nodes.get(id) as SimNode, 'kill');
    } else if (r < 0.014) {
      const id = this.pick([...this.crashed.keys()]);
      if (id !== undefined) this.restart(id);
    } else if (r < 0.0155) {
      const lead = this.leader();
      const to = this.pick(lead ? lead.raw.status().confState.voters : []);
      if (lead && to !== undefined) {
        this.log(`transfer leadership ${lead.id} -> ${to}`);
        lead.raw.transferLeadership(to);
        this.result.transfers++;
      }
    } else if (r < 0.0175) {
      this.changeMembership();
    } else if (r < 0.0185) {
      this.net.conditions.dropRate = this.rand() * 0.2;
      this.net.conditions.dupRate = this.rand() * 0.08;
    }
  }

  private partition(ids: NodeId[]): void {
    this.net.cut.clear();
    const kind = this.pick(['minority', 'majority', 'asymmetric', 'bridge'] as const);
    const shuffled = [...ids].sort(() => this.rand() - 0.5);
    const cutBetween = (a: NodeId[], b: NodeId[], bothWays: boolean) => {
      for (const x of a) {
        for (const y of b) {
          this.net.cut.add(`${x}>${y}`);
          if (bothWays) this.net.cut.add(`${y}>${x}`);
        }
      }
    };
    const k = kind === 'minority' ? 1 : Math.floor(shuffled.length / 2);
    const side = shuffled.slice(0, Math.max(1, k));
    const rest = shuffled.slice(Math.max(1, k));
    if (kind === 'asymmetric') cutBetween(side, rest, false);
    else if (kind === 'bridge' && rest.length >= 2) {
      // One node in the middle sees both halves; the halves cannot see each other.
      cutBetween(side, rest.slice(1), true);
    } else cutBetween(side, rest, true);
    this.result.partitions++;
    this.log(`partition ${kind}: [${side}] | [${rest}]`);
  }

  private changeMembership(): void {
    const lead = this.leader();
    if (!lead) return;
    const { voters, learners } = lead.raw.status().confState;
    // Half the time through another member: followers forward proposals to the leader,
    // which must check a forwarded change exactly like a local one.
    const via =
      this.rand() < 0.5 ? lead : (this.nodes.get(this.pick([...this.nodes.keys()]) as NodeId) ?? lead);
    const r = this.rand();
    try {
      if (r < 0.4 && learners.length === 0 && voters.length < 6) {
        const id = this.nextNodeId++;
        this.startNode(id, emptyDisk());
        this.log(`propose add learner ${id} via ${via.id}`);
        via.raw.proposeConfChange({
          type: ConfChangeType.AddLearnerNode,
          nodeId: id,
          context: new Uint8Array(0),
        });
      } else if (r < 0.75 && learners.length > 0) {
        const id = learners[0] as NodeId;
        this.log(`propose promote ${id}`);
        via.raw.proposeConfChange({ type: ConfChangeType.AddNode, nodeId: id, context: new Uint8Array(0) });
      } else if (voters.length > 3) {
        const id = this.pick(voters) as NodeId;
        this.log(`propose remove ${id}`);
        via.raw.proposeConfChange({
          type: ConfChangeType.RemoveNode,
          nodeId: id,
          context: new Uint8Array(0),
        });
      }
    } catch (e) {
      this.log(`conf change refused: ${(e as Error).message}`);
    }
  }

  private heal(): void {
    this.log('heal everything');
    this.net.cut.clear();
    this.net.conditions.dropRate = 0;
    this.net.conditions.dupRate = 0;
    for (const id of [...this.crashed.keys()]) this.restart(id);
  }

  // --- clients -------------------------------------------------------------------------------

  private runClients(): void {
    const busy = new Set([...this.pending.values()].map((p) => p.op.client));
    for (let c = 1; c <= this.clients; c++) {
      if (busy.has(c) || this.rand() > 0.05) continue;
      const node = this.nodes.get(this.pick([...this.nodes.keys()]) as NodeId);
      if (!node) continue;
      this.invoke(c, node);
    }
  }

  private invoke(client: number, node: SimNode): void {
    const kind = this.pick(['put', 'get', 'get', 'cas'] as const) as 'put' | 'get' | 'cas';
    const key = this.pick(KEYS) as string;
    const seq = (this.clientSeq.get(client) ?? 0) + 1;
    this.clientSeq.set(client, seq);
    // Within one time unit, clients invoke after deliveries and before Readys complete ops.
    const op: Operation = {
      id: this.nextOpId++,
      client,
      kind,
      key,
      call: this.now + 0.25,
      ret: Number.POSITIVE_INFINITY,
    };
    const p: PendingOp = { op, node: node.id, nodeObj: node, deadline: this.now + CLIENT_TIMEOUT, seq };
    try {
      if (kind === 'get') {
        if (this.opts.bug === 'stale-read') {
          op.output = node.kv.get(key);
          op.ret = this.now + 0.3;
          this.history.push(op);
          this.result.readsOk++;
          return;
        }
        const ctx = new TextEncoder().encode(`r${this.readCtx++}`);
        node.raw.readIndex(ctx);
        node.pendingReads.set(Buffer.from(ctx).toString('hex'), { op: op.id });
      } else {
        op.value = `v${this.nextValue++}`;
        if (kind === 'cas') {
          const cur = node.kv.get(key);
          op.expect = this.rand() < 0.7 ? cur : `v${Math.floor(this.rand() * this.nextValue)}`;
        }
        const cmd = { c: client, s: seq, op: kind, k: key, v: op.value, e: op.expect ?? null };
        node.raw.propose(encodeCommand(cmd));
      }
    } catch {
      // Refused at once (no leader known): it never entered the log.
      return;
    }
    this.history.push(op);
    this.pending.set(op.id, p);
    this.result.ops++;
  }

  private completeReads(node: SimNode): void {
    for (const [key, r] of node.pendingReads) {
      if (r.index === undefined || node.applied < r.index) continue;
      node.pendingReads.delete(key);
      const p = this.pending.get(r.op);
      if (!p) continue;
      p.op.output = node.kv.get(p.op.key);
      p.op.ret = this.now + 0.5;
      this.pending.delete(r.op);
      this.result.readsOk++;
    }
  }

  /** A client that hears nothing gives up: the outcome stays unknown (ret = Infinity). */
  private expireOps(): void {
    for (const [id, p] of this.pending) {
      const gone = this.nodes.get(p.node) !== p.nodeObj;
      if (this.now < p.deadline && !gone) continue;
      this.pending.delete(id);
    }
  }

  // --- liveness and the end ----------------------------------------------------------------

  private members(): NodeId[] {
    const lead = this.leader();
    if (!lead) return [];
    const cs = lead.raw.status().confState;
    return [...cs.voters, ...cs.learners].filter((id) => this.nodes.has(id));
  }

  private checkLiveness(): void {
    if (this.result.livenessTime !== undefined) return;
    for (const id of [...this.removed]) {
      const n = this.nodes.get(id);
      if (n) {
        this.nodes.delete(id);
        this.log(`stop removed member ${id}`);
      }
    }
    const lead = this.leader();
    if (this.probe) {
      const members = this.members();
      if (lead && members.length > 0 && members.every((id) => this.probe?.appliedBy.has(id))) {
        this.result.livenessTime = this.now - this.faultEnd;
        this.log(`live: probe applied by [${members}] ${this.result.livenessTime} after healing`);
        return;
      }
    }
    if (lead && this.now - this.lastProbeAt >= 200) {
      this.lastProbeAt = this.now;
      const value = `p${this.now}`;
      this.probe = { value, appliedBy: new Set() };
      try {
        lead.raw.propose(encodeCommand({ c: 0, s: this.now, op: 'put', k: '__probe__', v: value }));
      } catch {
        this.probe = undefined;
      }
    }
    if (this.now - this.faultEnd > LIVENESS_BOUND) {
      throw new SimViolation(
        `liveness: no leader committed a proposal on every member within ${LIVENESS_BOUND} after healing`,
      );
    }
  }

  private finish(): void {
    if (this.result.livenessTime === undefined) {
      throw new SimViolation(
        `liveness: cluster did not recover within ${this.duration - this.faultEnd} after healing`,
      );
    }
    this.checker.checkLogs([...this.nodes.values()]);
    const res = checkLinearizable(this.history);
    if (!res.ok)
      throw new SimViolation(`linearizability: ${res.explanation ?? 'history is not linearizable'}`);
  }
}

export function runSeed(opts: SimOptions): SimResult {
  return new Simulation(opts).run();
}
