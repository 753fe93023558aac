// Kubernetes' defaults, read from the schema: constant `default`s on fields, and `defaults`
// hooks on objects for the ones that depend on other fields (imagePullPolicy, targetPort,
// rollingUpdate, Secret stringData). Runs on a copy; the input is never changed.

import { kindOf } from './kinds.js';
import { asArr, asObj, kindSchema, type Schema } from './schema/index.js';
import type { ApiObject } from './types.js';

function fill(s: Schema, v: unknown): void {
  if (s.type === 'array') {
    for (const item of asArr(v) ?? []) fill(s.items, item);
    return;
  }
  if (s.type === 'map') {
    for (const item of Object.values(asObj(v) ?? {})) fill(s.values, item);
    return;
  }
  if (s.type !== 'object') return;
  const o = asObj(v);
  if (!o) return;
  for (const [key, field] of Object.entries(s.fields)) {
    const d = 'default' in field ? field.default : undefined;
    if (d !== undefined && (!Object.hasOwn(o, key) || o[key] == null)) o[key] = d;
  }
  s.defaults?.(o);
  for (const [key, field] of Object.entries(s.fields)) {
    if (Object.hasOwn(o, key)) fill(field, o[key]);
  }
}

/** A new object with Kubernetes' defaults filled in. The input must be valid. */
export function applyDefaults(obj: ApiObject): ApiObject {
  const copy = structuredClone(obj);
  const info = kindOf(copy.apiVersion, copy.kind);
  const entry = info && kindSchema(info);
  if (entry) fill(entry.root, copy);
  return copy;
}
