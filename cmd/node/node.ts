// Wiring of one berth-node: member identity on disk, the Raft peer transport, the replicated
// store, and on the client address the store API (etcd's wire protocol) and the object API.
//
//   identity (member.json) ─► grpc peer transport ─► replicated store (Raft + MVCC)
//                                                        ├─► gRPC: KV, Watch, Lease, Cluster,
//                                                        │   Maintenance (etcd's protocol)
//                                                        └─► ApiServer ─► gRPC: berth.api.v1.Objects
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Agent } from '../../pkg/agent/agent.js';
import { createDockerRuntime } from '../../pkg/agent/docker-runtime.js';
import { addPodsService } from '../../pkg/agent/grpc-pods.js';
import { ApiServer, type ApiServerOptions } from '../../pkg/api/server/api-server.js';
import { LeaderGate } from '../../pkg/controller/leader.js';
import { DEFAULT_CONTROLLER_OPTIONS } from '../../pkg/controller/manager.js';
import { createTopPodMetricsSource } from '../../pkg/controller/pod-metrics-top.js';
import { createPodsClient } from '../../pkg/client/pods-client.js';
import { ensureDefaultStorageClass, ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import { addApiService } from '../../pkg/api/server/grpc-api.js';
import { createClient } from '../../pkg/client/client.js';
import { BERTH_VERSION } from '../../pkg/version.js';
import { createGrpcTransport } from '../../pkg/raft/grpc-transport.js';
import { addKvServices, kvServerOptions } from '../../pkg/store/grpc-server.js';
import { createReplicatedStore, type ReplicatedStore } from '../../pkg/store/replicated-store.js';
import { createClusterInfo, type MemberRecord, memberKey, peerAddressOf } from './cluster-info.js';
import { leaderComponents } from './leader-components.js';
import { startProxy } from './proxy.js';
import { loadKeyring, UNENCRYPTED_WARNING } from './encryption-flags.js';
import { clusterIdOf, formatMemberId, hostOf, type NodeConfig, NodeConfigError } from './config.js';

/** What a data directory remembers about its member, written once before Raft first starts. */
interface Identity {
  version: 1;
  clusterId: string;
  id: number;
  name: string;
  /** Joined an existing cluster (rather than bootstrapping one). */
  joined: boolean;
  /** Peers known when the member was created; later ones come from the log. */
  peers: { id: number; address: string }[];
}

export interface RunningNode {
  readonly store: ReplicatedStore;
  readonly identity: Identity;
  stop(): Promise<void>;
}

const IDENTITY_FILE = 'member.json';

async function readIdentity(dir: string): Promise<Identity | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, IDENTITY_FILE), 'utf8')) as Identity;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new NodeConfigError(`${join(dir, IDENTITY_FILE)} is unreadable: ${(err as Error).message}`);
  }
}

async function writeIdentity(dir: string, identity: Identity): Promise<void> {
  const tmp = join(dir, `${IDENTITY_FILE}.tmp`);
  await writeFile(tmp, JSON.stringify(identity, null, 2));
  await rename(tmp, join(dir, IDENTITY_FILE));
}

/** Work out who this member is: from disk, a new cluster, or by asking a running one. */
async function resolveIdentity(cfg: NodeConfig, logger: Logger): Promise<Identity> {
  const existing = await readIdentity(cfg.dataDir);
  if (existing) {
    if (existing.name !== cfg.name) {
      throw new NodeConfigError(
        `${cfg.dataDir} belongs to member ${existing.name}, not ${cfg.name}: use that --name or another --data-dir`,
      );
    }
    return existing;
  }
  let identity: Identity;
  if (cfg.initialCluster) {
    identity = {
      version: 1,
      clusterId: clusterIdOf(cfg.clusterToken, cfg.initialCluster),
      id: cfg.id,
      name: cfg.name,
      joined: false,
      peers: cfg.initialCluster.map((m) => ({ id: m.id, address: m.peerAddress })),
    };
  } else if (cfg.join) {
    logger.info({ via: cfg.join }, 'joining the cluster as a learner');
    const client = createClient({ endpoints: cfg.join, requestTimeoutMs: 15_000 });
    try {
      // `berthctl member add` may have added this member already: take that membership.
      const list = await client.cluster.memberList();
      const added = list.members.find((m) => m.peerUrls.map(peerAddressOf).includes(cfg.peerAdvertise));
      if (added && added.name !== '' && added.name !== cfg.name) {
        throw new NodeConfigError(
          `peer address ${cfg.peerAdvertise} already belongs to member ${added.name}`,
        );
      }
      if (added && !added.isLearner) {
        // A voter that lost its data must not vote with an empty log: it could elect a
        // leader that lacks committed entries.
        throw new NodeConfigError(
          `${added.name || cfg.peerAdvertise} is already a voting member, and ${cfg.dataDir} holds no data for it: ` +
            `remove it first (berthctl member remove ${added.name || added.id}), then join again`,
        );
      }
      const res = added
        ? { header: list.header, member: added, members: list.members }
        : await client.cluster.memberAdd([cfg.peerAdvertise], { isLearner: true });
      identity = {
        version: 1,
        clusterId: res.header.clusterId,
        id: Number(res.member.id),
        name: cfg.name,
        joined: true,
        peers: res.members
          .filter((m) => m.peerUrls.length > 0)
          .map((m) => ({ id: Number(m.id), address: m.peerUrls[0] as string })),
      };
    } finally {
      await client.close();
    }
  } else {
    throw new NodeConfigError(
      `${cfg.dataDir} holds no member data: start a new cluster with --initial-cluster, or join one with --join`,
    );
  }
  await writeIdentity(cfg.dataDir, identity);
  return identity;
}

export async function startNode(cfg: NodeConfig, logger: Logger): Promise<RunningNode> {
  // Read the keys before anything is written, so a bad key file changes nothing on disk.
  const keyring = cfg.encryption.keyFile ? await loadKeyring(cfg.encryption.keyFile) : undefined;
  if (!keyring) logger.warn(UNENCRYPTED_WARNING);
  // Owner-only: the log and snapshots hold every object (Secrets too, when not encrypted).
  await mkdir(cfg.dataDir, { recursive: true, mode: 0o700 });
  await chmod(cfg.dataDir, 0o700);
  const identity = await resolveIdentity(cfg, logger);
  const { id, clusterId } = identity;
  logger.info({ member: formatMemberId(id), cluster: clusterId, dataDir: cfg.dataDir }, 'starting');

  const transport = createGrpcTransport({
    id,
    clusterId,
    listen: cfg.peerListen,
    // The transport and the runner name their own component in the logs.
    logger,
  });
  const store = await createReplicatedStore({
    clusterId,
    memberId: String(id),
    logger: logger.child({ component: 'store' }),
    raft: {
      id,
      clusterId,
      dataDir: join(cfg.dataDir, 'raft'),
      peers: identity.peers,
      join: identity.joined,
      transport,
      tickMs: cfg.tickMs,
      electionTick: cfg.electionTicks,
      snapshotEntries: cfg.snapshotEntries,
      logger,
    },
  });

  const server = new grpc.Server(kvServerOptions());
  addKvServices(server, {
    kv: store,
    cluster: createClusterInfo(store, clusterId, id),
    onInternalError: (err, method) => logger.error({ err, method }, 'internal error serving a request'),
  });
  const api = new ApiServer({
    kv: store,
    logger: logger.child({ component: 'api' }),
    serviceCIDR: cfg.services.serviceCIDR,
    nodePortRange: cfg.services.nodePortRange,
    keyring,
  });
  addApiService(server, {
    api,
    version: BERTH_VERSION,
    member: formatMemberId(id),
    nodeName: cfg.name,
    onInternalError: (err, method) => logger.error({ err, method }, 'internal error serving an API request'),
  });
  const agentLogger = logger.child({ component: 'agent' });
  const proxy = startProxy(cfg, store, api, logger.child({ component: 'proxy' }));
  const agent = cfg.agent.enabled
    ? new Agent({
        api,
        runtime: createDockerRuntime({ socketPath: cfg.agent.dockerSocket, logger: agentLogger }),
        nodeName: cfg.name,
        nodeAddress: hostOf(cfg.clientAdvertise),
        clientAddress: cfg.clientAdvertise,
        clusterId,
        // Absolute: the engine takes bind mounts only as absolute paths.
        dataDir: resolve(cfg.dataDir),
        labels: cfg.agent.labels,
        taints: cfg.agent.taints,
        heartbeatMs: cfg.agent.heartbeatMs,
        statusMs: cfg.agent.statusMs,
        hostPortRange: cfg.agent.hostPortRange,
        drain: proxy.drain,
        logger: agentLogger,
      })
    : undefined;
  const pods = addPodsService(server, { api, nodeName: cfg.name, io: agent?.io, logger: agentLogger });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(cfg.clientListen, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(new NodeConfigError(`cannot listen on ${cfg.clientListen}: ${err.message}`)) : resolve(),
    ),
  );
  logger.info({ client: cfg.clientListen, peer: cfg.peerListen }, 'serving');

  const background = new AbortController();
  void publishSelf(
    store,
    id,
    { name: cfg.name, peerUrls: [cfg.peerAdvertise], clientUrls: [cfg.clientAdvertise] },
    logger,
    background.signal,
  );
  if (identity.joined) void promoteWhenCaughtUp(store, id, logger, background.signal);
  void ensureSystemNamespaces(api, logger.child({ component: 'api' }), background.signal);
  void ensureDefaultStorageClass(api, logger.child({ component: 'api' }), background.signal);
  agent?.start();
  // The autoscaler reads pod usage as `berthctl top` does: this node's Pods service, which
  // gathers every node's samples.
  const podsClient = createPodsClient({ endpoints: [cfg.clientAdvertise] });
  const podMetrics = createTopPodMetricsSource({
    top: podsClient,
    listPods: async (namespace) => (await api.list('pods', { namespace })).items,
  });
  const leaderApiOptions: Pick<ApiServerOptions, 'serviceCIDR' | 'nodePortRange' | 'keyring'> = {
    ...cfg.services,
    keyring,
  };
  const leader = new LeaderGate(
    store,
    store.raft,
    cfg.controllers
      ? leaderComponents(logger, {
          ...DEFAULT_CONTROLLER_OPTIONS,
          hpaSyncPeriodMs: cfg.hpaSyncPeriodMs,
          podMetrics,
        })
      : [],
    logger.child({ component: 'leader' }),
    // The controllers' API server must open Secrets too.
    leaderApiOptions,
  );
  leader.start();

  let stopping: Promise<void> | undefined;
  return {
    store,
    identity,
    stop: () => {
      stopping ??= (async () => {
        background.abort();
        await leader.stop();
        podsClient.close();
        // The agent stops watching; its pods keep running and are adopted on restart.
        await agent?.stop();
        await proxy.stop();
        pods.close();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, 2000);
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        await store.close();
        logger.info('stopped');
      })();
      return stopping;
    },
  };
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

/** Record this member's name and addresses in the store (retried until it lands). */
async function publishSelf(
  store: ReplicatedStore,
  id: number,
  record: MemberRecord,
  logger: Logger,
  signal: AbortSignal,
): Promise<void> {
  const value = new TextEncoder().encode(JSON.stringify(record));
  while (!signal.aborted) {
    try {
      const cur = await store.range({ key: memberKey(id) });
      if (cur.kvs[0] && Buffer.from(cur.kvs[0].value).equals(Buffer.from(value))) return;
      await store.put({ key: memberKey(id), value });
      logger.info(record, 'published this member');
      return;
    } catch {
      await sleep(500, signal);
    }
  }
}

/** A joined learner becomes a voter once the leader agrees it has caught up. */
async function promoteWhenCaughtUp(store: ReplicatedStore, id: number, logger: Logger, signal: AbortSignal) {
  while (!signal.aborted) {
    const conf = store.raft.status().appliedConfState;
    if (conf.voters.includes(id)) return;
    if (conf.learners.includes(id)) {
      try {
        await store.raft.promote(id);
        logger.info('promoted to a voting member');
        return;
      } catch (err) {
        logger.debug({ err: (err as Error).message }, 'not promoted yet');
      }
    }
    await sleep(1000, signal);
  }
}
