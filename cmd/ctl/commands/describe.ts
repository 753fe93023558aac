// berthctl describe: one object in full, with the objects it relates to (a Deployment's
// ReplicaSets, a Node's pods, a Service's endpoints) and the events about it.
import type { Command } from 'commander';
import type { KindInfo } from '../../../pkg/api/kinds.js';
import type { ApiObject } from '../../../pkg/api/types.js';
import type { ApiClient } from '../../../pkg/client/api-client.js';
import type { CtlContext, CtlIO } from '../context.js';
import { UsageError } from '../errors.js';
import { parseObjectArgs } from '../object-args.js';
import { describeObject } from '../printers/index.js';
import { listOptions } from './get.js';
import { action, examples } from './run.js';

/** Events about `obj` (by uid; events of cluster-scoped objects live in any namespace). */
export async function eventsFor(api: ApiClient, obj: ApiObject): Promise<ApiObject[]> {
  const uid = obj.metadata.uid;
  if (!uid) return [];
  const ns = obj.metadata.namespace;
  const list = await api.list('events', {
    namespace: ns,
    allNamespaces: ns === undefined,
    fieldSelector: `involvedObject.uid=${uid}`,
  });
  return list.items;
}

const owned = (obj: ApiObject, items: ApiObject[]) =>
  items.filter((i) => i.metadata.ownerReferences?.some((r) => r.uid === obj.metadata.uid));

/** Objects `describe` shows beside `obj`. */
async function relatedTo(api: ApiClient, kind: KindInfo, obj: ApiObject): Promise<ApiObject[]> {
  const ns = obj.metadata.namespace;
  switch (kind.kind) {
    case 'Deployment':
      return owned(obj, (await api.list('replicasets', { namespace: ns })).items);
    case 'ReplicaSet':
      return owned(obj, (await api.list('pods', { namespace: ns })).items);
    case 'Node':
      return (
        await api.list('pods', { allNamespaces: true, fieldSelector: `spec.nodeName=${obj.metadata.name}` })
      ).items;
    case 'Service': {
      try {
        return [await api.get('endpoints', ns, obj.metadata.name as string)];
      } catch {
        return [];
      }
    }
    case 'Ingress': {
      const [services, endpoints] = await Promise.all([
        api.list('services', { namespace: ns }),
        api.list('endpoints', { namespace: ns }),
      ]);
      return [...services.items, ...endpoints.items];
    }
    case 'PersistentVolumeClaim':
      return (await api.list('pods', { namespace: ns })).items;
    default:
      return [];
  }
}

async function describe(
  ctx: CtlContext,
  flags: { selector?: string; allNamespaces?: boolean },
  args: string[],
) {
  const selections = parseObjectArgs(args);
  const out: string[] = [];
  for (const { kind, names } of selections) {
    const objects =
      names.length > 0
        ? await Promise.all(names.map((n) => ctx.api.get(kind.resource, ctx.namespace, n)))
        : (await ctx.api.list(kind.resource, listOptions(ctx, kind, flags))).items;
    for (const obj of objects) {
      const [events, related] = await Promise.all([eventsFor(ctx.api, obj), relatedTo(ctx.api, kind, obj)]);
      out.push(describeObject(kind, obj, { events, related, now: Date.now() }));
    }
  }
  if (out.length === 0) throw new UsageError('no objects matched');
  ctx.io.stdout(out.map((t) => (t.endsWith('\n') ? t : `${t}\n`)).join('\n\n'));
}

export function addDescribeCommand(program: Command, io: CtlIO): void {
  program
    .command('describe')
    .description('Show an object in detail, with related objects and its events')
    .argument('<resource...>', 'kind name..., kind/name..., or a kind (every object)')
    .option('-l, --selector <query>', 'describe the objects with these labels')
    .option('-A, --all-namespaces', 'objects of every namespace')
    .addHelpText(
      'after',
      examples(
        'berthctl describe deploy web',
        'berthctl describe pod/web-7d4f-x2x9z',
        'berthctl describe nodes',
      ),
    )
    .action(
      action(io, (ctx, flags: { selector?: string; allNamespaces?: boolean }, args: string[]) =>
        describe(ctx, flags, args),
      ),
    );
}
