// berthctl user create: a credential for a person. The key is made here and never leaves
// this machine; the cluster CA signs a CSR for it (Certificates/Issue, admins only), and the
// result is printed as a complete berthctl config file for that person.
import { type Command, InvalidArgumentError } from 'commander';
import { certificateInfo, createKeyAndCsr } from '../../../pkg/pki/index.js';
import { issueUserCertificate, type UserRole } from '../certificates.js';
import { renderConfig, tlsContext } from '../config-file.js';
import type { CtlContext, CtlIO } from '../context.js';
import { CtlError, UsageError } from '../errors.js';
import { parseEndpointList, parseNonNegativeInt } from '../options.js';
import { action, examples } from './run.js';

export const NO_TLS_MESSAGE = 'user create needs a TLS context (the admin config written by berth-node init)';

interface CreateOptions {
  readonly?: boolean;
  admin?: boolean;
  days?: number;
  endpointAddress?: string[];
}

function roleOf(o: CreateOptions): UserRole {
  if (o.readonly === o.admin) throw new UsageError('user create needs exactly one of --readonly and --admin');
  return o.admin ? 'admin' : 'readonly';
}

async function createUser(ctx: CtlContext, o: CreateOptions, name: string): Promise<void> {
  const role = roleOf(o);
  const credentials = ctx.credentials;
  if (!credentials) throw new CtlError(NO_TLS_MESSAGE);
  const { keyPem, csrPem } = await createKeyAndCsr({ commonName: name });
  const reply = await issueUserCertificate(
    { name, role, csr_pem: csrPem, valid_days: o.days ?? 0 },
    { endpoints: ctx.options.endpoints, credentials, timeoutMs: ctx.options.timeoutMs },
  );
  const endpoints = o.endpointAddress ?? ctx.options.endpoints;
  const context = tlsContext(name, endpoints, { caPem: reply.ca_cert_pem, certPem: reply.cert_pem, keyPem });
  ctx.io.stdout(renderConfig({ 'current-context': name, contexts: [context] }));
  const until = certificateInfo(reply.cert_pem).notAfter.toISOString();
  ctx.io.stderr(
    `berthctl: issued ${role} credential "${name}", valid until ${until}; the config holds its private key: keep it mode 600\n`,
  );
}

export function addUserCommands(program: Command, io: CtlIO): void {
  const user = program
    .command('user')
    .description('credentials for people: a client certificate signed by the cluster CA')
    .addHelpText('after', examples('berthctl user create alice --readonly > alice.conf'));

  user
    .command('create <name>')
    .summary('issue a credential and print a berthctl config file holding it')
    .description(
      'Make a key and have the cluster CA sign a certificate for it (admins only), then print a\n' +
        'complete berthctl config file with one context, <name>, that uses it. --readonly may\n' +
        'read everything but change nothing; --admin may do anything.',
    )
    .option('--readonly', 'a read-only user (O=berth:readonly)')
    .option('--admin', 'an administrator (O=system:masters)')
    .option('--days <n>', "the certificate's lifetime in days (default: the cluster's, 365)", (v) => {
      const n = parseNonNegativeInt(v);
      if (n === 0) throw new InvalidArgumentError('must be at least 1');
      return n;
    })
    .option(
      '--endpoint-address <list>',
      "endpoints to write into the new config (default: this context's)",
      parseEndpointList,
    )
    .addHelpText(
      'after',
      examples(
        'berthctl user create alice --readonly > alice.conf && chmod 600 alice.conf',
        'berthctl --config alice.conf get pods',
        'berthctl user create bob --admin --days 30 --endpoint-address 203.0.113.7:2379',
      ),
    )
    .action(action(io, createUser));
}
