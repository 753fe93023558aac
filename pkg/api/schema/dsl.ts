// A small declarative schema language: each kind is described once, and validation.ts,
// defaults.ts and explain.ts all walk the same description. Nodes are plain data plus a few
// hooks: `check` for rules a type cannot express (cross-field rules), `defaults` to fill in
// values that depend on other fields.

/** Where a hook reports a problem; paths are absolute (`spec.containers[0].image`). */
export interface Issues {
  add(path: string, message: string): void;
}

/**
 * A rule run after the node's own type check passed. The value's children may still be of
 * the wrong type (they are reported separately), so hooks read them through the `as*` helpers.
 */
export type Check = (value: never, path: string, out: Issues) => void;

/** A mutable JSON object, as defaults hooks see it (the input was already copied). */
export type Mutable = Record<string, unknown>;

interface Base {
  description: string;
  required?: boolean;
  check?: Check;
}

export interface StringSchema extends Base {
  type: 'string';
  enum?: readonly string[];
  /** Shown by explain and filled in by applyDefaults when the field is absent. */
  default?: string;
  /** Returns a problem with the value (without the `Invalid value: "x": ` prefix), or undefined. */
  format?: (s: string) => string | undefined;
  /** The type name explain shows (`string` unless set). */
  typeName?: string;
}

export interface IntSchema extends Base {
  type: 'integer';
  min?: number;
  max?: number;
  /** int64 fields accept any safe integer; the rest are int32, as in Kubernetes. */
  int64?: boolean;
  default?: number;
}

export interface BoolSchema extends Base {
  type: 'boolean';
  default?: boolean;
}

/** A Kubernetes resource.Quantity: '500m', '1', '128Mi', '1e3', or a JSON number. */
export interface QuantitySchema extends Base {
  type: 'quantity';
}

/** intstr.IntOrString: a JSON integer or a string (what the string means is up to `check`). */
export interface IntOrStringSchema extends Base {
  type: 'int-or-string';
  default?: number | string;
}

export interface ObjectSchema extends Base {
  type: 'object';
  /** The Kubernetes type name explain shows (`DeploymentStrategy`). */
  name: string;
  fields: Readonly<Record<string, Schema>>;
  /** Fills defaults that depend on other fields; runs after constant defaults, before children. */
  defaults?: (obj: Mutable) => void;
}

export interface ArraySchema extends Base {
  type: 'array';
  items: Schema;
}

export interface MapSchema extends Base {
  type: 'map';
  values: Schema;
  /** Returns a problem with a key, or undefined. */
  key?: (k: string) => string | undefined;
}

export type Schema =
  | StringSchema
  | IntSchema
  | BoolSchema
  | QuantitySchema
  | IntOrStringSchema
  | ObjectSchema
  | ArraySchema
  | MapSchema;

type Opts<S> = Partial<Omit<S, 'type' | 'description'>>;

export const str = (description: string, opts: Opts<StringSchema> = {}): StringSchema => ({
  type: 'string',
  description,
  ...opts,
});

export const enumOf = (
  values: readonly string[],
  description: string,
  opts: Opts<StringSchema> = {},
): StringSchema => ({ type: 'string', description, enum: values, ...opts });

export const int = (description: string, opts: Opts<IntSchema> = {}): IntSchema => ({
  type: 'integer',
  description,
  ...opts,
});

export const bool = (description: string, opts: Opts<BoolSchema> = {}): BoolSchema => ({
  type: 'boolean',
  description,
  ...opts,
});

export const quantity = (description: string, opts: Opts<QuantitySchema> = {}): QuantitySchema => ({
  type: 'quantity',
  description,
  ...opts,
});

export const intOrString = (description: string, opts: Opts<IntOrStringSchema> = {}): IntOrStringSchema => ({
  type: 'int-or-string',
  description,
  ...opts,
});

export const obj = (
  name: string,
  description: string,
  fields: Record<string, Schema>,
  opts: Opts<ObjectSchema> = {},
): ObjectSchema => ({ type: 'object', name, description, fields, ...opts });

export const arr = (items: Schema, description: string, opts: Opts<ArraySchema> = {}): ArraySchema => ({
  type: 'array',
  items,
  description,
  ...opts,
});

export const map = (values: Schema, description: string, opts: Opts<MapSchema> = {}): MapSchema => ({
  type: 'map',
  values,
  description,
  ...opts,
});

/** A shared type used as one field: the field's own description, and `required` if it is. */
export function ref<S extends Schema>(schema: S, description: string, opts: { required?: boolean } = {}): S {
  return { ...schema, description, required: opts.required ?? false };
}

/** The same schema, marked required. */
export const required = <S extends Schema>(schema: S): S => ({ ...schema, required: true });

// Readers for hooks: the value if it has the type, else undefined.

export function asObj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

export function asArr(v: unknown): unknown[] | undefined {
  return Array.isArray(v) ? v : undefined;
}

export function asStr(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function asInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
}

/** An own property of a parsed JSON object (never the prototype's). */
export function own(o: Record<string, unknown> | undefined, key: string): unknown {
  return o !== undefined && Object.hasOwn(o, key) ? o[key] : undefined;
}

/** A value as Kubernetes quotes it in `Invalid value: ...` messages. */
export function show(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    // Too deep to print (a stack overflow): say what it is instead.
    s = Array.isArray(v) ? '[...]' : typeof v === 'object' && v !== null ? '{...}' : typeof v;
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

export const invalid = (v: unknown, why: string) => `Invalid value: ${show(v)}: ${why}`;
export const unsupported = (v: unknown, supported: readonly string[]) =>
  `Unsupported value: ${show(v)}: supported values: ${supported.map((s) => `"${s}"`).join(', ')}`;
