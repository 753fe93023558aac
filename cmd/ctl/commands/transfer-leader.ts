// berthctl transfer-leader <member>: etcd's Maintenance.MoveLeader, then wait until the
// members report the new leader. The request goes to the current leader's endpoint first
// (etcd serves it only there; Berth anywhere, its Raft forwards it).
import type { Command } from 'commander';
import { GrpcCode, StoreError } from '../../../pkg/store/errors.js';
import { summarizeStatus } from '../cluster-status.js';
import type { CtlContext, CtlIO } from '../context.js';
import { CtlError, formatDuration } from '../errors.js';
import { formatMemberId, memberShort, resolveMember } from '../members.js';
import { membersClient, probeMembers } from '../probe.js';
import { action, examples } from './run.js';

const POLL_MS = 200;
const DOT_MS = 250;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Dots on stderr, one per DOT_MS, while a wait lasts (only on a terminal). */
function progress(ctx: CtlContext, label: string): () => void {
  if (!ctx.io.stderrIsTTY || ctx.json) return () => {};
  ctx.io.stderr(label);
  const t = setInterval(() => ctx.io.stderr('.'), DOT_MS);
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    clearInterval(t);
    ctx.io.stderr('\n');
  };
}

/** Move leadership to the member `ref` names; prints the outcome once it is observed. */
async function transferLeader(ctx: CtlContext, ref: string): Promise<void> {
  const deadline = Date.now() + ctx.options.timeoutMs;
  const { header, members } = await ctx.main.cluster.memberList();
  const target = resolveMember(members, ref);
  const targetId = formatMemberId(target.id);
  const label = memberShort(target);
  if (target.isLearner) {
    throw new CtlError(`member ${label} is a learner; promote it first (berthctl member promote ${ref})`);
  }
  const statusNow = async (client = membersClient(ctx, members)) =>
    summarizeStatus(header.clusterId, await probeMembers(client, members));

  const before = await statusNow();
  const report = (term: number | null) => {
    const to = { name: target.name, id: targetId };
    if (ctx.json) ctx.printJson({ from: before.leader, to, term });
    else if (before.leader?.id === targetId) ctx.println(`${label} is already the leader (term ${term})`);
    else ctx.println(`leader is now ${label} (was ${before.leader?.name ?? 'none'}), term ${term}`);
  };
  if (before.leader?.id === targetId) return report(before.term);

  const leader = members.find((m) => formatMemberId(m.id) === before.leader?.id);
  const client = membersClient(ctx, members, leader?.id) ?? ctx.main;
  const tooSlow = (why: string) => {
    const health = before.members.find((r) => r.id === targetId)?.health;
    return new CtlError(
      `${label} did not become leader within ${formatDuration(ctx.options.timeoutMs)} (${why}; its health: ${health}); retry, or raise --timeout`,
    );
  };
  const done = progress(ctx, `transferring leadership to ${label}`);
  try {
    try {
      await client.cluster.moveLeader(target.id);
    } catch (err) {
      const timedOut =
        err instanceof StoreError &&
        (err.grpc === GrpcCode.DeadlineExceeded || err.message === 'etcdserver: request timed out');
      if (timedOut) throw tooSlow('no answer from the leader');
      throw err;
    }
    for (;;) {
      const now = await statusNow(client);
      if (now.leader?.id === targetId) {
        done();
        return report(now.term);
      }
      if (Date.now() >= deadline) throw tooSlow(`leader: ${now.leader?.name ?? 'none'}`);
      await sleep(POLL_MS);
    }
  } finally {
    done();
  }
}

export function addTransferLeaderCommand(program: Command, io: CtlIO): void {
  program
    .command('transfer-leader <member>')
    .summary('hand leadership to another member and wait for it')
    .description(
      'Hand Raft leadership to another voting member (by name or hex id) and wait until the\n' +
        'cluster reports it as leader, for at most --timeout.',
    )
    .addHelpText(
      'after',
      examples('berthctl transfer-leader n2', 'berthctl transfer-leader n3 --timeout 10s -o json'),
    )
    .action(action(io, (ctx, _opts, ref: string) => transferLeader(ctx, ref)));
}
