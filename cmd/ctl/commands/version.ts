// berthctl version: this client's version and the server's.
import type { Command } from 'commander';
import { BERTH_VERSION } from '../../../pkg/version.js';
import type { CtlIO } from '../context.js';
import { CtlError, errorMessage } from '../errors.js';
import { action, examples } from './run.js';

export function addVersionCommand(program: Command, io: CtlIO): void {
  program
    .command('version')
    .description("Show berthctl's version and the server's")
    .addHelpText(
      'after',
      examples('berthctl version', 'berthctl version --client', 'berthctl version -o json'),
    )
    .option('--client', "only the client's version (no cluster needed)")
    .action(
      action(io, async (ctx, flags: { client?: boolean }) => {
        const client = { version: BERTH_VERSION };
        let server: { version: string; member: string; nodeName: string } | undefined;
        let problem: string | undefined;
        if (!flags.client) {
          try {
            server = await ctx.api.version();
          } catch (err) {
            problem = errorMessage(err, ctx.options);
          }
        }
        if (ctx.json) {
          ctx.printJson({ clientVersion: client, ...(server ? { serverVersion: server } : {}) });
        } else {
          ctx.println(`Client Version: ${client.version}`);
          if (server)
            ctx.println(
              `Server Version: ${server.version} (node ${server.nodeName}, member ${server.member})`,
            );
        }
        if (problem) throw new CtlError(problem);
      }),
    );
}
