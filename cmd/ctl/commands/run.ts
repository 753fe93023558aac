// The glue between commander and a command body: parse the global flags into a CtlContext,
// run the body, close whatever clients it opened. Errors propagate to main, which prints them.
import type { Command } from 'commander';
import { type CtlContext as Context, CtlContext, type CtlIO } from '../context.js';
import { contextOf, defaultConfigPath, loadConfig, tlsOf } from '../config-file.js';
import type { GlobalOptions, OutputFormat } from '../options.js';

interface RawGlobals {
  endpoints: string[];
  output: OutputFormat;
  timeout: number;
  namespace?: string;
  config?: string;
  context?: string;
}

export function globalsOf(cmd: Command): GlobalOptions {
  const g = cmd.optsWithGlobals<RawGlobals>();
  const source = cmd.getOptionValueSourceWithGlobals('endpoints');
  return {
    endpoints: g.endpoints,
    output: g.output,
    timeoutMs: g.timeout,
    namespace: g.namespace ?? 'default',
    namespaceExplicit: g.namespace !== undefined,
    configPath: g.config ?? defaultConfigPath(),
    ...(g.context ? { context: g.context } : {}),
    endpointsFromUser: source === 'cli' || source === 'env',
    endpointsFromFlag: source === 'cli',
  };
}

/**
 * The global options with the config file's context applied (endpoints, namespace, TLS).
 * Endpoints from the flag or environment replace the context's, but its credentials stay:
 * the cluster is the same, only the way in differs. `warn` gets the config file's warnings.
 */
export async function withConfig(g: GlobalOptions, warn?: (line: string) => void): Promise<GlobalOptions> {
  const config = await loadConfig(g.configPath, warn);
  const ctx = contextOf(config, g.context);
  if (!ctx) return g;
  const tls = tlsOf(ctx);
  return {
    ...g,
    endpoints: g.endpointsFromUser || ctx.endpoints.length === 0 ? g.endpoints : ctx.endpoints,
    namespace: g.namespaceExplicit ? g.namespace : (ctx.namespace ?? g.namespace),
    ...(tls ? { tls } : {}),
  };
}

/**
 * A commander action running `body` with a context; commander passes the positional
 * arguments, then the command's options, then the command itself.
 */
export function action<A extends unknown[], O>(
  io: CtlIO,
  body: (ctx: Context, opts: O, ...args: A) => Promise<void>,
): (...raw: unknown[]) => Promise<void> {
  return async (...raw: unknown[]) => {
    const cmd = raw[raw.length - 1] as Command;
    const opts = raw[raw.length - 2] as O;
    const args = raw.slice(0, -2) as A;
    const warn = (line: string) => io.stderr(`berthctl: ${line}\n`);
    const ctx = new CtlContext(io, await withConfig(globalsOf(cmd), warn));
    try {
      await body(ctx, opts, ...args);
    } finally {
      await ctx.close();
    }
  };
}

/** Text appended to a command's --help: examples, one per line. */
export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
}
