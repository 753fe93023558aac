// Streaming a snapshot message (MsgSnap) in bounded chunks. A snapshot can be far larger than
// any sane message size, so transports cut it up with splitSnapshotMessage() and the receiving
// side glues it back with a SnapshotAssembler, which refuses anything but a complete, in-order,
// intact stream. Pure: no I/O; transports decide how chunks travel.

import { decodeMessage, encodeMessage, Reader, Writer } from './codec.js';
import { RaftError, RaftErrorCode } from './errors.js';
import type { Message } from './types.js';
import { EMPTY, MessageType } from './types.js';

export const DEFAULT_SNAPSHOT_CHUNK_SIZE = 1024 * 1024;
/** The assembler's default refusal threshold, so a corrupt size cannot make it allocate wildly. */
export const DEFAULT_MAX_SNAPSHOT_SIZE = 2 * 1024 * 1024 * 1024 - 1;

/**
 * One piece of a snapshot stream. Chunks must be delivered in order, each exactly once.
 * `data` may be a view into the original snapshot's bytes: treat it as read-only.
 */
export interface SnapshotChunk {
  /** The MsgSnap itself with empty snapshot data; present in the first chunk only. */
  header?: Message;
  /** Where `data` starts within the snapshot data. */
  offset: number;
  /** Length of the whole snapshot data; the same in every chunk. */
  totalSize: number;
  data: Uint8Array;
  /** CRC-32 (IEEE) of the whole snapshot data; present in the last chunk only. */
  checksum?: number;
  last: boolean;
}

export const SnapshotChunkErrorReason = {
  MissingHeader: 'first chunk carries no snapshot header',
  UnexpectedHeader: 'a header arrived in the middle of a stream',
  Gap: 'chunks are missing',
  OutOfOrder: 'chunk arrived out of order or twice',
  SizeMismatch: 'chunk sizes do not add up to the announced total',
  TooLarge: 'snapshot is larger than allowed',
  ChecksumMismatch: 'snapshot data checksum mismatch',
  NotSnapshot: 'header is not a snapshot message',
} as const;
export type SnapshotChunkErrorReason =
  (typeof SnapshotChunkErrorReason)[keyof typeof SnapshotChunkErrorReason];

/** A snapshot stream that cannot be reassembled; the sender should report the snapshot as failed. */
export class SnapshotChunkError extends RaftError {
  constructor(
    readonly reason: SnapshotChunkErrorReason,
    detail: string,
  ) {
    // The catalogue has no code of its own for this: the snapshot is simply unavailable to us.
    super(RaftErrorCode.Corrupt, `raft: snapshot stream rejected: ${reason} (${detail})`);
    this.name = 'SnapshotChunkError';
  }
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3, as zlib); pass the previous result to continue over more bytes. */
export function crc32(data: Uint8Array, previous = 0): number {
  let c = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++)
    c = (CRC_TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Cut a MsgSnap into chunks of at most `chunkSize` data bytes (at least one chunk). */
export function splitSnapshotMessage(msg: Message, chunkSize = DEFAULT_SNAPSHOT_CHUNK_SIZE): SnapshotChunk[] {
  if (msg.type !== MessageType.Snap || !msg.snapshot) {
    throw new SnapshotChunkError(SnapshotChunkErrorReason.NotSnapshot, `message type ${msg.type}`);
  }
  if (!(chunkSize > 0)) throw new RangeError(`raft: snapshot chunk size must be positive, got ${chunkSize}`);
  const data = msg.snapshot.data;
  const header: Message = { ...msg, snapshot: { metadata: msg.snapshot.metadata, data: EMPTY } };
  const chunks: SnapshotChunk[] = [];
  let offset = 0;
  do {
    const end = Math.min(offset + chunkSize, data.length);
    chunks.push({
      offset,
      totalSize: data.length,
      data: data.subarray(offset, end),
      last: end === data.length,
    });
    offset = end;
  } while (offset < data.length);
  (chunks[0] as SnapshotChunk).header = header;
  (chunks[chunks.length - 1] as SnapshotChunk).checksum = crc32(data);
  return chunks;
}

/**
 * Reassembles one snapshot stream at a time. push() each chunk in order: it returns undefined
 * until the last chunk, then the whole MsgSnap (whose data the caller owns). Any fault throws
 * a SnapshotChunkError and discards the partial stream; the assembler is then ready for a new
 * stream, as it is after a completed one.
 */
export class SnapshotAssembler {
  private header: Message | undefined;
  private buf: Uint8Array = EMPTY;
  private received = 0;
  private crc = 0;

  constructor(private readonly maxSize = DEFAULT_MAX_SNAPSHOT_SIZE) {}

  /** True while a stream has started but not finished. */
  get inProgress(): boolean {
    return this.header !== undefined;
  }

  /** Drop a partial stream (e.g. when the connection carrying it broke). */
  reset(): void {
    this.header = undefined;
    this.buf = EMPTY;
    this.received = 0;
    this.crc = 0;
  }

  push(chunk: SnapshotChunk): Message | undefined {
    try {
      return this.accept(chunk);
    } catch (err) {
      this.reset();
      throw err;
    }
  }

  private accept(chunk: SnapshotChunk): Message | undefined {
    const fail = (reason: SnapshotChunkErrorReason, detail: string): never => {
      throw new SnapshotChunkError(reason, detail);
    };
    if (!this.header) {
      if (!chunk.header) {
        return fail(
          chunk.offset > 0 ? SnapshotChunkErrorReason.Gap : SnapshotChunkErrorReason.MissingHeader,
          `stream starts at offset ${chunk.offset}`,
        );
      }
      if (chunk.header.type !== MessageType.Snap || !chunk.header.snapshot) {
        fail(SnapshotChunkErrorReason.NotSnapshot, `message type ${chunk.header.type}`);
      }
      if (chunk.offset !== 0) fail(SnapshotChunkErrorReason.Gap, `first chunk at offset ${chunk.offset}`);
      if (!Number.isSafeInteger(chunk.totalSize) || chunk.totalSize < 0 || chunk.totalSize > this.maxSize) {
        fail(SnapshotChunkErrorReason.TooLarge, `${chunk.totalSize} bytes, limit ${this.maxSize}`);
      }
      this.header = chunk.header;
      this.buf = new Uint8Array(chunk.totalSize);
    } else if (chunk.header) {
      fail(SnapshotChunkErrorReason.UnexpectedHeader, `at offset ${chunk.offset}, expected ${this.received}`);
    }
    if (chunk.totalSize !== this.buf.length) {
      fail(SnapshotChunkErrorReason.SizeMismatch, `total ${chunk.totalSize}, announced ${this.buf.length}`);
    }
    if (chunk.offset > this.received)
      fail(SnapshotChunkErrorReason.Gap, `got ${chunk.offset}, expected ${this.received}`);
    if (chunk.offset < this.received) {
      fail(SnapshotChunkErrorReason.OutOfOrder, `got ${chunk.offset}, expected ${this.received}`);
    }
    const end = chunk.offset + chunk.data.length;
    if (end > this.buf.length)
      fail(SnapshotChunkErrorReason.SizeMismatch, `chunk ends at ${end} past ${this.buf.length}`);
    this.buf.set(chunk.data, chunk.offset);
    this.crc = crc32(chunk.data, this.crc);
    this.received = end;
    if (!chunk.last) return undefined;
    if (end !== this.buf.length)
      fail(SnapshotChunkErrorReason.SizeMismatch, `stream ended at ${end} of ${this.buf.length}`);
    if (chunk.checksum !== this.crc) {
      fail(
        SnapshotChunkErrorReason.ChecksumMismatch,
        `computed ${this.crc}, sent ${chunk.checksum ?? 'none'}`,
      );
    }
    const header = this.header as Message;
    const snapshot = header.snapshot as NonNullable<Message['snapshot']>;
    const msg: Message = { ...header, snapshot: { metadata: snapshot.metadata, data: this.buf } };
    this.reset();
    return msg;
  }
}

const CHUNK_HEADER = 1;
const CHUNK_LAST = 2;
const CHUNK_CHECKSUM = 4;

/** Wire form of a chunk: version, flags, offset, total size, [header message], [crc], data. */
export function encodeSnapshotChunk(c: SnapshotChunk): Uint8Array {
  const header = c.header ? encodeMessage(c.header) : undefined;
  const flags =
    (header ? CHUNK_HEADER : 0) | (c.last ? CHUNK_LAST : 0) | (c.checksum !== undefined ? CHUNK_CHECKSUM : 0);
  const w = new Writer(c.data.length + (header?.length ?? 0) + 32);
  w.u8(1).u8(flags).uvarint(c.offset).uvarint(c.totalSize);
  if (header) w.bytes(header);
  if (c.checksum !== undefined) w.uvarint(c.checksum);
  w.bytes(c.data);
  return w.finish();
}

export function decodeSnapshotChunk(b: Uint8Array): SnapshotChunk {
  const r = new Reader(b, 'snapshot chunk');
  r.version();
  const flags = r.u8();
  const c: SnapshotChunk = {
    offset: r.uvarint(),
    totalSize: r.uvarint(),
    data: EMPTY,
    last: (flags & CHUNK_LAST) !== 0,
  };
  if (flags & CHUNK_HEADER) c.header = decodeMessage(r.bytes());
  if (flags & CHUNK_CHECKSUM) c.checksum = r.uvarint();
  c.data = r.bytes();
  r.end();
  return c;
}
