// berthctl's command tree and its run loop: parse, dispatch, and turn every failure into one
// line on stderr and an exit code (0 ok, 1 the command failed, 2 the command line is wrong).
import { Command, CommanderError, Option } from 'commander';
import { addApplyCommands } from './commands/apply.js';
import { addAutoscaleCommand } from './commands/autoscale.js';
import { addClusterCommands } from './commands/cluster.js';
import { addConfigCommands } from './commands/config.js';
import { addDeleteCommand } from './commands/delete.js';
import { addDescribeCommand } from './commands/describe.js';
import { addEventsCommand } from './commands/events.js';
import { addExecCommand } from './commands/exec.js';
import { addExplainCommands } from './commands/explain.js';
import { addGetCommand } from './commands/get.js';
import { addKvCommands } from './commands/kv.js';
import { addLogsCommand } from './commands/logs.js';
import { addMemberCommands } from './commands/member.js';
import { addNodeCommands } from './commands/nodes.js';
import { addRolloutCommands } from './commands/rollout.js';
import { examples, globalsOf } from './commands/run.js';
import { addScaleCommand } from './commands/scale.js';
import { addSetCommand } from './commands/set.js';
import { addTokenCommands } from './commands/token.js';
import { addTopCommand } from './commands/top.js';
import { addTransferLeaderCommand } from './commands/transfer-leader.js';
import { addUserCommands } from './commands/user.js';
import { addVersionCommand } from './commands/version.js';
import { CONFIG_ENV } from './config-file.js';
import type { CtlIO } from './context.js';
import { CtlError, ExitCode, errorMessage, ReportedFailure, UsageError } from './errors.js';
import {
  DEFAULT_ENDPOINT,
  DEFAULT_TIMEOUT,
  ENDPOINTS_ENV,
  OUTPUT_FORMATS,
  parseDuration,
  parseEndpointList,
} from './options.js';

export const PROGRAM = 'berthctl';

/** The full command path ('berthctl kv get') of a command. */
function pathOf(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** The command tree, writing through `io`. `failedIn` learns which command a usage error hit. */
export function buildProgram(io: CtlIO, failedIn: { path: string } = { path: PROGRAM }): Command {
  const program = new Command(PROGRAM)
    .description(
      "Command-line client for a Berth cluster: Kubernetes-shaped objects (apply, get, describe, delete, ...) and the cluster's store and members.",
    )
    .addOption(
      new Option('--endpoints <list>', 'comma-separated host:port of cluster members')
        .env(ENDPOINTS_ENV)
        .default(parseEndpointList(DEFAULT_ENDPOINT), DEFAULT_ENDPOINT)
        .argParser(parseEndpointList),
    )
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'))
    .addOption(
      new Option('-n, --namespace <name>', "namespace of the objects (default: the context's, else default)"),
    )
    .addOption(
      new Option('--config <path>', 'config file').env(CONFIG_ENV).default(undefined, '~/.berth/config'),
    )
    .addOption(
      new Option('--context <name>', 'context of the config file to use (default: its current context)'),
    )
    .addOption(
      new Option('--timeout <duration>', 'deadline of each request, and of waits (500ms, 5s, 1m)')
        .default(parseDuration(DEFAULT_TIMEOUT), DEFAULT_TIMEOUT)
        .argParser(parseDuration),
    )
    .addHelpText(
      'after',
      examples(
        'berthctl apply -f app.yaml',
        'berthctl get deploy,svc -o wide',
        'berthctl describe deploy web',
        'berthctl cluster status',
        'berthctl member list -o json',
        'berthctl transfer-leader n2',
        'berthctl kv put /config/app "mode=fast" && berthctl kv get /config/app',
        'BERTH_ENDPOINTS=10.0.0.1:2379,10.0.0.2:2379 berthctl kv watch /registry/ --prefix',
      ),
    )
    .configureHelp({ showGlobalOptions: true })
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });

  addClusterCommands(program, io);
  addMemberCommands(program, io);
  addTransferLeaderCommand(program, io);
  addKvCommands(program, io);
  addApplyCommands(program, io);
  addGetCommand(program, io);
  addDescribeCommand(program, io);
  addDeleteCommand(program, io);
  addScaleCommand(program, io);
  addAutoscaleCommand(program, io);
  addSetCommand(program, io);
  addRolloutCommands(program, io);
  addEventsCommand(program, io);
  addLogsCommand(program, io);
  addExecCommand(program, io);
  addTopCommand(program, io);
  addNodeCommands(program, io);
  addExplainCommands(program, io);
  addConfigCommands(program, io);
  addTokenCommands(program, io);
  addUserCommands(program, io);
  addVersionCommand(program, io);

  // Every command: errors as one 'berthctl: ...' line, remembering where the user was.
  const configure = (cmd: Command) => {
    cmd.exitOverride().configureOutput({
      writeOut: io.stdout,
      writeErr: io.stderr,
      outputError: (str, write) => {
        failedIn.path = pathOf(cmd);
        write(`${PROGRAM}: ${str.replace(/^error: /, '')}`);
      },
    });
    cmd.commands.forEach(configure);
  };
  configure(program);
  return program;
}

/** Run berthctl with `argv` (without node and the script); resolves with the exit code. */
export async function run(argv: string[], io: CtlIO): Promise<number> {
  const failedIn = { path: PROGRAM };
  const program = buildProgram(io, failedIn);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ExitCode.Ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return ExitCode.Ok;
      // A command group without its subcommand: commander printed the group's help.
      if (err.code === 'commander.help') return ExitCode.Usage;
      io.stderr(`Run '${failedIn.path} --help' for usage.\n`);
      return ExitCode.Usage;
    }
    if (err instanceof UsageError) {
      io.stderr(`${PROGRAM}: ${err.message}\nRun '${PROGRAM} --help' for usage.\n`);
      return ExitCode.Usage;
    }
    if (err instanceof ReportedFailure) return err.exitCode;
    io.stderr(`${PROGRAM}: ${errorMessage(err, safeGlobals(program))}\n`);
    if (!(err instanceof CtlError) && process.env.BERTH_DEBUG && err instanceof Error) {
      io.stderr(`${err.stack}\n`);
    }
    return ExitCode.Failed;
  }
}

function safeGlobals(program: Command): { endpoints: string[]; timeoutMs?: number } {
  try {
    return globalsOf(program);
  } catch {
    return { endpoints: [] };
  }
}
