// Output shared by the object commands: what a write did, and object lists in -o formats.
import { type KindInfo, kindOf, qualifiedSingular } from '../../../pkg/api/kinds.js';
import type { ApiObject } from '../../../pkg/api/types.js';
import type { CtlContext } from '../context.js';
import { type PrintFormat, printObjects, toYaml } from '../printers/index.js';

export function kindOfObject(obj: ApiObject): KindInfo | undefined {
  return kindOf(obj.apiVersion, obj.kind);
}

/** `deployment.apps/web created` (or the object in -o json|yaml, or its name with -o name). */
export function printWritten(ctx: CtlContext, object: ApiObject, result: string, dryRun: boolean): void {
  const kind = kindOfObject(object);
  const ref = kind
    ? `${qualifiedSingular(kind)}/${object.metadata.name}`
    : `${object.kind}/${object.metadata.name}`;
  const format = ctx.options.output;
  if (format === 'json') ctx.println(JSON.stringify(object, null, 4));
  else if (format === 'yaml') ctx.io.stdout(`${toYaml(object)}---\n`);
  else if (format === 'name') ctx.println(ref);
  else ctx.println(`${ref} ${result}${dryRun ? ' (server dry run)' : ''}`);
}

/** `deployment.apps "web" deleted` — kubectl's wording for deletes. */
export function deletedLine(kind: KindInfo, name: string, dryRun: boolean): string {
  return `${qualifiedSingular(kind)} "${name}" deleted${dryRun ? ' (server dry run)' : ''}`;
}

export function formatOf(ctx: CtlContext): PrintFormat {
  const o = ctx.options.output;
  return o === 'table' ? 'table' : o;
}

/**
 * Objects of one or several kinds as `get` prints them. In -o json|yaml one named object
 * prints as itself; a listing (`get pods`, even with one match) or several kinds as a List.
 */
export function printMixed(
  ctx: CtlContext,
  groups: { kind: KindInfo; objects: ApiObject[] }[],
  listing: boolean,
): void {
  const format = formatOf(ctx);
  const line = (s: string) => (s.endsWith('\n') ? s : `${s}\n`);
  if (format === 'json' || format === 'yaml') {
    const all = groups.flatMap((g) => g.objects);
    const first = groups[0];
    if (groups.length === 1 && first) {
      ctx.io.stdout(line(printObjects(first.kind, all, format, { now: Date.now(), asList: listing })));
      return;
    }
    const list = { apiVersion: 'v1', items: all, kind: 'List', metadata: { resourceVersion: '' } };
    ctx.io.stdout(line(format === 'json' ? JSON.stringify(list, null, 4) : toYaml(list)));
    return;
  }
  const tables = groups
    .filter((g) => g.objects.length > 0)
    .map((g) =>
      printObjects(g.kind, g.objects, format, {
        now: Date.now(),
        withNamespace: ctx.allNamespaces,
        withKind: groups.length > 1,
        showLabels: ctx.showLabels,
      }),
    );
  ctx.io.stdout(tables.map(line).join(format === 'name' ? '' : '\n'));
}
