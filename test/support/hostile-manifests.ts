// Malformed and hostile manifests for the API fuzz tests (test/unit/api-fuzz*.test.ts).
//
// A case is a small recipe, not the manifest itself: a valid base manifest of one kind and
// the mutations to apply to it (or a random JSON value). fast-check prints and shrinks the
// recipe, so a counterexample stays readable even when it builds a 10 000-key object or a
// 2 000-deep nesting; build() turns the recipe into the value sent to the API.
//
// Mutations address a place in the manifest by an index taken modulo the number of places
// the manifest has at that moment, so any index fits any manifest and shrinks towards 0.

import fc from 'fast-check';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Container = Record<string, unknown> | unknown[];
type Path = (string | number)[];

/** The kinds Berth serves; every one has a valid base manifest below. */
export const BASE_KINDS = [
  'Deployment',
  'Pod',
  'Service',
  'ConfigMap',
  'Secret',
  'Namespace',
  'ReplicaSet',
  'Endpoints',
  'Lease',
  'Event',
  'Node',
  'Ingress',
] as const;
export type BaseKind = (typeof BASE_KINDS)[number];

const podSpec = () => ({
  restartPolicy: 'Always',
  containers: [
    {
      name: 'web',
      image: 'berth/busybox:test',
      args: ['--port=8080'],
      ports: [{ containerPort: 8080, protocol: 'TCP' }],
      env: [{ name: 'MODE', value: 'fuzz' }],
      resources: { limits: { cpu: '100m', memory: '64Mi' }, requests: { cpu: 0.05 } },
    },
  ],
});

/** A valid manifest of `kind`, named `fuzz-<kind>` (namespaced kinds in `default`). */
export function baseManifest(kind: BaseKind): Record<string, unknown> {
  const meta = (extra: Record<string, unknown> = {}) => ({
    name: `fuzz-${kind.toLowerCase()}`,
    labels: { app: 'fuzz', 'fuzz.berth.io/kind': kind.toLowerCase() },
    annotations: { 'fuzz.berth.io/note': 'a valid base manifest' },
    ...extra,
  });
  const workload = (extra: Record<string, unknown> = {}) => ({
    replicas: 2,
    selector: { matchLabels: { app: 'fuzz' } },
    template: { metadata: { labels: { app: 'fuzz' } }, spec: podSpec() },
    ...extra,
  });
  switch (kind) {
    case 'Deployment':
      return {
        apiVersion: 'apps/v1',
        kind,
        metadata: meta(),
        spec: workload({
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: '25%' } },
        }),
      };
    case 'ReplicaSet':
      return { apiVersion: 'apps/v1', kind, metadata: meta(), spec: workload() };
    case 'Pod':
      return { apiVersion: 'v1', kind, metadata: meta(), spec: podSpec() };
    case 'Service':
      return {
        apiVersion: 'v1',
        kind,
        metadata: meta(),
        spec: {
          type: 'ClusterIP',
          selector: { app: 'fuzz' },
          ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
        },
      };
    case 'ConfigMap':
      return { apiVersion: 'v1', kind, metadata: meta(), data: { mode: 'fuzz', 'app.conf': 'a=1\nb=2\n' } };
    case 'Secret':
      return { apiVersion: 'v1', kind, metadata: meta(), type: 'Opaque', data: { password: 'c2VjcmV0' } };
    case 'Namespace':
      return { apiVersion: 'v1', kind, metadata: meta(), spec: { finalizers: ['kubernetes'] } };
    case 'Endpoints':
      return {
        apiVersion: 'v1',
        kind,
        metadata: meta(),
        subsets: [
          { addresses: [{ ip: '10.0.0.7' }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] },
        ],
      };
    case 'Lease':
      return {
        apiVersion: 'coordination.k8s.io/v1',
        kind,
        metadata: meta(),
        spec: { holderIdentity: 'n1', leaseDurationSeconds: 15, leaseTransitions: 0 },
      };
    case 'Event':
      return {
        apiVersion: 'v1',
        kind,
        metadata: meta(),
        involvedObject: { kind: 'Pod', name: 'fuzz-pod', namespace: 'default' },
        reason: 'Scheduled',
        message: 'a fuzz event',
        type: 'Normal',
        count: 1,
      };
    case 'Node':
      return {
        apiVersion: 'v1',
        kind,
        metadata: meta(),
        spec: { unschedulable: false, taints: [{ key: 'dedicated', value: 'fuzz', effect: 'NoSchedule' }] },
        status: { capacity: { cpu: '2', memory: '1Gi', pods: '110' } },
      };
    case 'Ingress':
      return {
        apiVersion: 'networking.k8s.io/v1',
        kind,
        metadata: meta(),
        spec: {
          rules: [
            {
              host: 'fuzz.example.com',
              http: {
                paths: [
                  {
                    path: '/',
                    pathType: 'Prefix',
                    backend: { service: { name: 'fuzz', port: { number: 80 } } },
                  },
                ],
              },
            },
          ],
        },
      };
  }
}

// ---- recipes ----

/** A string: literal, or one character repeated (long strings stay short in the recipe). */
export type Text = string | { repeat: string; times: number };

export type Mutation =
  /** Remove the field (or list item) at a place. */
  | { op: 'delete'; at: number }
  /** Add a key to an object at some depth (own property, also for '__proto__'). */
  | { op: 'unknown'; at: number; key: Text; value: Json }
  /** Replace the value at a place with a value of another type. */
  | { op: 'retype'; at: number; value: Json }
  /** Replace a number (or, if there is none, any value) with an awkward number. */
  | { op: 'number'; at: number; value: number }
  /** Replace a string (or any value) with an awkward string. */
  | { op: 'string'; at: number; value: Text }
  /** A name-like field (metadata.name, namespace, label/annotation keys and values, data keys). */
  | { op: 'field'; field: NameField; value: Text }
  /** Nest objects (or lists) `depth` deep at a place. */
  | { op: 'deep'; at: number; depth: number; list: boolean }
  /** An object of `width` keys at a place (or at a map: labels, data). */
  | { op: 'wide'; at: number; width: number; keys: 'plain' | 'labels' }
  /** An empty object, list or string at a place. */
  | { op: 'empty'; at: number; value: '{}' | '[]' | "''" }
  /** Two containers (and two ports) with the same name, in a pod-bearing kind. */
  | { op: 'duplicateContainers' }
  /** A Secret data value that is not base64. */
  | { op: 'badBase64'; value: string }
  /** An apiVersion/kind pair (often one Berth does not serve, or not for this body). */
  | { op: 'kindPair'; apiVersion: Json; kind: Json };

export const NAME_FIELDS = [
  'metadata.name',
  'metadata.generateName',
  'metadata.namespace',
  'label key',
  'label value',
  'annotation key',
  'annotation value',
  'data key',
  'container name',
] as const;
export type NameField = (typeof NAME_FIELDS)[number];

export type HostileCase =
  | { type: 'mutated'; base: BaseKind; mutations: Mutation[] }
  /** Not a manifest at all: any JSON value. */
  | { type: 'random'; value: Json };

export const textOf = (t: Text): string => (typeof t === 'string' ? t : t.repeat.repeat(t.times));

/** Places deeper than this are not addressed (a 5 000-deep nesting is one place, not 5 000). */
const MAX_PLACE_DEPTH = 32;

/** Every place in `v` (root excluded), depth first; objects' own keys, lists' indices. */
function places(v: unknown, filter: (value: unknown) => boolean = () => true): Path[] {
  const out: Path[] = [];
  const visit = (x: unknown, path: Path) => {
    if (path.length > 0 && filter(x)) out.push(path);
    if (path.length >= MAX_PLACE_DEPTH) return;
    if (Array.isArray(x)) for (const [i, item] of x.entries()) visit(item, [...path, i]);
    else if (x !== null && typeof x === 'object')
      for (const k of Object.keys(x)) visit((x as Record<string, unknown>)[k], [...path, k]);
  };
  visit(v, []);
  return out;
}

function parentOf(root: unknown, path: Path): Container | undefined {
  let cur: unknown = root;
  for (const k of path.slice(0, -1)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return cur !== null && typeof cur === 'object' ? (cur as Container) : undefined;
}

/** Set an own, enumerable property, even '__proto__' (as JSON.parse makes it). */
function put(o: Container, key: string | number, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

function setAt(root: unknown, path: Path, value: unknown): void {
  const parent = parentOf(root, path);
  const key = path[path.length - 1];
  if (parent && key !== undefined) put(parent, key, value);
}

function deleteAt(root: unknown, path: Path): void {
  const parent = parentOf(root, path);
  const key = path[path.length - 1];
  if (!parent || key === undefined) return;
  if (Array.isArray(parent) && typeof key === 'number') parent.splice(key, 1);
  else delete (parent as Record<string | number, unknown>)[key];
}

const pick = <T>(list: T[], at: number): T | undefined => (list.length ? list[at % list.length] : undefined);
const isObject = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);

function nest(depth: number, list: boolean): unknown {
  let v: unknown = list ? ['bottom'] : { bottom: 'x' };
  for (let i = 0; i < depth; i++) v = list ? [v] : { nested: v };
  return v;
}

function wide(width: number, keys: 'plain' | 'labels'): Record<string, string> {
  const o: Record<string, string> = {};
  for (let i = 0; i < width; i++) o[keys === 'labels' ? `k${i}` : `unknown-${i}`] = `v${i}`;
  return o;
}

function containerLists(m: Record<string, unknown>): unknown[][] {
  const spec = m.spec as Record<string, unknown> | undefined;
  const template = (spec?.template as Record<string, unknown> | undefined)?.spec as
    | Record<string, unknown>
    | undefined;
  return [spec?.containers, template?.containers].filter(Array.isArray) as unknown[][];
}

function setNameField(m: Record<string, unknown>, field: NameField, value: string): void {
  const meta = isObject(m.metadata) ? (m.metadata as Record<string, unknown>) : {};
  m.metadata = meta;
  const mapOf = (key: string) => {
    const cur = isObject(meta[key]) ? (meta[key] as Record<string, unknown>) : {};
    meta[key] = cur;
    return cur;
  };
  switch (field) {
    case 'metadata.name':
      meta.name = value;
      break;
    case 'metadata.generateName':
      delete meta.name;
      meta.generateName = value;
      break;
    case 'metadata.namespace':
      meta.namespace = value;
      break;
    case 'label key':
      put(mapOf('labels'), value, 'v');
      break;
    case 'label value':
      mapOf('labels').app = value;
      break;
    case 'annotation key':
      put(mapOf('annotations'), value, 'v');
      break;
    case 'annotation value':
      mapOf('annotations')['fuzz.berth.io/note'] = value;
      break;
    case 'data key': {
      const data = isObject(m.data) ? (m.data as Record<string, unknown>) : {};
      m.data = data;
      put(data, value, m.kind === 'Secret' ? 'eA==' : 'x');
      break;
    }
    case 'container name':
      for (const list of containerLists(m))
        if (isObject(list[0])) (list[0] as Record<string, unknown>).name = value;
      break;
  }
}

function apply(m: Record<string, unknown>, mu: Mutation): void {
  switch (mu.op) {
    case 'delete': {
      const p = pick(places(m), mu.at);
      if (p) deleteAt(m, p);
      return;
    }
    case 'unknown': {
      const objects: Path[] = [[], ...places(m, isObject)];
      const p = pick(objects, mu.at) ?? [];
      const target = p.length ? (parentOf(m, [...p, 0]) as Record<string, unknown>) : m;
      put(target, textOf(mu.key), structuredClone(mu.value));
      return;
    }
    case 'retype': {
      const p = pick(places(m), mu.at);
      if (p) setAt(m, p, structuredClone(mu.value));
      return;
    }
    case 'number': {
      const p =
        pick(
          places(m, (v) => typeof v === 'number'),
          mu.at,
        ) ?? pick(places(m), mu.at);
      if (p) setAt(m, p, mu.value);
      return;
    }
    case 'string': {
      const p =
        pick(
          places(m, (v) => typeof v === 'string'),
          mu.at,
        ) ?? pick(places(m), mu.at);
      if (p) setAt(m, p, textOf(mu.value));
      return;
    }
    case 'field':
      setNameField(m, mu.field, textOf(mu.value));
      return;
    case 'deep': {
      const p = pick(places(m), mu.at);
      if (p) setAt(m, p, nest(mu.depth, mu.list));
      return;
    }
    case 'wide': {
      const p = pick(places(m, isObject), mu.at);
      if (p) setAt(m, p, wide(mu.width, mu.keys));
      return;
    }
    case 'empty': {
      const p = pick(places(m), mu.at);
      if (p) setAt(m, p, mu.value === '{}' ? {} : mu.value === '[]' ? [] : '');
      return;
    }
    case 'duplicateContainers':
      // A shallow copy: the first container may hold a nesting too deep to clone.
      for (const list of containerLists(m)) if (isObject(list[0])) list.push({ ...(list[0] as object) });
      return;
    case 'badBase64':
      m.data = { ...(isObject(m.data) ? (m.data as Record<string, unknown>) : {}), bad: mu.value };
      return;
    case 'kindPair':
      m.apiVersion = structuredClone(mu.apiVersion);
      m.kind = structuredClone(mu.kind);
      return;
  }
}

/** The value a case sends to the API. A fresh object on every call. */
export function build(c: HostileCase): unknown {
  if (c.type === 'random') return structuredClone(c.value);
  const m = baseManifest(c.base);
  for (const mu of c.mutations) apply(m, mu);
  return m;
}

// ---- arbitraries ----

const at = fc.nat({ max: 400 });

/** Strings that break names, keys and values: control characters, NUL, unicode, separators. */
export const awkwardText: fc.Arbitrary<Text> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '\0',
    'fuzz\0name',
    'a\nb',
    '\t',
    '\u0007',
    '\u202eevil',
    '\u200b',
    '\ud800',
    'é',
    'ǅ',
    '😀',
    'UPPER',
    '-a',
    'a-',
    '.',
    '..',
    '/',
    'a/b',
    '../../etc/passwd',
    'default/fuzz-pod',
    '%2F',
    'a b',
    '"',
    "'",
    '\\',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the text itself is the point
    '${x}',
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
  ),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.record({
    repeat: fc.constantFrom('a', 'A', '-', '.', 'é', '\0', '😀'),
    times: fc.constantFrom(63, 64, 253, 254, 255, 316, 1000, 70_000),
  }),
);

const awkwardNumber = fc.constantFrom(
  -1,
  -0,
  0.5,
  1.5,
  -2_147_483_649,
  2_147_483_648,
  2 ** 53 + 1,
  2 ** 53 + 2,
  -(2 ** 53) - 2,
  1e308,
  -1e308,
  5e-324,
  1e21,
  65_536,
  99_999_999,
);

/** Values of every JSON type, for type changes. */
const anyTypeValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, 1, -1, '', 'x', '1', 'true', [], {}, [null], [[]], { a: 1 }),
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
);

const unknownKey: fc.Arbitrary<Text> = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'toString',
    'valueOf',
    'hasOwnProperty',
    'prototype',
    'metadata',
    'status',
    '',
    'resourceVersion',
    'uid',
  ),
  fc.string({ maxLength: 12 }),
  awkwardText,
);

const apiVersions = [
  'v1',
  'apps/v1',
  'coordination.k8s.io/v1',
  'v2',
  'apps/v1beta1',
  'V1',
  'v1 ',
  'apps/v1/x',
  '',
];
const kindNames = [
  ...BASE_KINDS,
  'pod',
  'Pods',
  'deployment',
  'List',
  'Status',
  'StatefulSet',
  '',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
];

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('delete' as const), at }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('unknown' as const),
      at,
      key: unknownKey,
      value: anyTypeValue,
    }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('retype' as const), at, value: anyTypeValue }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('number' as const), at, value: awkwardNumber }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('string' as const), at, value: awkwardText }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('field' as const),
      field: fc.constantFrom(...NAME_FIELDS),
      value: awkwardText,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('deep' as const),
      at,
      depth: fc.constantFrom(64, 200, 1000, 5000),
      list: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('wide' as const),
      at,
      width: fc.constantFrom(300, 2000, 10_000),
      keys: fc.constantFrom('plain' as const, 'labels' as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('empty' as const), at, value: fc.constantFrom('{}', '[]', "''") }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'duplicateContainers' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('badBase64' as const),
      value: fc.constantFrom(
        'not base64!',
        'YQ',
        'YQ=',
        'Y===',
        '====',
        'c2VjcmV0\n',
        'c2Vj cmV0',
        '😀',
        '\0',
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('kindPair' as const),
      apiVersion: fc.oneof(fc.constantFrom<Json>(...apiVersions), anyTypeValue),
      kind: fc.oneof(fc.constantFrom<Json>(...kindNames), anyTypeValue),
    }),
  },
);

/** A valid manifest of any kind with one to four mutations. */
export const mutatedManifest: fc.Arbitrary<HostileCase> = fc.record({
  type: fc.constant('mutated' as const),
  base: fc.constantFrom(...BASE_KINDS),
  mutations: fc.array(mutation, { minLength: 1, maxLength: 4 }),
});

/** Any JSON value at all (mostly not an object, or an object that is no manifest). */
export const randomJson: fc.Arbitrary<HostileCase> = fc.record({
  type: fc.constant('random' as const),
  value: fc.oneof(
    fc.jsonValue() as fc.Arbitrary<Json>,
    fc.dictionary(
      fc.constantFrom('apiVersion', 'kind', 'metadata', 'spec', 'data', '__proto__'),
      fc.jsonValue(),
      {
        minKeys: 1,
      },
    ) as fc.Arbitrary<Json>,
  ),
});

export const hostileCase: fc.Arbitrary<HostileCase> = fc.oneof(
  { weight: 5, arbitrary: mutatedManifest },
  { weight: 1, arbitrary: randomJson },
);

/** Text that is not JSON, for the gRPC `object` field (the edge parses it). */
export const nonJsonText: fc.Arbitrary<string> = fc
  .oneof(
    fc.constantFrom(
      '{',
      '}',
      '[',
      'NaN',
      'Infinity',
      'undefined',
      "{'apiVersion':'v1'}",
      '{"apiVersion":"v1",}',
      '{"apiVersion":"v1"} trailing',
      '\uFEFF{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}',
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n',
      '\0',
      '{"a":1e999999999}x',
      '{"a":"\\ud800"',
      '{"a":"\u0001"}',
      '['.repeat(100_000),
      `${'{"a":'.repeat(50_000)}1`,
    ),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 200 }),
    fc.tuple(fc.constantFrom(...BASE_KINDS), fc.nat()).map(([k, n]) => {
      const text = JSON.stringify(baseManifest(k));
      return text.slice(0, 1 + (n % (text.length - 1)));
    }),
  )
  .filter((s) => {
    if (s === '') return false;
    try {
      JSON.parse(s);
      return false;
    } catch {
      return true;
    }
  });

/** A short description of a case for messages (the recipe, long texts abbreviated). */
export function describeCase(c: HostileCase): string {
  const s = JSON.stringify(c, (_k, v) =>
    typeof v === 'string' && v.length > 120 ? `${v.slice(0, 117)}...` : v,
  );
  return s.length > 2000 ? `${s.slice(0, 1997)}...` : s;
}

// ---- what a rejection must look like ----

/** Codes a malformed request may be refused with. */
export const REJECTION_CODES: readonly string[] = [
  'API_INVALID',
  'API_BAD_REQUEST',
  'API_NOT_FOUND',
  'API_TOO_LARGE',
];
/** Codes a request that happens to be valid may also get (it names an existing object, or an old version). */
export const VALID_INPUT_CODES: readonly string[] = ['API_ALREADY_EXISTS', 'API_CONFLICT'];
/** Longest message a person should be shown for one rejected request. */
export const MAX_MESSAGE_CHARS = 4096;

interface ErrorLike {
  name?: string;
  code?: unknown;
  message?: unknown;
  fieldErrors?: readonly { path: string; message: string }[];
}

/**
 * What is wrong with how a request was refused (empty: nothing). `isApiError` says the
 * error is an ApiError; `validInput` that the input is a valid manifest (so a refusal for
 * another reason, like ALREADY_EXISTS, is fine). `maxMessageChars` bounds the message (the
 * tests check that bound in a property of its own, so one finding does not hide the others).
 */
export function rejectionProblems(
  err: unknown,
  isApiError: boolean,
  validInput: boolean,
  maxMessageChars = MAX_MESSAGE_CHARS,
): string[] {
  const problems: string[] = [];
  const e = (err ?? {}) as ErrorLike;
  const message = typeof e.message === 'string' ? e.message : '';
  const brief = message.length > 300 ? `${message.slice(0, 300)}... (${message.length} chars)` : message;
  if (!isApiError) return [`not an ApiError: ${String((err as Error)?.stack ?? err)}`];
  const code = String(e.code);
  const allowed = validInput ? [...REJECTION_CODES, ...VALID_INPUT_CODES] : REJECTION_CODES;
  if (!allowed.includes(code)) problems.push(`code ${code} is not one of ${allowed.join(', ')}: ${brief}`);
  if (message.trim() === '') problems.push(`${code} with an empty message`);
  if (message.length > maxMessageChars)
    problems.push(`${code} message of ${message.length} chars (more than ${maxMessageChars}): ${brief}`);
  if (/internal error/i.test(message)) problems.push(`${code} message reports an internal error: ${brief}`);
  if (code === 'API_INVALID') {
    const fields = e.fieldErrors ?? [];
    if (fields.length === 0) problems.push(`API_INVALID without field errors: ${brief}`);
    for (const f of fields) {
      const named =
        f.path !== '' || /kind|apiVersion/.test(f.message) || f.message === 'Too many errors; stopped';
      if (!named) problems.push(`a field error names no path: ${JSON.stringify(f).slice(0, 300)}`);
    }
  }
  return problems;
}
