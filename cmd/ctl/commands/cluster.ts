// berthctl cluster status: every member, as it reports itself, and who leads.
import type { Command } from 'commander';
import {
  type ClusterStatus,
  STATUS_HEAD,
  statusRows,
  statusSummary,
  summarizeStatus,
} from '../cluster-status.js';
import type { CtlContext, CtlIO } from '../context.js';
import { membersClient, probeMembers } from '../probe.js';
import { quorumLines } from '../quorum.js';
import { action, examples } from './run.js';

/** The cluster's status: members from --endpoints, then each member asked directly. */
export async function clusterStatus(ctx: CtlContext): Promise<ClusterStatus> {
  const list = await ctx.main.cluster.memberList();
  const probes = await probeMembers(membersClient(ctx, list.members), list.members);
  return summarizeStatus(list.header.clusterId, probes);
}

export function addClusterCommands(program: Command, io: CtlIO): void {
  const cluster = program
    .command('cluster')
    .description('the cluster as a whole')
    .addHelpText('after', examples('berthctl cluster status', 'berthctl cluster status -o json'));
  cluster
    .command('status')
    .summary('every member: role, term, applied index, health; and the leader')
    .description(
      'Show every member: its role, Raft term and applied index, and whether it is healthy;\n' +
        'then the voters, the quorum, and how many failures the cluster survives.\n' +
        'Members are found through --endpoints, then each one is asked on its own client address.',
    )
    .addHelpText(
      'after',
      examples(
        'berthctl cluster status',
        'berthctl cluster status --endpoints 10.0.0.1:2379,10.0.0.2:2379',
        "berthctl cluster status -o json | jq -r '.leader.name'",
      ),
    )
    .action(
      action(io, async (ctx) => {
        const s = await clusterStatus(ctx);
        ctx.print(
          () => ({ head: STATUS_HEAD, rows: statusRows(s) }),
          () => s,
        );
        if (!ctx.json) ctx.println(`\n${[statusSummary(s), ...quorumLines(s.quorum)].join('\n')}`);
      }),
    );
}
