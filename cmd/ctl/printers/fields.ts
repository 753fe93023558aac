// Safe reads of kind-specific JSON (objects are untyped past metadata) and the small
// formatters kubectl shares between `get` and `describe`.

export type Obj = Record<string, unknown>;

export function obj(v: unknown): Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {};
}

export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function objs(v: unknown): Obj[] {
  return arr(v).map(obj);
}

export function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
}

export function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

export function bool(v: unknown): boolean {
  return v === true;
}

/** Reads a dotted path ('spec.template.spec') from an object. */
export function at(v: unknown, path: string): unknown {
  let cur: unknown = v;
  for (const k of path.split('.')) cur = obj(cur)[k];
  return cur;
}

export function orNone(s: string): string {
  return s === '' ? '<none>' : s;
}

/** labels.FormatLabels: 'a=1,b=2' sorted by key, '<none>' when empty. */
export function formatLabels(labels: unknown): string {
  const m = obj(labels);
  return orNone(
    Object.keys(m)
      .sort()
      .map((k) => `${k}=${str(m[k])}`)
      .join(','),
  );
}

/** metav1.FormatLabelSelector: matchLabels then matchExpressions, '<none>' when empty. */
export function formatSelector(selector: unknown): string {
  const sel = obj(selector);
  const parts = Object.keys(obj(sel.matchLabels))
    .sort()
    .map((k) => `${k}=${str(obj(sel.matchLabels)[k])}`);
  for (const e of objs(sel.matchExpressions)) {
    const key = str(e.key);
    const values = arr(e.values).map(str).sort().join(',');
    switch (str(e.operator)) {
      case 'In':
        parts.push(`${key} in (${values})`);
        break;
      case 'NotIn':
        parts.push(`${key} notin (${values})`);
        break;
      case 'Exists':
        parts.push(key);
        break;
      case 'DoesNotExist':
        parts.push(`!${key}`);
        break;
    }
  }
  return orNone(parts.join(','));
}

/** 'ReplicaSet/web-7d9c' for the controlling owner, '' when none. */
export function controllerOf(meta: {
  ownerReferences?: { kind: string; name: string; controller?: boolean }[];
}): string {
  const ref = meta.ownerReferences?.find((r) => r.controller === true);
  return ref ? `${ref.kind}/${ref.name}` : '';
}

/** Go's %v of a JSON scalar or slice ('[a b]'), as kubectl prints untyped values. */
export function goValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(goValue).join(' ')}]`;
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'object')
    return `map[${Object.keys(v as Obj)
      .sort()
      .map((k) => `${k}:${goValue((v as Obj)[k])}`)
      .join(' ')}]`;
  return String(v);
}
