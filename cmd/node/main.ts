import type { Command } from 'commander';
import { pino } from 'pino';
import { NodeConfigError, parseNodeArgs } from './config.js';
import { buildEncryptionKeyCommand, runEncryptionKey } from './encryption-key.js';
import { buildInitCommand, type InitFlags, runInit } from './init.js';
import { buildJoinCommand, type JoinFlags, runJoin } from './join.js';
import { buildLeaveCommand, type LeaveFlags, runLeave } from './leave.js';
import { startNode } from './node.js';

// grpc-js sets the TLS server name to an IP address when dialling one, and Node prints a
// DEP0123 warning for it in every process; it says nothing a user can act on.
process.noDeprecation = true;

const print = (line: string) => process.stdout.write(`${line}\n`);

/** The one-shot commands (init, join, leave): parse, run, exit code. */
async function oneShot(cmd: Command, argv: string[], run: (cmd: Command) => Promise<void>): Promise<number> {
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (e) {
    const err = e as { code?: string; message: string };
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    process.stderr.write(`${cmd.name()}: ${err.message.replace(/^error: /, '')}\n`);
    return 2;
  }
  try {
    await run(cmd);
    return 0;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${cmd.name()}: ${msg}\n`);
    return err instanceof NodeConfigError ? 2 : 1;
  }
}

async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'init') {
    const cmd = buildInitCommand();
    return oneShot(cmd, rest, () => runInit(cmd.opts<InitFlags>(), print));
  }
  if (sub === 'join') {
    const cmd = buildJoinCommand();
    return oneShot(cmd, rest, () => runJoin(cmd.args[0] as string, cmd.opts<JoinFlags>(), print));
  }
  if (sub === 'leave') {
    const cmd = buildLeaveCommand();
    return oneShot(cmd, rest, () => runLeave(cmd.opts<LeaveFlags>(), print));
  }
  if (sub === 'encryption-key') {
    const cmd = buildEncryptionKeyCommand();
    return oneShot(cmd, rest, () =>
      runEncryptionKey(cmd.args[0] as string, cmd.args[1], cmd.opts<{ pkiDir: string }>().pkiDir, print),
    );
  }
  let cfg: ReturnType<typeof parseNodeArgs>;
  try {
    cfg = parseNodeArgs(argv);
  } catch (e) {
    const err = e as { code?: string; message: string };
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    process.stderr.write(`berth-node: ${err.message}\nRun 'berth-node --help' for usage.\n`);
    return 2;
  }
  const logger = pino({ level: cfg.logLevel, base: { member: cfg.name } });
  let node: Awaited<ReturnType<typeof startNode>>;
  try {
    node = await startNode(cfg, logger);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    logger.fatal({ err }, 'could not start');
    process.stderr.write(`berth-node: ${err instanceof NodeConfigError ? '' : 'could not start: '}${msg}\n`);
    // What did start (Raft, timers, listeners) must not keep a half-made node alive.
    process.exit(1);
  }
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      node.stop().then(resolve, (err) => {
        logger.error({ err }, 'unclean shutdown');
        resolve();
      });
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
