// berthctl's printers: how `get`, `get -w`, `get events` and `describe` show Kubernetes-shaped
// objects, matching kubectl's text. Pure functions: objects and `now` in, text out; the caller
// prints it (results carry no trailing newline) and says 'No resources found' for empty tables.
import { KINDS, type KindInfo } from '../../../pkg/api/kinds.js';
import type { ApiObject } from '../../../pkg/api/types.js';
import { sortEvents, tableHeader, tableRow } from './columns.js';
import { renderRows } from './tabwriter.js';
import { asList, objectName, toKubectlJson, toYaml } from './yaml.js';

export { formatAge, humanDuration, rfc1123z } from './age.js';
export { eventTarget, podSummary, sortEvents, tableHeader, tableRow } from './columns.js';
export { describeObject } from './describe.js';
export { createRowAligner, renderRows, tabwrite } from './tabwriter.js';
export { objectName, toKubectlJson, toYaml } from './yaml.js';

export type PrintFormat = 'table' | 'wide' | 'yaml' | 'json' | 'name';

export interface PrintOptions {
  /** Milliseconds since the epoch, for AGE columns. */
  now: number;
  /** Adds a leading NAMESPACE column (-A). */
  withNamespace?: boolean;
  /** Prefixes names with 'deployment.apps/', as kubectl does when several kinds are printed. */
  withKind?: boolean;
  /** Adds a trailing LABELS column (--show-labels). */
  showLabels?: boolean;
  /** yaml/json: wrap even a single object in a List (kubectl does for `get <kind>` without names). */
  asList?: boolean;
}

/** kubectl get output for objects of one kind; an empty table is '' (the caller says 'No resources found'). */
export function printObjects(
  kind: KindInfo,
  objects: ApiObject[],
  format: PrintFormat,
  opts: PrintOptions,
): string {
  const value = objects.length === 1 && !opts.asList ? objects[0] : asList(objects);
  switch (format) {
    case 'yaml':
      return toYaml(value).trimEnd();
    case 'json':
      return toKubectlJson(value);
    case 'name':
      return objects.map((o) => objectName(kind, o)).join('\n');
    case 'table':
    case 'wide': {
      if (objects.length === 0) return '';
      const wide = format === 'wide';
      const withNamespace = opts.withNamespace ?? false;
      const ordered = kind.kind === 'Event' ? sortEvents(objects) : objects;
      const rows = [
        tableHeader(kind, wide, withNamespace, opts.showLabels),
        ...ordered.map((o) =>
          tableRow(kind, o, wide, withNamespace, opts.now, {
            withKind: opts.withKind ?? false,
            showLabels: opts.showLabels ?? false,
          }),
        ),
      ];
      return renderRows(rows);
    }
  }
}

// Event is in the shared kinds table; the fallback only keeps this total.
const EVENT_KIND: KindInfo = KINDS.find((k) => k.kind === 'Event') ?? {
  kind: 'Event',
  group: '',
  version: 'v1',
  apiVersion: 'v1',
  resource: 'events',
  singular: 'event',
  shortNames: [],
  namespaced: true,
  statusSubresource: false,
};

/** kubectl get events: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE, oldest first. */
export function printEvents(events: ApiObject[], now: number, withNamespace: boolean): string {
  return printObjects(EVENT_KIND, events, 'table', { now, withNamespace });
}
