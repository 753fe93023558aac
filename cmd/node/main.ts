import { pino } from 'pino';
import { NodeConfigError, parseNodeArgs } from './config.js';
import { startNode } from './node.js';

async function main(argv: string[]): Promise<number> {
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
    return 1;
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
