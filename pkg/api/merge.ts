// The server side of `berthctl apply`: kubectl's three-way merge, computed on the server.
// Three inputs: `last` (the manifest applied last time, kept in the LAST_APPLIED annotation),
// `applied` (the new manifest) and `live` (the stored object). The user owns what they
// applied; everything else in live (status, uid, defaults, fields set by controllers or by
// other writers) is left alone:
//
//   applied has the field          -> applied's value (objects merged key by key, recursively)
//   applied has it as null         -> removed
//   last has it, applied does not  -> removed (the user deleted it from the manifest)
//   only live has it               -> kept
//
// Lists replace as a whole, except the keyed lists of MERGE_KEYS, merged item by item like
// Kubernetes' strategic merge patch. Pure: inputs are never mutated, output is fresh plain
// objects, and '__proto__' and similar keys are copied as own data properties.

import type { ApiObject, JsonObject, JsonValue } from './types.js';

export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** Where a path from the object's root passes through a list item, MERGE_KEYS see '[]'. */
const ITEM = '[]';

/**
 * A keyed list: `path` is matched against the whole path from the object's root. A segment
 * '**' matches any number of segments, 'a|b' matches either name, '[]' a list item. `kinds`,
 * when given, limits the rule to objects of those kinds.
 */
export interface MergeKeyRule {
  path: readonly string[];
  key: string;
  kinds?: readonly string[];
}

const CONTAINERS = 'containers|initContainers';

/** The lists merged by key (Kubernetes' patchMergeKey); every other list is replaced whole. */
export const MERGE_KEYS: readonly MergeKeyRule[] = [
  { path: ['**', CONTAINERS], key: 'name' },
  { path: ['**', 'volumes'], key: 'name' },
  { path: ['**', 'imagePullSecrets'], key: 'name' },
  { path: ['**', CONTAINERS, ITEM, 'env'], key: 'name' },
  { path: ['**', CONTAINERS, ITEM, 'ports'], key: 'containerPort' },
  { path: ['**', CONTAINERS, ITEM, 'volumeMounts'], key: 'mountPath' },
  { path: ['spec', 'ports'], key: 'port', kinds: ['Service'] },
];

function pathMatches(pattern: readonly string[], path: readonly string[]): boolean {
  const [head, ...rest] = pattern;
  if (head === undefined) return path.length === 0;
  if (head === '**') {
    for (let i = 0; i <= path.length; i++) if (pathMatches(rest, path.slice(i))) return true;
    return false;
  }
  const seg = path[0];
  return seg !== undefined && head.split('|').includes(seg) && pathMatches(rest, path.slice(1));
}

function mergeKeyFor(path: readonly string[], kind: string | undefined): string | undefined {
  for (const rule of MERGE_KEYS) {
    if (rule.kinds !== undefined && (kind === undefined || !rule.kinds.includes(kind))) continue;
    if (pathMatches(rule.path, path)) return rule.key;
  }
  return undefined;
}

// --- helpers that never touch prototypes

type Obj = { [key: string]: JsonValue };

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An own property's value, or undefined (never one inherited from Object.prototype). */
function own(o: unknown, key: string): JsonValue | undefined {
  return isObj(o) && Object.hasOwn(o, key) ? o[key] : undefined;
}

/** Sets an own data property, so a key named '__proto__' is data, not a prototype change. */
function setOwn(o: Obj, key: string, value: JsonValue): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A deep copy; undefined-valued keys are dropped, as JSON would drop them. */
function clone(v: JsonValue): JsonValue {
  if (Array.isArray(v)) return v.map(clone);
  if (isObj(v)) {
    const out: Obj = {};
    for (const k of Object.keys(v)) {
      const x = v[k];
      if (x !== undefined) setOwn(out, k, clone(x));
    }
    return out;
  }
  return v;
}

// --- the merge

interface Ctx {
  kind: string | undefined;
}

function mergeValue(
  ctx: Ctx,
  last: JsonValue | undefined,
  applied: JsonValue,
  live: JsonValue | undefined,
  path: readonly string[],
): JsonValue {
  if (isObj(applied)) return mergeObject(ctx, isObj(last) ? last : undefined, applied, live, path);
  if (Array.isArray(applied)) {
    const key = mergeKeyFor(path, ctx.kind);
    if (key !== undefined && Array.isArray(live)) {
      const merged = mergeKeyedList(ctx, Array.isArray(last) ? last : [], applied, live, key, path);
      if (merged !== undefined) return merged;
    }
    // Replaced whole; null fields inside its objects still mean "absent".
    return applied.map((item) =>
      isObj(item) ? mergeObject(ctx, undefined, item, undefined, [...path, ITEM]) : clone(item),
    );
  }
  return applied;
}

function mergeObject(
  ctx: Ctx,
  last: Obj | undefined,
  applied: Obj,
  live: JsonValue | undefined,
  path: readonly string[],
): Obj {
  const out: Obj = {};
  // Live first keeps its key order; a live value of another type is simply replaced.
  if (isObj(live)) {
    for (const k of Object.keys(live)) {
      const v = live[k];
      if (v !== undefined) setOwn(out, k, clone(v));
    }
  }
  for (const k of Object.keys(applied)) {
    const v = applied[k];
    if (v === undefined) continue;
    if (v === null) {
      delete out[k];
      continue;
    }
    setOwn(out, k, mergeValue(ctx, own(last, k), v, own(live, k), [...path, k]));
  }
  if (last !== undefined) {
    for (const k of Object.keys(last)) {
      if (own(applied, k) === undefined) delete out[k];
    }
  }
  return out;
}

/** Items by their merge key; undefined when an item has no usable key or keys repeat. */
function byKey(items: readonly JsonValue[], key: string): Map<string, Obj> | undefined {
  const map = new Map<string, Obj>();
  for (const item of items) {
    const k = itemKey(item, key);
    if (k === undefined || map.has(k) || !isObj(item)) return undefined;
    map.set(k, item);
  }
  return map;
}

function itemKey(item: JsonValue, key: string): string | undefined {
  const v = own(item, key);
  // Typed, so port 80 and port '80' stay apart.
  return typeof v === 'string' || typeof v === 'number' ? `${typeof v}:${v}` : undefined;
}

/**
 * Item by item: applied items merge into the live item with the same key (with the last
 * applied item of that key as their `last`), in applied's order; then live items applied
 * never, in live's order. Live items last applied but now gone are dropped. Undefined when
 * applied or live is not a well-formed keyed list: the caller replaces the list instead.
 */
function mergeKeyedList(
  ctx: Ctx,
  last: readonly JsonValue[],
  applied: readonly JsonValue[],
  live: readonly JsonValue[],
  key: string,
  path: readonly string[],
): JsonValue[] | undefined {
  const appliedMap = byKey(applied, key);
  const liveMap = byKey(live, key);
  if (appliedMap === undefined || liveMap === undefined) return undefined;
  // A malformed last list only means fewer removals.
  const lastMap = new Map<string, Obj>();
  for (const item of last) {
    const k = itemKey(item, key);
    if (k !== undefined && isObj(item)) lastMap.set(k, item);
  }
  const out: JsonValue[] = [];
  for (const [k, item] of appliedMap) {
    out.push(mergeObject(ctx, lastMap.get(k), item, liveMap.get(k), [...path, ITEM]));
  }
  for (const [k, item] of liveMap) {
    if (!appliedMap.has(k) && !lastMap.has(k)) out.push(clone(item));
  }
  return out;
}

/** `applied` without the LAST_APPLIED annotation (an emptied annotations map is dropped, like kubectl). */
function withoutLastApplied(o: JsonObject): JsonObject {
  const copy = clone(o) as Obj;
  const meta = own(copy, 'metadata');
  const annotations = own(meta, 'annotations');
  if (isObj(meta) && isObj(annotations) && Object.hasOwn(annotations, LAST_APPLIED)) {
    delete annotations[LAST_APPLIED];
    if (Object.keys(annotations).length === 0) delete meta.annotations;
  }
  return copy;
}

/**
 * The object to store when `applied` (the new manifest) is applied over `live` (the stored
 * object), given `lastApplied` (the manifest applied last time, undefined on a first apply or
 * when live was made by create). See the table at the top of this file; keyed lists follow
 * MERGE_KEYS. A value of another type in applied replaces live's. The result's
 * metadata.annotations[LAST_APPLIED] is the JSON of `applied` without that annotation.
 * Never mutates its inputs.
 */
export function threeWayMerge(
  lastApplied: JsonObject | undefined,
  applied: JsonObject,
  live: JsonObject,
): JsonObject {
  const manifest = withoutLastApplied(applied);
  const last = lastApplied === undefined ? undefined : withoutLastApplied(lastApplied);
  // Like kubectl, the annotation is part of the modified manifest, so the annotations map
  // is always merged key by key and others' annotations survive.
  const modified = clone(manifest) as Obj;
  let meta = own(modified, 'metadata');
  if (meta === undefined || meta === null) {
    meta = {};
    setOwn(modified, 'metadata', meta);
  }
  if (isObj(meta)) {
    let annotations = own(meta, 'annotations');
    if (annotations === undefined || annotations === null) {
      annotations = {};
      setOwn(meta, 'annotations', annotations);
    }
    // A non-object here is left for validation to reject.
    if (isObj(annotations)) setOwn(annotations, LAST_APPLIED, JSON.stringify(manifest));
  }
  const kind = own(modified, 'kind') ?? own(live, 'kind');
  const ctx: Ctx = { kind: typeof kind === 'string' ? kind : undefined };
  return mergeObject(ctx, last, modified, live, []);
}

/** The last-applied manifest recorded on an object, or undefined (absent, unparseable or not an object). */
export function lastAppliedOf(obj: ApiObject): JsonObject | undefined {
  const annotations = obj.metadata?.annotations;
  if (!isObj(annotations) || !Object.hasOwn(annotations, LAST_APPLIED)) return undefined;
  const text = annotations[LAST_APPLIED];
  if (typeof text !== 'string') return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return isObj(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Deep equality of JSON values, key order ignored (list order is not); undefined-valued keys count as absent. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (isObj(a) && isObj(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    if (ka.length !== kb.length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}
