// A KV over StoreStateMachine without Raft: one process applies commands directly. For tests
// of the layers above the store and for single-node development. Semantics are the
// replicated store's: the same commands, the same state machine; only the log is missing.

import type { CommandOf, CommandResponses, CommandType } from './commands.js';
import { type StoreLogger, StoreStateMachine } from './state-machine.js';
import { StoreFront } from './store-front.js';
import type { KV, LeaseKeepAliveResponse } from './types.js';

export interface LocalStoreOptions {
  /** Reported in response headers. Default 'local'. */
  clusterId?: string;
  /** Reported in response headers. Default 'local'. */
  memberId?: string;
  /** How often lease deadlines are checked, in ms. Default 100. */
  leaseCheckIntervalMs?: number;
  /** Monotonic milliseconds. Default performance.now. */
  now?: () => number;
  /** Default StoreLimits.maxRequestBytes. */
  maxRequestBytes?: number;
  logger?: StoreLogger;
}

export interface LocalStore extends KV {
  /** The state machine underneath (for tests and tooling). */
  readonly stateMachine: StoreStateMachine;
}

export function createLocalStore(options: LocalStoreOptions = {}): LocalStore {
  return new LocalStoreImpl(options);
}

class LocalStoreImpl extends StoreFront implements LocalStore {
  readonly stateMachine: StoreStateMachine;
  private nextRequest = 0;

  constructor(options: LocalStoreOptions) {
    const clusterId = options.clusterId ?? 'local';
    const memberId = options.memberId ?? 'local';
    super({ ...options, header: (revision) => ({ clusterId, memberId, revision, raftTerm: 0 }) });
    this.stateMachine = new StoreStateMachine({
      header: this.header,
      logger: options.logger,
      onLeaseChange: (c) => this.lessor.follow(c),
    });
  }

  protected async execute<T extends CommandType>(cmd: CommandOf<T>): Promise<CommandResponses[T]> {
    const outcome = this.stateMachine.applyCommand(cmd as never);
    if (!outcome.ok) throw outcome.error;
    return outcome.response as CommandResponses[T];
  }

  protected async readBarrier(): Promise<void> {}

  protected async keepAlive(id: number): Promise<LeaseKeepAliveResponse> {
    return { header: this.currentHeader(), id, ttl: this.lessor.renew(id) };
  }

  protected mayExpireLeases(): boolean {
    return true;
  }

  protected nextRequestId(): string {
    return `local-${++this.nextRequest}`;
  }
}
