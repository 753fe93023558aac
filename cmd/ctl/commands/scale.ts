// berthctl scale: set a Deployment's or ReplicaSet's replicas. A guarded update, re-read and
// retried on a conflict; --current-replicas makes it conditional, as in kubectl.
import type { Command } from 'commander';
import { ApiError, ApiErrorCode } from '../../../pkg/api/errors.js';
import { qualifiedSingular } from '../../../pkg/api/kinds.js';
import type { CtlContext, CtlIO } from '../context.js';
import { CtlError, UsageError } from '../errors.js';
import { parseObjectArgs } from '../object-args.js';
import { parseNonNegativeInt } from '../options.js';
import { action, examples } from './run.js';

const SCALABLE = new Set(['Deployment', 'ReplicaSet']);
const ATTEMPTS = 5;

async function scale(
  ctx: CtlContext,
  flags: { replicas?: number; currentReplicas?: number },
  args: string[],
) {
  if (flags.replicas === undefined) throw new UsageError('--replicas is required');
  for (const { kind, names } of parseObjectArgs(args)) {
    if (!SCALABLE.has(kind.kind))
      throw new UsageError(`${kind.resource} cannot be scaled (deployments and replicasets can)`);
    if (names.length === 0) throw new UsageError(`name the ${kind.resource} to scale`);
    for (const name of names) {
      for (let attempt = 1; ; attempt++) {
        const obj = await ctx.api.get(kind.resource, ctx.namespace, name);
        const spec = (obj.spec ?? {}) as { replicas?: number };
        const current = spec.replicas ?? 1;
        if (flags.currentReplicas !== undefined && current !== flags.currentReplicas) {
          throw new CtlError(
            `${qualifiedSingular(kind)}/${name} has ${current} replicas, not ${flags.currentReplicas}; not scaled`,
          );
        }
        if (current === flags.replicas) break;
        try {
          await ctx.api.update({ ...obj, spec: { ...obj.spec, replicas: flags.replicas } });
          break;
        } catch (err) {
          // Someone else wrote it, or our write's answer was lost: read again and compare.
          const retry =
            err instanceof ApiError &&
            (err.code === ApiErrorCode.Conflict || err.code === ApiErrorCode.Unavailable);
          if (!retry || attempt >= ATTEMPTS) throw err;
        }
      }
      ctx.println(`${qualifiedSingular(kind)}/${name} scaled`);
    }
  }
}

export function addScaleCommand(program: Command, io: CtlIO): void {
  program
    .command('scale')
    .description('Set the number of replicas of a Deployment or ReplicaSet')
    .argument('<resource...>', 'kind/name... or kind name...')
    .option('--replicas <n>', 'the new number of replicas', parseNonNegativeInt)
    .option('--current-replicas <n>', 'scale only if it has this many now', parseNonNegativeInt)
    .addHelpText(
      'after',
      examples(
        'berthctl scale deploy/web --replicas 5',
        'berthctl scale deploy web --replicas 0 --current-replicas 3',
      ),
    )
    .action(
      action(io, (ctx, flags: { replicas?: number; currentReplicas?: number }, args: string[]) =>
        scale(ctx, flags, args),
      ),
    );
}
