// berthctl apply -f | create -f | create namespace|configmap|secret: write manifests.
// Every manifest is tried; failures are reported one line each and the command fails at the
// end, so one bad document does not hide what happened to the others (as kubectl does).
import type { Command } from 'commander';
import { kindOf, qualifiedSingular } from '../../../pkg/api/kinds.js';
import type { ApiObject } from '../../../pkg/api/types.js';
import type { CtlContext, CtlIO } from '../context.js';
import { CtlError, errorMessage, ReportedFailure, UsageError } from '../errors.js';
import { type Manifest, readManifests } from '../manifests.js';
import { printWritten } from './print.js';
import { action, examples } from './run.js';

interface WriteFlags {
  filename?: string[];
  recursive?: boolean;
  dryRun?: boolean;
}

/** The namespace to send with a manifest; an explicit -n that contradicts it is an error. */
function namespaceFor(ctx: CtlContext, m: Manifest): string {
  const meta = m.object.metadata as { namespace?: unknown } | undefined;
  const own = typeof meta?.namespace === 'string' ? meta.namespace : undefined;
  if (own && ctx.options.namespaceExplicit && own !== ctx.namespace) {
    throw new CtlError(
      `the namespace from the provided object "${own}" does not match the namespace "${ctx.namespace}"; pass --namespace=${own} or remove it from the manifest`,
    );
  }
  return ctx.namespace;
}

function describeManifest(m: Manifest): string {
  const o = m.object;
  const kind =
    typeof o.apiVersion === 'string' && typeof o.kind === 'string' ? kindOf(o.apiVersion, o.kind) : undefined;
  const name = (o.metadata as { name?: unknown } | undefined)?.name;
  return kind && typeof name === 'string' ? `${qualifiedSingular(kind)}/${name}` : m.source;
}

async function writeAll(
  ctx: CtlContext,
  flags: WriteFlags,
  verb: (m: Manifest, namespace: string) => Promise<{ object: ApiObject; result: string }>,
): Promise<void> {
  if (!flags.filename || flags.filename.length === 0)
    throw new UsageError('give the manifests with -f FILE, DIR or -');
  const manifests = await readManifests(flags.filename, () => ctx.io.readStdin(), flags.recursive === true);
  let failed = 0;
  for (const m of manifests) {
    try {
      const { object, result } = await verb(m, namespaceFor(ctx, m));
      printWritten(ctx, object, result, flags.dryRun === true);
    } catch (err) {
      failed++;
      ctx.io.stderr(`berthctl: ${describeManifest(m)}: ${errorMessage(err, ctx.options)}\n`);
    }
  }
  if (failed === 1 && manifests.length === 1) throw new ReportedFailure(failed);
  if (failed === manifests.length) throw new CtlError(`none of the ${failed} objects was written`);
  if (failed > 0)
    throw new CtlError(`${failed} of ${manifests.length} objects failed; the others were written`);
}

export function addApplyCommands(program: Command, io: CtlIO): void {
  program
    .command('apply')
    .description(
      'Create or update objects from manifests. Fields removed from a manifest since the last apply are removed from the object; fields others set (status, defaults) are kept.',
    )
    .option('-f, --filename <path...>', 'manifest file, directory or - for standard input (repeatable)')
    .option('-R, --recursive', 'read directories given with -f recursively')
    .option('--dry-run', 'validate on the server and show the result; store nothing')
    .addHelpText(
      'after',
      examples(
        'berthctl apply -f web.yaml',
        'berthctl apply -f manifests/ -R',
        'cat app.yaml | berthctl apply -f -',
        'berthctl apply -f web.yaml --dry-run -o yaml',
      ),
    )
    .action(
      action(io, (ctx, flags: WriteFlags) =>
        writeAll(ctx, flags, (m, namespace) => ctx.api.apply(m.object, { namespace, dryRun: flags.dryRun })),
      ),
    );

  const create = program
    .command('create')
    .description(
      'Create objects from manifests (an object that exists is an error; see apply), or simple ones by name',
    )
    .option('-f, --filename <path...>', 'manifest file, directory or - for standard input (repeatable)')
    .option('-R, --recursive', 'read directories given with -f recursively')
    .option('--dry-run', 'validate on the server and show the result; store nothing')
    .addHelpText(
      'after',
      examples(
        'berthctl create -f web.yaml',
        'berthctl create namespace shop',
        'berthctl create configmap app-config --from-literal mode=fast --from-literal level=3',
        'berthctl create secret generic db --from-literal password=s3cret',
      ),
    )
    .action(
      action(io, async (ctx, flags: WriteFlags) =>
        writeAll(ctx, flags, async (m, namespace) => ({
          object: await ctx.api.create(m.object, { namespace, dryRun: flags.dryRun }),
          result: 'created',
        })),
      ),
    );

  const simple = (name: string, build: (name: string, opts: { fromLiteral?: string[] }) => ApiObject) =>
    action(io, async (ctx, opts: { fromLiteral?: string[]; dryRun?: boolean }, objectName: string) => {
      const object = await ctx.api.create(build(objectName, opts), {
        namespace: ctx.namespace,
        dryRun: opts.dryRun,
      });
      printWritten(ctx, object, 'created', opts.dryRun === true);
      void name;
    });

  create
    .command('namespace <name>')
    .alias('ns')
    .description('Create a namespace')
    .addHelpText('after', examples('berthctl create namespace shop', 'berthctl create ns shop --dry-run'))
    .option('--dry-run', 'validate on the server; store nothing')
    .action(simple('namespace', (name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })));

  create
    .command('configmap <name>')
    .alias('cm')
    .description('Create a config map from key=value pairs')
    .addHelpText('after', examples('berthctl create configmap app --from-literal mode=fast -n shop'))
    .option('--from-literal <key=value...>', 'a key and its value (repeatable)')
    .option('--dry-run', 'validate on the server; store nothing')
    .action(
      simple('configmap', (name, o) => ({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name },
        data: literals(o.fromLiteral),
      })),
    );

  create
    .command('secret')
    .description('Create a secret')
    .addHelpText('after', examples('berthctl create secret generic db --from-literal password=s3cret'))
    .command('generic <name>')
    .description('Create an Opaque secret from key=value pairs')
    .addHelpText(
      'after',
      examples('berthctl create secret generic db --from-literal user=admin --from-literal password=s3cret'),
    )
    .option('--from-literal <key=value...>', 'a key and its value (repeatable)')
    .option('--dry-run', 'validate on the server; store nothing')
    .action(
      simple('secret', (name, o) => ({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name },
        type: 'Opaque',
        stringData: literals(o.fromLiteral),
      })),
    );
}

/** key=value pairs as a map; a pair without '=' is a usage error. */
export function literals(pairs: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new UsageError(`--from-literal "${p}" must be key=value`);
    out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}
