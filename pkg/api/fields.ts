// Field selectors, as kubectl's `--field-selector`: 'metadata.name=web,status.phase!=Running'.
// Each kind supports a fixed set of fields (Kubernetes' "field labels"), so List and Watch can
// filter on them; asking for any other field is a BadRequest that lists the supported ones.

import { badRequest } from './errors.js';
import type { KindInfo } from './kinds.js';
import type { ApiObject } from './types.js';

/** One `field=value` or `field!=value` term; a selector is their AND. */
export type FieldRequirement = { field: string; operator: '=' | '!='; value: string };

/** Fields every kind supports. */
const COMMON_FIELDS: readonly string[] = ['metadata.name', 'metadata.namespace'];

/** Fields supported per kind, beyond COMMON_FIELDS (Kubernetes' per-kind field label conversions). */
const KIND_FIELDS: Readonly<Record<string, readonly string[]>> = {
  Pod: ['spec.nodeName', 'spec.restartPolicy', 'status.phase', 'status.podIP'],
  Event: [
    'involvedObject.kind',
    'involvedObject.name',
    'involvedObject.namespace',
    'involvedObject.uid',
    'reason',
    'type',
    'source.component',
  ],
  Namespace: ['status.phase'],
  Node: ['spec.unschedulable'],
  Secret: ['type'],
};

/**
 * What a missing field reads as, when it is not ''. Kubernetes reads these from Go fields
 * whose zero value is not the empty string: a Node without spec.unschedulable is 'false'.
 */
const MISSING_AS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  Node: { 'spec.unschedulable': 'false' },
};

/** The fields a kind can be selected by, common ones first. */
export function supportedFields(kind: KindInfo): readonly string[] {
  return [...COMMON_FIELDS, ...(Object.hasOwn(KIND_FIELDS, kind.kind) ? (KIND_FIELDS[kind.kind] ?? []) : [])];
}

// Split on commas not escaped with '\' (Kubernetes' fields.EscapeValue escapes '\', ',' and '=').
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === ',') {
      terms.push(text.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(text.slice(start));
  return terms;
}

/**
 * Parses `--field-selector` text for `kind`: comma-separated `field=value`, `field==value` or
 * `field!=value` terms, ANDed; blanks around field and value are ignored; '' selects all.
 * In a value, '\,', '\=' and '\\' stand for ',', '=' and '\'. An unsupported field or a
 * malformed term throws ApiError BadRequest.
 */
export function parseFieldSelector(text: string, kind: KindInfo): FieldRequirement[] {
  const supported = supportedFields(kind);
  const fail = (reason: string): never => {
    throw badRequest(`invalid field selector "${text}": ${reason}`);
  };
  const reqs: FieldRequirement[] = [];
  for (const term of splitTerms(text)) {
    if (term.trim() === '') continue;
    // The first operator from the left wins, trying '!=' and '==' before '=' at each place.
    let found: { at: number; op: string } | undefined;
    for (let i = 0; i < term.length && found === undefined; i++) {
      if (term[i] === '\\') {
        i++;
        continue;
      }
      for (const op of ['!=', '==', '=']) {
        if (term.startsWith(op, i)) {
          found = { at: i, op };
          break;
        }
      }
    }
    if (found === undefined) return fail(`"${term.trim()}" is not field=value, field==value or field!=value`);
    const field = term.slice(0, found.at).trim();
    const raw = term.slice(found.at + found.op.length).trim();
    if (field === '') fail(`"${term.trim()}" has no field name`);
    if (!supported.includes(field)) {
      throw badRequest(
        `field label not supported: ${field} (supported for ${kind.resource}: ${supported.join(', ')})`,
      );
    }
    let value = '';
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i] ?? '';
      if (c === '\\') {
        const n = raw[i + 1];
        if (n !== '\\' && n !== ',' && n !== '=') fail(`invalid escape sequence in "${term.trim()}"`);
        value += n;
        i++;
      } else if (c === '=' || c === ',') {
        fail(`unescaped "${c}" in the value of "${term.trim()}" (write \\${c})`);
      } else {
        value += c;
      }
    }
    reqs.push({ field, operator: found.op === '!=' ? '!=' : '=', value });
  }
  return reqs;
}

/** The value of a dotted field on `obj` as a string: missing is '' (or MISSING_AS), booleans 'true'/'false'. */
export function fieldValue(obj: ApiObject, field: string): string {
  let cur: unknown = obj;
  for (const part of field.split('.')) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur) || !Object.hasOwn(cur, part)) {
      cur = undefined;
      break;
    }
    cur = (cur as Record<string, unknown>)[part];
  }
  if (typeof cur === 'string') return cur;
  if (typeof cur === 'boolean' || typeof cur === 'number') return String(cur);
  const kindDefaults = Object.hasOwn(MISSING_AS, obj.kind) ? MISSING_AS[obj.kind] : undefined;
  return kindDefaults !== undefined && Object.hasOwn(kindDefaults, field) ? (kindDefaults[field] ?? '') : '';
}

/** Whether `obj` satisfies every requirement (an empty list matches everything). */
export function matchesFields(reqs: readonly FieldRequirement[], obj: ApiObject): boolean {
  return reqs.every((r) => (fieldValue(obj, r.field) === r.value) === (r.operator === '='));
}
