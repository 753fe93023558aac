// Asking every member for its status on its own client address (the addresses the members
// published, not --endpoints: a member the user did not list is still checked).
import type { Client } from '../../pkg/client/client.js';
import type { MemberInfo } from '../../pkg/client/cluster.js';
import { parseEndpoint } from '../../pkg/client/options.js';
import type { MemberProbe } from './cluster-status.js';
import type { CtlContext } from './context.js';
import { healthOfError } from './errors.js';
import { clientAddressOf } from './members.js';

export const NO_CLIENT_ADDRESS = 'no client address';

/** Each member's gRPC target, or why it has none. */
export function memberTargets(
  members: readonly MemberInfo[],
): Map<string, { target?: string; error?: string }> {
  const out = new Map<string, { target?: string; error?: string }>();
  for (const m of members) {
    const address = clientAddressOf(m);
    if (address === '') {
      out.set(m.id, { error: NO_CLIENT_ADDRESS });
      continue;
    }
    try {
      out.set(m.id, { target: parseEndpoint(address) });
    } catch (err) {
      out.set(m.id, { error: (err as Error).message });
    }
  }
  return out;
}

/**
 * A client over every member's client address, `first` first (for calls etcd only serves on
 * one member, such as MoveLeader on the leader). Undefined when no member has an address.
 */
export function membersClient(
  ctx: CtlContext,
  members: readonly MemberInfo[],
  first?: string,
): Client | undefined {
  const targets = [...new Set([...memberTargets(members).values()].flatMap((t) => t.target ?? []))];
  if (targets.length === 0) return undefined;
  const firstTarget = first === undefined ? undefined : memberTargets(members).get(first)?.target;
  if (firstTarget) targets.sort((a, b) => (a === firstTarget ? -1 : b === firstTarget ? 1 : 0));
  // Status goes to one endpoint at a time and is never retried elsewhere.
  return ctx.client(targets);
}

/** Every member's status, asked of that member, all at once. */
export async function probeMembers(client: Client | undefined, members: readonly MemberInfo[]) {
  const targets = memberTargets(members);
  return Promise.all(
    members.map(async (member): Promise<MemberProbe> => {
      const t = targets.get(member.id);
      if (!t?.target || !client) return { member, error: t?.error ?? NO_CLIENT_ADDRESS };
      try {
        return { member, status: await client.cluster.status(t.target) };
      } catch (err) {
        return { member, error: healthOfError(err) };
      }
    }),
  );
}
