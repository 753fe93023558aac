// Join tokens in the cluster's store, under /berth/tokens/<id>: only the record (the secret's
// hash, role, expiry) is kept, never the secret. The join service reads them on the node;
// `berthctl token` writes them through the KV API (admins only).

import type { TokenRecord } from '../pki/index.js';
import type { KV } from '../store/types.js';
import { prefixEnd } from '../store/types.js';

export const TOKENS_PREFIX = '/berth/tokens/';
const enc = new TextEncoder();
const dec = new TextDecoder();

const tokenKey = (id: string) => enc.encode(`${TOKENS_PREFIX}${id}`);

type TokenKV = Pick<KV, 'range' | 'put' | 'deleteRange'>;

export async function putToken(kv: TokenKV, record: TokenRecord): Promise<void> {
  await kv.put({ key: tokenKey(record.id), value: enc.encode(JSON.stringify(record)) });
}

export async function getToken(kv: TokenKV, id: string): Promise<TokenRecord | undefined> {
  const r = await kv.range({ key: tokenKey(id) });
  const v = r.kvs[0]?.value;
  return v ? (JSON.parse(dec.decode(v)) as TokenRecord) : undefined;
}

export async function listTokens(kv: TokenKV): Promise<TokenRecord[]> {
  const prefix = enc.encode(TOKENS_PREFIX);
  const r = await kv.range({ key: prefix, rangeEnd: prefixEnd(prefix) });
  return r.kvs.map((x) => JSON.parse(dec.decode(x.value)) as TokenRecord);
}

/** True when there was such a token. */
export async function deleteToken(kv: TokenKV, id: string): Promise<boolean> {
  const r = await kv.deleteRange({ key: tokenKey(id) });
  return r.deleted > 0;
}
