// Members as berthctl shows them: ids in hex (as etcd and berth-node's logs do), names from
// the member registry, and `<name|id>` arguments resolved against a member list.
import type { MemberInfo } from '../../pkg/client/cluster.js';
import { CtlError } from './errors.js';

/** A uint64 id (decimal, as on the wire) in hex, at least 12 digits (Berth's ids are 48-bit). */
export function formatMemberId(id: string): string {
  return BigInt(id).toString(16).padStart(12, '0');
}

/** A member's name, or '(unstarted)' for one added but not yet started (it publishes its name). */
export function memberName(m: MemberInfo): string {
  return m.name === '' ? '(unstarted)' : m.name;
}

/** A member in messages: 'n1 (3a47cb4da787)', or just the id for one not started yet. */
export function memberLabel(m: MemberInfo): string {
  return m.name === '' ? formatMemberId(m.id) : `${m.name} (${formatMemberId(m.id)})`;
}

/** A member in short messages: its name, or its id for one not started yet. */
export function memberShort(m: MemberInfo): string {
  return m.name === '' ? formatMemberId(m.id) : m.name;
}

/** Parse a hex id as users type it ('0a1b2c3d4e5f', '0x...'); undefined when it is not one. */
function hexId(ref: string): bigint | undefined {
  const s = ref.trim().toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]{1,16}$/.test(s)) return undefined;
  return BigInt(`0x${s}`);
}

/**
 * The member `ref` names: by name first, then by hex id. Throws a CtlError listing the
 * members when none matches.
 */
export function resolveMember(members: readonly MemberInfo[], ref: string): MemberInfo {
  const byName = members.find((m) => m.name !== '' && m.name === ref);
  if (byName) return byName;
  const id = hexId(ref);
  const byId = id === undefined ? undefined : members.find((m) => BigInt(m.id) === id);
  if (byId) return byId;
  const known = members.map(memberLabel).join(', ');
  throw new CtlError(`member "${ref}" not found; members: ${known || 'none'}`);
}

/** The client address to reach a member on, '' when it has published none. */
export function clientAddressOf(m: MemberInfo): string {
  return m.clientUrls[0] ?? '';
}

/** member list, as rows of NAME ID PEER CLIENT LEARNER. */
export function memberRows(members: readonly MemberInfo[]): string[][] {
  return sortMembers(members).map((m) => [
    memberName(m),
    formatMemberId(m.id),
    m.peerUrls.join(','),
    m.clientUrls.join(','),
    String(m.isLearner),
  ]);
}

export const MEMBER_LIST_HEAD = ['NAME', 'ID', 'PEER', 'CLIENT', 'LEARNER'];

/** member list -o json. */
export function membersJson(clusterId: string, members: readonly MemberInfo[]) {
  return {
    clusterId,
    members: sortMembers(members).map((m) => ({
      name: m.name,
      id: formatMemberId(m.id),
      peerUrls: m.peerUrls,
      clientUrls: m.clientUrls,
      isLearner: m.isLearner,
    })),
  };
}

/** By name (n2 before n10), unnamed members last by id. */
export function sortMembers<T extends { name: string; id: string }>(members: readonly T[]): T[] {
  return [...members].sort((a, b) => {
    if (a.name === '' || b.name === '') {
      if (a.name !== b.name) return a.name === '' ? 1 : -1;
      return BigInt(a.id) < BigInt(b.id) ? -1 : 1;
    }
    return a.name.localeCompare(b.name, 'en', { numeric: true });
  });
}
