// `berthctl token`, the pure part: a join token from the context's CA, and the token table.
// The cluster keeps only TokenRecords (no secrets), so listing them is safe.
import { caHash, type JoinRole, newJoinToken, type TokenRecord } from '../../pkg/pki/index.js';
import { parseDuration } from './options.js';

/** berth-node's join port (the Join service, server-authenticated TLS). */
export const JOIN_PORT = 2381;
export const DEFAULT_TOKEN_TTL = '24h';
export const FOREVER = '<forever>';
export const EXPIRED = '<expired>';
export const NEVER = '<never>';

export interface TokenForOptions {
  role: JoinRole;
  /** 0: never expires. */
  ttlMs: number;
  now: Date;
  description?: string;
  random?: (size: number) => Uint8Array;
}

/** A new join token pinning the CA of `caPem`, and the record the cluster stores for it. */
export function tokenFor(caPem: string, o: TokenForOptions): { token: string; record: TokenRecord } {
  return newJoinToken({
    caHash: caHash(caPem),
    role: o.role,
    ttlMs: o.ttlMs,
    now: o.now,
    ...(o.description !== undefined ? { description: o.description } : {}),
    ...(o.random ? { random: o.random } : {}),
  });
}

/** --ttl: a duration, or 0 for a token that never expires (kubeadm's --ttl 0); usage error otherwise. */
export function parseTtl(value: string): number {
  if (/^\s*0+(\.0*)?(ms|s|m|h)?\s*$/.test(value)) return 0;
  return parseDuration(value);
}

/** The host part of a gRPC target ('10.0.0.1:2379' -> '10.0.0.1', '[::1]:2379' -> '[::1]'). */
export function hostOf(target: string): string {
  return /^(.*):\d+$/.exec(target)?.[1] ?? target;
}

/** What `token create --print-join-command` prints. */
export function joinCommand(endpoint: string, token: string): string {
  return `berth-node join ${hostOf(endpoint)}:${JOIN_PORT} --token ${token} --name <NAME> --address <ADDRESS>`;
}

/** Time left as kubectl shows ages: '45s', '59m', '23h', '6d'. */
export function shortDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** TTL column: time left, '<forever>' or '<expired>'. */
export function ttlLeft(record: TokenRecord, now: Date): string {
  if (record.expires === undefined) return FOREVER;
  const left = Date.parse(record.expires) - now.getTime();
  return left <= 0 ? EXPIRED : shortDuration(left);
}

export const TOKEN_HEAD = ['ID', 'ROLE', 'TTL', 'EXPIRES', 'DESCRIPTION'];

/** token list, by expiry (never-expiring last), then id. */
export function tokenRows(records: readonly TokenRecord[], now: Date): string[][] {
  const at = (r: TokenRecord) => (r.expires === undefined ? Number.POSITIVE_INFINITY : Date.parse(r.expires));
  return [...records]
    .sort((a, b) => at(a) - at(b) || a.id.localeCompare(b.id))
    .map((r) => [r.id, r.role, ttlLeft(r, now), r.expires ?? NEVER, r.description ?? '']);
}

/** token list -o json: the records (never a secret) and whether each has expired. */
export function tokensJson(records: readonly TokenRecord[], now: Date) {
  return {
    tokens: records.map((r) => ({
      ...r,
      expired: r.expires !== undefined && Date.parse(r.expires) <= now.getTime(),
    })),
  };
}
