// The store as a cluster member serves it: commands go through Raft (pkg/raft runner) and
// come back applied by StoreStateMachine on every member; reads wait for a ReadIndex barrier
// unless serializable. Whatever node a request reaches, writes are forwarded to the leader
// by Raft itself, and the answer comes from this node's own apply.
//
//   put ─► encodeCommand ─► raft.propose ─► (log, quorum) ─► apply everywhere
//                                             └─► this node: takeResult(requestId) ─► reply

import { randomBytes } from 'node:crypto';
import { DropReason, ProposalDroppedError, RaftError, RaftErrorCode } from '../raft/errors.js';
import { createRaftNode, type RaftNode, type RaftNodeOptions } from '../raft/runner.js';
import { NONE, StateRole } from '../raft/types.js';
import { type CommandOf, type CommandResponses, type CommandType, encodeCommand } from './commands.js';
import { GrpcCode, noLeader, requestTimeout, StoreError, StoreErrorCode, stopped } from './errors.js';
import { type StoreLogger, StoreStateMachine } from './state-machine.js';
import { StoreFront } from './store-front.js';
import type { KV, LeaseKeepAliveResponse } from './types.js';

export interface ReplicatedStoreOptions {
  /** Everything the Raft runner needs except the state machine, which this store provides. */
  raft: Omit<RaftNodeOptions, 'stateMachine'>;
  clusterId: string;
  /** How this member is named in response headers (etcd shows member ids in hex). */
  memberId: string;
  logger?: StoreLogger;
  leaseCheckIntervalMs?: number;
  maxRequestBytes?: number;
}

export interface ReplicatedStore extends KV {
  readonly raft: RaftNode;
  readonly stateMachine: StoreStateMachine;
}

/** Open (or create) this member's data and start serving; resolves once Raft is running. */
export async function createReplicatedStore(options: ReplicatedStoreOptions): Promise<ReplicatedStore> {
  const store = new ReplicatedStoreImpl(options);
  await store.start();
  return store;
}

/** Raft's refusals, in the store's catalogue: clients retry UNAVAILABLE. */
export function storeErrorFromRaft(err: unknown): unknown {
  if (err instanceof ProposalDroppedError) {
    if (err.reason === DropReason.NoLeader) return noLeader();
    return new StoreError(StoreErrorCode.NoLeader, GrpcCode.Unavailable, `etcdserver: ${err.reason}; retry`);
  }
  if (err instanceof RaftError) {
    if (err.code === RaftErrorCode.Timeout) return requestTimeout();
    if (err.code === RaftErrorCode.Stopped) return stopped();
  }
  return err;
}

class ReplicatedStoreImpl extends StoreFront implements ReplicatedStore {
  readonly stateMachine: StoreStateMachine;
  private node: RaftNode | undefined;
  private readonly incarnation = randomBytes(4).toString('hex');
  private seq = 0;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly options: ReplicatedStoreOptions) {
    const { clusterId, memberId } = options;
    super({
      header: (revision) => ({ clusterId, memberId, revision, raftTerm: this.node?.term() ?? 0 }),
      logger: options.logger,
      leaseCheckIntervalMs: options.leaseCheckIntervalMs,
      maxRequestBytes: options.maxRequestBytes,
    });
    this.stateMachine = new StoreStateMachine({
      header: this.header,
      logger: options.logger,
      onLeaseChange: (c) => this.lessor.follow(c),
    });
  }

  get raft(): RaftNode {
    if (!this.node) throw stopped();
    return this.node;
  }

  async start(): Promise<void> {
    this.node = await createRaftNode({ ...this.options.raft, stateMachine: this.stateMachine });
    const self = this.node.id;
    // The member that decides expiry changed: give every lease a full TTL from now.
    this.unsubscribe = this.node.onLeaderChange((leader) => {
      if (leader === self && leader !== NONE) this.lessor.promote();
    });
  }

  protected async execute<T extends CommandType>(cmd: CommandOf<T>): Promise<CommandResponses[T]> {
    const sm = this.stateMachine;
    sm.expect(cmd.requestId);
    try {
      await this.raft.propose(encodeCommand(cmd as never));
    } catch (err) {
      sm.forget(cmd.requestId);
      throw storeErrorFromRaft(err);
    }
    const outcome = sm.takeResult(cmd.requestId);
    if (!outcome) {
      // Applied, but inside a snapshot this node installed: the effect happened, the answer
      // is lost. Say so rather than guess.
      throw new StoreError(
        StoreErrorCode.Timeout,
        GrpcCode.Unavailable,
        'etcdserver: request was applied through a snapshot; its result is unknown, read the key to see it',
      );
    }
    if (!outcome.ok) throw outcome.error;
    return outcome.response as CommandResponses[T];
  }

  protected async readBarrier(serializable: boolean): Promise<void> {
    if (serializable) return;
    try {
      await this.raft.read();
    } catch (err) {
      throw storeErrorFromRaft(err);
    }
  }

  protected async keepAlive(id: number): Promise<LeaseKeepAliveResponse> {
    try {
      return await this.execute({ type: 'leaseRenew', requestId: this.nextRequestId(), request: { id } });
    } catch (err) {
      if (err instanceof StoreError && err.code === StoreErrorCode.LeaseNotFound) {
        return { header: this.currentHeader(), id, ttl: 0 };
      }
      throw err;
    }
  }

  protected mayExpireLeases(): boolean {
    return this.node?.status().role === StateRole.Leader;
  }

  protected nextRequestId(): string {
    return `${this.options.memberId}-${this.incarnation}-${++this.seq}`;
  }

  protected override async shutdown(): Promise<void> {
    this.unsubscribe?.();
    await this.node?.stop();
  }
}
