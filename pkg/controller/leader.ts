// Controllers and the scheduler run on the Raft leader only. LeaderGate starts a set of
// components when this node becomes leader and stops them at once when it stops being
// leader. Before starting, it writes a fence (`/berth/controllers/leader` = member:term):
// components write through an ApiServer fenced on that value, so a deposed leader's late
// writes fail instead of racing the new leader's. A new leader starts from the store alone.

import type { Logger } from 'pino';
import { ApiServer, type ApiServerOptions } from '../api/server/api-server.js';
import type { KV } from '../store/types.js';

export const FENCE_KEY = '/berth/controllers/leader';

/** Something that runs while this node leads: the scheduler, a controller manager. */
export interface LeaderComponent {
  readonly name: string;
  /** Start with an API server whose writes are fenced to this leadership. */
  start(api: ApiServer): Promise<void>;
  stop(): Promise<void>;
}

export interface LeadershipSource {
  readonly id: number;
  term(): number;
  onLeaderChange(listener: (leader: number) => void): () => void;
}

export class LeaderGate {
  private running: { term: number; components: LeaderComponent[] } | undefined;
  private transition: Promise<void> = Promise.resolve();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly kv: KV,
    private readonly raft: LeadershipSource,
    private readonly components: LeaderComponent[],
    private readonly logger: Logger,
    /** The node's own API settings (service ranges), for the fenced API the components get. */
    private readonly apiOptions: Pick<ApiServerOptions, 'serviceCIDR' | 'nodePortRange' | 'keyring'> = {},
  ) {}

  start(): void {
    this.unsubscribe = this.raft.onLeaderChange((leader) => {
      const leading = leader === this.raft.id;
      this.transition = this.transition.then(() => (leading ? this.lead() : this.follow()));
    });
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.transition = this.transition.then(() => this.follow());
    await this.transition;
  }

  private async lead(): Promise<void> {
    const term = this.raft.term();
    if (this.running?.term === term) return;
    await this.follow();
    const fence = `${this.raft.id}:${term}`;
    try {
      await this.kv.put({ key: new TextEncoder().encode(FENCE_KEY), value: new TextEncoder().encode(fence) });
    } catch (err) {
      this.logger.warn({ err }, 'leader: could not write the controllers fence; not starting them');
      return;
    }
    const api = new ApiServer({
      ...this.apiOptions,
      kv: this.kv,
      logger: this.logger,
      fence: { key: FENCE_KEY, value: fence },
    });
    const started: LeaderComponent[] = [];
    this.running = { term, components: started };
    for (const c of this.components) {
      try {
        await c.start(api);
        started.push(c);
      } catch (err) {
        this.logger.error({ err, component: c.name }, 'leader: a component failed to start');
      }
    }
    this.logger.info({ term, components: started.map((c) => c.name) }, 'leading: controllers started');
  }

  private async follow(): Promise<void> {
    const r = this.running;
    if (!r) return;
    this.running = undefined;
    await Promise.allSettled(r.components.map((c) => c.stop()));
    this.logger.info({ term: r.term }, 'not leading: controllers stopped');
  }
}
