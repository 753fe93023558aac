// berthctl autoscale: make a HorizontalPodAutoscaler (autoscaling/v2) for a Deployment or
// ReplicaSet, as kubectl autoscale does: --max is required, --min defaults to 1, and the
// target is --cpu-percent of the pods' CPU requests (80 % when not given, the default the
// autoscaler would otherwise choose). The HPA takes the target's name unless --name is given.
import type { Command } from 'commander';
import type { ApiObject } from '../../../pkg/api/types.js';
import type { CtlContext, CtlIO } from '../context.js';
import { UsageError } from '../errors.js';
import { parseObjectArgs } from '../object-args.js';
import { parseNonNegativeInt } from '../options.js';
import { action, examples } from './run.js';

const SCALABLE = new Set(['Deployment', 'ReplicaSet']);
export const DEFAULT_CPU_PERCENT = 80;

export interface AutoscaleFlags {
  min?: number;
  max?: number;
  cpuPercent?: number;
  name?: string;
}

/** The HPA for apiVersion/kind/name in namespace; UsageError on a bad combination. */
export function autoscalerFor(
  target: { apiVersion: string; kind: string; name: string },
  namespace: string,
  flags: AutoscaleFlags,
): ApiObject {
  if (flags.max === undefined) throw new UsageError('--max is required');
  const min = flags.min ?? 1;
  if (min < 1) throw new UsageError('--min must be at least 1');
  if (flags.max < min) throw new UsageError(`--max (${flags.max}) must not be below --min (${min})`);
  const cpu = flags.cpuPercent ?? DEFAULT_CPU_PERCENT;
  if (cpu < 1) throw new UsageError('--cpu-percent must be at least 1');
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: flags.name ?? target.name, namespace },
    spec: {
      scaleTargetRef: target,
      minReplicas: min,
      maxReplicas: flags.max,
      metrics: [
        {
          type: 'Resource',
          resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: cpu } },
        },
      ],
    },
  };
}

async function autoscale(ctx: CtlContext, flags: AutoscaleFlags, args: string[]) {
  const selections = parseObjectArgs(args);
  const targets = selections.flatMap(({ kind, names }) => {
    if (!SCALABLE.has(kind.kind))
      throw new UsageError(`${kind.resource} cannot be autoscaled (deployments and replicasets can)`);
    if (names.length === 0) throw new UsageError(`name the ${kind.resource} to autoscale`);
    return names.map((name) => ({ kind, name }));
  });
  if (flags.name !== undefined && targets.length > 1)
    throw new UsageError('--name can only be used with one object');
  for (const { kind, name } of targets) {
    // The target must exist (a clear "not found" now rather than a failing HPA later).
    await ctx.api.get(kind.resource, ctx.namespace, name);
    const hpa = await ctx.api.create(
      autoscalerFor({ apiVersion: kind.apiVersion, kind: kind.kind, name }, ctx.namespace, flags),
    );
    if (ctx.json) ctx.printJson(hpa);
    else ctx.println(`horizontalpodautoscaler.autoscaling/${hpa.metadata.name} autoscaled`);
  }
}

export function addAutoscaleCommand(program: Command, io: CtlIO): void {
  program
    .command('autoscale')
    .description('Make a HorizontalPodAutoscaler that keeps a Deployment or ReplicaSet at a CPU target')
    .argument('<resource...>', 'kind/name... or kind name...')
    .option('--min <n>', 'fewest replicas (default 1)', parseNonNegativeInt)
    .option('--max <n>', 'most replicas (required)', parseNonNegativeInt)
    .option(
      '--cpu-percent <n>',
      `target average CPU use, as a percentage of the pods' requests (default ${DEFAULT_CPU_PERCENT})`,
      parseNonNegativeInt,
    )
    .option('--name <name>', "the autoscaler's name (default: the target's)")
    .addHelpText(
      'after',
      examples(
        'berthctl autoscale deploy/web --max 10',
        'berthctl autoscale deploy web --min 2 --max 10 --cpu-percent 60',
      ),
    )
    .action(action(io, (ctx, flags: AutoscaleFlags, args: string[]) => autoscale(ctx, flags, args)));
}
