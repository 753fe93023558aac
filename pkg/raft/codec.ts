// Binary encoding of the Raft data types, for the disk (LevelDB values) and the wire (peer
// messages). Numbers are unsigned LEB128 varints (safe up to 2^53), byte strings are a varint
// length followed by the bytes. Every top-level value starts with a format version byte so a
// later format can be told apart from this one.
//
// Ownership: encoders never keep references to their input; decoders copy every byte string
// out of the input buffer, so a decoded value owns its bytes and the buffer may be reused.

import { RaftError, RaftErrorCode } from './errors.js';
import type {
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  Snapshot,
  SnapshotMetadata,
} from './types.js';

const FORMAT_VERSION = 1;
const MAX_ENTRY_TYPE = 1;
const MAX_MESSAGE_TYPE = 18;

const FLAG_REJECT = 1;
const FLAG_SNAPSHOT = 2;

/** Bytes that cannot be decoded: truncated, from another format version, or corrupt. */
export class CodecError extends RaftError {
  constructor(what: string, detail: string) {
    // There is no dedicated code in the catalogue; the bytes are unusable, so the value is unavailable.
    super(RaftErrorCode.Corrupt, `raft codec: cannot decode ${what}: ${detail}`);
    this.name = 'CodecError';
  }
}

/** Appends to a growable buffer. */
export class Writer {
  private buf: Uint8Array;
  private pos = 0;

  constructor(initialSize = 64) {
    this.buf = new Uint8Array(initialSize);
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  u8(v: number): this {
    this.reserve(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  /** Unsigned LEB128. Uses arithmetic rather than bit operations so values above 2^32 work. */
  uvarint(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new RangeError(`raft codec: ${v} is not a non-negative safe integer`);
    this.reserve(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
    return this;
  }

  raw(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  bytes(b: Uint8Array): this {
    return this.uvarint(b.length).raw(b);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** Reads what a Writer wrote; every read checks bounds and throws CodecError past the end. */
export class Reader {
  private pos = 0;

  constructor(
    private readonly buf: Uint8Array,
    private readonly what: string,
  ) {}

  fail(detail: string): never {
    throw new CodecError(this.what, detail);
  }

  u8(): number {
    if (this.pos >= this.buf.length) this.fail('truncated');
    return this.buf[this.pos++] as number;
  }

  uvarint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (!Number.isSafeInteger(result)) this.fail('number out of range');
        return result;
      }
      mul *= 0x80;
    }
    return this.fail('varint too long');
  }

  raw(n: number): Uint8Array {
    if (n > this.buf.length - this.pos) this.fail('truncated');
    // A copy into a plain Uint8Array: Buffer#slice (LevelDB hands out Buffers) would alias.
    const out = new Uint8Array(n);
    out.set(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  bytes(): Uint8Array {
    return this.raw(this.uvarint());
  }

  /** Everything not read yet (copied). */
  rest(): Uint8Array {
    return this.raw(this.buf.length - this.pos);
  }

  version(): void {
    const v = this.u8();
    if (v !== FORMAT_VERSION) this.fail(`unknown format version ${v}`);
  }

  end(): void {
    if (this.pos !== this.buf.length) this.fail(`${this.buf.length - this.pos} trailing bytes`);
  }
}

function writeEntry(w: Writer, e: Entry): void {
  w.uvarint(e.term).uvarint(e.index).u8(e.type).bytes(e.data);
}

function readEntry(r: Reader): Entry {
  const term = r.uvarint();
  const index = r.uvarint();
  const type = r.u8();
  if (type > MAX_ENTRY_TYPE) r.fail(`unknown entry type ${type}`);
  return { term, index, type: type as EntryType, data: r.bytes() };
}

function writeIds(w: Writer, ids: number[]): void {
  w.uvarint(ids.length);
  for (const id of ids) w.uvarint(id);
}

function readIds(r: Reader): number[] {
  const n = r.uvarint();
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push(r.uvarint());
  return ids;
}

function writeConfState(w: Writer, cs: ConfState): void {
  writeIds(w, cs.voters);
  writeIds(w, cs.learners);
}

function readConfState(r: Reader): ConfState {
  const voters = readIds(r);
  return { voters, learners: readIds(r) };
}

function writeSnapshotMetadata(w: Writer, m: SnapshotMetadata): void {
  w.uvarint(m.index).uvarint(m.term);
  writeConfState(w, m.confState);
}

function readSnapshotMetadata(r: Reader): SnapshotMetadata {
  const index = r.uvarint();
  const term = r.uvarint();
  return { index, term, confState: readConfState(r) };
}

function writeMessage(w: Writer, m: Message): void {
  const flags = (m.reject ? FLAG_REJECT : 0) | (m.snapshot ? FLAG_SNAPSHOT : 0);
  w.u8(m.type).u8(flags);
  w.uvarint(m.from).uvarint(m.to).uvarint(m.term).uvarint(m.logTerm).uvarint(m.index);
  w.uvarint(m.commit).uvarint(m.rejectHint).uvarint(m.rejectTerm);
  w.bytes(m.context);
  w.uvarint(m.entries.length);
  for (const e of m.entries) writeEntry(w, e);
  if (m.snapshot) {
    writeSnapshotMetadata(w, m.snapshot.metadata);
    w.bytes(m.snapshot.data);
  }
}

function readMessage(r: Reader): Message {
  const type = r.u8();
  if (type > MAX_MESSAGE_TYPE) r.fail(`unknown message type ${type}`);
  const flags = r.u8();
  const m: Message = {
    type: type as MessageType,
    from: r.uvarint(),
    to: r.uvarint(),
    term: r.uvarint(),
    logTerm: r.uvarint(),
    index: r.uvarint(),
    commit: r.uvarint(),
    rejectHint: r.uvarint(),
    rejectTerm: r.uvarint(),
    reject: (flags & FLAG_REJECT) !== 0,
    context: r.bytes(),
    entries: [],
  };
  const n = r.uvarint();
  for (let i = 0; i < n; i++) m.entries.push(readEntry(r));
  if (flags & FLAG_SNAPSHOT) {
    const metadata = readSnapshotMetadata(r);
    m.snapshot = { metadata, data: r.bytes() };
  }
  return m;
}

function encodeWith<T>(v: T, write: (w: Writer, v: T) => void, sizeHint = 64): Uint8Array {
  const w = new Writer(sizeHint);
  w.u8(FORMAT_VERSION);
  write(w, v);
  return w.finish();
}

function decodeWith<T>(b: Uint8Array, what: string, read: (r: Reader) => T): T {
  const r = new Reader(b, what);
  r.version();
  const v = read(r);
  r.end();
  return v;
}

export function encodeEntry(e: Entry): Uint8Array {
  return encodeWith(e, writeEntry, e.data.length + 32);
}

export function decodeEntry(b: Uint8Array): Entry {
  return decodeWith(b, 'entry', readEntry);
}

export function encodeHardState(hs: HardState): Uint8Array {
  return encodeWith(hs, (w, v) => w.uvarint(v.term).uvarint(v.vote).uvarint(v.commit));
}

export function decodeHardState(b: Uint8Array): HardState {
  return decodeWith(b, 'hard state', (r) => ({ term: r.uvarint(), vote: r.uvarint(), commit: r.uvarint() }));
}

export function encodeSnapshotMetadata(m: SnapshotMetadata): Uint8Array {
  return encodeWith(m, writeSnapshotMetadata);
}

export function decodeSnapshotMetadata(b: Uint8Array): SnapshotMetadata {
  return decodeWith(b, 'snapshot metadata', readSnapshotMetadata);
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  return encodeWith(
    s,
    (w, v) => {
      writeSnapshotMetadata(w, v.metadata);
      w.bytes(v.data);
    },
    s.data.length + 64,
  );
}

export function decodeSnapshot(b: Uint8Array): Snapshot {
  return decodeWith(b, 'snapshot', (r) => {
    const metadata = readSnapshotMetadata(r);
    return { metadata, data: r.bytes() };
  });
}

function messageSizeHint(m: Message): number {
  let size = 64 + m.context.length + (m.snapshot ? m.snapshot.data.length + 64 : 0);
  for (const e of m.entries) size += e.data.length + 24;
  return size;
}

export function encodeMessage(m: Message): Uint8Array {
  return encodeWith(m, writeMessage, messageSizeHint(m));
}

export function decodeMessage(b: Uint8Array): Message {
  return decodeWith(b, 'message', readMessage);
}
