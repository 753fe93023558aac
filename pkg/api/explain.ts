// `berthctl explain`: kubectl explain's layout, read from the same schema validation uses.

import type { KindInfo } from './kinds.js';
import { type ObjectSchema, type Schema, schemaOf } from './schema/index.js';

/** The type name kubectl shows: `string`, `integer`, `[]Container`, `map[string]string`... */
export function typeName(s: Schema): string {
  switch (s.type) {
    case 'string':
      return s.typeName ?? 'string';
    case 'integer':
    case 'boolean':
      return s.type;
    case 'quantity':
      return 'Quantity';
    case 'int-or-string':
      return 'IntOrString';
    case 'object':
      return s.name;
    case 'array':
      return `[]${typeName(s.items)}`;
    case 'map':
      return `map[string]${typeName(s.values)}`;
  }
}

/** The object whose fields a node lists: itself, or an array's item type. */
function fieldsOf(s: Schema): ObjectSchema | undefined {
  if (s.type === 'object') return s;
  if (s.type === 'array') return fieldsOf(s.items);
  return undefined;
}

function wrap(text: string, indent: number, width = 80): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && indent + line.length + 1 + word.length > width) {
      lines.push(' '.repeat(indent) + line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(' '.repeat(indent) + line);
  return lines;
}

function describe(s: Schema): string {
  const d = 'default' in s ? s.default : undefined;
  if (d === undefined || /default/i.test(s.description)) return s.description;
  return `${s.description} Defaults to ${JSON.stringify(d)}.`;
}

function enumLine(s: Schema): string[] {
  const values =
    s.type === 'string' ? s.enum : s.type === 'array' && s.items.type === 'string' ? s.items.enum : undefined;
  return values ? [`  enum: ${values.map((v) => (v === '' ? '""' : v)).join(', ')}`] : [];
}

const matchesKind = (k: KindInfo, seg: string) =>
  [k.kind.toLowerCase(), k.singular, k.resource, ...k.shortNames].includes(seg.toLowerCase());

/**
 * kubectl explain: the description of a kind, or of the field at `fieldPath` (segments after
 * the kind; a leading segment naming the kind itself is skipped), with its fields, their types,
 * a description each and `<required>` marks. Throws when a segment is not a field.
 */
export function explain(kind: KindInfo, fieldPath: string[]): string {
  const root = schemaOf(kind);
  let path = fieldPath.filter((s) => s !== '');
  const first = path[0];
  if (first !== undefined && !Object.hasOwn(root.fields, first) && matchesKind(kind, first))
    path = path.slice(1);
  let node: Schema = root;
  const walked: string[] = [];
  for (const seg of path) {
    const o = fieldsOf(node);
    const next = o && Object.hasOwn(o.fields, seg) ? o.fields[seg] : undefined;
    if (next === undefined)
      throw new Error(`field "${seg}" does not exist in ${[kind.singular, ...walked].join('.')}`);
    node = next;
    walked.push(seg);
  }
  const out: string[] = [];
  if (kind.group) out.push(`GROUP:      ${kind.group}`);
  out.push(`KIND:       ${kind.kind}`, `VERSION:    ${kind.version}`, '');
  const last = walked[walked.length - 1];
  if (last !== undefined) {
    out.push(
      `FIELD: ${last} <${typeName(node)}>${node.required ? ' <required>' : ''}`,
      ...enumLine(node),
      '',
    );
  }
  out.push('DESCRIPTION:', ...wrap(describe(node), 4), '');
  const o = fieldsOf(node);
  if (o) {
    out.push('FIELDS:');
    for (const name of Object.keys(o.fields).sort()) {
      const f = o.fields[name] as Schema;
      out.push(
        `  ${name}\t<${typeName(f)}>${f.required ? ' <required>' : ''}`,
        ...enumLine(f),
        ...wrap(describe(f), 4),
        '',
      );
    }
  }
  return `${out.join('\n').trimEnd()}\n`;
}
