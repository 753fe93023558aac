// berthctl logs: a container's output, as kubectl logs prints it. The node the client talks
// to fetches it from the pod's node; -f streams until the container ends or Ctrl-C.
import { StringDecoder } from 'node:string_decoder';
import { type Command, InvalidArgumentError } from 'commander';
import type { CtlContext, CtlIO } from '../context.js';
import { UsageError } from '../errors.js';
import { kindArg } from '../object-args.js';
import { action, examples } from './run.js';

interface LogsFlags {
  container?: string;
  follow?: boolean;
  tail?: number;
  timestamps?: boolean;
  previous?: boolean;
}

/** A pod named as POD or pod/POD (po/POD, pods/POD); other kinds are refused. */
export function podArg(arg: string): string {
  const slash = arg.indexOf('/');
  if (slash < 0) return arg;
  const kind = kindArg(arg.slice(0, slash));
  if (kind.kind !== 'Pod') throw new UsageError(`only pods are supported here, not ${kind.resource}`);
  const name = arg.slice(slash + 1);
  if (name === '') throw new UsageError(`"${arg}" names no pod: use pod/NAME`);
  return name;
}

/** --tail: a whole number; -1 (kubectl's default) means every line. */
function parseTail(value: string): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < -1) {
    throw new InvalidArgumentError(`"${value}" is not a number of lines (-1 for all)`);
  }
  return n;
}

async function logs(ctx: CtlContext, flags: LogsFlags, arg: string): Promise<void> {
  const pod = podArg(arg);
  const decoder = new StringDecoder('utf8');
  await new Promise<void>((resolve, reject) => {
    const handle = ctx.pods.logs(
      ctx.namespace,
      pod,
      {
        ...(flags.container ? { container: flags.container } : {}),
        follow: flags.follow === true,
        ...(flags.tail !== undefined && flags.tail >= 0 ? { tailLines: flags.tail } : {}),
        timestamps: flags.timestamps === true,
        previous: flags.previous === true,
      },
      (chunk) => ctx.io.stdout(decoder.write(chunk)),
      (err) => {
        stop();
        const rest = decoder.end();
        if (rest) ctx.io.stdout(rest);
        if (err) reject(err);
        else resolve();
      },
    );
    const stop = ctx.io.onInterrupt(() => handle.cancel());
  });
}

export function addLogsCommand(program: Command, io: CtlIO): void {
  program
    .command('logs')
    .description("Print a container's logs (of the pod's only container, or the one named with -c)")
    .argument('<pod>', 'POD or pod/POD')
    .option('-c, --container <name>', 'the container (required when the pod has several)')
    .option('-f, --follow', 'keep printing what it logs, until the container ends or Ctrl-C')
    .option('--tail <lines>', 'only the last N lines (-1: all)', parseTail)
    .option('--timestamps', 'prefix every line with the time it was logged (RFC 3339)')
    .option('-p, --previous', "the previous instance's logs, after the container restarted")
    .addHelpText(
      'after',
      examples(
        'berthctl logs web-1',
        'berthctl logs pod/web-1 -c sidecar --tail 20',
        'berthctl logs -f web-1 -n shop',
        'berthctl logs web-1 --previous --timestamps',
      ),
    )
    .action(action(io, (ctx, flags: LogsFlags, pod: string) => logs(ctx, flags, pod)));
}
