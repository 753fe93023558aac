// berthctl rollout: status, history, undo, restart, pause and resume of Deployments, as
// kubectl does them. The decisions are in ../rollout-status.ts; here they are read, written
// (guarded updates, re-read and retried on a conflict) and, for status, followed by a watch.
import type { Command } from 'commander';
import { ApiError, ApiErrorCode } from '../../../pkg/api/errors.js';
import type { ApiObject } from '../../../pkg/api/types.js';
import type { CtlContext, CtlIO } from '../context.js';
import { CtlError, UsageError } from '../errors.js';
import { parseDuration, parseNonNegativeInt } from '../options.js';
import {
  deploymentNames,
  formatHistory,
  formatRevision,
  ownedReplicaSets,
  parseWatchFlag,
  restart,
  rollback,
  rollbackTarget,
  rolloutHistory,
  rolloutStatus,
  setPaused,
} from '../rollout-status.js';
import { action, examples } from './run.js';

const RESOURCE = 'deployments';
const PREFIX = 'deployment.apps';
const ATTEMPTS = 5;

interface StatusFlags {
  watch: boolean;
  revision?: number;
  watchTimeout?: number;
}

/** `rollout status` follows one Deployment. */
function oneDeployment(args: string[], what: string): string {
  const names = deploymentNames(args, what);
  if (names.length !== 1) throw new UsageError('rollout status takes exactly one deployment');
  return names[0] as string;
}

async function status(ctx: CtlContext, flags: StatusFlags, args: string[]): Promise<void> {
  const name = oneDeployment(args, 'status viewer');
  let last: string | undefined;
  // Prints each new message once; true when the rollout is complete. Throws when it failed.
  const show = (d: ApiObject): boolean => {
    const s = rolloutStatus(d, flags.revision ?? 0);
    if (s.message !== last) ctx.println(s.message);
    last = s.message;
    return s.done;
  };
  const d = await ctx.api.get(RESOURCE, ctx.namespace, name);
  if (show(d) || !flags.watch) return;
  await follow(ctx, name, d.metadata.resourceVersion ?? '', show, flags.watchTimeout);
}

/**
 * Watch the Deployment from `resourceVersion` until `show` says done or throws, it is
 * deleted, `timeoutMs` passes or Ctrl-C. A watch too old to resume (Expired) starts again
 * from a fresh read.
 */
function follow(
  ctx: CtlContext,
  name: string,
  resourceVersion: string,
  show: (d: ApiObject) => boolean,
  timeoutMs: number | undefined,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let handle: { cancel(): void } | undefined;
    let finished = false;
    const finish = (err?: unknown) => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      unlisten();
      handle?.cancel();
      if (err) reject(err);
      else resolve();
    };
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => finish(new CtlError('timed out waiting for the condition')), timeoutMs);
    const unlisten = ctx.io.onInterrupt(() => finish());
    const observe = (d: ApiObject) => {
      try {
        if (show(d)) finish();
      } catch (err) {
        finish(err);
      }
    };
    const start = (rv: string) => {
      if (finished) return;
      handle = ctx.api.watch(
        RESOURCE,
        { namespace: ctx.namespace, fieldSelector: `metadata.name=${name}`, resourceVersion: rv },
        (e) => {
          if (finished) return;
          if (e.type === 'DELETED') finish(new CtlError('object has been deleted'));
          else if (e.type === 'ADDED' || e.type === 'MODIFIED') observe(e.object);
        },
        (err) => {
          if (finished) return;
          if (err?.code === ApiErrorCode.Expired) {
            ctx.api.get(RESOURCE, ctx.namespace, name).then((d) => {
              observe(d);
              start(d.metadata.resourceVersion ?? '');
            }, finish);
          } else finish(err ?? new CtlError('the watch ended'));
        },
      );
    };
    start(resourceVersion);
  });
}

/** The Deployment and the ReplicaSets it controls. */
async function deploymentAndReplicaSets(ctx: CtlContext, name: string) {
  const d = await ctx.api.get(RESOURCE, ctx.namespace, name);
  const list = await ctx.api.list('replicasets', { namespace: ctx.namespace });
  return { d, replicaSets: ownedReplicaSets(d, list.items) };
}

async function history(ctx: CtlContext, flags: { revision?: number }, args: string[]): Promise<void> {
  for (const name of deploymentNames(args, 'history viewer')) {
    const { replicaSets } = await deploymentAndReplicaSets(ctx, name);
    const entries = rolloutHistory(replicaSets);
    const prefix = `${PREFIX}/${name}`;
    ctx.io.stdout(
      flags.revision !== undefined && flags.revision > 0
        ? formatRevision(prefix, entries, flags.revision)
        : formatHistory(prefix, entries),
    );
  }
}

/**
 * Write `change(d)` to Deployment `name` with a guarded update: on a conflict (or an
 * update that certainly did not happen) read it again and recompute. `change` returns
 * undefined for nothing to write; it may throw to refuse.
 */
async function updateDeployment<T>(
  ctx: CtlContext,
  name: string,
  change: (d: ApiObject) => Promise<{ write?: ApiObject; result: T }>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const d = await ctx.api.get(RESOURCE, ctx.namespace, name);
    const { write, result } = await change(d);
    if (!write) return result;
    try {
      await ctx.api.update(write);
      return result;
    } catch (err) {
      const retry =
        err instanceof ApiError &&
        (err.code === ApiErrorCode.Conflict || err.code === ApiErrorCode.Unavailable);
      if (!retry || attempt >= ATTEMPTS) throw err;
    }
  }
}

async function undo(ctx: CtlContext, flags: { toRevision?: number }, args: string[]): Promise<void> {
  for (const name of deploymentNames(args, 'rollbacker')) {
    const message = await updateDeployment(ctx, name, async (d) => {
      const list = await ctx.api.list('replicasets', { namespace: ctx.namespace });
      const target = rollbackTarget(name, ownedReplicaSets(d, list.items), flags.toRevision ?? 0);
      const r = rollback(d, target);
      if (r.kind === 'skipped') {
        return { result: `skipped rollback (current template already matches revision ${r.revision})` };
      }
      return { write: r.deployment, result: 'rolled back' };
    });
    ctx.println(`${PREFIX}/${name} ${message}`);
  }
}

async function restartCmd(ctx: CtlContext, args: string[]): Promise<void> {
  for (const name of deploymentNames(args, 'restarter')) {
    await updateDeployment(ctx, name, async (d) => ({ write: restart(d, new Date()), result: undefined }));
    ctx.println(`${PREFIX}/${name} restarted`);
  }
}

async function pauseCmd(ctx: CtlContext, args: string[], paused: boolean): Promise<void> {
  for (const name of deploymentNames(args, paused ? 'pauser' : 'resumer')) {
    await updateDeployment(ctx, name, async (d) => ({ write: setPaused(d, paused), result: undefined }));
    ctx.println(`${PREFIX}/${name} ${paused ? 'paused' : 'resumed'}`);
  }
}

export function addRolloutCommands(program: Command, io: CtlIO): void {
  const rollout = program
    .command('rollout')
    .description('Manage the rollout of a Deployment: status, history, undo, restart, pause, resume')
    .addHelpText(
      'after',
      examples(
        'berthctl rollout status deploy/web',
        'berthctl rollout history deploy/web',
        'berthctl rollout undo deploy/web --to-revision 2',
        'berthctl rollout restart deploy/web',
        'berthctl rollout pause deploy/web && berthctl rollout resume deploy/web',
      ),
    );

  rollout
    .command('status')
    .description("Show a Deployment's rollout, following it until it completes (exit 1 when it fails)")
    .argument('<resource...>', 'deploy/NAME or deployment NAME')
    .option(
      '-w, --watch [bool]',
      'follow the rollout until it completes; -w=false prints once',
      parseWatchFlag,
      true,
    )
    .option('--revision <n>', 'fail unless the Deployment runs this revision', parseNonNegativeInt)
    .option(
      '--watch-timeout <duration>',
      'give up following after this long (default: no limit)',
      parseDuration,
    )
    .addHelpText(
      'after',
      examples(
        'berthctl rollout status deploy/web',
        'berthctl rollout status deployment web --watch-timeout 2m',
        'berthctl rollout status deploy/web -w=false',
      ),
    )
    .action(action(io, (ctx, flags: StatusFlags, args: string[]) => status(ctx, flags, args)));

  rollout
    .command('history')
    .description("List a Deployment's revisions, or show one revision's pod template")
    .argument('<resource...>', 'deploy/NAME... or deployment NAME...')
    .option('--revision <n>', "show this revision's pod template", parseNonNegativeInt)
    .addHelpText(
      'after',
      examples('berthctl rollout history deploy/web', 'berthctl rollout history deploy/web --revision 2'),
    )
    .action(action(io, (ctx, flags: { revision?: number }, args: string[]) => history(ctx, flags, args)));

  rollout
    .command('undo')
    .description('Roll a Deployment back to its previous revision, or to --to-revision')
    .argument('<resource...>', 'deploy/NAME... or deployment NAME...')
    .option(
      '--to-revision <n>',
      'the revision to roll back to (default: the previous one)',
      parseNonNegativeInt,
    )
    .addHelpText(
      'after',
      examples('berthctl rollout undo deploy/web', 'berthctl rollout undo deploy/web --to-revision 1'),
    )
    .action(action(io, (ctx, flags: { toRevision?: number }, args: string[]) => undo(ctx, flags, args)));

  rollout
    .command('restart')
    .description("Replace a Deployment's pods with a new rollout (annotates its pod template)")
    .argument('<resource...>', 'deploy/NAME... or deployment NAME...')
    .addHelpText(
      'after',
      examples('berthctl rollout restart deploy/web', 'berthctl rollout restart deploy web api'),
    )
    .action(action(io, (ctx, _flags: object, args: string[]) => restartCmd(ctx, args)));

  rollout
    .command('pause')
    .description('Pause a Deployment: template changes do not roll out until it is resumed')
    .argument('<resource...>', 'deploy/NAME... or deployment NAME...')
    .addHelpText('after', examples('berthctl rollout pause deploy/web'))
    .action(action(io, (ctx, _flags: object, args: string[]) => pauseCmd(ctx, args, true)));

  rollout
    .command('resume')
    .description('Resume a paused Deployment: its template rolls out again')
    .argument('<resource...>', 'deploy/NAME... or deployment NAME...')
    .addHelpText('after', examples('berthctl rollout resume deploy/web'))
    .action(action(io, (ctx, _flags: object, args: string[]) => pauseCmd(ctx, args, false)));
}
