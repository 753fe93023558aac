// The gRPC transport over real loopback sockets (127.0.0.x only). Servers bind port 0 where
// they can; a node that must come back on the same address reuses the port it got.

import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Client,
  credentials,
  Metadata,
  type MethodDefinition,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import test, { type ExecutionContext } from 'ava';
import { encodeMessage } from '../../pkg/raft/codec.js';
import { ProposalDroppedError } from '../../pkg/raft/errors.js';
import {
  createGrpcTransport,
  type GrpcTransport,
  type GrpcTransportLogger,
  type GrpcTransportOptions,
  TransportListenError,
} from '../../pkg/raft/grpc-transport.js';
import { createRaftNode, type RaftNode, type StateMachine } from '../../pkg/raft/runner.js';
import type { MessageHandler, Transport } from '../../pkg/raft/transport.js';
import {
  type Entry,
  type Message,
  MessageType,
  message,
  type NodeId,
  type Snapshot,
  StateRole,
} from '../../pkg/raft/types.js';
import { findProtoDir, protoPath } from '../../pkg/rpc/proto-path.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

// --- helpers ------------------------------------------------------------------------------

interface Recorder {
  handler: MessageHandler;
  received: Message[];
  unreachable: NodeId[];
  snapshots: [NodeId, boolean][];
}

function recorder(): Recorder {
  const r: Recorder = {
    received: [],
    unreachable: [],
    snapshots: [],
    handler: {
      receive: (m) => r.received.push(m),
      unreachable: (id) => r.unreachable.push(id),
      snapshotStatus: (id, ok) => r.snapshots.push([id, ok]),
    },
  };
  return r;
}

interface LogLine {
  level: string;
  msg: string;
  fields: object;
}

function captureLogger(lines: LogLine[]): GrpcTransportLogger {
  const at =
    (level: string) =>
    (fields: object, msg: string): void => {
      lines.push({ level, msg, fields });
      if (process.env.BERTH_TEST_LOG) console.log(level, msg, JSON.stringify(fields));
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A port nobody listens on right now at `host` (bind 0, read it, close). */
async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Transports made by a test; all stopped when it ends, whatever happens. */
class Transports {
  readonly all: GrpcTransport[] = [];

  make(opts: Partial<GrpcTransportOptions> & Pick<GrpcTransportOptions, 'id' | 'listen'>): GrpcTransport {
    const t = createGrpcTransport({ clusterId: 'test', ...opts });
    this.all.push(t);
    return t;
  }

  /** Start a transport on 127.0.0.`host`:0 with a recorder. */
  async started(
    id: NodeId,
    host: number,
    extra: Partial<GrpcTransportOptions> = {},
  ): Promise<{ t: GrpcTransport; r: Recorder; address: string }> {
    const t = this.make({ id, listen: `127.0.0.${host}:0`, ...extra });
    const r = recorder();
    await t.start(r.handler);
    return { t, r, address: t.address as string };
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.all.map((t) => t.stop()));
  }
}

async function withTransports(fn: (ts: Transports) => Promise<void>): Promise<void> {
  const ts = new Transports();
  try {
    await fn(ts);
  } finally {
    await ts.stopAll();
  }
}

function app(from: NodeId, to: NodeId, index: number, payload = `m${index}`): Message {
  return message({
    type: MessageType.App,
    from,
    to,
    term: 3,
    index,
    logTerm: 2,
    commit: index,
    entries: [{ term: 3, index: index + 1, type: 0, data: enc.encode(payload) }],
  });
}

function bytes(n: number, seed = 7): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

function indexes(r: Recorder, from: NodeId): number[] {
  return r.received.filter((m) => m.from === from && m.type === MessageType.App).map((m) => m.index);
}

const range = (n: number, start = 0) => Array.from({ length: n }, (_, i) => start + i);

test('proto files are found from the compiled tree', (t) => {
  t.true(existsSync(protoPath('raft.proto')));
  // From dist/test/unit as from dist/pkg/rpc: up to the folder with package.json and proto/.
  const here = dirname(fileURLToPath(import.meta.url));
  t.is(findProtoDir(here), dirname(protoPath('raft.proto')));
  t.is(findProtoDir('/'), undefined);
});

// --- message streams ----------------------------------------------------------------------

test('two transports exchange messages in order, both ways', async (t) => {
  await withTransports(async (ts) => {
    const a = await ts.started(1, 1);
    const b = await ts.started(2, 2);
    a.t.addPeer(2, b.address);
    b.t.addPeer(1, a.address);
    for (let i = 0; i < 1000; i++) {
      a.t.send([app(1, 2, i)]);
      if (i % 10 === 0) b.t.send([app(2, 1, i / 10)]);
    }
    await waitFor(() => b.r.received.length === 1000 && a.r.received.length === 100, 10000, 'delivery');
    t.deepEqual(indexes(b.r, 1), range(1000));
    t.deepEqual(indexes(a.r, 2), range(100));
    const m = b.r.received[42] as Message;
    t.is(m.to, 2);
    t.is(dec.decode(m.entries[0]?.data), 'm42');
    t.deepEqual(a.r.unreachable, []);
    t.is(a.t.stats().sent, 1000);
    t.is(b.t.stats().received, 1000);
  });
});

test('three transports: every pair in order, messages encoded at send time', async (t) => {
  await withTransports(async (ts) => {
    const nodes = await Promise.all([1, 2, 3].map((id) => ts.started(id, id)));
    for (const [k, n] of nodes.entries()) {
      for (const [j, p] of nodes.entries()) if (j !== k) n.t.addPeer(j + 1, p.address);
    }
    for (let i = 0; i < 300; i++) {
      for (const [k, n] of nodes.entries()) {
        const from = k + 1;
        const batch = [1, 2, 3].filter((to) => to !== from).map((to) => app(from, to, i));
        n.t.send(batch);
        // The caller may reuse its messages once send() returned.
        for (const m of batch) m.index = -1;
      }
    }
    await waitFor(() => nodes.every((n) => n.r.received.length === 600), 10000, 'all-to-all delivery');
    for (const [k, n] of nodes.entries()) {
      for (const from of [1, 2, 3].filter((id) => id !== k + 1)) {
        t.deepEqual(indexes(n.r, from), range(300), `node ${k + 1} from ${from}`);
      }
    }
  });
});

test('a 5 MiB snapshot arrives intact in chunks and the sender hears ok', async (t) => {
  await withTransports(async (ts) => {
    const a = await ts.started(1, 1);
    const b = await ts.started(2, 2);
    a.t.addPeer(2, b.address);
    const data = bytes(5 * 1024 * 1024 + 123);
    const snapshot: Snapshot = {
      metadata: { index: 4242, term: 9, confState: { voters: [1, 2, 3], learners: [4] } },
      data,
    };
    a.t.send([
      app(1, 2, 0),
      message({ type: MessageType.Snap, from: 1, to: 2, term: 9, snapshot }),
      app(1, 2, 1),
    ]);
    await waitFor(() => a.r.snapshots.length === 1, 10000, 'snapshot status');
    t.deepEqual(a.r.snapshots, [[2, true]]);
    const snap = b.r.received.find((m) => m.type === MessageType.Snap);
    t.truthy(snap);
    t.deepEqual(snap?.snapshot?.metadata, snapshot.metadata);
    t.is(snap?.snapshot?.data.length, data.length);
    t.true(Buffer.from(snap?.snapshot?.data ?? []).equals(Buffer.from(data)), 'snapshot bytes intact');
    t.is(snap?.term, 9);
    // Ordinary messages around it still arrive in their own order.
    await waitFor(() => indexes(b.r, 1).length === 2, 5000, 'messages around the snapshot');
    t.deepEqual(indexes(b.r, 1), [0, 1]);
    t.is(a.t.stats().snapshotChunksSent, 6, '5 MiB + a bit in 1 MiB chunks');
    t.is(b.t.stats().snapshotChunksReceived, 6);
    t.is(b.t.stats().snapshotsReceived, 1);
    t.deepEqual(a.r.unreachable, []);
  });
});

test('a snapshot to a peer that is down fails with snapshotStatus(false)', async (t) => {
  await withTransports(async (ts) => {
    const a = await ts.started(1, 1);
    const port = await freePort('127.0.0.2');
    a.t.addPeer(2, `127.0.0.2:${port}`);
    const snapshot: Snapshot = {
      metadata: { index: 10, term: 2, confState: { voters: [1, 2], learners: [] } },
      data: bytes(3000),
    };
    a.t.send([message({ type: MessageType.Snap, from: 1, to: 2, term: 2, snapshot })]);
    await waitFor(() => a.r.snapshots.length === 1, 5000, 'snapshot status');
    t.deepEqual(a.r.snapshots, [[2, false]]);
    t.true(a.r.unreachable.includes(2));
  });
});

test('a peer that is down is reported unreachable; messages flow once it is up', async (t) => {
  await withTransports(async (ts) => {
    const a = await ts.started(1, 1);
    const port = await freePort('127.0.0.2');
    const address = `127.0.0.2:${port}`;
    a.t.addPeer(2, address);
    a.t.send([app(1, 2, 0)]);
    await waitFor(() => a.r.unreachable.includes(2), 5000, 'unreachable report');
    // Never thrown at, never blocked: a burst to a dead peer just drops.
    t.notThrows(() => {
      for (let i = 0; i < 10000; i++) a.t.send([app(1, 2, i)]);
    });
    t.true(a.t.stats().dropped > 0);

    const b = ts.make({ id: 2, listen: address });
    const rb = recorder();
    await b.start(rb.handler);
    // Like Raft's heartbeats: keep sending until something lands.
    let i = 100;
    await waitFor(
      () => {
        a.t.send([app(1, 2, i++)]);
        return rb.received.length >= 5;
      },
      5000,
      'messages after the peer came up',
    );
    const got = indexes(rb, 1);
    t.deepEqual(
      got,
      [...got].sort((x, y) => x - y),
      'in order',
    );
    t.true(new Set(got).size === got.length, 'no duplicates');
  });
});

test('a full queue drops and reports instead of growing or blocking', async (t) => {
  await withTransports(async (ts) => {
    const a = await ts.started(1, 1, { maxQueuedMessages: 32 });
    const b = await ts.started(2, 2);
    a.t.addPeer(2, b.address);
    // One synchronous burst: the stream is still connecting, so the bounded queue overflows.
    for (let i = 0; i < 5000; i++) a.t.send([app(1, 2, i)]);
    t.true(a.t.stats().dropped > 0);
    await waitFor(() => a.r.unreachable.includes(2), 5000, 'unreachable report');
    await sleep(200);
    const got = indexes(b.r, 1);
    t.true(got.length > 0 && got.length < 5000, `${got.length} delivered`);
    t.deepEqual(got, range(got.length), 'what was delivered is the in-order prefix');
    // The link stays usable afterwards.
    a.t.send([app(1, 2, 9999)]);
    await waitFor(() => indexes(b.r, 1).includes(9999), 5000, 'later message');
  });
});

test('traffic for another cluster or another node id is refused', async (t) => {
  await withTransports(async (ts) => {
    const lines: LogLine[] = [];
    const a = await ts.started(1, 1, { clusterId: 'alpha' });
    const b = await ts.started(2, 2, { clusterId: 'beta', logger: captureLogger(lines) });
    const c = await ts.started(3, 3, { clusterId: 'alpha', logger: captureLogger(lines) });
    a.t.addPeer(2, b.address); // another cluster there
    a.t.addPeer(4, c.address); // node 3 listens there, not node 4
    a.t.send([app(1, 2, 0), app(1, 4, 0)]);
    await waitFor(
      () => a.r.unreachable.includes(2) && a.r.unreachable.includes(4),
      5000,
      'unreachable reports',
    );
    await sleep(100);
    t.deepEqual(b.r.received, []);
    t.deepEqual(c.r.received, []);
    t.true(b.t.stats().refused >= 1);
    t.true(c.t.stats().refused >= 1);
    t.true(
      lines.some((l) => l.level === 'warn' && /cluster "beta", not "alpha"/.test(l.msg)),
      'a clear log line names both clusters',
    );
    t.true(lines.some((l) => l.level === 'warn' && /this is node 3, not node 4/.test(l.msg)));
    // A raw client sees FAILED_PRECONDITION.
    const err = await rawSend(b.address, { cluster: 'alpha', from: 1, to: 2 }, [
      { message: new Uint8Array(0), clusterId: 'alpha', from: 1, to: 2 },
    ]);
    t.is(err?.code, status.FAILED_PRECONDITION);
    t.regex(err?.details ?? '', /cluster "beta"/);
  });
});

// A hand-made client for malformed traffic.
interface Envelope {
  message: Uint8Array;
  clusterId: string;
  from: number;
  to: number;
}

function rawSend(
  address: string,
  id: { cluster: string; from: number; to: number },
  envelopes: Envelope[],
  method: 'Send' | 'Snapshot' = 'Send',
): Promise<ServiceError | null> {
  const pkg = loadSync(protoPath('raft.proto'), { longs: Number, defaults: true });
  const svc = pkg['berth.raft.v1.RaftTransport'] as Record<string, MethodDefinition<object, object>>;
  const def = svc[method] as MethodDefinition<object, object>;
  const client = new Client(address, credentials.createInsecure());
  const md = new Metadata();
  md.set('berth-cluster-id', id.cluster);
  md.set('berth-from', String(id.from));
  md.set('berth-to', String(id.to));
  return new Promise((resolve) => {
    const call = client.makeClientStreamRequest(
      def.path,
      def.requestSerialize,
      def.responseDeserialize,
      md,
      {},
      (err) => {
        client.close();
        resolve(err);
      },
    );
    call.on('error', () => {});
    for (const e of envelopes) {
      call.write(
        method === 'Send' ? e : { chunk: e.message, clusterId: e.clusterId, from: e.from, to: e.to },
      );
    }
    call.end();
  });
}

test('malformed input ends that stream with INVALID_ARGUMENT and nothing else', async (t) => {
  await withTransports(async (ts) => {
    const lines: LogLine[] = [];
    const b = await ts.started(2, 2, { logger: captureLogger(lines) });
    const id = { cluster: 'test', from: 1, to: 2 };
    const garbage = { message: bytes(100), clusterId: 'test', from: 1, to: 2 };
    const bad = await rawSend(b.address, id, [garbage]);
    t.is(bad?.code, status.INVALID_ARGUMENT);
    t.regex(bad?.details ?? '', /malformed message stream from node 1/);
    const badSnap = await rawSend(b.address, id, [garbage], 'Snapshot');
    t.is(badSnap?.code, status.INVALID_ARGUMENT);
    // A snapshot stream that stops before its last chunk is refused as well.
    const half = await rawSend(b.address, id, [], 'Snapshot');
    t.is(half?.code, status.INVALID_ARGUMENT);
    // Well-formed bytes, but a message type that never travels between nodes.
    const local = encodeMessage(message({ type: MessageType.Hup, from: 1, to: 2 }));
    const hup = await rawSend(b.address, id, [{ message: local, clusterId: 'test', from: 1, to: 2 }]);
    t.is(hup?.code, status.INVALID_ARGUMENT);
    const noIdentity = await rawSend(b.address, { cluster: 'test', from: 1, to: Number.NaN }, [garbage]);
    t.is(noIdentity?.code, status.INVALID_ARGUMENT);
    t.deepEqual(b.r.received, []);
    t.true(lines.some((l) => l.level === 'warn' && /malformed/.test(l.msg)));
    // The transport is unharmed.
    const a = await ts.started(1, 1);
    a.t.addPeer(2, b.address);
    a.t.send([app(1, 2, 0)]);
    await waitFor(() => b.r.received.length === 1, 5000, 'a good message after bad ones');
  });
});

test('stop() is idempotent and frees the port; a taken port fails start clearly', async (t) => {
  await withTransports(async (ts) => {
    const a = await ts.started(1, 1);
    const taken = ts.make({ id: 9, listen: a.address });
    const err = await t.throwsAsync(taken.start(recorder().handler), { instanceOf: TransportListenError });
    t.regex(err?.message ?? '', new RegExp(`cannot listen on ${a.address.replace(/\./g, '\\.')}`));
    t.regex(err?.message ?? '', /already in use/);
    await Promise.all([a.t.stop(), a.t.stop()]);
    await a.t.stop();
    a.t.send([app(1, 2, 0)]); // after stop: silently dropped
    await t.throwsAsync(a.t.start(recorder().handler));
    const again = ts.make({ id: 1, listen: a.address });
    await again.start(recorder().handler);
    t.is(again.address, a.address);
    await again.stop();
    await again.stop();
  });
});

test('a stopped peer is noticed and the link recovers when it restarts on the same address', async (t) => {
  await withTransports(async (ts) => {
    const a = await ts.started(1, 1);
    const b = await ts.started(2, 2);
    a.t.addPeer(2, b.address);
    a.t.send([app(1, 2, 0)]);
    await waitFor(() => b.r.received.length === 1, 5000, 'first message');
    await b.t.stop();
    await waitFor(
      () => {
        a.t.send([app(1, 2, 1)]);
        return a.r.unreachable.includes(2);
      },
      5000,
      'the broken stream to be reported',
    );
    const b2 = ts.make({ id: 2, listen: b.address });
    const r2 = recorder();
    await b2.start(r2.handler);
    let i = 10;
    await waitFor(
      () => {
        a.t.send([app(1, 2, i++)]);
        return r2.received.length >= 3;
      },
      5000,
      'messages to the restarted peer',
    );
    t.pass();
  });
});

/**
 * A TCP relay on `listenHost` to `target` that can be frozen: while frozen it swallows bytes
 * both ways and keeps the connections open, like a peer that hangs (SIGSTOP, dead VM).
 */
async function freezableRelay(listenHost: string, target: string) {
  const [host, port] = [
    target.slice(0, target.lastIndexOf(':')),
    Number(target.slice(target.lastIndexOf(':') + 1)),
  ];
  const sockets = new Set<Socket>();
  const state = { frozen: false };
  const server: NetServer = createServer((inbound) => {
    const outbound = connect(port, host);
    for (const [from, to] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      sockets.add(from);
      from.on('data', (d) => {
        if (!state.frozen) to.write(d);
      });
      from.on('error', () => {});
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, listenHost, resolve));
  const addr = server.address();
  const address = `${listenHost}:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return {
    address,
    freeze: () => {
      state.frozen = true;
    },
    thaw: () => {
      state.frozen = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const sock of sockets) sock.destroy();
        server.close(() => resolve());
      }),
  };
}

test('a peer that hangs is noticed by keep-alive within a few seconds', async (t) => {
  await withTransports(async (ts) => {
    const a = await ts.started(1, 1);
    const b = await ts.started(2, 2);
    const relay = await freezableRelay('127.0.0.3', b.address);
    try {
      a.t.addPeer(2, relay.address);
      a.t.send([app(1, 2, 0)]);
      await waitFor(() => b.r.received.length === 1, 5000, 'delivery through the relay');
      relay.freeze();
      const frozenAt = Date.now();
      // Nothing is sent meanwhile: only keep-alive can tell that the peer stopped answering.
      await waitFor(() => a.r.unreachable.includes(2), 8000, 'keep-alive to notice the hung peer');
      const noticedMs = Date.now() - frozenAt;
      t.true(noticedMs < 5000, `noticed after ${noticedMs} ms`);
      relay.thaw();
      let i = 1;
      await waitFor(
        () => {
          a.t.send([app(1, 2, i++)]);
          return b.r.received.length >= 3;
        },
        8000,
        'messages once the peer answers again',
      );
    } finally {
      await relay.close();
    }
  });
});

// --- end to end: Raft nodes over gRPC -----------------------------------------------------

/** Appends every payload to a list; its snapshot carries `ballast` extra bytes. */
class ListMachine implements StateMachine {
  values: string[] = [];
  restores = 0;
  constructor(private readonly ballast = 0) {}

  apply(entry: Entry): void {
    this.values.push(dec.decode(entry.data));
  }

  snapshot(): Uint8Array {
    const json = enc.encode(JSON.stringify(this.values));
    const out = new Uint8Array(4 + json.length + this.ballast);
    new DataView(out.buffer).setUint32(0, json.length);
    out.set(json, 4);
    for (let i = 4 + json.length; i < out.length; i++) out[i] = i & 0xff;
    return out;
  }

  restore(data: Uint8Array): void {
    this.restores++;
    const len = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
    this.values = JSON.parse(dec.decode(data.subarray(4, 4 + len))) as string[];
  }
}

/**
 * A Transport whose gRPC transport can be stopped and replaced underneath a running node, to
 * isolate it and bring it back on the same address. It binds before the node starts (port 0),
 * forwarding to the node's handler once the node hands it over.
 */
class SwappableTransport implements Transport {
  private handler: MessageHandler | undefined;
  private readonly peers = new Map<NodeId, string>();
  private readonly forward: MessageHandler = {
    receive: (m) => this.handler?.receive(m),
    unreachable: (id) => this.handler?.unreachable(id),
    snapshotStatus: (id, ok) => this.handler?.snapshotStatus(id, ok),
  };

  constructor(
    public inner: GrpcTransport,
    private readonly make: () => GrpcTransport,
  ) {}

  async bind(): Promise<string> {
    await this.inner.start(this.forward);
    return this.inner.address as string;
  }

  async start(handler: MessageHandler): Promise<void> {
    this.handler = handler;
  }

  send(messages: Message[]): void {
    this.inner.send(messages);
  }

  addPeer(id: NodeId, address: string): void {
    this.peers.set(id, address);
    this.inner.addPeer(id, address);
  }

  removePeer(id: NodeId): void {
    this.peers.delete(id);
    this.inner.removePeer(id);
  }

  async cut(): Promise<void> {
    await this.inner.stop();
  }

  async restore(): Promise<void> {
    this.inner = this.make();
    for (const [id, address] of this.peers) this.inner.addPeer(id, address);
    await this.inner.start(this.forward);
  }

  stop(): Promise<void> {
    return this.inner.stop();
  }
}

interface GrpcMember {
  id: NodeId;
  sm: ListMachine;
  node: RaftNode;
  transport: SwappableTransport;
}

const TICK_MS = 20;

async function proposeRetry(node: RaftNode, value: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await node.propose(enc.encode(value));
    } catch (err) {
      if (!(err instanceof ProposalDroppedError) || attempt > 200) throw err;
      await sleep(20);
    }
  }
}

async function leaderOf(members: GrpcMember[], timeoutMs = 10000): Promise<GrpcMember> {
  let found: GrpcMember | undefined;
  await waitFor(
    () => {
      const leaders = members.filter((m) => m.node.status().role === StateRole.Leader);
      if (leaders.length !== 1) return false;
      const lead = leaders[0] as GrpcMember;
      if (!members.every((m) => m.node.status().leader === lead.id)) return false;
      found = lead;
      return true;
    },
    timeoutMs,
    'a leader',
  );
  return found as GrpcMember;
}

function sameEverywhere(members: GrpcMember[], count: number): boolean {
  const first = members[0]?.sm.values ?? [];
  return members.every((m) => m.sm.values.length === count && m.sm.values.every((v, i) => v === first[i]));
}

async function e2e(t: ExecutionContext, fn: (members: GrpcMember[]) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'berth-raft-grpc-'));
  const transports = new Transports();
  const members: GrpcMember[] = [];
  try {
    const ids = [1, 2, 3];
    const swaps = new Map<NodeId, SwappableTransport>();
    const addresses = new Map<NodeId, string>();
    for (const id of ids) {
      const lines: LogLine[] = [];
      const make = (listen: string) => () =>
        transports.make({ id, listen, clusterId: 'e2e', logger: captureLogger(lines) });
      const first = make(`127.0.0.${id}:0`)();
      const swap = new SwappableTransport(first, () => make(swap.inner.address ?? `127.0.0.${id}:0`)());
      addresses.set(id, await swap.bind());
      swaps.set(id, swap);
    }
    const peers = ids.map((id) => ({ id, address: addresses.get(id) as string }));
    for (const id of ids) {
      const sm = new ListMachine(3 * 1024 * 1024);
      const transport = swaps.get(id) as SwappableTransport;
      const node = await createRaftNode({
        id,
        clusterId: 'e2e',
        dataDir: join(root, `node-${id}`),
        peers,
        transport,
        stateMachine: sm,
        tickMs: TICK_MS,
        snapshotEntries: 40,
        catchUpEntries: 10,
        requestTimeoutMs: 10000,
      });
      node.onFatal((err) => t.fail(`node ${id} failed: ${String(err)}`));
      members.push({ id, sm, node, transport });
    }
    await fn(members);
  } finally {
    await Promise.all(members.map((m) => m.node.stop()));
    await transports.stopAll();
    await rm(root, { recursive: true, force: true });
  }
}

test('three Raft nodes over gRPC elect, replicate, and catch an isolated node up by snapshot', async (t) => {
  await e2e(t, async (members) => {
    const leader = await leaderOf(members);
    t.true(leader.transport.inner.address?.startsWith('127.0.0.'));
    // 50 proposals through every node (followers forward to the leader).
    for (let batch = 0; batch < 5; batch++) {
      await Promise.all(
        range(10).map((i) => proposeRetry((members[i % 3] as GrpcMember).node, `v${batch * 10 + i}`)),
      );
    }
    await waitFor(() => sameEverywhere(members, 50), 10000, 'all nodes to apply 50 entries');
    t.deepEqual(
      [...(members[0]?.sm.values ?? [])].sort(),
      range(50)
        .map((i) => `v${i}`)
        .sort(),
    );

    // Isolate a follower by stopping its transport; the majority moves past a snapshot.
    const lagging = members.find((m) => m.id !== leader.id) as GrpcMember;
    const majority = members.filter((m) => m !== lagging);
    await lagging.transport.cut();
    for (let i = 0; i < 100; i++) await proposeRetry(leader.node, `x${i}`);
    await waitFor(() => sameEverywhere(majority, 150), 10000, 'the majority to apply');
    const st = leader.node.status();
    t.true(st.snapshotIndex > lagging.node.status().lastIndex, `leader snapshot at ${st.snapshotIndex}`);
    t.true(st.firstIndex > lagging.node.status().lastIndex + 1, 'the log the laggard needs is compacted');
    t.is(lagging.sm.values.length, 50);

    // Back on the same address: the leader notices, and streams a chunked snapshot.
    const sentBefore = leader.transport.inner.stats().snapshotsSent;
    await lagging.transport.restore();
    await waitFor(() => sameEverywhere(members, 150), 15000, 'the laggard to catch up');
    t.true(lagging.sm.restores >= 1, 'restored from a snapshot');
    t.true(leader.transport.inner.stats().snapshotsSent > sentBefore, 'the leader sent a snapshot');
    t.true(
      lagging.transport.inner.stats().snapshotChunksReceived >= 4,
      'a ~3 MiB snapshot travels in 1 MiB chunks',
    );
    // And it keeps up normally afterwards.
    await proposeRetry(lagging.node, 'after');
    await waitFor(() => sameEverywhere(members, 151), 10000, 'replication after catch-up');
  });
});
