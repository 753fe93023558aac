// The store's gRPC edge: etcd v3's own wire protocol (proto/etcd/rpc.proto), as k3s' kine
// serves it, so etcdctl and etcd client libraries work against Berth, and Berth's own client
// (pkg/client) speaks the same protocol. Services: KV, Watch, Lease, Cluster, Maintenance
// (Status, Alarm, MoveLeader). Handlers only translate (grpc-mapping.ts) and delegate to a KV and a
// ClusterInfo; the semantics live behind those interfaces.
//
// Errors: a StoreError is answered with its `grpc` code and its message exactly (etcd clients
// match on etcd's messages); anything else is UNKNOWN with a message. No request, however
// malformed, may crash the process: every handler catches, and requests are decoded by a
// guarded deserializer, so bytes that do not parse are INVALID_ARGUMENT (grpc-js itself would
// answer INTERNAL).

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoDir } from '../rpc/proto-path.js';
import { CompactedError, invalidArgument, leaseNotFound, requestTooLarge, StoreError } from './errors.js';
import {
  COMPACT_REVISION_TRAILER,
  compactionRequestFromWire,
  compactionResponseToWire,
  deleteRangeRequestFromWire,
  deleteRangeResponseToWire,
  errorToStatus,
  GrpcStatus,
  headerToWire,
  leaseGrantRequestFromWire,
  leaseGrantResponseToWire,
  leaseKeepAliveResponseToWire,
  leaseLeasesResponseToWire,
  leaseTimeToLiveResponseToWire,
  longToNumber,
  type MemberInfo,
  type MemberStatus,
  memberToWire,
  putRequestFromWire,
  putResponseToWire,
  rangeRequestFromWire,
  rangeResponseToWire,
  rangeSortFromWire,
  sortKeyValues,
  statusToWire,
  txnRequestFromWire,
  txnResponseToWire,
  uint64String,
  type WireCompactionRequest,
  type WireDeleteRangeRequest,
  type WireLeaseGrantRequest,
  type WireLeaseIdRequest,
  type WireLeaseTimeToLiveRequest,
  type WirePutRequest,
  type WireRangeRequest,
  type WireStatus,
  type WireTxnRequest,
  type WireWatchCreateRequest,
  type WireWatchRequest,
  type WireWatchResponse,
  watchCreateFromWire,
  watchResponseToWire,
} from './grpc-mapping.js';
import {
  type KV,
  type ResponseHeader,
  type ResponseOp,
  StoreLimits,
  type TxnResponse,
  type Watcher,
  type WatchResponse,
} from './types.js';

export type { MemberInfo, MemberStatus } from './grpc-mapping.js';

type Awaitable<T> = T | Promise<T>;

/**
 * What the Cluster and Maintenance services ask of the node: its identity, its view of the
 * Raft group, and membership changes. The node program implements it over pkg/raft; tests use
 * a fixed one. Ids are uint64 as decimal strings ('0' = none). Membership changes resolve once
 * the change is committed; they reject with a StoreError to answer with that error's code and
 * message (etcd's: 'etcdserver: member not found', ...). Plain exceptions become UNKNOWN.
 */
export interface ClusterInfo {
  readonly clusterId: string;
  /** This member's id: it stamps every response header. */
  readonly memberId: string;
  /** The current Raft term (used when the store's header carries none). */
  raftTerm(): number;
  /** The leader's member id as this member knows it; '0' when there is none. */
  leader(): string;
  members(): Awaitable<MemberInfo[]>;
  /** Add a member (a learner when `isLearner`); resolves with the new member. */
  addMember(peerUrls: string[], isLearner: boolean): Promise<MemberInfo>;
  removeMember(id: string): Promise<void>;
  /** Promote a learner that has caught up to a voting member. */
  promoteMember(id: string): Promise<void>;
  /** Change a member's peer URLs; MemberUpdate answers UNIMPLEMENTED without it. */
  updateMember?(id: string, peerUrls: string[]): Promise<void>;
  /** This member's status (etcdctl endpoint status). */
  status(): Awaitable<MemberStatus>;
  /**
   * Hand leadership to `targetId`; resolves once this member sees it lead. Rejects with
   * FAILED_PRECONDITION when the target is not a voting member. etcd serves MoveLeader only on
   * the leader; an implementation may accept it anywhere. MoveLeader answers UNIMPLEMENTED
   * without it.
   */
  moveLeader?(targetId: string): Promise<void>;
}

export interface KvServiceDeps {
  kv: KV;
  cluster: ClusterInfo;
  /** Called with errors that are not StoreErrors (bugs, not user mistakes); default: ignore. */
  onInternalError?: (err: unknown, method: string) => void;
}

/** Options Berth's loader uses for the etcd protos (the client uses the same). */
export const ETCD_PROTO_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

let definition: protoLoader.PackageDefinition | undefined;

/** proto/etcd/rpc.proto (and kv.proto), loaded once per process. */
export function etcdProtos(): protoLoader.PackageDefinition {
  definition ??= protoLoader.loadSync('etcd/rpc.proto', { ...ETCD_PROTO_OPTIONS, includeDirs: [protoDir()] });
  return definition;
}

/** One service of etcdserverpb ('KV', 'Watch', 'Lease', 'Cluster', 'Maintenance'). */
export function etcdService(name: string): protoLoader.ServiceDefinition {
  const def = etcdProtos()[`etcdserverpb.${name}`];
  // Message and enum definitions carry a `format`; services are plain maps of methods.
  if (!def || 'format' in def)
    throw new Error(`etcdserverpb.${name} is not a service in proto/etcd/rpc.proto`);
  return def as protoLoader.ServiceDefinition;
}

/** Headroom over StoreLimits.maxRequestBytes for gRPC framing, as etcd allows (512 KiB). */
const GRPC_OVERHEAD_BYTES = 512 * 1024;

/**
 * Server options the KV services need: requests up to StoreLimits.maxRequestBytes (plus
 * framing) are received, so the per-request check can answer with etcd's "request is too
 * large"; beyond that grpc-js answers RESOURCE_EXHAUSTED itself. Merge into `new grpc.Server()`.
 */
export function kvServerOptions(): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': StoreLimits.maxRequestBytes + GRPC_OVERHEAD_BYTES,
    'grpc.max_send_message_length': -1,
  };
}

// ---- decoding guard ----

/** A request as the guarded deserializer hands it over: decoded, or why it could not be. */
type Decoded<T> = { ok: true; value: T; size: number } | { ok: false; error: string; size: number };

function guarded(def: protoLoader.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(def)) {
    const decode = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (buf: Buffer): Decoded<unknown> => {
        try {
          return { ok: true, value: decode(buf), size: buf.length };
        } catch (err) {
          return { ok: false, error: err instanceof Error ? err.message : String(err), size: buf.length };
        }
      },
    } as grpc.MethodDefinition<unknown, unknown>;
  }
  return out as grpc.ServiceDefinition;
}

/** The request, or the StoreError for a malformed or oversized one. */
function unwrap<T>(d: Decoded<T>, method: string): T {
  if (!d.ok) throw invalidArgument(`malformed ${method} request: ${d.error}`);
  if (d.size > StoreLimits.maxRequestBytes) throw requestTooLarge(d.size, StoreLimits.maxRequestBytes);
  return d.value;
}

/** A deliberate answer with a status the error catalogue has no entry for. */
class StatusError extends Error {
  constructor(readonly status: WireStatus) {
    super(status.details);
  }
}

function toServiceError(status: WireStatus): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (status.compactRevision !== undefined) {
    metadata.set(COMPACT_REVISION_TRAILER, String(status.compactRevision));
  }
  return { code: status.code, details: status.details, metadata };
}

// ---- registration ----

/**
 * Register etcd's KV, Watch, Lease, Cluster and Maintenance services on `server`, over
 * `deps.kv` and `deps.cluster`. Create the server with kvServerOptions() so oversized
 * requests get a clear answer. The caller owns the server (bind, start, shutdown); watches
 * and keep-alive streams end with their gRPC calls.
 */
export function addKvServices(server: grpc.Server, deps: KvServiceDeps): void {
  const { kv, cluster } = deps;

  const report = (err: unknown, method: string): WireStatus => {
    if (err instanceof StatusError) return err.status;
    if (!(err instanceof StoreError)) {
      try {
        deps.onInternalError?.(err, method);
      } catch {
        // A failing reporter must not take the request down with it.
      }
    }
    return errorToStatus(err);
  };

  /** The header of a response served by this member. */
  const stamp = (h: ResponseHeader): ResponseHeader => ({
    clusterId: cluster.clusterId,
    memberId: cluster.memberId,
    revision: h.revision,
    raftTerm: h.raftTerm || cluster.raftTerm(),
  });

  /** A txn response with every header stamped, nested ones included. */
  const stampTxn = (r: TxnResponse): TxnResponse => ({
    header: stamp(r.header),
    succeeded: r.succeeded,
    responses: r.responses.map((op): ResponseOp => {
      if ('range' in op) return { range: { ...op.range, header: stamp(op.range.header) } };
      if ('put' in op) return { put: { ...op.put, header: stamp(op.put.header) } };
      if ('deleteRange' in op)
        return { deleteRange: { ...op.deleteRange, header: stamp(op.deleteRange.header) } };
      return { txn: stampTxn(op.txn) };
    }),
  });

  /** The store's revision now, from this member's state (a serializable read). */
  const currentRevision = async (): Promise<number> => {
    const r = await kv.range({
      key: new Uint8Array([0]),
      rangeEnd: new Uint8Array([0]),
      limit: 1,
      keysOnly: true,
      serializable: true,
    });
    return r.header.revision;
  };

  const clusterHeader = async (): Promise<ResponseHeader> => {
    let revision = 0;
    try {
      revision = await currentRevision();
    } catch {
      // Membership and status answers do not depend on the store being readable.
    }
    return stamp({ clusterId: '', memberId: '', revision, raftTerm: 0 });
  };

  function unary<Req, Res>(method: string, handle: (req: Req) => Promise<Res>) {
    return (call: grpc.ServerUnaryCall<Decoded<Req>, Res>, callback: grpc.sendUnaryData<Res>): void => {
      const respond = (err: Partial<grpc.StatusObject> | null, res?: Res) => {
        try {
          if (err) callback(err);
          else callback(null, res);
        } catch {
          // The call is gone (client cancelled): nothing left to tell.
        }
      };
      (async () => handle(unwrap(call.request, method)))().then(
        (res) => respond(null, res),
        (err: unknown) => respond(toServiceError(report(err, method))),
      );
    };
  }

  server.addService(guarded(etcdService('KV')), {
    Range: unary('Range', async (w: WireRangeRequest) => {
      const req = rangeRequestFromWire(w, true);
      const sort = rangeSortFromWire(w);
      if (!sort || req.countOnly) {
        const r = await kv.range(req);
        return rangeResponseToWire({ ...r, header: stamp(r.header) });
      }
      // As etcd does: read the whole range, sort it, then apply the limit.
      const limit = req.limit ?? 0;
      const r = await kv.range({ ...req, limit: 0 });
      let kvs = sortKeyValues(r.kvs, sort);
      const more = limit > 0 && kvs.length > limit;
      if (more) kvs = kvs.slice(0, limit);
      return rangeResponseToWire({ ...r, kvs, more, header: stamp(r.header) });
    }),
    Put: unary('Put', async (w: WirePutRequest) => {
      const r = await kv.put(putRequestFromWire(w));
      return putResponseToWire({ ...r, header: stamp(r.header) });
    }),
    DeleteRange: unary('DeleteRange', async (w: WireDeleteRangeRequest) => {
      const r = await kv.deleteRange(deleteRangeRequestFromWire(w));
      return deleteRangeResponseToWire({ ...r, header: stamp(r.header) });
    }),
    Txn: unary('Txn', async (w: WireTxnRequest) => {
      return txnResponseToWire(stampTxn(await kv.txn(txnRequestFromWire(w))));
    }),
    Compact: unary('Compact', async (w: WireCompactionRequest) => {
      const r = await kv.compact(compactionRequestFromWire(w));
      return compactionResponseToWire({ header: stamp(r.header) });
    }),
  });

  server.addService(guarded(etcdService('Watch')), {
    Watch: (call: grpc.ServerDuplexStream<Decoded<WireWatchRequest>, WireWatchResponse>) =>
      serveWatchStream(call, { kv, stamp, currentRevision, report }),
  });

  server.addService(guarded(etcdService('Lease')), {
    LeaseGrant: unary('LeaseGrant', async (w: WireLeaseGrantRequest) => {
      const r = await kv.leaseGrant(leaseGrantRequestFromWire(w));
      return leaseGrantResponseToWire({ ...r, header: stamp(r.header) });
    }),
    LeaseRevoke: unary('LeaseRevoke', async (w: WireLeaseIdRequest) => {
      const r = await kv.leaseRevoke(longToNumber(w.ID, 'ID'));
      return { header: headerToWire(stamp(r.header)) };
    }),
    LeaseKeepAlive: (call: grpc.ServerDuplexStream<Decoded<WireLeaseIdRequest>, unknown>) =>
      serveKeepAliveStream(call, { kv, stamp, report }),
    LeaseTimeToLive: unary('LeaseTimeToLive', async (w: WireLeaseTimeToLiveRequest) => {
      const r = await kv.leaseTimeToLive(longToNumber(w.ID, 'ID'), w.keys ?? false);
      return leaseTimeToLiveResponseToWire({ ...r, header: stamp(r.header) });
    }),
    LeaseLeases: unary('LeaseLeases', async () => {
      const r = await kv.leaseLeases();
      return leaseLeasesResponseToWire({ ...r, header: stamp(r.header) });
    }),
  });

  const memberList = async () => (await cluster.members()).map(memberToWire);

  server.addService(guarded(etcdService('Cluster')), {
    MemberAdd: unary('MemberAdd', async (w: { peerURLs?: string[]; isLearner?: boolean }) => {
      const peerUrls = w.peerURLs ?? [];
      if (peerUrls.length === 0) throw invalidArgument('given member URLs are invalid');
      const member = await cluster.addMember(peerUrls, w.isLearner ?? false);
      return {
        header: headerToWire(await clusterHeader()),
        member: memberToWire(member),
        members: await memberList(),
      };
    }),
    MemberRemove: unary('MemberRemove', async (w: { ID?: string }) => {
      await cluster.removeMember(uint64String(w.ID, 'ID'));
      return { header: headerToWire(await clusterHeader()), members: await memberList() };
    }),
    MemberUpdate: unary('MemberUpdate', async (w: { ID?: string; peerURLs?: string[] }) => {
      if (!cluster.updateMember) {
        throw new StatusError({
          code: GrpcStatus.Unimplemented,
          details: 'berth: member update is not supported',
        });
      }
      await cluster.updateMember(uint64String(w.ID, 'ID'), w.peerURLs ?? []);
      return { header: headerToWire(await clusterHeader()), members: await memberList() };
    }),
    MemberList: unary('MemberList', async () => ({
      header: headerToWire(await clusterHeader()),
      members: await memberList(),
    })),
    MemberPromote: unary('MemberPromote', async (w: { ID?: string }) => {
      await cluster.promoteMember(uint64String(w.ID, 'ID'));
      return { header: headerToWire(await clusterHeader()), members: await memberList() };
    }),
  });

  server.addService(guarded(etcdService('Maintenance')), {
    // Berth raises no alarms (no space quota): every query answers "none".
    Alarm: unary('Alarm', async () => ({ header: headerToWire(await clusterHeader()), alarms: [] })),
    Status: unary('Status', async () => statusToWire(await clusterHeader(), await cluster.status())),
    MoveLeader: unary('MoveLeader', async (w: { targetID?: string }) => {
      if (!cluster.moveLeader) {
        throw new StatusError({
          code: GrpcStatus.Unimplemented,
          details: 'berth: move leader is not supported',
        });
      }
      await cluster.moveLeader(uint64String(w.targetID, 'targetID'));
      return { header: headerToWire(await clusterHeader()) };
    }),
  });
}

// ---- Watch streams ----

interface WatchStreamDeps {
  kv: KV;
  stamp: (h: ResponseHeader) => ResponseHeader;
  currentRevision: () => Promise<number>;
  report: (err: unknown, method: string) => WireStatus;
}

interface StreamWatch {
  id: number;
  watcher?: Watcher;
  /** The created response has gone out; until then store responses wait in `pending`. */
  created: boolean;
  pending: WatchResponse[];
  /** Canceled by the client, by the store, or because the stream ended. */
  done: boolean;
}

/** etcd's reason when a client-chosen watch id is already taken on the stream. */
const DUPLICATE_WATCH_ID = 'mvcc: duplicate watch ID provided on the WatchStream';

/**
 * One Watch stream: many watches, each with a stream-local id (the client's, when it names
 * one). Requests are handled one at a time, in order, so a watch's created response always
 * precedes its events and a cancel always finds the watch it names. Ending the stream, from
 * either side, cancels every watch on it.
 */
function serveWatchStream(
  call: grpc.ServerDuplexStream<Decoded<WireWatchRequest>, WireWatchResponse>,
  deps: WatchStreamDeps,
): void {
  const { kv, stamp, currentRevision } = deps;
  const watches = new Map<number, StreamWatch>();
  let nextId = 0;
  let closed = false;
  let queue: Promise<void> = Promise.resolve();

  const send = (res: WireWatchResponse): void => {
    if (closed) return;
    try {
      call.write(res);
    } catch {
      // The stream broke under us; its 'error'/'close' handler cleans up.
    }
  };

  const header = (revision: number) =>
    headerToWire(stamp({ clusterId: '', memberId: '', revision, raftTerm: 0 }));

  const forward = (w: StreamWatch, r: WatchResponse): void => {
    if (w.done) return;
    if (r.canceled) {
      w.done = true;
      watches.delete(w.id);
    }
    send(watchResponseToWire({ ...r, header: stamp(r.header) }, w.id));
  };

  const shutdown = (): void => {
    if (closed) return;
    closed = true;
    for (const w of watches.values()) {
      w.done = true;
      w.watcher?.cancel().catch(() => {});
    }
    watches.clear();
  };

  const fail = (status: WireStatus): void => {
    if (closed) return;
    const err = toServiceError(status);
    shutdown();
    try {
      call.emit('error', err);
    } catch {
      // Already ended.
    }
  };

  const create = async (creq: WireWatchCreateRequest): Promise<void> => {
    const req = watchCreateFromWire(creq);
    let id = longToNumber(creq.watch_id, 'watch_id');
    if (id !== 0 && watches.has(id)) {
      send({
        header: header(await currentRevision()),
        watch_id: -1,
        created: true,
        canceled: true,
        cancel_reason: DUPLICATE_WATCH_ID,
      });
      return;
    }
    if (id === 0) {
      while (watches.has(nextId)) nextId++;
      id = nextId++;
    }
    // "From now on" is pinned to the revision the created response reports, so a client that
    // resumes from that revision + 1 after a disconnect neither misses nor repeats an event.
    const revision = await currentRevision();
    if (req.startRevision === undefined) req.startRevision = revision + 1;
    const w: StreamWatch = { id, created: false, pending: [], done: false };
    watches.set(id, w);
    try {
      w.watcher = await kv.watch(req, (r) => {
        if (!w.created) w.pending.push(r);
        else forward(w, r);
      });
    } catch (err) {
      watches.delete(id);
      w.done = true;
      if (err instanceof CompactedError) {
        // As etcd: the watch is created, then canceled with the oldest revision left.
        send({ header: header(revision), watch_id: id, created: true });
        send({
          header: header(revision),
          watch_id: id,
          canceled: true,
          compact_revision: err.compactRevision,
          cancel_reason: err.message,
        });
      } else {
        const status = deps.report(err, 'Watch');
        send({
          header: header(revision),
          watch_id: -1,
          created: true,
          canceled: true,
          cancel_reason: status.details,
        });
      }
      return;
    }
    if (closed || w.done) {
      w.watcher.cancel().catch(() => {});
      return;
    }
    send({ header: header(revision), watch_id: id, created: true });
    w.created = true;
    for (const r of w.pending.splice(0)) forward(w, r);
  };

  const cancel = async (watchId: number): Promise<void> => {
    const w = watches.get(watchId);
    if (!w) return; // As etcd: canceling an unknown watch answers nothing.
    watches.delete(watchId);
    w.done = true;
    await w.watcher?.cancel();
    send({ header: header(await currentRevision()), watch_id: watchId, canceled: true });
  };

  // A progress response promises that every event up to its revision was sent. The store
  // queues a revision's watch responses when it applies it and hands them over on a later
  // turn of the event loop (setImmediate), so after reading the revision, wait one such turn:
  // the responses queued before the read reach this stream first.
  const progress = async (): Promise<void> => {
    const revision = await currentRevision();
    await new Promise<void>((resolve) => setImmediate(resolve));
    send({ header: header(revision), watch_id: -1 });
  };

  const handle = async (d: Decoded<WireWatchRequest>): Promise<void> => {
    const req = unwrap(d, 'Watch');
    if (req.create_request) await create(req.create_request);
    else if (req.cancel_request) await cancel(longToNumber(req.cancel_request.watch_id, 'watch_id'));
    else if (req.progress_request) await progress();
    else throw invalidArgument('watch request has none of create_request, cancel_request, progress_request');
  };

  call.on('data', (d: Decoded<WireWatchRequest>) => {
    queue = queue.then(async () => {
      if (closed) return;
      try {
        await handle(d);
      } catch (err) {
        fail(deps.report(err, 'Watch'));
      }
    });
  });
  call.on('end', () => {
    queue = queue.then(() => {
      if (closed) return;
      shutdown();
      try {
        call.end();
      } catch {
        // Already ended.
      }
    });
  });
  call.on('cancelled', shutdown);
  call.on('close', shutdown);
  call.on('error', shutdown);
}

// ---- Lease keep-alive streams ----

/**
 * One LeaseKeepAlive stream: each request renews one lease and gets exactly one response, in
 * request order; TTL 0 when the lease no longer exists (as etcd). Any other failure ends the
 * stream with that error's status.
 */
function serveKeepAliveStream(
  call: grpc.ServerDuplexStream<Decoded<WireLeaseIdRequest>, unknown>,
  deps: {
    kv: KV;
    stamp: (h: ResponseHeader) => ResponseHeader;
    report: (err: unknown, method: string) => WireStatus;
  },
): void {
  let closed = false;
  let queue: Promise<void> = Promise.resolve();
  const close = () => {
    closed = true;
  };
  const send = (res: unknown) => {
    if (closed) return;
    try {
      call.write(res);
    } catch {
      // Broken stream: 'close' follows.
    }
  };

  const renew = async (d: Decoded<WireLeaseIdRequest>): Promise<void> => {
    const id = longToNumber(unwrap(d, 'LeaseKeepAlive').ID, 'ID');
    try {
      const r = await deps.kv.leaseKeepAlive(id);
      send(leaseKeepAliveResponseToWire({ ...r, header: deps.stamp(r.header) }));
    } catch (err) {
      if (!(err instanceof StoreError && err.code === leaseNotFound().code)) throw err;
      send({
        header: headerToWire(deps.stamp({ clusterId: '', memberId: '', revision: 0, raftTerm: 0 })),
        ID: id,
        TTL: 0,
      });
    }
  };

  call.on('data', (d: Decoded<WireLeaseIdRequest>) => {
    queue = queue.then(async () => {
      if (closed) return;
      try {
        await renew(d);
      } catch (err) {
        if (closed) return;
        closed = true;
        try {
          call.emit('error', toServiceError(deps.report(err, 'LeaseKeepAlive')));
        } catch {
          // Already ended.
        }
      }
    });
  });
  call.on('end', () => {
    queue = queue.then(() => {
      if (closed) return;
      closed = true;
      try {
        call.end();
      } catch {
        // Already ended.
      }
    });
  });
  call.on('cancelled', close);
  call.on('close', close);
  call.on('error', close);
}
