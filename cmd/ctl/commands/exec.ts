// berthctl exec: run a command in a pod's container, print its output, exit with its exit
// code (as kubectl exec). Without stdin or a terminal: the command runs to the end, then its
// output comes back whole.
import type { Command } from 'commander';
import type { CtlContext, CtlIO } from '../context.js';
import { ReportedFailure, UsageError } from '../errors.js';
import { podArg } from './logs.js';
import { action, examples } from './run.js';

/** The node's own limit on a command when none is asked for (pkg/agent/grpc-pods.ts). */
const DEFAULT_EXEC_TIMEOUT_MS = 60_000;

interface ExecFlags {
  container?: string;
  stdin?: boolean;
  tty?: boolean;
}

async function exec(
  ctx: CtlContext,
  flags: ExecFlags,
  arg: string,
  command: string[],
  timeoutMs: number,
): Promise<void> {
  if (flags.stdin || flags.tty) {
    throw new UsageError(
      `interactive exec is not supported yet (${flags.stdin ? '-i' : '-t'}); run the command without -i/-t, e.g. berthctl exec ${arg} -- sh -c '...'`,
    );
  }
  if (command.length === 0) {
    throw new UsageError('you must specify at least one command for the container: berthctl exec POD -- CMD');
  }
  const pod = podArg(arg);
  const r = await ctx.pods.exec(ctx.namespace, pod, {
    ...(flags.container ? { container: flags.container } : {}),
    command,
    timeoutMs,
  });
  if (r.stdout.length > 0) ctx.io.stdout(r.stdout.toString('utf8'));
  if (r.stderr.length > 0) ctx.io.stderr(r.stderr.toString('utf8'));
  if (r.exitCode !== 0) {
    ctx.io.stderr(`command terminated with exit code ${r.exitCode}\n`);
    // The command's exit code becomes berthctl's, as with kubectl exec.
    throw new ReportedFailure(1, r.exitCode);
  }
}

export function addExecCommand(program: Command, io: CtlIO): void {
  program
    .command('exec')
    .description(
      "Run a command in a pod's container; its output is printed and its exit code is berthctl's (no stdin or tty yet)",
    )
    .argument('<pod>', 'POD or pod/POD')
    .argument('[command...]', 'the command and its arguments, after --')
    .option('-c, --container <name>', 'the container (required when the pod has several)')
    .option('-i, --stdin', 'pass stdin to the command (not supported yet)')
    .option('-t, --tty', 'allocate a terminal (not supported yet)')
    .addHelpText(
      'after',
      `${examples(
        'berthctl exec web-1 -- ls /',
        "berthctl exec pod/web-1 -c sidecar -- sh -c 'echo $HOSTNAME'",
        'berthctl exec web-1 -n shop --timeout 5m -- ./migrate.sh',
      )}\nThe command may run for --timeout when it is given, else ${DEFAULT_EXEC_TIMEOUT_MS / 1000}s.\n`,
    )
    .action((...raw: unknown[]) => {
      const cmd = raw[raw.length - 1] as Command;
      const explicit = cmd.getOptionValueSourceWithGlobals('timeout') === 'cli';
      return action(io, (ctx, flags: ExecFlags, pod: string, command: string[]) =>
        exec(ctx, flags, pod, command, explicit ? ctx.options.timeoutMs : DEFAULT_EXEC_TIMEOUT_MS),
      )(...raw);
    });
}
