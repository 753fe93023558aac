// berthctl kv get|put|del|watch: the store's KV and Watch APIs, keys and values as text.
import type { Command } from 'commander';
import type { WatchResponse } from '../../../pkg/store/types.js';
import { prefixEnd } from '../../../pkg/store/types.js';
import type { CtlContext, CtlIO } from '../context.js';
import { CtlError, UsageError } from '../errors.js';
import { deleteJson, eventJson, eventLine, rangeJson, rangeTable } from '../kv-format.js';
import { parseNonNegativeInt } from '../options.js';
import { action, examples } from './run.js';

const enc = new TextEncoder();

/** The key and range end for `key` (and every key under it with --prefix). */
export function keyRange(key: string, prefix: boolean): { key: Uint8Array; rangeEnd?: Uint8Array } {
  if (!prefix) {
    if (key === '') throw new UsageError('the key must not be empty (use --prefix with "" for every key)');
    return { key: enc.encode(key) };
  }
  // The empty prefix is every key: etcd's [\0, \0).
  if (key === '') return { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) };
  const k = enc.encode(key);
  return { key: k, rangeEnd: prefixEnd(k) };
}

interface GetOptions {
  prefix?: boolean;
  rev?: number;
  limit?: number;
  keysOnly?: boolean;
  countOnly?: boolean;
}

async function get(ctx: CtlContext, opts: GetOptions, key: string): Promise<void> {
  const r = await ctx.main.range({
    ...keyRange(key, opts.prefix ?? false),
    revision: opts.rev ?? 0,
    limit: opts.limit ?? 0,
    keysOnly: opts.keysOnly ?? false,
    countOnly: opts.countOnly ?? false,
  });
  if (opts.countOnly) {
    if (ctx.json) ctx.printJson({ revision: r.header.revision, count: r.count });
    else ctx.println(String(r.count));
    return;
  }
  if (!opts.prefix && r.kvs.length === 0) {
    throw new CtlError(`key "${key}" not found${opts.rev ? ` at revision ${opts.rev}` : ''}`);
  }
  if (!ctx.json && r.kvs.length === 0) {
    ctx.io.stderr(`No keys found under "${key}".\n`);
    return;
  }
  ctx.print(
    () => rangeTable(r, opts),
    () => rangeJson(r, opts),
  );
  if (!ctx.json && r.more) ctx.io.stderr(`(${r.count - r.kvs.length} more; raise --limit to see them)\n`);
}

async function watch(
  ctx: CtlContext,
  opts: { prefix?: boolean; rev?: number; prevKv?: boolean },
  key: string,
): Promise<void> {
  let fail: (err: Error) => void = () => {};
  let stop: () => void = () => {};
  const ended = new Promise<void>((resolve, reject) => {
    stop = resolve;
    fail = reject;
  });
  const onResponse = (r: WatchResponse) => {
    for (const e of r.events) ctx.println(ctx.json ? eventJson(e) : eventLine(e));
    if (r.canceled) {
      const why = r.compactRevision
        ? `revision ${opts.rev} has been compacted; the oldest available is ${r.compactRevision}`
        : (r.cancelReason ?? 'canceled by the server');
      fail(new CtlError(`watch ended: ${why}`));
    }
  };
  const unlisten = ctx.io.onInterrupt(() => stop());
  try {
    const watcher = await ctx.main.watch(
      { ...keyRange(key, opts.prefix ?? false), startRevision: opts.rev ?? 0, prevKv: opts.prevKv ?? false },
      onResponse,
    );
    try {
      await ended;
    } finally {
      await watcher.cancel().catch(() => undefined);
    }
  } finally {
    unlisten();
  }
}

export function addKvCommands(program: Command, io: CtlIO): void {
  const kv = program
    .command('kv')
    .description('read, write and watch keys in the store')
    .addHelpText(
      'after',
      examples(
        'berthctl kv put /config/app v1',
        'berthctl kv get /config/ --prefix',
        'berthctl kv del /config/app',
      ),
    );

  kv.command('get <key>')
    .summary('read a key or a prefix')
    .description('Read a key, or every key under a prefix (a missing single key is an error).')
    .option('--prefix', 'every key that starts with <key> ("" for all keys)')
    .option('--rev <n>', 'read at this past revision', parseNonNegativeInt)
    .option('--limit <n>', 'at most this many keys (0: no limit)', parseNonNegativeInt)
    .option('--keys-only', 'keys without their values')
    .option('--count-only', 'only the number of keys')
    .addHelpText(
      'after',
      examples(
        'berthctl kv get /config/app',
        'berthctl kv get /registry/pods/ --prefix --keys-only',
        'berthctl kv get "" --prefix --count-only',
        'berthctl kv get /config/app --rev 42 -o json',
      ),
    )
    .action(action(io, get));

  kv.command('put <key> <value>')
    .summary('write a value')
    .description('Write a value ("-" reads it from standard input).')
    .addHelpText(
      'after',
      examples('berthctl kv put /config/app "mode=fast"', 'berthctl kv put /config/app.json - < app.json'),
    )
    .action(
      action(io, async (ctx, _opts, key: string, value: string) => {
        const v = value === '-' ? await ctx.io.readStdin() : enc.encode(value);
        const r = await ctx.main.put({ key: keyRange(key, false).key, value: v });
        if (ctx.json) ctx.printJson({ revision: r.header.revision });
        else ctx.println('OK');
      }),
    );

  kv.command('del <key>')
    .summary('delete a key or a prefix')
    .description('Delete a key, or every key under a prefix; prints how many were deleted.')
    .option('--prefix', 'every key that starts with <key>')
    .addHelpText('after', examples('berthctl kv del /config/app', 'berthctl kv del /tmp/ --prefix'))
    .action(
      action(io, async (ctx, opts: { prefix?: boolean }, key: string) => {
        const r = await ctx.main.deleteRange(keyRange(key, opts.prefix ?? false));
        if (ctx.json) ctx.printJson(deleteJson(r));
        else ctx.println(String(r.deleted));
      }),
    );

  kv.command('watch <key>')
    .summary('print changes until Ctrl-C')
    .description(
      'Print changes as they happen, until Ctrl-C: "PUT key value" and "DELETE key" lines\n' +
        '(one JSON object per line with -o json).',
    )
    .option('--prefix', 'every key that starts with <key>')
    .option('--rev <n>', 'start at this past revision (replays the changes since)', parseNonNegativeInt)
    .option('--prev-kv', 'also show the value before each change')
    .addHelpText(
      'after',
      examples(
        'berthctl kv watch /config/app',
        'berthctl kv watch /registry/ --prefix -o json',
        'berthctl kv watch /config/ --prefix --rev 1 --prev-kv',
      ),
    )
    .action(action(io, watch));
}
