// How keys, values and watch events print. Keys and values are bytes: shown as UTF-8 text
// when they are, else as base64 (JSON: `valueBase64`; table: `<base64:...>`).
import type { DeleteRangeResponse, KeyValue, RangeResponse, WatchEvent } from '../../pkg/store/types.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The bytes as text, or undefined when they are not valid UTF-8. */
export function textOf(b: Uint8Array): string | undefined {
  try {
    return utf8.decode(b);
  } catch {
    return undefined;
  }
}

/** Bytes for one line of text output. */
export function showBytes(b: Uint8Array): string {
  return textOf(b) ?? `<base64:${Buffer.from(b).toString('base64')}>`;
}

/** Bytes as JSON fields: { [name]: text } or { [name + 'Base64']: base64 }. */
function bytesField(name: string, b: Uint8Array): Record<string, string> {
  const t = textOf(b);
  return t === undefined ? { [`${name}Base64`]: Buffer.from(b).toString('base64') } : { [name]: t };
}

export function kvJson(kv: KeyValue, withValue = true) {
  return {
    ...bytesField('key', kv.key),
    ...(withValue ? bytesField('value', kv.value) : {}),
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  };
}

export interface GetFlags {
  keysOnly?: boolean;
  countOnly?: boolean;
}

export function rangeJson(r: RangeResponse, flags: GetFlags) {
  return {
    revision: r.header.revision,
    count: r.count,
    more: r.more,
    kvs: r.kvs.map((kv) => kvJson(kv, !flags.keysOnly)),
  };
}

/** kv get as a table; a LEASE column only when some key has one. */
export function rangeTable(r: RangeResponse, flags: GetFlags): { head: string[]; rows: string[][] } {
  const withLease = r.kvs.some((kv) => kv.lease !== 0);
  const head = ['KEY', ...(flags.keysOnly ? [] : ['VALUE']), 'VERSION', 'MOD REVISION'];
  if (withLease) head.push('LEASE');
  const rows = r.kvs.map((kv) => [
    showBytes(kv.key),
    ...(flags.keysOnly ? [] : [showBytes(kv.value)]),
    String(kv.version),
    String(kv.modRevision),
    ...(withLease ? [kv.lease === 0 ? '-' : kv.lease.toString(16)] : []),
  ]);
  return { head, rows };
}

export function deleteJson(r: DeleteRangeResponse) {
  return { revision: r.header.revision, deleted: r.deleted };
}

/** One watch event as a line: 'PUT key value', 'DELETE key', with ' (prev: value)' if asked. */
export function eventLine(e: WatchEvent): string {
  const prev = e.prevKv ? ` (prev: ${showBytes(e.prevKv.value)})` : '';
  if (e.type === 'delete') return `DELETE ${showBytes(e.kv.key)}${prev}`;
  return `PUT ${showBytes(e.kv.key)} ${showBytes(e.kv.value)}${prev}`;
}

/** One watch event as one compact JSON line. */
export function eventJson(e: WatchEvent): string {
  const base = {
    type: e.type === 'delete' ? 'DELETE' : 'PUT',
    ...bytesField('key', e.kv.key),
    ...(e.type === 'put' ? bytesField('value', e.kv.value) : {}),
    modRevision: e.kv.modRevision,
  };
  return JSON.stringify(e.prevKv ? { ...base, prevKv: kvJson(e.prevKv) } : base);
}
