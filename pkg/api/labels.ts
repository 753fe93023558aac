// Kubernetes label selectors: kubectl's `-l` text, the metav1.LabelSelector object
// ({matchLabels, matchExpressions}) and Service-style plain maps, all turned into one
// Selector (a list of requirements, ANDed). Pure: no I/O, inputs never mutated.
//
// Which function gives which "empty":
//   parseSelector('')                 -> EVERYTHING (no requirements: matches every object)
//   selectorFromLabelSelector({})     -> EVERYTHING (Kubernetes: an empty LabelSelector selects all)
//   selectorFromLabelSelector(undefined or null) -> NOTHING
//   selectorFromSet(undefined, null or {}) -> NOTHING (a Service without a selector selects no pods)

import { badRequest } from './errors.js';

export type Operator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';

/**
 * One condition on one label. In/NotIn carry one or more values; Exists/DoesNotExist none;
 * Gt/Lt exactly one integer (compared with the label's value read as an integer).
 */
export type Requirement = { key: string; operator: Operator; values: string[] };

/** AND of requirements; empty selects everything. */
export type Selector = readonly Requirement[];

/** Selects every object, labelled or not. */
export const EVERYTHING: Selector = Object.freeze([]);

/**
 * Selects no object. An In requirement without values can never hold; no parser produces one
 * (In/NotIn need a value), so formatSelector can recognise it.
 */
export const NOTHING: Selector = Object.freeze([Object.freeze({ key: '', operator: 'In', values: [] })]);

// --- Kubernetes' label key/value rules (apimachinery validation.IsQualifiedName / IsValidLabelValue)

const NAME_RE = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS1123_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const NAME_RULE =
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/** Why `key` is not a valid label key ('prefix/name' or 'name'); empty when it is valid. */
export function labelKeyErrors(key: string): string[] {
  const parts = key.split('/');
  let name: string;
  const errors: string[] = [];
  if (parts.length === 1) {
    name = key;
  } else if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    name = parts[1] ?? '';
    if (prefix.length === 0) errors.push('prefix part must be non-empty');
    else if (prefix.length > 253) errors.push('prefix part must be no more than 253 characters');
    else if (!DNS1123_SUBDOMAIN_RE.test(prefix))
      errors.push(
        "prefix part must be a lowercase RFC 1123 subdomain: lowercase alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character",
      );
  } else {
    return [
      "a qualified name must consist of alphanumeric characters, '-', '_' or '.', with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ];
  }
  if (name.length === 0) errors.push('name part must be non-empty');
  else if (name.length > 63) errors.push('name part must be no more than 63 characters');
  else if (!NAME_RE.test(name)) errors.push(`name part ${NAME_RULE}`);
  return errors;
}

/** Why `value` is not a valid label value; empty when it is valid (the empty string is valid). */
export function labelValueErrors(value: string): string[] {
  if (value.length === 0) return [];
  if (value.length > 63) return ['must be no more than 63 characters'];
  if (!NAME_RE.test(value)) return [`a valid label ${NAME_RULE}`];
  return [];
}

// --- kubectl -l text

type Token = { kind: 'id' | 'op' | 'end'; text: string };

const SPECIAL = '=!(),<>';
const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r';

// Like apimachinery's lexer: identifiers run until whitespace or a special character, so
// values such as 'v1.2-rc_3' need no quoting; validation of keys and values comes after.
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] ?? '';
    if (isSpace(c)) {
      i++;
    } else if (c === '=' || c === '!') {
      const two = text[i + 1] === '=';
      tokens.push({ kind: 'op', text: two ? `${c}=` : c });
      i += two ? 2 : 1;
    } else if (SPECIAL.includes(c)) {
      tokens.push({ kind: 'op', text: c });
      i++;
    } else {
      let j = i;
      while (j < text.length && !isSpace(text[j] ?? '') && !SPECIAL.includes(text[j] ?? '')) j++;
      tokens.push({ kind: 'id', text: text.slice(i, j) });
      i = j;
    }
  }
  tokens.push({ kind: 'end', text: '' });
  return tokens;
}

const describe = (t: Token) => (t.kind === 'end' ? 'end of input' : `"${t.text}"`);
const INTEGER_RE = /^[+-]?\d+$/;

/**
 * Parses kubectl's `-l` syntax: 'app=web', 'app==web', 'tier!=db', 'env in (prod, staging)',
 * 'env notin (dev)', 'release' (exists), '!release' (does not exist), 'x>3', 'x<5';
 * comma-separated, ANDed; whitespace between tokens tolerated. '' is EVERYTHING.
 * As in Kubernetes, 'app=' asks for the label with an empty value.
 * Throws ApiError BadRequest naming the offending part.
 */
export function parseSelector(text: string): Selector {
  const tokens = tokenize(text);
  const fail = (reason: string): never => {
    throw badRequest(`invalid label selector "${text}": ${reason}`);
  };
  let pos = 0;
  const peek = (): Token => tokens[pos] ?? { kind: 'end', text: '' };
  const next = (): Token => {
    const t = peek();
    if (t.kind !== 'end') pos++;
    return t;
  };
  const checkKey = (key: string) => {
    const errors = labelKeyErrors(key);
    if (errors.length > 0) fail(`invalid label key "${key}": ${errors.join('; ')}`);
  };
  const checkValue = (key: string, value: string) => {
    const errors = labelValueErrors(value);
    if (errors.length > 0) fail(`invalid label value "${value}" for key "${key}": ${errors.join('; ')}`);
  };
  const expectKey = (after: string): string => {
    const t = next();
    if (t.kind !== 'id') return fail(`expected a label key ${after}, found ${describe(t)}`);
    checkKey(t.text);
    return t.text;
  };

  const requirements: Requirement[] = [];
  if (peek().kind === 'end') return EVERYTHING;
  for (;;) {
    const where = requirements.length === 0 ? 'at the start' : 'after ","';
    let req: Requirement;
    let shown: string;
    if (peek().text === '!' && peek().kind === 'op') {
      next();
      const key = expectKey('after "!"');
      req = { key, operator: 'DoesNotExist', values: [] };
      shown = `!${key}`;
    } else {
      const key = expectKey(where);
      const op = peek();
      if (op.kind === 'end' || (op.kind === 'op' && op.text === ',')) {
        req = { key, operator: 'Exists', values: [] };
        shown = key;
      } else if (op.kind === 'op' && (op.text === '=' || op.text === '==' || op.text === '!=')) {
        next();
        const v = peek();
        // An empty value is allowed, as in Kubernetes: 'app=' selects app="".
        const value = v.kind === 'id' ? next().text : '';
        checkValue(key, value);
        req = { key, operator: op.text === '!=' ? 'NotIn' : 'In', values: [value] };
        shown = `${key}${op.text}${value}`;
      } else if (op.kind === 'op' && (op.text === '>' || op.text === '<')) {
        next();
        const v = next();
        if (v.kind !== 'id') fail(`expected an integer after "${key}${op.text}", found ${describe(v)}`);
        if (!INTEGER_RE.test(v.text))
          fail(`value "${v.text}" in "${key}${op.text}${v.text}" must be an integer`);
        req = { key, operator: op.text === '>' ? 'Gt' : 'Lt', values: [v.text] };
        shown = `${key}${op.text}${v.text}`;
      } else if (op.kind === 'id' && (op.text === 'in' || op.text === 'notin')) {
        next();
        const head = `${key} ${op.text}`;
        const open = next();
        if (open.text !== '(' || open.kind !== 'op')
          fail(`expected "(" after "${head}", found ${describe(open)}`);
        const values: string[] = [];
        for (;;) {
          const v = next();
          if (v.kind !== 'id') fail(`expected a value in "${head} (...)", found ${describe(v)}`);
          checkValue(key, v.text);
          values.push(v.text);
          const sep = next();
          if (sep.kind === 'op' && sep.text === ')') break;
          if (sep.kind !== 'op' || sep.text !== ',')
            fail(`expected "," or ")" in "${head} (...)", found ${describe(sep)}`);
        }
        req = { key, operator: op.text === 'in' ? 'In' : 'NotIn', values };
        shown = `${head} (${values.join(',')})`;
      } else {
        return fail(
          `expected one of =, ==, !=, in, notin, >, < or "," after "${key}", found ${describe(op)}`,
        );
      }
    }
    requirements.push(req);
    const sep = next();
    if (sep.kind === 'end') break;
    if (sep.kind !== 'op' || sep.text !== ',') fail(`expected "," after "${shown}", found ${describe(sep)}`);
  }
  return requirements;
}

// --- objects

/** The metav1.LabelSelector shape, as it appears in Deployment and ReplicaSet specs. */
export type LabelSelector = {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
};

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Kubernetes' metav1.LabelSelector as requirements (matchLabels first, then matchExpressions).
 * undefined/null is NOTHING and {} is EVERYTHING, as metav1.LabelSelectorAsSelector does.
 * Operators are In, NotIn, Exists and DoesNotExist (Gt/Lt are not allowed here, as in
 * Kubernetes). An invalid selector throws ApiError BadRequest.
 */
export function selectorFromLabelSelector(ls: LabelSelector | null | undefined): Selector {
  if (ls === undefined || ls === null) return NOTHING;
  const fail = (path: string, reason: string): never => {
    throw badRequest(`invalid label selector: ${path}: ${reason}`);
  };
  if (!isRecord(ls)) return fail('selector', 'must be an object');
  const out: Requirement[] = [];
  const { matchLabels, matchExpressions } = ls as Record<string, unknown>;
  if (matchLabels !== undefined && matchLabels !== null) {
    if (!isRecord(matchLabels)) fail('matchLabels', 'must be a map of strings');
    for (const [key, value] of Object.entries(matchLabels as Record<string, unknown>)) {
      const keyErrors = labelKeyErrors(key);
      if (keyErrors.length > 0) fail(`matchLabels[${key}]`, `invalid label key: ${keyErrors.join('; ')}`);
      if (typeof value !== 'string') return fail(`matchLabels[${key}]`, 'value must be a string');
      const valueErrors = labelValueErrors(value);
      if (valueErrors.length > 0)
        fail(`matchLabels[${key}]`, `invalid value "${value}": ${valueErrors.join('; ')}`);
      out.push({ key, operator: 'In', values: [value] });
    }
  }
  if (matchExpressions !== undefined && matchExpressions !== null) {
    if (!Array.isArray(matchExpressions)) fail('matchExpressions', 'must be a list');
    for (const [i, e] of (matchExpressions as unknown[]).entries()) {
      const at = `matchExpressions[${i}]`;
      if (!isRecord(e)) return fail(at, 'must be an object');
      const { key, operator, values } = e;
      if (typeof key !== 'string') return fail(`${at}.key`, 'must be a string');
      const keyErrors = labelKeyErrors(key);
      if (keyErrors.length > 0) fail(`${at}.key`, `invalid label key "${key}": ${keyErrors.join('; ')}`);
      const vals = values === undefined || values === null ? [] : values;
      if (!Array.isArray(vals) || vals.some((v) => typeof v !== 'string'))
        return fail(`${at}.values`, 'must be a list of strings');
      const strings = vals as string[];
      switch (operator) {
        case 'In':
        case 'NotIn':
          if (strings.length === 0) fail(`${at}.values`, `must be specified when operator is ${operator}`);
          break;
        case 'Exists':
        case 'DoesNotExist':
          if (strings.length > 0) fail(`${at}.values`, `may not be specified when operator is ${operator}`);
          break;
        default:
          return fail(
            `${at}.operator`,
            `"${String(operator)}" is not a valid selector operator (In, NotIn, Exists, DoesNotExist)`,
          );
      }
      for (const v of strings) {
        const errors = labelValueErrors(v);
        if (errors.length > 0) fail(`${at}.values`, `invalid value "${v}": ${errors.join('; ')}`);
      }
      out.push({ key, operator, values: [...strings] });
    }
  }
  return out;
}

/**
 * A Service-style selector (a plain map, every pair must match). undefined, null and {} are
 * NOTHING: Kubernetes manages no endpoints for a Service without a selector, and an empty
 * map is not stored apart from a missing one. Keys and values are not validated here
 * (validation of the object does that).
 */
export function selectorFromSet(set: Record<string, string> | null | undefined): Selector {
  if (!isRecord(set)) return NOTHING;
  const keys = Object.keys(set);
  if (keys.length === 0) return NOTHING;
  return keys.map((key) => ({ key, operator: 'In' as const, values: [String(set[key])] }));
}

// --- matching and formatting

/** Whether `labels` satisfies every requirement. `!=` and notin also match objects without the key. */
export function matches(selector: Selector, labels: Record<string, string> | undefined): boolean {
  const get = (key: string): string | undefined =>
    labels !== undefined && labels !== null && Object.hasOwn(labels, key) ? labels[key] : undefined;
  for (const r of selector) {
    const v = get(r.key);
    switch (r.operator) {
      case 'In':
        if (v === undefined || !r.values.includes(v)) return false;
        break;
      case 'NotIn':
        if (v !== undefined && r.values.includes(v)) return false;
        break;
      case 'Exists':
        if (v === undefined) return false;
        break;
      case 'DoesNotExist':
        if (v !== undefined) return false;
        break;
      case 'Gt':
      case 'Lt': {
        // Like Kubernetes: the label must be present and an integer, else no match.
        const bound = r.values[0];
        if (v === undefined || bound === undefined || !INTEGER_RE.test(v) || !INTEGER_RE.test(bound))
          return false;
        const have = BigInt(v);
        const want = BigInt(bound);
        if (r.operator === 'Gt' ? !(have > want) : !(have < want)) return false;
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

/**
 * Back to kubectl's text: 'app=web,tier!=db,env in (prod,staging),release,!canary,x>3'.
 * EVERYTHING is '' (parses back to EVERYTHING); NOTHING is '<none>', as kubectl describe
 * shows a Service without a selector.
 */
export function formatSelector(selector: Selector): string {
  if (selector.some((r) => (r.operator === 'In' || r.operator === 'NotIn') && r.values.length === 0)) {
    return '<none>';
  }
  return selector
    .map((r) => {
      switch (r.operator) {
        case 'In':
          return r.values.length === 1 ? `${r.key}=${r.values[0]}` : `${r.key} in (${r.values.join(',')})`;
        case 'NotIn':
          return r.values.length === 1
            ? `${r.key}!=${r.values[0]}`
            : `${r.key} notin (${r.values.join(',')})`;
        case 'Exists':
          return r.key;
        case 'DoesNotExist':
          return `!${r.key}`;
        case 'Gt':
          return `${r.key}>${r.values[0] ?? ''}`;
        case 'Lt':
          return `${r.key}<${r.values[0] ?? ''}`;
        default:
          return '';
      }
    })
    .join(',');
}
