// Key helpers shared by the MVCC store, the lease table and the watch hub.
//
// Keys are bytes, ordered as unsigned bytes (etcd's order). Internally a key is also held as
// a latin1 string: one char per byte, so JS string comparison (`<`, by UTF-16 code unit)
// is exactly unsigned byte order, and strings make cheap Map keys.

import { Buffer } from 'node:buffer';

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/** The latin1 string of `b`: one char per byte, ordered like compareBytes. */
export function keyString(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

/** The bytes of a keyString, as a plain Uint8Array (never a Buffer). */
export function keyBytes(s: string): Uint8Array {
  const buf = Buffer.from(s, 'latin1');
  const out = new Uint8Array(buf.length);
  out.set(buf);
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A key or a key range as etcd reads `key` + `range_end`: `end` undefined selects `start`
 * alone; null means no upper bound (range_end "\0"); otherwise [start, end).
 */
export interface KeySpan {
  start: string;
  end: string | null | undefined;
}

export function keySpan(key: Uint8Array, rangeEnd?: Uint8Array): KeySpan {
  const start = keyString(key);
  if (!rangeEnd || rangeEnd.length === 0) return { start, end: undefined };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { start, end: null };
  return { start, end: keyString(rangeEnd) };
}

export function spanContains(span: KeySpan, k: string): boolean {
  if (span.end === undefined) return k === span.start;
  if (k < span.start) return false;
  return span.end === null || k < span.end;
}

/** First index in the sorted array `arr` whose element is >= `k`. */
export function lowerBound(arr: readonly string[], k: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((arr[mid] as string) < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
