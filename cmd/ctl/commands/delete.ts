// berthctl delete: by kind/name, kind name..., -l, --all or -f; cascading to dependents
// (background by default, foreground, or orphan), waiting until the objects are gone.
import type { Command } from 'commander';
import { Option } from 'commander';
import { ApiError, ApiErrorCode } from '../../../pkg/api/errors.js';
import { type KindInfo, kindOf } from '../../../pkg/api/kinds.js';
import type { CtlContext, CtlIO } from '../context.js';
import { CtlError, errorMessage, ReportedFailure, UsageError } from '../errors.js';
import { readManifests } from '../manifests.js';
import { parseObjectArgs } from '../object-args.js';
import { parseDuration, parseNonNegativeInt } from '../options.js';
import { listOptions } from './get.js';
import { deletedLine } from './print.js';
import { action, examples } from './run.js';

interface DeleteFlags {
  filename?: string[];
  recursive?: boolean;
  selector?: string;
  fieldSelector?: string;
  all?: boolean;
  allNamespaces?: boolean;
  cascade: string;
  gracePeriod?: number;
  now?: boolean;
  force?: boolean;
  wait: boolean;
  waitTimeout: number;
  dryRun?: boolean;
  ignoreNotFound?: boolean;
}

const CASCADE: Record<string, 'Background' | 'Foreground' | 'Orphan'> = {
  background: 'Background',
  true: 'Background',
  foreground: 'Foreground',
  orphan: 'Orphan',
  false: 'Orphan',
};

interface Target {
  kind: KindInfo;
  namespace: string | undefined;
  name: string;
}

async function targets(ctx: CtlContext, flags: DeleteFlags, args: string[]): Promise<Target[]> {
  if (flags.filename) {
    if (args.length > 0) throw new UsageError('give either -f or objects on the command line, not both');
    const manifests = await readManifests(flags.filename, () => ctx.io.readStdin(), flags.recursive === true);
    return manifests.map((m) => {
      const o = m.object as {
        apiVersion?: unknown;
        kind?: unknown;
        metadata?: { name?: unknown; namespace?: unknown };
      };
      const kind =
        typeof o.apiVersion === 'string' && typeof o.kind === 'string'
          ? kindOf(o.apiVersion, o.kind)
          : undefined;
      if (!kind || typeof o.metadata?.name !== 'string')
        throw new CtlError(`${m.source}: not an object Berth knows (apiVersion, kind, metadata.name)`);
      const ns = typeof o.metadata.namespace === 'string' ? o.metadata.namespace : ctx.namespace;
      return { kind, namespace: kind.namespaced ? ns : undefined, name: o.metadata.name };
    });
  }
  const out: Target[] = [];
  for (const { kind, names } of parseObjectArgs(args)) {
    if (names.length > 0) {
      if (flags.selector || flags.all) throw new UsageError('names do not go with -l or --all');
      for (const name of names)
        out.push({ kind, namespace: kind.namespaced ? ctx.namespace : undefined, name });
      continue;
    }
    if (!flags.selector && !flags.fieldSelector && !flags.all) {
      throw new UsageError(`name the ${kind.resource} to delete, or select them with -l or --all`);
    }
    const list = await ctx.api.list(kind.resource, listOptions(ctx, kind, flags));
    for (const o of list.items)
      out.push({ kind, namespace: o.metadata.namespace, name: o.metadata.name as string });
  }
  return out;
}

async function remove(ctx: CtlContext, flags: DeleteFlags, args: string[]): Promise<void> {
  const policy = CASCADE[flags.cascade.toLowerCase()];
  if (!policy)
    throw new UsageError(`--cascade must be background, foreground or orphan, got "${flags.cascade}"`);
  const grace = flags.force ? 0 : flags.now ? 1 : flags.gracePeriod;
  const list = await targets(ctx, flags, args);
  if (list.length === 0) {
    ctx.io.stderr('No resources found\n');
    return;
  }
  let failed = 0;
  const waiting: { t: Target; uid: string | undefined }[] = [];
  for (const t of list) {
    try {
      const r = await ctx.api.delete(t.kind.resource, t.namespace, t.name, {
        propagationPolicy: policy,
        gracePeriodSeconds: grace,
        dryRun: flags.dryRun,
      });
      ctx.println(deletedLine(t.kind, t.name, flags.dryRun === true));
      if (!r.deleted || policy === 'Foreground') waiting.push({ t, uid: r.object?.metadata.uid });
    } catch (err) {
      if (flags.ignoreNotFound && err instanceof ApiError && err.code === ApiErrorCode.NotFound) continue;
      failed++;
      ctx.io.stderr(`berthctl: ${errorMessage(err, ctx.options)}\n`);
    }
  }
  if (flags.wait && !flags.dryRun) await waitGone(ctx, waiting, flags.waitTimeout);
  if (failed > 0 && list.length === 1) throw new ReportedFailure(failed);
  if (failed > 0) throw new CtlError(`${failed} of ${list.length} deletions failed`);
}

/** Wait until each object is gone (or replaced by a new one of the same name). */
async function waitGone(ctx: CtlContext, items: { t: Target; uid: string | undefined }[], timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (const { t, uid } of items) {
    for (;;) {
      try {
        const o = await ctx.api.get(t.kind.resource, t.namespace, t.name);
        if (uid && o.metadata.uid !== uid) break;
      } catch (err) {
        if (err instanceof ApiError && err.code === ApiErrorCode.NotFound) break;
        throw err;
      }
      if (Date.now() > deadline) {
        throw new CtlError(
          `${t.kind.resource} "${t.name}" is still terminating after ${timeoutMs / 1000}s (finalizers or a grace period); it goes when they finish. Check with: berthctl get ${t.kind.singular} ${t.name} -o yaml`,
        );
      }
      if (!told) {
        ctx.io.stderr(
          `waiting for ${t.kind.resource} "${t.name}" to go (Ctrl-C stops waiting, not the deletion)...\n`,
        );
        told = true;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

export function addDeleteCommand(program: Command, io: CtlIO): void {
  program
    .command('delete')
    .description(
      "Delete objects; their dependents (a Deployment's ReplicaSets and pods) go too unless --cascade=orphan",
    )
    .argument('[resource...]', 'kind name..., kind/name..., or a kind with -l / --all')
    .option('-f, --filename <path...>', 'delete the objects these manifests name')
    .option('-R, --recursive', 'read directories given with -f recursively')
    .option('-l, --selector <query>', 'delete the objects with these labels')
    .option('--field-selector <query>', 'delete the objects whose fields match')
    .option('--all', 'delete every object of the kind in the namespace')
    .option('-A, --all-namespaces', 'with -l or --all: in every namespace')
    .addOption(
      new Option(
        '--cascade <policy>',
        'background: dependents go after; foreground: before; orphan: they stay',
      ).default('background'),
    )
    .option('--grace-period <seconds>', 'seconds a pod gets to stop (default: its own)', parseNonNegativeInt)
    .option('--now', 'a grace period of 1 second')
    .option('--force', 'no grace period: remove at once')
    .option('--no-wait', 'return without waiting for the objects to go')
    .addOption(
      new Option('--wait-timeout <duration>', 'how long to wait for objects to go')
        .default(60_000, '60s')
        .argParser(parseDuration),
    )
    .option('--dry-run', 'check on the server; delete nothing')
    .option('--ignore-not-found', 'an object that does not exist is not an error')
    .addHelpText(
      'after',
      examples(
        'berthctl delete deploy web',
        'berthctl delete -f web.yaml',
        'berthctl delete pods -l app=web',
        'berthctl delete deploy/web --cascade=orphan',
        'berthctl delete ns shop',
      ),
    )
    .action(action(io, (ctx, flags: DeleteFlags, args: string[]) => remove(ctx, flags, args)));
}
