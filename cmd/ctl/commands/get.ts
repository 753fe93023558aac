// berthctl get: objects as kubectl shows them, by kind, kind/name or kind name...; -l and
// --field-selector filter, -A crosses namespaces, -w follows changes.
import type { Command } from 'commander';
import { ApiError, ApiErrorCode } from '../../../pkg/api/errors.js';
import type { KindInfo } from '../../../pkg/api/kinds.js';
import type { ApiObject } from '../../../pkg/api/types.js';
import type { CtlContext, CtlIO } from '../context.js';
import { errorMessage, ReportedFailure, UsageError } from '../errors.js';
import { parseObjectArgs } from '../object-args.js';
import { createRowAligner, printObjects, tableHeader, tableRow, toYaml } from '../printers/index.js';
import { formatOf, printMixed } from './print.js';
import { action, examples } from './run.js';

interface GetFlags {
  selector?: string;
  fieldSelector?: string;
  allNamespaces?: boolean;
  watch?: boolean;
  watchOnly?: boolean;
  showLabels?: boolean;
}

export function listOptions(
  ctx: CtlContext,
  kind: KindInfo,
  flags: { selector?: string; fieldSelector?: string; allNamespaces?: boolean },
) {
  return {
    namespace: kind.namespaced && !flags.allNamespaces ? ctx.namespace : undefined,
    allNamespaces: flags.allNamespaces === true || !kind.namespaced,
    labelSelector: flags.selector ?? '',
    fieldSelector: flags.fieldSelector ?? '',
  };
}

async function get(ctx: CtlContext, flags: GetFlags, args: string[]): Promise<void> {
  const selections = parseObjectArgs(args);
  ctx.allNamespaces = flags.allNamespaces === true;
  ctx.showLabels = flags.showLabels === true;
  if ((flags.watch || flags.watchOnly) && selections.length !== 1)
    throw new UsageError('watch one resource type at a time');
  const groups: { kind: KindInfo; objects: ApiObject[] }[] = [];
  let failures = 0;
  let revision = '';
  for (const { kind, names } of selections) {
    if (names.length > 0) {
      if (flags.selector) throw new UsageError('names and a label selector (-l) do not go together');
      const objects: ApiObject[] = [];
      for (const name of names) {
        try {
          objects.push(await ctx.api.get(kind.resource, ctx.namespace, name));
        } catch (err) {
          if (!(err instanceof ApiError && err.code === ApiErrorCode.NotFound)) throw err;
          failures++;
          ctx.io.stderr(`berthctl: ${errorMessage(err, ctx.options)}\n`);
        }
      }
      groups.push({ kind, objects });
    } else {
      const list = await ctx.api.list(kind.resource, listOptions(ctx, kind, flags));
      revision = list.metadata.resourceVersion;
      groups.push({ kind, objects: list.items });
    }
  }
  const total = groups.reduce((n, g) => n + g.objects.length, 0);
  if (!flags.watchOnly) {
    if (total === 0 && failures === 0 && formatOf(ctx) !== 'json' && formatOf(ctx) !== 'yaml') {
      const where = ctx.allNamespaces ? '' : ` in ${ctx.namespace} namespace`;
      const namespaced = selections.some((s) => s.kind.namespaced);
      ctx.io.stderr(`No resources found${namespaced ? where : ''}.\n`);
    } else if (total > 0 || formatOf(ctx) === 'json' || formatOf(ctx) === 'yaml') {
      printMixed(
        ctx,
        groups,
        selections.some((sel) => sel.names.length === 0),
      );
    }
  }
  if (flags.watch || flags.watchOnly) {
    const sel = selections[0] as { kind: KindInfo; names: string[] };
    await follow(
      ctx,
      sel.kind,
      sel.names,
      flags,
      revision,
      groups[0]?.objects.length === 0 || flags.watchOnly === true,
    );
  }
  if (failures > 0) throw new ReportedFailure(failures);
}

/** Print changes as they come until Ctrl-C (or the watch ends with an error). */
async function follow(
  ctx: CtlContext,
  kind: KindInfo,
  names: string[],
  flags: GetFlags,
  revision: string,
  needHeader: boolean,
): Promise<void> {
  const format = formatOf(ctx);
  const wide = format === 'wide';
  const table = format === 'table' || wide;
  let headerDone = !needHeader;
  const align = createRowAligner();
  if (!needHeader) align(tableHeader(kind, wide, ctx.allNamespaces));
  await new Promise<void>((resolve, reject) => {
    const handle = ctx.api.watch(
      kind.resource,
      { ...listOptions(ctx, kind, flags), resourceVersion: revision || '0' },
      (e) => {
        if (e.type === 'BOOKMARK') return;
        if (names.length > 0 && !names.includes(e.object.metadata.name ?? '')) return;
        if (!table) {
          if (format === 'json') ctx.println(JSON.stringify(e.object, null, 4));
          else if (format === 'yaml') ctx.io.stdout(`${toYaml(e.object)}---\n`);
          else ctx.io.stdout(printObjects(kind, [e.object], 'name', { now: Date.now() }));
          return;
        }
        const rows: string[][] = [];
        if (!headerDone) {
          rows.push(tableHeader(kind, wide, ctx.allNamespaces));
          headerDone = true;
        }
        rows.push(tableRow(kind, e.object, wide, ctx.allNamespaces, Date.now()));
        ctx.io.stdout(rows.map((r) => `${align(r)}\n`).join(''));
      },
      (err) => {
        stop();
        if (err) reject(err);
        else resolve();
      },
    );
    const stop = ctx.io.onInterrupt(() => handle.cancel());
  });
}

export function addGetCommand(program: Command, io: CtlIO): void {
  program
    .command('get')
    .description('Show objects: one kind (pods), several (deploy,svc), or by name (deploy/web, pods web api)')
    .argument('<resource...>', 'kind[,kind...] [name...] or kind/name...')
    .option('-l, --selector <query>', "label selector: 'app=web', 'tier in (fe,be)', '!canary'")
    .option('--field-selector <query>', "field selector: 'status.phase=Running', 'spec.nodeName=n1'")
    .option('-A, --all-namespaces', 'objects of every namespace')
    .option('-w, --watch', 'after listing, print changes as they happen (Ctrl-C stops)')
    .option('--watch-only', 'print changes only, not the current objects')
    .option('--show-labels', 'add a LABELS column')
    .addHelpText(
      'after',
      examples(
        'berthctl get pods',
        'berthctl get deploy,svc -n shop',
        'berthctl get deploy/web -o yaml',
        'berthctl get pods -l app=web -o wide',
        'berthctl get pods -A --field-selector status.phase=Running',
        'berthctl get pods -w',
      ),
    )
    .action(action(io, (ctx, flags: GetFlags, args: string[]) => get(ctx, flags, args)));
}
