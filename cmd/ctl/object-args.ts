// How berthctl commands name objects, as kubectl does: `deploy/web svc/web`, `deploy web
// api`, `deploy,svc` (several kinds, every object), `pods` (every pod).

import { type KindInfo, KINDS, kindByName } from '../../pkg/api/kinds.js';
import { UsageError } from './errors.js';

export interface ObjectSelection {
  kind: KindInfo;
  /** Empty: every object of the kind (subject to -l, --field-selector). */
  names: string[];
}

export function kindArg(name: string): KindInfo {
  const kind = kindByName(name);
  if (!kind) {
    const known = KINDS.map((k) => k.resource).join(', ');
    throw new UsageError(`the server doesn't have a resource type "${name}" (known: ${known})`);
  }
  return kind;
}

/** Parse positional arguments into kinds and names; in order, one entry per kind. */
export function parseObjectArgs(args: string[]): ObjectSelection[] {
  if (args.length === 0)
    throw new UsageError('name a resource type, e.g. pods, or kind/name, e.g. deploy/web');
  const first = args[0] as string;
  if (args.every((a) => a.includes('/'))) {
    const out: ObjectSelection[] = [];
    for (const a of args) {
      const slash = a.indexOf('/');
      const kind = kindArg(a.slice(0, slash));
      const name = a.slice(slash + 1);
      if (name === '') throw new UsageError(`"${a}" names no object: use kind/name`);
      const entry = out.find((e) => e.kind === kind);
      if (entry) entry.names.push(name);
      else out.push({ kind, names: [name] });
    }
    return out;
  }
  if (args.some((a) => a.includes('/'))) {
    throw new UsageError(
      'there is no need to give a resource type as a separate argument when using kind/name',
    );
  }
  const kinds = first.split(',').map((k) => kindArg(k));
  const names = args.slice(1);
  if (kinds.length > 1 && names.length > 0)
    throw new UsageError('names go with one resource type, not several');
  return kinds.map((kind) => ({ kind, names: [...names] }));
}
