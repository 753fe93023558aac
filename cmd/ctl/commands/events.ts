// berthctl events: what the system did and why, newest last, like kubectl events.
import type { Command } from 'commander';
import type { CtlContext, CtlIO } from '../context.js';
import { UsageError } from '../errors.js';
import { kindArg } from '../object-args.js';
import { printEvents } from '../printers/index.js';
import { action, examples } from './run.js';

interface EventFlags {
  allNamespaces?: boolean;
  for?: string;
  types?: string;
}

async function events(ctx: CtlContext, flags: EventFlags) {
  const selectors: string[] = [];
  if (flags.for) {
    const slash = flags.for.indexOf('/');
    if (slash <= 0) throw new UsageError('--for takes kind/name, for example pod/web-1');
    const kind = kindArg(flags.for.slice(0, slash));
    selectors.push(`involvedObject.kind=${kind.kind}`, `involvedObject.name=${flags.for.slice(slash + 1)}`);
  }
  const list = await ctx.api.list('events', {
    namespace: flags.allNamespaces ? undefined : ctx.namespace,
    allNamespaces: flags.allNamespaces === true,
    fieldSelector: selectors.join(','),
  });
  const types = flags.types?.split(',').map((t) => t.trim().toLowerCase());
  const items = types
    ? list.items.filter((e) => types.includes(String(e.type ?? '').toLowerCase()))
    : list.items;
  if (ctx.options.output === 'json') {
    ctx.println(JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, 4));
    return;
  }
  if (items.length === 0) {
    ctx.io.stderr(`No events found${flags.allNamespaces ? '' : ` in ${ctx.namespace} namespace`}.\n`);
    return;
  }
  ctx.println(printEvents(items, Date.now(), flags.allNamespaces === true));
}

export function addEventsCommand(program: Command, io: CtlIO): void {
  program
    .command('events')
    .description('List events (what the system did to objects and why), oldest first')
    .option('-A, --all-namespaces', 'events of every namespace')
    .option('--for <kind/name>', 'only events about this object')
    .option('--types <list>', 'only these types: Normal, Warning (comma-separated)')
    .addHelpText(
      'after',
      examples('berthctl events', 'berthctl events --for pod/web-1', 'berthctl events -A --types Warning'),
    )
    .action(action(io, (ctx, flags: EventFlags) => events(ctx, flags)));
}
