// berthctl member list|add|remove|promote: etcd's Cluster service. Members are named by
// name or hex id; both are resolved against the member list.
import type { Command } from 'commander';
import type { MemberInfo } from '../../../pkg/client/cluster.js';
import type { CtlContext, CtlIO } from '../context.js';
import { CtlError } from '../errors.js';
import {
  formatMemberId,
  MEMBER_LIST_HEAD,
  memberLabel,
  memberRows,
  membersJson,
  resolveMember,
  sortMembers,
} from '../members.js';
import { evenVotersWarning, quorumOfMembers } from '../quorum.js';
import { action, examples } from './run.js';

/** berth-node's default peer port (cmd/node/config.ts). */
const DEFAULT_PEER_PORT = 2380;

/** What to tell the operator after `member add`: the berth-node command that joins. */
export function joinInstructions(name: string, peerUrl: string, members: readonly MemberInfo[]): string {
  const peer = peerUrl.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  const m = /^(.*):(\d+)$/.exec(peer);
  const host = m?.[1] ?? peer;
  const flags = [`--name ${name}`, `--address ${host}`];
  if (m?.[2] !== String(DEFAULT_PEER_PORT)) flags.push(`--listen-peer ${peer}`);
  const join = sortMembers(members)
    .filter((x) => !x.isLearner && x.clientUrls.length > 0)
    .map((x) => (x.clientUrls[0] as string).replace(/^https?:\/\//, ''));
  flags.push(`--join ${join.join(',') || '<a member client address>'}`);
  return [
    `Start ${name} on its machine with:`,
    '',
    `  berth-node ${flags.join(' ')}`,
    '',
    'It starts as a learner and is promoted to a voting member once it has caught up',
    '(watch it with: berthctl member list).',
  ].join('\n');
}

/** The even-voters warning on stderr when `voters` (after a change) is even; never refuses. */
function warnIfEven(ctx: CtlContext, voters: number): void {
  const warning = evenVotersWarning(voters);
  if (warning) ctx.io.stderr(`berthctl: ${warning}\n`);
}

async function resolve(ctx: CtlContext, ref: string) {
  const list = await ctx.main.cluster.memberList();
  return { list, member: resolveMember(list.members, ref) };
}

export function addMemberCommands(program: Command, io: CtlIO): void {
  const member = program
    .command('member')
    .description('list, add, remove and promote cluster members')
    .addHelpText(
      'after',
      examples(
        'berthctl member list',
        'berthctl member add n4 --peer-url 10.0.0.4:2380',
        'berthctl member remove n4',
      ),
    );

  member
    .command('list')
    .summary('list the members')
    .description('List the members: name, id, peer and client addresses, learner or voter.')
    .addHelpText('after', examples('berthctl member list', 'berthctl member list -o json'))
    .action(
      action(io, async (ctx) => {
        const { header, members } = await ctx.main.cluster.memberList();
        ctx.print(
          () => ({ head: MEMBER_LIST_HEAD, rows: memberRows(members) }),
          () => membersJson(header.clusterId, members),
        );
      }),
    );

  member
    .command('add <name>')
    .summary('add a member (a learner) and print how to start it')
    .description(
      'Add a member (as a learner) by its peer address, then print how to start it.\n' +
        'The name is only used in the printed command: berth-node publishes its own.',
    )
    .requiredOption('--peer-url <host:port>', "the new member's peer (Raft) address")
    .addHelpText('after', examples('berthctl member add n4 --peer-url 10.0.0.4:2380'))
    .action(
      action(io, async (ctx, opts: { peerUrl: string }, name: string) => {
        const res = await ctx.main.cluster.memberAdd([opts.peerUrl], { isLearner: true });
        // It joins as a learner and is promoted once caught up: warn about the count it will make.
        warnIfEven(ctx, quorumOfMembers(res.members).voters + 1);
        if (ctx.json) {
          ctx.printJson({
            ...membersJson(res.header.clusterId, res.members),
            added: { name, id: formatMemberId(res.member.id) },
          });
          return;
        }
        ctx.println(
          `Member ${name} added to cluster ${res.header.clusterId} as a learner, id ${formatMemberId(res.member.id)}.\n`,
        );
        ctx.println(joinInstructions(name, opts.peerUrl, res.members));
      }),
    );

  member
    .command('remove <member>')
    .summary('remove a member')
    .description('Remove a member, by name or hex id (the leader too: it hands over first).')
    .addHelpText('after', examples('berthctl member remove n3', 'berthctl member remove 0a1b2c3d4e5f'))
    .action(
      action(io, async (ctx, _opts, ref: string) => {
        const { list, member: m } = await resolve(ctx, ref);
        const res = await ctx.main.cluster.memberRemove(m.id);
        if (ctx.json) ctx.printJson(membersJson(res.header.clusterId, res.members));
        else ctx.println(`Member ${memberLabel(m)} removed from cluster ${list.header.clusterId}.`);
      }),
    );

  member
    .command('promote <member>')
    .summary('promote a caught-up learner to a voter')
    .description('Promote a learner that has caught up to a voting member.')
    .addHelpText('after', examples('berthctl member promote n4'))
    .action(
      action(io, async (ctx, _opts, ref: string) => {
        const { list, member: m } = await resolve(ctx, ref);
        if (!m.isLearner) throw new CtlError(`member ${memberLabel(m)} is already a voting member`);
        warnIfEven(ctx, quorumOfMembers(list.members).voters + 1);
        const res = await ctx.main.cluster.memberPromote(m.id);
        if (ctx.json) ctx.printJson(membersJson(res.header.clusterId, res.members));
        else ctx.println(`Member ${memberLabel(m)} promoted to a voting member.`);
      }),
    );
}
