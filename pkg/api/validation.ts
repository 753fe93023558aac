// Validation of raw manifests against the schema in schema/, and of updates against the
// stored object. Pure: no I/O, never throws, reports every problem it finds (up to a cap, so
// a hostile manifest cannot make the error list itself the problem).

import type { FieldError } from './errors.js';
import type { KindInfo } from './kinds.js';
import { KINDS, kindOf } from './kinds.js';
import {
  asArr,
  asObj,
  type Issues,
  invalid,
  kindSchema,
  own,
  type Schema,
  show,
  tryParseQuantity,
  unsupported,
} from './schema/index.js';
import type { ApiObject } from './types.js';

const MAX_ERRORS = 1000;

class Collector implements Issues {
  readonly errors: FieldError[] = [];
  add(path: string, message: string): void {
    if (this.errors.length < MAX_ERRORS) this.errors.push({ path, message });
    else if (this.errors.length === MAX_ERRORS)
      this.errors.push({ path: '', message: 'Too many errors; stopped' });
  }
  /** add, for `return out.fail(...)` where a check stops at its first problem. */
  fail(path: string, message: string): false {
    this.add(path, message);
    return false;
  }
}

/** A key as a path segment: plain names dotted, anything else quoted; long ones shortened. */
function segment(key: string): string {
  const short = key.length > 64 ? `${key.slice(0, 60)}...` : key;
  return /^[A-Za-z_$][\w$-]*$/.test(key) ? short : JSON.stringify(short);
}
const join = (path: string, key: string) => {
  const seg = segment(key);
  if (seg.startsWith('"')) return `${path}[${seg}]`;
  return path ? `${path}.${seg}` : seg;
};
/** A map entry's path: `metadata.labels[app]`, quoted when the key is not printable. */
const entry = (path: string, key: string) => {
  const printable = /^[\x20-\x7e]*$/.test(key) && key.length <= 64 && !/[[\]]/.test(key);
  return `${path}[${printable && key !== '' ? key : JSON.stringify(key.length > 64 ? `${key.slice(0, 60)}...` : key)}]`;
};

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

function rangeMessage(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `must be between ${min} and ${max}, inclusive`;
  if (min !== undefined) return `must be greater than or equal to ${min}`;
  return `must be less than or equal to ${max}`;
}

/** Checks `v` (present, possibly null) against `s`, then runs the node's own rule. */
function walk(s: Schema, v: unknown, path: string, out: Collector): boolean {
  switch (s.type) {
    case 'string': {
      if (typeof v !== 'string') return out.fail(path, 'must be a string');
      if (s.enum && !s.enum.includes(v)) return out.fail(path, unsupported(v, s.enum));
      const bad = s.format?.(v);
      if (bad) return out.fail(path, invalid(v, bad));
      break;
    }
    case 'integer': {
      if (typeof v !== 'number' || !Number.isInteger(v)) return out.fail(path, 'must be an integer');
      if (!Number.isSafeInteger(v) || (!s.int64 && (v < INT32_MIN || v > INT32_MAX)))
        return out.fail(path, invalid(v, s.int64 ? 'must be a 64-bit integer' : 'must be a 32-bit integer'));
      if ((s.min !== undefined && v < s.min) || (s.max !== undefined && v > s.max))
        return out.fail(path, invalid(v, rangeMessage(s.min, s.max)));
      break;
    }
    case 'boolean':
      if (typeof v !== 'boolean') return out.fail(path, 'must be a boolean');
      break;
    case 'quantity':
      if (typeof v !== 'string' && typeof v !== 'number')
        return out.fail(path, 'must be a quantity (a string like "500m" or "1Gi", or a number)');
      if (tryParseQuantity(v) === undefined)
        return out.fail(
          path,
          invalid(
            v,
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
          ),
        );
      break;
    case 'int-or-string':
      if (typeof v === 'number' && !Number.isSafeInteger(v)) return out.fail(path, 'must be an integer');
      if (typeof v !== 'number' && typeof v !== 'string')
        return out.fail(path, 'must be an integer or a string');
      break;
    case 'object': {
      const o = asObj(v);
      if (!o) return out.fail(path, 'must be an object');
      for (const key of Object.keys(o)) {
        const field = Object.hasOwn(s.fields, key) ? s.fields[key] : undefined;
        const value = o[key];
        if (field === undefined) out.add(join(path, key), 'unknown field');
        else if (value !== null && value !== undefined) walk(field, value, join(path, key), out);
      }
      for (const [key, field] of Object.entries(s.fields)) {
        if (field.required && own(o, key) == null) out.add(join(path, key), 'Required value');
      }
      break;
    }
    case 'array': {
      const a = asArr(v);
      if (!a) return out.fail(path, 'must be a list');
      for (let i = 0; i < a.length && out.errors.length <= MAX_ERRORS; i++)
        walk(s.items, a[i], `${path}[${i}]`, out);
      break;
    }
    case 'map': {
      const o = asObj(v);
      if (!o) return out.fail(path, 'must be an object (a map)');
      for (const key of Object.keys(o)) {
        const bad = s.key?.(key);
        if (bad) out.add(entry(path, key), invalid(key, bad));
        walk(s.values, o[key], entry(path, key), out);
      }
      break;
    }
  }
  if (s.check) runCheck(s.check as (v: unknown, p: string, o: Issues) => void, v, path, out);
  return true;
}

function runCheck(
  check: (v: unknown, p: string, o: Issues) => void,
  v: unknown,
  path: string,
  out: Collector,
): void {
  try {
    check(v, path, out);
  } catch (err) {
    out.add(
      path,
      `Internal error: validation rule failed: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

/** generateName is a prefix: a trailing '-' is fine (Kubernetes masks it before checking). */
const maskTrailingDash = (s: string) => (s.length > 1 && s.endsWith('-') ? `${s.slice(0, -1)}a` : s);

function checkKind(o: Record<string, unknown>, out: Collector): KindInfo | undefined {
  const apiVersion = own(o, 'apiVersion');
  const kind = own(o, 'kind');
  for (const [field, value] of [['apiVersion', apiVersion] as const, ['kind', kind] as const]) {
    if (value == null || value === '') out.add(field, 'Required value');
    else if (typeof value !== 'string') out.add(field, 'must be a string');
  }
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || !apiVersion || !kind) return undefined;
  const info = kindOf(apiVersion, kind);
  if (info) return info;
  const sameKind = KINDS.filter((k) => k.kind === kind);
  const inVersion = KINDS.filter((k) => k.apiVersion === apiVersion);
  const nearly = KINDS.find((k) => k.kind.toLowerCase() === kind.toLowerCase());
  const hint = nearly && !sameKind.length ? ` (did you mean "${nearly.kind}"?)` : '';
  if (sameKind.length > 0) {
    const served = sameKind.map((k) => `"${k.apiVersion}"`).join(', ');
    out.add(
      'apiVersion',
      `Unsupported value: ${show(apiVersion)}: ${kind} is served as apiVersion ${served}`,
    );
  } else if (inVersion.length > 0) {
    const served = inVersion.map((k) => k.kind).join(', ');
    out.add('kind', `Unsupported value: ${show(kind)}: Berth serves ${served} in ${apiVersion}${hint}`);
  } else {
    out.add('apiVersion', unsupported(apiVersion, [...new Set(KINDS.map((k) => k.apiVersion))]));
    out.add(
      'kind',
      `Unsupported value: ${show(kind)}: Berth serves ${KINDS.map((k) => k.kind).join(', ')}${hint}`,
    );
  }
  return undefined;
}

function validateInto(raw: unknown, out: Collector): boolean {
  const o = asObj(raw);
  if (!o) return out.fail('', 'must be an object: a manifest with apiVersion, kind and metadata');
  const info = checkKind(o, out);
  if (!info) return false;
  const entry = kindSchema(info);
  if (!entry) return out.fail('kind', `Internal error: no schema for ${info.kind}`);
  walk(entry.root, o, '', out);
  const rawMeta = own(o, 'metadata');
  if (rawMeta == null) return out.fail('metadata', 'Required value');
  const meta = asObj(rawMeta);
  if (!meta) return false;
  const name = own(meta, 'name');
  const generateName = own(meta, 'generateName');
  if ((name == null || name === '') && (generateName == null || generateName === ''))
    out.add('metadata.name', 'Required value: name or generateName is required');
  if (typeof name === 'string' && name !== '') {
    const bad = entry.nameFormat(name);
    if (bad) out.add('metadata.name', invalid(name, bad));
  }
  if (typeof generateName === 'string' && generateName !== '') {
    const bad = entry.nameFormat(maskTrailingDash(generateName));
    if (bad) out.add('metadata.generateName', invalid(generateName, bad));
  }
  return out.errors.length === 0;
}

/**
 * Everything wrong with a raw decoded manifest: apiVersion/kind, metadata rules, unknown
 * fields, wrong types, required fields, enum values and cross-field rules, each with its
 * path. Never throws, whatever the input.
 */
export function validateObject(raw: unknown): FieldError[] {
  const out = new Collector();
  const deep = tooDeep(raw);
  if (deep !== undefined) {
    out.add(deep, `nested more than ${MAX_DEPTH} levels deep; no Berth object is`);
    return out.errors;
  }
  try {
    validateInto(raw, out);
  } catch (err) {
    out.add('', `Internal error: validation failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  return out.errors;
}

/** No kind's schema goes near this deep; deeper input is refused before any recursion. */
export const MAX_DEPTH = 64;

/** The path of the first value deeper than MAX_DEPTH, found without recursion; undefined if none. */
function tooDeep(root: unknown): string | undefined {
  const stack: { v: unknown; path: string; depth: number }[] = [{ v: root, path: '', depth: 0 }];
  while (stack.length > 0) {
    const { v, path, depth } = stack.pop() as { v: unknown; path: string; depth: number };
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= MAX_DEPTH) return path || '(top level)';
    if (Array.isArray(v))
      for (let i = 0; i < v.length; i++) stack.push({ v: v[i], path: `${path}[${i}]`, depth: depth + 1 });
    else
      for (const k of Object.keys(v))
        stack.push({ v: (v as Record<string, unknown>)[k], path: join(path, k), depth: depth + 1 });
  }
  return undefined;
}

/** Structural equality of JSON values; a missing key equals an undefined one. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => jsonEqual(x, b[i]));
  }
  const oa = asObj(a);
  const ob = asObj(b);
  if (!oa || !ob) return false;
  const keys = new Set([...Object.keys(oa), ...Object.keys(ob)]);
  for (const k of keys) if (!jsonEqual(own(oa, k), own(ob, k))) return false;
  return true;
}

const immutable = (v: unknown) => invalid(v, 'field is immutable');

const POD_UPDATE_MESSAGE =
  'Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations) or `spec.nodeName` (only when unset)';

function validatePodUpdate(
  next: Record<string, unknown>,
  cur: Record<string, unknown>,
  out: Collector,
): void {
  const n: Record<string, unknown> = structuredClone(next);
  for (const list of ['containers', 'initContainers']) {
    const na = asArr(n[list]);
    const ca = asArr(own(cur, list));
    if (!na || !ca || na.length !== ca.length) continue;
    na.forEach((c, i) => {
      const nc = asObj(c);
      const cc = asObj(ca[i]);
      if (nc && cc) nc.image = own(cc, 'image');
    });
  }
  const nd = n.activeDeadlineSeconds;
  const cd = own(cur, 'activeDeadlineSeconds');
  if (nd == null && cd != null) out.add('spec.activeDeadlineSeconds', 'Forbidden: may not be unset once set');
  else if (typeof nd === 'number' && typeof cd === 'number' && nd > cd)
    out.add(
      'spec.activeDeadlineSeconds',
      invalid(nd, `must be less than or equal to the previous value (${cd})`),
    );
  n.activeDeadlineSeconds = cd;
  const curTolerations = asArr(own(cur, 'tolerations')) ?? [];
  const nextTolerations = asArr(n.tolerations) ?? [];
  if (curTolerations.every((t) => nextTolerations.some((x) => jsonEqual(x, t))))
    n.tolerations = own(cur, 'tolerations');
  // Berth binds pods with an update that sets nodeName (Kubernetes uses a binding subresource).
  if (own(cur, 'nodeName') == null) n.nodeName = undefined;
  const changed = [...new Set([...Object.keys(n), ...Object.keys(cur)])].filter(
    (k) => !jsonEqual(own(n, k), own(cur, k)),
  );
  if (changed.length > 0)
    out.add('spec', `${POD_UPDATE_MESSAGE}; changed: ${changed.map((k) => `spec.${k}`).join(', ')}`);
}

const CLAIM_SPEC_MESSAGE =
  'Forbidden: spec is immutable after creation except resources.requests for bound claims';

/**
 * A claim's spec is fixed once created, but for its storage request (which may grow, never
 * shrink) and volumeName, which the binder sets once (Kubernetes' rules).
 */
function validateClaimUpdate(ns: Record<string, unknown>, cs: Record<string, unknown>, out: Collector): void {
  const storage = (spec: Record<string, unknown>) =>
    own(asObj(own(asObj(own(spec, 'resources')), 'requests')), 'storage');
  const n = structuredClone(ns);
  const c = structuredClone(cs);
  for (const spec of [n, c]) {
    const requests = asObj(own(asObj(spec.resources), 'requests'));
    if (requests) delete requests.storage;
  }
  if (own(cs, 'volumeName') == null || own(cs, 'volumeName') === '') {
    delete n.volumeName;
    delete c.volumeName;
  }
  if (!jsonEqual(n, c)) out.add('spec', CLAIM_SPEC_MESSAGE);
  const was = tryParseQuantity(storage(cs));
  const now = tryParseQuantity(storage(ns));
  if (was !== undefined && now !== undefined && now < was)
    out.add(
      'spec.resources.requests.storage',
      `Forbidden: field can not be less than previous value (${String(storage(cs))})`,
    );
}

/** A volume's source, mode and node affinity are fixed; its claimRef, size and policy may change. */
function validateVolumeUpdate(
  ns: Record<string, unknown>,
  cs: Record<string, unknown>,
  out: Collector,
): void {
  for (const field of ['local', 'hostPath'])
    if (!jsonEqual(own(ns, field), own(cs, field)))
      out.add(`spec.${field}`, 'Forbidden: the volume source is immutable after creation');
  if (!jsonEqual(own(ns, 'volumeMode'), own(cs, 'volumeMode')))
    out.add('spec.volumeMode', immutable(own(ns, 'volumeMode')));
  if (own(cs, 'nodeAffinity') != null && !jsonEqual(own(ns, 'nodeAffinity'), own(cs, 'nodeAffinity')))
    out.add('spec.nodeAffinity', immutable(own(ns, 'nodeAffinity')));
}

function validateStorageClassUpdate(next: ApiObject, current: ApiObject, out: Collector): void {
  for (const field of ['parameters', 'provisioner', 'reclaimPolicy'])
    if (!jsonEqual(next[field], current[field]))
      out.add(field, `Forbidden: updates to ${field} are forbidden.`);
  if (!jsonEqual(next.volumeBindingMode, current.volumeBindingMode))
    out.add('volumeBindingMode', immutable(next.volumeBindingMode));
}

function validateUpdateInto(next: ApiObject, current: ApiObject, out: Collector): void {
  if (next.kind !== current.kind || next.apiVersion !== current.apiVersion)
    out.add('kind', immutable(`${next.apiVersion}/${next.kind}`));
  if ((next.metadata?.name ?? '') !== (current.metadata?.name ?? ''))
    out.add('metadata.name', immutable(next.metadata?.name));
  if ((next.metadata?.namespace ?? '') !== (current.metadata?.namespace ?? ''))
    out.add('metadata.namespace', immutable(next.metadata?.namespace));
  const ns = asObj(next.spec) ?? {};
  const cs = asObj(current.spec) ?? {};
  switch (current.kind) {
    case 'Deployment':
    case 'ReplicaSet':
      if (!jsonEqual(own(ns, 'selector'), own(cs, 'selector')))
        out.add('spec.selector', immutable(own(ns, 'selector')));
      break;
    case 'Pod':
      validatePodUpdate(ns, cs, out);
      break;
    case 'PersistentVolumeClaim':
      validateClaimUpdate(ns, cs, out);
      break;
    case 'PersistentVolume':
      validateVolumeUpdate(ns, cs, out);
      break;
    case 'StorageClass':
      validateStorageClassUpdate(next, current, out);
      break;
    case 'Service': {
      const ip = own(cs, 'clusterIP');
      const nextIP = own(ns, 'clusterIP');
      // An empty clusterIP on update means "keep it": the server carries the stored one over.
      if (
        typeof ip === 'string' &&
        ip !== '' &&
        nextIP != null &&
        nextIP !== '' &&
        nextIP !== ip &&
        own(ns, 'type') !== 'ExternalName'
      )
        out.add('spec.clusterIP', immutable(nextIP));
      break;
    }
    case 'ConfigMap':
    case 'Secret': {
      if (current.kind === 'Secret' && (next.type ?? 'Opaque') !== (current.type ?? 'Opaque'))
        out.add('type', immutable(next.type));
      if (current.immutable !== true) break;
      if (next.immutable !== true)
        out.add('immutable', 'Forbidden: field is immutable when `immutable` is set');
      for (const field of current.kind === 'Secret' ? ['data'] : ['data', 'binaryData']) {
        if (!jsonEqual(next[field], current[field]))
          out.add(field, 'Forbidden: field is immutable when `immutable` is set');
      }
      break;
    }
  }
}

/**
 * Rules comparing an update with the stored object (both valid, both defaulted): selectors,
 * most of a pod's spec, a Service's clusterIP, immutable ConfigMaps and Secrets, Secret type,
 * claims' specs (but growth), volumes' sources, StorageClasses' provisioner and parameters.
 */
export function validateUpdate(next: ApiObject, current: ApiObject): FieldError[] {
  const out = new Collector();
  try {
    validateUpdateInto(next, current, out);
  } catch (err) {
    out.add('', `Internal error: validation failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  return out.errors;
}
