import test from 'ava';
import {
  CodecError,
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  decodeSnapshotMetadata,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodeSnapshot,
  encodeSnapshotMetadata,
} from '../../pkg/raft/codec.js';
import { RaftErrorCode } from '../../pkg/raft/errors.js';
import { createLocalNetwork } from '../../pkg/raft/local-transport.js';
import {
  crc32,
  decodeSnapshotChunk,
  encodeSnapshotChunk,
  SnapshotAssembler,
  type SnapshotChunk,
  SnapshotChunkError,
  SnapshotChunkErrorReason,
  splitSnapshotMessage,
} from '../../pkg/raft/snapshot-chunks.js';
import type { MessageHandler } from '../../pkg/raft/transport.js';
import {
  type Entry,
  EntryType,
  type Message,
  MessageType,
  message,
  type Snapshot,
} from '../../pkg/raft/types.js';

const enc = new TextEncoder();

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

function snapMessage(size: number): Message {
  const snapshot: Snapshot = {
    metadata: { index: 1234, term: 7, confState: { voters: [1, 2, 3], learners: [4] } },
    data: bytes(size),
  };
  return message({ type: MessageType.Snap, from: 1, to: 2, term: 7, snapshot });
}

// --- codec ---

test('codec: entries round-trip, including large numbers and empty data', (t) => {
  const entries: Entry[] = [
    { term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(0) },
    { term: 2 ** 40 + 3, index: Number.MAX_SAFE_INTEGER, type: EntryType.ConfChange, data: enc.encode('x') },
    { term: 127, index: 128, type: EntryType.Normal, data: bytes(1000) },
  ];
  for (const e of entries) t.deepEqual(decodeEntry(encodeEntry(e)), e);
});

test('codec: hard state and snapshot metadata round-trip', (t) => {
  const hs = { term: 5, vote: 3, commit: 99 };
  t.deepEqual(decodeHardState(encodeHardState(hs)), hs);
  const md = { index: 10, term: 2, confState: { voters: [1, 2, 300], learners: [] } };
  t.deepEqual(decodeSnapshotMetadata(encodeSnapshotMetadata(md)), md);
  const snap = { metadata: md, data: bytes(5000) };
  t.deepEqual(decodeSnapshot(encodeSnapshot(snap)), snap);
});

test('codec: messages round-trip with every field set', (t) => {
  const m: Message = message({
    type: MessageType.AppResp,
    from: 1,
    to: 2,
    term: 9,
    logTerm: 8,
    index: 100,
    commit: 90,
    reject: true,
    rejectHint: 42,
    rejectTerm: 3,
    context: enc.encode('ctx'),
    entries: [
      { term: 9, index: 101, type: EntryType.Normal, data: enc.encode('a') },
      { term: 9, index: 102, type: EntryType.ConfChange, data: enc.encode('bb') },
    ],
  });
  t.deepEqual(decodeMessage(encodeMessage(m)), m);
  const plain = message({ type: MessageType.Heartbeat, from: 3, to: 1, term: 2, commit: 5 });
  const decoded = decodeMessage(encodeMessage(plain));
  t.deepEqual(decoded, plain);
  t.false('snapshot' in decoded);
  const snap = snapMessage(300);
  t.deepEqual(decodeMessage(encodeMessage(snap)), snap);
});

test('codec: decoded bytes do not alias the input buffer', (t) => {
  const e = { term: 1, index: 1, type: EntryType.Normal, data: enc.encode('abc') } as Entry;
  const buf = encodeEntry(e);
  const out = decodeEntry(buf);
  buf.fill(0);
  t.deepEqual(out, e);
});

test('codec: truncated, trailing or unknown input throws CodecError', (t) => {
  const buf = encodeMessage(snapMessage(100));
  for (const cut of [0, 1, 5, buf.length - 1]) {
    t.throws(() => decodeMessage(buf.subarray(0, cut)), { instanceOf: CodecError });
  }
  const trailing = new Uint8Array(buf.length + 1);
  trailing.set(buf);
  t.throws(() => decodeMessage(trailing), { instanceOf: CodecError });
  const version = buf.slice();
  version[0] = 99;
  t.throws(() => decodeMessage(version), { instanceOf: CodecError, message: /format version 99/ });
  const type = buf.slice();
  type[1] = 200;
  t.throws(() => decodeMessage(type), { instanceOf: CodecError, message: /message type 200/ });
});

// --- chunks ---

test('crc32 matches the standard check value and continues incrementally', (t) => {
  t.is(crc32(enc.encode('123456789')), 0xcbf43926);
  const data = bytes(10000);
  t.is(crc32(data.subarray(3000), crc32(data.subarray(0, 3000))), crc32(data));
});

test('an 8 MiB snapshot round-trips through 1 MiB chunks and the wire encoding', (t) => {
  const msg = snapMessage(8 * 1024 * 1024);
  const chunks = splitSnapshotMessage(msg);
  t.is(chunks.length, 8);
  t.truthy(chunks[0]?.header);
  t.is(chunks[0]?.header?.snapshot?.data.length, 0);
  t.true(chunks.slice(1).every((c) => c.header === undefined));
  t.true(chunks.slice(0, -1).every((c) => !c.last && c.checksum === undefined));
  t.true(chunks[7]?.last);
  t.is(chunks[7]?.checksum, crc32(msg.snapshot?.data as Uint8Array));
  const asm = new SnapshotAssembler();
  let out: Message | undefined;
  for (const [i, c] of chunks.entries()) {
    out = asm.push(decodeSnapshotChunk(encodeSnapshotChunk(c)));
    if (i < chunks.length - 1) t.is(out, undefined);
  }
  // ava's deepEqual crawls 8 MiB byte by byte; compare the bytes natively instead.
  const { snapshot: outSnap, ...outRest } = out as Message;
  const { snapshot: inSnap, ...inRest } = msg;
  t.deepEqual(outRest, inRest);
  t.deepEqual(outSnap?.metadata, inSnap?.metadata);
  t.true(Buffer.from(outSnap?.data as Uint8Array).equals(inSnap?.data as Uint8Array));
  t.false(asm.inProgress);
});

test('uneven and empty snapshots split and reassemble', (t) => {
  for (const [size, chunkSize, count] of [
    [0, 10, 1],
    [1, 10, 1],
    [10, 10, 1],
    [11, 10, 2],
    [25, 10, 3],
  ] as const) {
    const msg = snapMessage(size);
    const chunks = splitSnapshotMessage(msg, chunkSize);
    t.is(chunks.length, count, `size ${size}`);
    const asm = new SnapshotAssembler();
    const results = chunks.map((c) => asm.push(c));
    t.deepEqual(results.at(-1), msg);
  }
});

test('only snapshot messages can be split', (t) => {
  t.throws(() => splitSnapshotMessage(message({ type: MessageType.App })), {
    instanceOf: SnapshotChunkError,
  });
});

function expectReject(
  t: import('ava').ExecutionContext,
  chunks: SnapshotChunk[],
  reason: SnapshotChunkErrorReason,
) {
  const asm = new SnapshotAssembler();
  const err = t.throws(
    () => {
      for (const c of chunks) asm.push(c);
    },
    { instanceOf: SnapshotChunkError },
  );
  t.is(err?.reason, reason);
  t.is(err?.code, RaftErrorCode.Corrupt);
  t.false(asm.inProgress, 'a failed stream is discarded');
  // The assembler accepts a fresh stream afterwards.
  const msg = snapMessage(30);
  t.deepEqual(
    splitSnapshotMessage(msg, 10)
      .map((c) => asm.push(c))
      .at(-1),
    msg,
  );
}

test('a missing chunk is a gap', (t) => {
  const chunks = splitSnapshotMessage(snapMessage(50), 10);
  expectReject(
    t,
    [chunks[0], chunks[1], chunks[3], chunks[4]] as SnapshotChunk[],
    SnapshotChunkErrorReason.Gap,
  );
  expectReject(t, chunks.slice(1), SnapshotChunkErrorReason.Gap);
});

test('reordered or repeated chunks are refused', (t) => {
  const chunks = splitSnapshotMessage(snapMessage(50), 10);
  expectReject(t, [chunks[0], chunks[2], chunks[1]] as SnapshotChunk[], SnapshotChunkErrorReason.Gap);
  expectReject(t, [chunks[0], chunks[1], chunks[1]] as SnapshotChunk[], SnapshotChunkErrorReason.OutOfOrder);
  expectReject(t, [chunks[0], chunks[0]] as SnapshotChunk[], SnapshotChunkErrorReason.UnexpectedHeader);
});

test('a stream without a header is refused', (t) => {
  const chunks = splitSnapshotMessage(snapMessage(50), 10);
  const { header: _, ...first } = chunks[0] as SnapshotChunk;
  expectReject(t, [first], SnapshotChunkErrorReason.MissingHeader);
});

test('size mismatches are refused', (t) => {
  const chunks = splitSnapshotMessage(snapMessage(50), 10);
  const changedTotal = { ...(chunks[1] as SnapshotChunk), totalSize: 60 };
  expectReject(t, [chunks[0], changedTotal] as SnapshotChunk[], SnapshotChunkErrorReason.SizeMismatch);
  const early = { ...(chunks[2] as SnapshotChunk), last: true, checksum: 0 };
  expectReject(t, [chunks[0], chunks[1], early] as SnapshotChunk[], SnapshotChunkErrorReason.SizeMismatch);
  const overlong = { ...(chunks[4] as SnapshotChunk), data: new Uint8Array(11) };
  expectReject(t, [...chunks.slice(0, 4), overlong], SnapshotChunkErrorReason.SizeMismatch);
  const huge = { ...(chunks[0] as SnapshotChunk), totalSize: 2 ** 40 };
  expectReject(t, [huge], SnapshotChunkErrorReason.TooLarge);
});

test('corrupted data or checksum is refused', (t) => {
  const chunks = splitSnapshotMessage(snapMessage(50), 10);
  const flipped = (chunks[2] as SnapshotChunk).data.slice();
  flipped[3] = (flipped[3] as number) ^ 1;
  const corrupt = chunks.slice();
  corrupt[2] = { ...(chunks[2] as SnapshotChunk), data: flipped };
  expectReject(t, corrupt, SnapshotChunkErrorReason.ChecksumMismatch);
  const badSum = chunks.slice();
  badSum[4] = { ...(chunks[4] as SnapshotChunk), checksum: ((chunks[4]?.checksum as number) + 1) >>> 0 };
  expectReject(t, badSum, SnapshotChunkErrorReason.ChecksumMismatch);
  const noSum = chunks.slice();
  const { checksum: _, ...last } = chunks[4] as SnapshotChunk;
  noSum[4] = last;
  expectReject(t, noSum, SnapshotChunkErrorReason.ChecksumMismatch);
});

// --- local transport ---

interface Recorder extends MessageHandler {
  received: Message[];
  statuses: [number, boolean][];
  unreachables: number[];
}

function recorder(): Recorder {
  const r: Recorder = {
    received: [],
    statuses: [],
    unreachables: [],
    receive: (m) => r.received.push(m),
    snapshotStatus: (to, ok) => r.statuses.push([to, ok]),
    unreachable: (to) => r.unreachables.push(to),
  };
  return r;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

test('local transport delivers encoded copies in order, asynchronously', async (t) => {
  const net = createLocalNetwork();
  const [a, b] = [net.transport(1), net.transport(2)];
  const [ra, rb] = [recorder(), recorder()];
  await a.start(ra);
  await b.start(rb);
  a.addPeer(2, 'b');
  const msgs = [1, 2, 3].map((i) => message({ type: MessageType.App, from: 1, to: 2, term: 1, index: i }));
  a.send(msgs);
  t.is(rb.received.length, 0, 'never delivered synchronously');
  await settle();
  t.deepEqual(rb.received, msgs);
  t.not(rb.received[0], msgs[0], 'the receiver gets its own copy');
  // 2 does not know 1 yet: its reply is dropped and reported.
  b.send([message({ type: MessageType.AppResp, from: 2, to: 1, term: 1 })]);
  await settle();
  t.deepEqual(rb.unreachables, [1]);
  t.is(ra.received.length, 0);
  await a.stop();
  await b.stop();
});

test('local transport streams snapshots in chunks and reports their status', async (t) => {
  const net = createLocalNetwork({ chunkSize: 1000 });
  const [a, b] = [net.transport(1), net.transport(2)];
  const [ra, rb] = [recorder(), recorder()];
  await a.start(ra);
  await b.start(rb);
  a.addPeer(2, 'b');
  const snap = snapMessage(4500);
  a.send([snap]);
  await settle();
  t.deepEqual(rb.received, [snap]);
  t.deepEqual(ra.statuses, [[2, true]]);
  t.is(net.stats().snapshotChunksDelivered, 5);
  t.is(net.stats().snapshotsDelivered, 1);

  // Cut while a stream is in flight: the stream fails and the sender hears about it.
  a.send([snap]);
  net.isolate(2);
  await settle();
  t.is(rb.received.length, 1);
  t.deepEqual(ra.statuses, [
    [2, true],
    [2, false],
  ]);
  t.deepEqual(ra.unreachables, [2]);
  net.heal();
  a.send([message({ type: MessageType.Heartbeat, from: 1, to: 2 })]);
  await settle();
  t.is(rb.received.length, 2);
  await a.stop();
  await b.stop();
});

test('local transport: isolated or stopped peers are unreachable', async (t) => {
  const net = createLocalNetwork();
  const [a, b] = [net.transport(1), net.transport(2)];
  const [ra, rb] = [recorder(), recorder()];
  await a.start(ra);
  await b.start(rb);
  a.addPeer(2, 'b');
  net.isolate(1);
  a.send([message({ type: MessageType.Heartbeat, from: 1, to: 2 })]);
  await settle();
  t.deepEqual(ra.unreachables, [2]);
  net.heal();
  net.cut(1, 2);
  a.send([message({ type: MessageType.Heartbeat, from: 1, to: 2 })]);
  await settle();
  t.deepEqual(ra.unreachables, [2, 2]);
  net.heal();
  await b.stop();
  a.send([message({ type: MessageType.Heartbeat, from: 1, to: 2 })]);
  await settle();
  t.deepEqual(ra.unreachables, [2, 2, 2]);
  a.removePeer(2);
  a.send([message({ type: MessageType.Heartbeat, from: 1, to: 2 })]);
  await settle();
  t.is(ra.unreachables.length, 4);
  t.is(rb.received.length, 0);
  await a.stop();
});
