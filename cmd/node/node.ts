// Wiring of one berth-node: member identity on disk, the Raft peer transport, the replicated
// store, and on the client address the store API (etcd's wire protocol) and the object API.
//
//   identity (member.json) ─► grpc peer transport ─► replicated store (Raft + MVCC)
//                                                        ├─► gRPC: KV, Watch, Lease, Cluster,
//                                                        │   Maintenance (etcd's protocol)
//                                                        └─► ApiServer ─► gRPC: berth.api.v1.Objects
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
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
import { clusterIdOf, formatMemberId, hostOf, memberId, type NodeConfig, NodeConfigError } from './config.js';
import { authzInterceptor } from '../../pkg/auth/interceptor.js';
import { formatKeyringFile, type Keyring } from '../../pkg/api/server/encryption.js';
import { rewriteEncrypted } from '../../pkg/api/server/encryption-rewrite.js';
import { certificateInfo, nodeCommonName } from '../../pkg/pki/index.js';
import { TlsSource } from '../../pkg/rpc/tls.js';
import { addCertificatesService } from '../../pkg/security/certificates-service.js';
import { addJoinService } from '../../pkg/security/join-service.js';
import { addMembershipService } from '../../pkg/security/membership-service.js';
import { rotateCertificates } from '../../pkg/security/rotation.js';
import { putToken } from '../../pkg/security/token-store.js';
import {
  type Bootstrap,
  hasPki,
  loadPki,
  type NodePki,
  PKI,
  readBootstrap,
  readBootstrapTokens,
  saveNodeCertificate,
} from './pki-dir.js';

/** What a data directory remembers about its member, written once before Raft first starts. */
interface Identity {
  version: 1;
  clusterId: string;
  id: number;
  name: string;
  /** Joined an existing cluster (rather than bootstrapping one). */
  joined: boolean;
  /** A worker stays a non-voting member (a learner) for good. */
  role?: 'voter' | 'worker';
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

/**
 * Work out who this member is: from disk, a new cluster, or by asking a running one. Without
 * --initial-cluster or --join, what init or join recorded in the PKI directory decides.
 */
async function resolveIdentity(
  cfg: NodeConfig,
  logger: Logger,
  credentials: grpc.ChannelCredentials | undefined,
  bootstrap: Bootstrap | undefined,
): Promise<Identity> {
  const existing = await readIdentity(cfg.dataDir);
  if (existing) {
    if (existing.name !== cfg.name) {
      throw new NodeConfigError(
        `${cfg.dataDir} belongs to member ${existing.name}, not ${cfg.name}: use that --name or another --data-dir`,
      );
    }
    return existing;
  }
  if (!cfg.initialCluster && !cfg.join && bootstrap) {
    if (bootstrap.name !== cfg.name)
      throw new NodeConfigError(`${cfg.pkiDir} was made for member ${bootstrap.name}, not ${cfg.name}`);
    if (bootstrap.kind === 'new') {
      // init's random token makes the cluster id (and the member id) its own.
      if (bootstrap.clusterToken) {
        cfg.clusterToken = bootstrap.clusterToken;
        cfg.id = memberId(cfg.name, cfg.clusterToken);
      }
      cfg.initialCluster = [{ name: cfg.name, id: cfg.id, peerAddress: cfg.peerAdvertise }];
    } else cfg.join = bootstrap.endpoints;
  }
  const role = bootstrap?.kind === 'join' ? bootstrap.role : 'voter';
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
    const client = createClient({
      endpoints: cfg.join,
      requestTimeoutMs: 15_000,
      ...(credentials ? { credentials } : {}),
    });
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
        role,
        peers: res.members
          .filter((m) => m.peerUrls.length > 0)
          .map((m) => ({ id: Number(m.id), address: m.peerUrls[0] as string })),
      };
    } finally {
      await client.close();
    }
  } else {
    throw new NodeConfigError(
      `${cfg.dataDir} holds no member data: run berth-node init (a new cluster) or berth-node join (an existing one) first`,
    );
  }
  await writeIdentity(cfg.dataDir, identity);
  return identity;
}

/** The node's certificates, or a clear error when there are none and --insecure was not given. */
async function nodeTls(cfg: NodeConfig): Promise<{ pki: NodePki; tls: TlsSource } | undefined> {
  if (cfg.insecure) return undefined;
  if (!(await hasPki(cfg.pkiDir))) {
    throw new NodeConfigError(
      `${cfg.pkiDir} holds no certificates: run berth-node init (the first machine) or berth-node join (the others) first, or give --insecure for a plain-text cluster on one machine`,
    );
  }
  const pki = await loadPki(cfg.pkiDir);
  const cn = certificateInfo(pki.certPem).commonName;
  if (cn !== nodeCommonName(cfg.name))
    throw new NodeConfigError(
      `${cfg.pkiDir} holds the certificate of ${cn}, not of ${nodeCommonName(cfg.name)}`,
    );
  return { pki, tls: new TlsSource({ caPem: pki.caPem, certPem: pki.certPem, keyPem: pki.keyPem }) };
}

export async function startNode(cfg: NodeConfig, logger: Logger): Promise<RunningNode> {
  const secured = await nodeTls(cfg);
  const tls = secured?.tls;
  const credentials = tls?.channelCredentials();
  if (!tls)
    logger.warn(
      '--insecure: no TLS and no access control; anyone who reaches the ports controls the cluster',
    );
  // Read the keys before anything is written, so a bad key file changes nothing on disk.
  const keyFile = cfg.encryption.keyFile ?? (secured ? join(cfg.pkiDir, PKI.encryption) : undefined);
  const keyring = keyFile ? await loadKeyring(keyFile) : undefined;
  if (!keyring) logger.warn(UNENCRYPTED_WARNING);
  // Owner-only: the log and snapshots hold every object (Secrets too, when not encrypted).
  await mkdir(cfg.dataDir, { recursive: true, mode: 0o700 });
  await chmod(cfg.dataDir, 0o700);
  const identity = await resolveIdentity(
    cfg,
    logger,
    credentials,
    secured ? await readBootstrap(cfg.pkiDir) : undefined,
  );
  const { id, clusterId } = identity;
  logger.info({ member: formatMemberId(id), cluster: clusterId, dataDir: cfg.dataDir }, 'starting');

  const transport = createGrpcTransport({
    id,
    clusterId,
    listen: cfg.peerListen,
    // The transport and the runner name their own component in the logs.
    logger,
    ...(tls
      ? { serverCredentials: tls.serverCredentials(), channelCredentials: tls.channelCredentials() }
      : {}),
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

  // Every call is checked against the caller's certificate (pkg/auth); --insecure lets all through.
  const server = new grpc.Server({
    ...kvServerOptions(),
    interceptors: [authzInterceptor({ logger: logger.child({ component: 'authz' }), insecure: !tls })],
  });
  const clusterInfo = createClusterInfo(store, clusterId, id);
  addKvServices(server, {
    kv: store,
    cluster: clusterInfo,
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
  const pods = addPodsService(server, {
    api,
    nodeName: cfg.name,
    io: agent?.io,
    logger: agentLogger,
    ...(credentials ? { credentials } : {}),
  });
  const securityLogger = logger.child({ component: 'security' });
  if (secured) {
    addMembershipService(server, {
      members: async () => clusterInfo.members(),
      removeMember: (memberId) => clusterInfo.removeMember(memberId),
      logger: securityLogger,
    });
    addCertificatesService(server, {
      ca: () => ({ certPem: secured.pki.caPem, keyPem: secured.pki.caKeyPem }),
      nodeCertDays: cfg.nodeCertDays,
      logger: securityLogger,
    });
  }
  // Client certificates are asked for but judged by the interceptor, not the handshake, so a
  // caller without a valid one gets UNAUTHENTICATED with the reason, and the node logs it.
  await bind(
    server,
    cfg.clientListen,
    tls ? tls.serverCredentials(false) : grpc.ServerCredentials.createInsecure(),
  );
  // Voters (they hold the CA key) let machines join; the join port has no client certificates.
  let joinServer: grpc.Server | undefined;
  // init's tokens, until the first leader has stored them (storeBootstrapTokens).
  let pendingTokens = secured ? await readBootstrapTokens(cfg.pkiDir) : [];
  let joinTls: TlsSource | undefined;
  if (secured?.pki.caKeyPem) {
    const { pki } = secured;
    // The chain shows the CA, so a joiner can check it against its token's pin.
    joinTls = new TlsSource({
      caPem: pki.caPem,
      certPem: withChain(pki.certPem, pki.caPem),
      keyPem: pki.keyPem,
    });
    joinServer = new grpc.Server();
    addJoinService(joinServer, {
      kv: store,
      members: async () => clusterInfo.members(),
      addLearner: (peerUrl) => clusterInfo.addMember([peerUrl], true),
      clusterId,
      ca: { certPem: pki.caPem, keyPem: pki.caKeyPem as string },
      keyringText: keyring ? formatKeyringFile(keyring) : '',
      certDays: cfg.nodeCertDays,
      logger: securityLogger,
      pendingTokens: () => pendingTokens,
    });
    await bind(joinServer, cfg.joinListen, joinTls.serverCredentials(false));
  }
  logger.info(
    {
      client: cfg.clientListen,
      peer: cfg.peerListen,
      join: joinServer ? cfg.joinListen : undefined,
      tls: !!tls,
    },
    'serving',
  );

  const background = new AbortController();
  void publishSelf(
    store,
    id,
    { name: cfg.name, peerUrls: [cfg.peerAdvertise], clientUrls: [cfg.clientAdvertise] },
    logger,
    background.signal,
  );
  if (identity.joined && identity.role !== 'worker')
    void promoteWhenCaughtUp(store, id, logger, background.signal);
  if (keyring) void resealSecrets(store, id, keyring, securityLogger, background.signal);
  if (secured) {
    void storeBootstrapTokens(store, cfg.pkiDir, securityLogger, background.signal).then(() => {
      pendingTokens = [];
    });
    const { pki } = secured;
    void rotateCertificates(
      {
        tls: secured.tls,
        caKeyPem: () => pki.caKeyPem,
        endpoints: async () =>
          (await clusterInfo.members()).filter((m) => !m.isLearner).flatMap((m) => m.clientUrls),
        save: async (certPem, keyPem) => {
          await saveNodeCertificate(cfg.pkiDir, certPem, keyPem);
          joinTls?.update({ caPem: pki.caPem, certPem: withChain(certPem, pki.caPem), keyPem });
        },
        certDays: cfg.nodeCertDays,
        logger: securityLogger,
      },
      background.signal,
    );
  }
  void ensureSystemNamespaces(api, logger.child({ component: 'api' }), background.signal);
  void ensureDefaultStorageClass(api, logger.child({ component: 'api' }), background.signal);
  agent?.start();
  // The autoscaler reads pod usage as `berthctl top` does: this node's Pods service, which
  // gathers every node's samples.
  const podsClient = createPodsClient({
    endpoints: [cfg.clientAdvertise],
    ...(credentials ? { credentials } : {}),
  });
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
        joinServer?.forceShutdown();
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

/** A certificate followed by its issuer's, PEM blocks each on their own lines. */
const withChain = (certPem: string, caPem: string) => `${certPem.trimEnd()}\n${caPem.trimEnd()}\n`;

function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<void> {
  return new Promise<void>((resolve, reject) =>
    server.bindAsync(address, credentials, (err) =>
      err ? reject(new NodeConfigError(`cannot listen on ${address}: ${err.message}`)) : resolve(),
    ),
  );
}

/** Init's join tokens go into the store once there is a leader; then their file goes. */
async function storeBootstrapTokens(
  store: ReplicatedStore,
  pkiDir: string,
  logger: Logger,
  signal: AbortSignal,
) {
  const tokens = await readBootstrapTokens(pkiDir);
  if (tokens.length === 0) return;
  while (!signal.aborted) {
    try {
      for (const t of tokens) await putToken(store, t);
      await rm(join(pkiDir, PKI.bootstrapTokens), { force: true });
      logger.info({ tokens: tokens.map((t) => t.id) }, 'join tokens from init stored');
      return;
    } catch {
      await sleep(500, signal);
    }
  }
}

/**
 * On the leader, now and then: reseal every Secret not under the primary key (after
 * `berth-node encryption-key use`). Level-triggered: a pass with nothing to do writes nothing.
 */
async function resealSecrets(
  store: ReplicatedStore,
  id: number,
  keyring: Keyring,
  logger: Logger,
  signal: AbortSignal,
) {
  let sealed = false;
  while (!signal.aborted) {
    await sleep(sealed ? 60_000 : 5_000, signal);
    if (signal.aborted || store.raft.status().leader !== id) continue;
    try {
      const r = await rewriteEncrypted(store, keyring);
      if (r.rewritten > 0 || !sealed)
        logger.info(
          { resealed: r.rewritten, key: keyring.primary },
          `every Secret sealed under ${keyring.primary}`,
        );
      sealed = true;
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'resealing Secrets failed; will retry');
    }
  }
}

// Each wait removes its abort listener: loops that sleep for the node's lifetime would
// otherwise pile one up per round.
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
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
