// berthctl token create|list|revoke: join tokens for new nodes, like `kubeadm token`. The
// token pins the cluster CA (from the context's certificate-authority-data); the cluster
// stores only its record, under /berth/tokens/, through the KV API (admins only).
import type { Command } from 'commander';
import { parseJoinToken } from '../../../pkg/pki/index.js';
import { deleteToken, listTokens, putToken } from '../../../pkg/security/token-store.js';
import type { CtlContext, CtlIO } from '../context.js';
import { CtlError, ReportedFailure } from '../errors.js';
import {
  DEFAULT_TOKEN_TTL,
  joinCommand,
  parseTtl,
  TOKEN_HEAD,
  tokenFor,
  tokenRows,
  tokensJson,
} from '../tokens.js';
import { action, examples } from './run.js';

const TOKEN_ID_RE = /^[a-z0-9]{6}$/;

export const NO_CA_MESSAGE = 'token create needs a TLS context (the admin config written by berth-node init)';

interface CreateOptions {
  ttl: number;
  worker?: boolean;
  description?: string;
  printJoinCommand?: boolean;
}

async function createToken(ctx: CtlContext, o: CreateOptions): Promise<void> {
  const ca = ctx.options.tls?.caPem;
  if (!ca) throw new CtlError(NO_CA_MESSAGE);
  const { token, record } = tokenFor(ca, {
    role: o.worker ? 'worker' : 'voter',
    ttlMs: o.ttl,
    now: new Date(),
    ...(o.description !== undefined ? { description: o.description } : {}),
  });
  await putToken(ctx.main, record);
  const first = ctx.options.endpoints[0] as string;
  ctx.println(o.printJoinCommand ? joinCommand(first, token) : token);
}

/** A token id, or a whole token (its id is taken; the secret is never echoed). */
function idOf(arg: string): string {
  if (!arg.startsWith('BERTH1-')) return arg;
  try {
    return parseJoinToken(arg).id;
  } catch {
    return arg;
  }
}

export function addTokenCommands(program: Command, io: CtlIO): void {
  const token = program
    .command('token')
    .description('join tokens: what a new node needs to join the cluster')
    .addHelpText(
      'after',
      examples('berthctl token create', 'berthctl token list', 'berthctl token revoke abc123'),
    );

  token
    .command('create')
    .summary('create a join token and print it')
    .description(
      'Create a join token and print only the token (or, with --print-join-command, the\n' +
        'berth-node command that joins with it). The token pins the cluster CA of the current\n' +
        'context; the cluster keeps only a hash of its secret.',
    )
    .option(
      '--ttl <duration>',
      'how long the token is valid; 0: never expires',
      parseTtl,
      parseTtl(DEFAULT_TOKEN_TTL),
    )
    .option('--worker', 'the node joins as a worker (non-voting) instead of a voter')
    .option('--description <text>', 'what the token is for, shown by token list')
    .option('--print-join-command', 'print the full berth-node join command instead of the token')
    .addHelpText(
      'after',
      examples(
        'berthctl token create',
        'berthctl token create --worker --ttl 1h --description "rack 4"',
        'berthctl token create --print-join-command',
      ),
    )
    .action(action(io, createToken));

  token
    .command('list')
    .summary('list the join tokens')
    .description('List the join tokens: id, role, time left, expiry and description (never secrets).')
    .addHelpText('after', examples('berthctl token list', 'berthctl token list -o json'))
    .action(
      action(io, async (ctx) => {
        const now = new Date();
        const records = await listTokens(ctx.main);
        ctx.print(
          () => ({ head: TOKEN_HEAD, rows: tokenRows(records, now) }),
          () => tokensJson(records, now),
        );
      }),
    );

  token
    .command('revoke <id...>')
    .summary('revoke join tokens')
    .description('Revoke join tokens by id (the part before the "." of the token after the CA hash).')
    .addHelpText('after', examples('berthctl token revoke abc123', 'berthctl token revoke abc123 def456'))
    .action(
      action(io, async (ctx, _opts, ids: string[]) => {
        let failed = 0;
        for (const arg of ids) {
          const id = idOf(arg);
          // Only well-formed ids reach the store: anything else would name another key.
          if (TOKEN_ID_RE.test(id) && (await deleteToken(ctx.main, id))) ctx.println(`token ${id} revoked`);
          else {
            ctx.io.stderr(`berthctl: token "${id}" not found\n`);
            failed++;
          }
        }
        if (failed > 0) throw new ReportedFailure(failed);
      }),
    );
}
