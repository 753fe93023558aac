import { ConfigError } from './errors.js';
import type { Storage } from './storage.js';
import type { NodeId } from './types.js';

/** Options of the core. Times are counted in ticks: the caller decides how long a tick is. */
export interface RaftOptions {
  id: NodeId;
  storage: Storage;
  /**
   * Ticks without hearing from a leader before a follower campaigns. The actual timeout is
   * randomized in [electionTick, 2*electionTick) (§5.2). Must exceed heartbeatTick. Default 10.
   */
  electionTick?: number;
  /** Ticks between a leader's heartbeats. Default 1. */
  heartbeatTick?: number;
  /** Last index the application applied, on restart. Default: the storage's snapshot index. */
  applied?: number;
  /** Upper bound on the entry bytes of one append message (batching). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Appends in flight per follower while replicating (pipelining). Default 256. */
  maxInflightMsgs?: number;
  /** A leader that has not heard from a quorum within an election timeout steps down (§6.2). */
  checkQuorum?: boolean;
  /** Campaign in two phases so a rejoining node cannot depose a healthy leader (thesis §9.6). */
  preVote?: boolean;
  /** A learner may be promoted once it is within this many entries of the commit index. */
  learnerMaxLag?: number;
  /** Seeded source in [0, 1) for election timeouts; the core never uses Math.random(). */
  random?: () => number;
  logger?: RaftLogger;
}

export interface RaftLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

const silentLogger: RaftLogger = { debug() {}, info() {}, warn() {} };

export type ResolvedRaftOptions = Required<Omit<RaftOptions, 'applied'>> & Pick<RaftOptions, 'applied'>;

/** Fill in defaults and refuse nonsense with a ConfigError naming the option. */
export function resolveOptions(opts: RaftOptions): ResolvedRaftOptions {
  if (!Number.isSafeInteger(opts.id) || opts.id <= 0) {
    throw new ConfigError(`node id ${opts.id} must be a positive integer`);
  }
  const r: ResolvedRaftOptions = {
    id: opts.id,
    storage: opts.storage,
    applied: opts.applied,
    electionTick: opts.electionTick ?? 10,
    heartbeatTick: opts.heartbeatTick ?? 1,
    maxSizePerMsg: opts.maxSizePerMsg ?? 1024 * 1024,
    maxInflightMsgs: opts.maxInflightMsgs ?? 256,
    checkQuorum: opts.checkQuorum ?? true,
    preVote: opts.preVote ?? true,
    learnerMaxLag: opts.learnerMaxLag ?? 100,
    random: opts.random ?? idRandom(opts.id),
    logger: opts.logger ?? silentLogger,
  };
  if (!(r.heartbeatTick > 0)) throw new ConfigError('heartbeatTick must be greater than 0');
  if (!(r.electionTick > r.heartbeatTick))
    throw new ConfigError('electionTick must be greater than heartbeatTick');
  if (!(r.maxInflightMsgs > 0)) throw new ConfigError('maxInflightMsgs must be greater than 0');
  if (!(r.maxSizePerMsg > 0)) throw new ConfigError('maxSizePerMsg must be greater than 0');
  if (!(r.learnerMaxLag >= 0)) throw new ConfigError('learnerMaxLag must not be negative');
  return r;
}

/** Without an injected source, each node still gets a distinct, reproducible sequence. */
function idRandom(id: NodeId): () => number {
  let x = (id * 2654435761) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}
