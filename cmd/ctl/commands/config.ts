// berthctl config: named contexts (a cluster's endpoints and a default namespace) in
// ~/.berth/config, like kubeconfig's contexts.
import type { Command } from 'commander';
import YAML from 'yaml';
import { type Context, type CtlConfig, contextOf, loadConfig, saveConfig } from '../config-file.js';
import type { CtlContext, CtlIO } from '../context.js';
import { CtlError, UsageError } from '../errors.js';
import { renderRows } from '../printers/index.js';
import { action, examples } from './run.js';

/** Namespace names are DNS-1123 labels. */
function checkNamespace(ns: string): string {
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns) || ns.length > 63) {
    throw new UsageError(
      `"${ns}" is not a valid namespace name (lower-case letters, digits and '-', at most 63)`,
    );
  }
  return ns;
}

/** As kubectl config view shows it: certificates as DATA+OMITTED, the key as REDACTED. */
function redacted(c: CtlConfig): CtlConfig {
  return {
    ...c,
    contexts: c.contexts.map((x) => {
      if (x['client-key-data'] === undefined) return x;
      return {
        ...x,
        'certificate-authority-data': 'DATA+OMITTED',
        'client-certificate-data': 'DATA+OMITTED',
        'client-key-data': 'REDACTED',
      };
    }),
  };
}

async function edit(
  ctx: CtlContext,
  fn: (config: Awaited<ReturnType<typeof loadConfig>>) => string,
): Promise<void> {
  const path = ctx.options.configPath;
  const config = await loadConfig(path);
  const said = fn(config);
  await saveConfig(path, config);
  ctx.println(said);
}

export function addConfigCommands(program: Command, io: CtlIO): void {
  const config = program
    .command('config')
    .description(
      'Contexts in the config file (~/.berth/config, --config or $BERTH_CONFIG): endpoints and namespace',
    )
    .addHelpText(
      'after',
      examples(
        'berthctl config set-context prod --endpoints 10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379 --namespace shop',
        'berthctl config use-context prod',
        'berthctl config set-namespace staging',
        'berthctl config view',
      ),
    );

  config
    .command('view')
    .description('Print the config file (certificate data omitted, keys redacted, unless --raw)')
    .option('--raw', 'print certificates and private keys as they are')
    .addHelpText(
      'after',
      examples('berthctl config view', 'berthctl config view -o json', 'berthctl config view --raw'),
    )
    .action(
      action(io, async (ctx, o: { raw?: boolean }) => {
        const loaded = await loadConfig(ctx.options.configPath);
        const c = o.raw ? loaded : redacted(loaded);
        if (ctx.json) ctx.printJson(c);
        else ctx.io.stdout(YAML.stringify(c));
      }),
    );

  config
    .command('get-contexts')
    .description('List the contexts; * marks the current one')
    .addHelpText('after', examples('berthctl config get-contexts'))
    .action(
      action(io, async (ctx) => {
        const c = await loadConfig(ctx.options.configPath);
        const rows = c.contexts.map((x) => [
          x.name === c['current-context'] ? '*' : '',
          x.name,
          x.endpoints.join(','),
          x.namespace ?? '',
        ]);
        ctx.println(renderRows([['CURRENT', 'NAME', 'ENDPOINTS', 'NAMESPACE'], ...rows]));
      }),
    );

  config
    .command('current-context')
    .description('Print the current context')
    .addHelpText('after', examples('berthctl config current-context'))
    .action(
      action(io, async (ctx) => {
        const c = await loadConfig(ctx.options.configPath);
        if (!c['current-context'])
          throw new CtlError('no current context is set (berthctl config use-context NAME)');
        ctx.println(c['current-context']);
      }),
    );

  config
    .command('use-context <name>')
    .description('Make a context the current one')
    .addHelpText('after', examples('berthctl config use-context prod'))
    .action(
      action(io, (ctx, _o, name: string) =>
        edit(ctx, (c) => {
          contextOf(c, name);
          c['current-context'] = name;
          return `Switched to context "${name}".`;
        }),
      ),
    );

  config
    .command('set-context <name>')
    .description(
      'Create or change a context: --endpoints (comma-separated host:port of its members), -n/--namespace (its default namespace)',
    )
    .option('--current', 'also make it the current context')
    .addHelpText(
      'after',
      examples(
        'berthctl config set-context prod --endpoints 10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379 -n shop --current',
        'berthctl config set-context prod -n staging',
      ),
    )
    .action(
      action(io, (ctx, flags: { current?: boolean }, name: string) =>
        edit(ctx, (c) => {
          // --endpoints and --namespace are the global flags; here they set the context's.
          const o = {
            ...flags,
            endpoints: ctx.options.endpointsFromFlag ? ctx.options.endpoints : undefined,
            namespace: ctx.options.namespaceExplicit ? checkNamespace(ctx.options.namespace) : undefined,
          };
          let found = c.contexts.find((x) => x.name === name);
          const created = !found;
          if (!found) {
            if (!o.endpoints) throw new UsageError(`context "${name}" is new: give its --endpoints`);
            found = { name, endpoints: o.endpoints } as Context;
            c.contexts.push(found);
          }
          if (o.endpoints) found.endpoints = o.endpoints;
          if (o.namespace) found.namespace = o.namespace;
          if (o.current) c['current-context'] = name;
          return `Context "${name}" ${created ? 'created' : 'modified'}.`;
        }),
      ),
    );

  config
    .command('set-namespace <namespace>')
    .description("Set the current context's default namespace")
    .addHelpText('after', examples('berthctl config set-namespace shop'))
    .action(
      action(io, (ctx, _o, ns: string) =>
        edit(ctx, (c) => {
          const cur = contextOf(c);
          if (!cur)
            throw new CtlError(
              'no current context to set a namespace on (berthctl config set-context NAME --endpoints ... --current)',
            );
          cur.namespace = checkNamespace(ns);
          return `Context "${cur.name}" now uses namespace "${ns}".`;
        }),
      ),
    );

  config
    .command('delete-context <name>')
    .description('Remove a context')
    .addHelpText('after', examples('berthctl config delete-context old'))
    .action(
      action(io, (ctx, _o, name: string) =>
        edit(ctx, (c) => {
          contextOf(c, name);
          c.contexts = c.contexts.filter((x) => x.name !== name);
          if (c['current-context'] === name) delete c['current-context'];
          return `Deleted context "${name}".`;
        }),
      ),
    );
}
