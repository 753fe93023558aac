// berthctl explain and api-resources: what Berth serves and which fields each kind has.
// Answered from the schema compiled into berthctl (the server validates with the same).
import type { Command } from 'commander';
import { explain } from '../../../pkg/api/explain.js';
import { KINDS } from '../../../pkg/api/kinds.js';
import type { CtlIO } from '../context.js';
import { CtlError } from '../errors.js';
import { kindArg } from '../object-args.js';
import { renderRows } from '../printers/index.js';
import { action, examples } from './run.js';

export function addExplainCommands(program: Command, io: CtlIO): void {
  program
    .command('explain')
    .description('Describe a kind or one of its fields, listing the fields Berth supports')
    .argument('<kind[.field...]>', 'for example deployment, deployment.spec.strategy, pod.spec.containers')
    .addHelpText(
      'after',
      examples('berthctl explain deployment', 'berthctl explain pod.spec.containers.resources'),
    )
    .action(
      action(io, async (ctx, _flags, target: string) => {
        const [kindName, ...path] = target.split('.');
        const kind = kindArg(kindName ?? '');
        try {
          ctx.io.stdout(ensureNewline(explain(kind, path)));
        } catch (err) {
          throw new CtlError(err instanceof Error ? err.message : String(err));
        }
      }),
    );

  program
    .command('api-resources')
    .description('List the kinds Berth serves, with their short names')
    .addHelpText('after', examples('berthctl api-resources'))
    .action(
      action(io, async (ctx) => {
        const rows = KINDS.map((k) => [
          k.resource,
          k.shortNames.join(',') || '',
          k.apiVersion,
          String(k.namespaced),
          k.kind,
        ]);
        ctx.io.stdout(
          `${renderRows([['NAME', 'SHORTNAMES', 'APIVERSION', 'NAMESPACED', 'KIND'], ...rows])}\n`,
        );
      }),
    );
}

const ensureNewline = (s: string) => (s.endsWith('\n') ? s : `${s}\n`);
