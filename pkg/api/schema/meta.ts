// Types every kind shares: ObjectMeta, label selectors, object references, conditions, times.

import {
  arr,
  asArr,
  asObj,
  asStr,
  bool,
  enumOf,
  type Issues,
  int,
  invalid,
  map,
  type ObjectSchema,
  obj,
  own,
  required,
  type Schema,
  str,
  type StringSchema,
} from './dsl.js';
import { dnsLabel, labelValue, qualifiedName, rfc3339 } from './formats.js';

/** metav1.Time / metav1.MicroTime: an RFC 3339 string. */
export const time = (description: string): StringSchema => str(description, { format: rfc3339 });

export const CONDITION_STATUS = ['True', 'False', 'Unknown'] as const;

export const labelsMap = (description: string) =>
  map(str('Label value.', { format: labelValue }), description, { key: qualifiedName });

const ANNOTATIONS_MAX_BYTES = 256 * 1024;

function checkAnnotationsSize(v: Record<string, unknown>, path: string, out: Issues): void {
  let total = 0;
  for (const [k, val] of Object.entries(v))
    total += Buffer.byteLength(k) + Buffer.byteLength(asStr(val) ?? '');
  if (total > ANNOTATIONS_MAX_BYTES)
    out.add(path, `Too long: must have at most ${ANNOTATIONS_MAX_BYTES} bytes`);
}

export const OwnerReference = obj(
  'OwnerReference',
  'A reference to an owning object, for garbage collection.',
  {
    apiVersion: required(str('API version of the referent.')),
    kind: required(str('Kind of the referent.')),
    name: required(str('Name of the referent.')),
    uid: required(str('UID of the referent.')),
    controller: bool('If true, this reference points to the managing controller.'),
    blockOwnerDeletion: bool(
      'If true, the owner cannot be deleted from storage before this reference is removed.',
    ),
  },
);

function checkOwnerReferences(v: unknown[], path: string, out: Issues): void {
  const controllers = v.filter((r) => own(asObj(r), 'controller') === true);
  if (controllers.length > 1)
    out.add(path, invalid(controllers.length, 'Only one reference can have Controller set to true'));
}

export const ObjectMeta = obj(
  'ObjectMeta',
  "Standard object's metadata: name, namespace, labels, annotations and what the server records.",
  {
    name: str('Name must be unique within a namespace. Required unless generateName is set.'),
    generateName: str('Prefix the server uses to generate a unique name when name is not given.'),
    namespace: str('Namespace the object lives in. Empty for cluster-scoped kinds.', { format: dnsLabel }),
    uid: str('Unique ID the server assigns when the object is created. Read-only.'),
    resourceVersion: str(
      'Opaque version of the object, used for optimistic concurrency and watches. Read-only.',
    ),
    generation: int('Sequence number of a specific generation of the desired state. Read-only.', {
      int64: true,
      min: 0,
    }),
    creationTimestamp: time('When the server created the object (RFC 3339). Read-only.'),
    deletionTimestamp: time(
      'When the object will be deleted (RFC 3339), set on graceful deletion. Read-only.',
    ),
    deletionGracePeriodSeconds: int('Seconds allowed for graceful termination before deletion. Read-only.', {
      int64: true,
      min: 0,
    }),
    labels: labelsMap('Map of string keys and values used to organize and select objects.'),
    annotations: map(str('Annotation value.'), 'Unstructured key value map stored with the object.', {
      key: qualifiedName,
      check: checkAnnotationsSize,
    }),
    ownerReferences: arr(
      OwnerReference,
      'Objects this object depends on; the garbage collector deletes orphans.',
      {
        check: checkOwnerReferences,
      },
    ),
    finalizers: arr(
      str('Finalizer name.', { format: qualifiedName }),
      'Must be empty before the object is deleted from storage.',
    ),
  },
);

const SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;

/** Shared by label selectors and node selector terms: how many values each operator takes. */
export function checkRequirement(v: Record<string, unknown>, path: string, out: Issues): void {
  const op = asStr(own(v, 'operator'));
  const values = asArr(own(v, 'values')) ?? [];
  if (op === 'In' || op === 'NotIn') {
    if (values.length === 0)
      out.add(`${path}.values`, "Required value: must be specified when `operator` is 'In' or 'NotIn'");
  } else if (op === 'Exists' || op === 'DoesNotExist') {
    if (values.length > 0)
      out.add(
        `${path}.values`,
        "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
      );
  } else if (op === 'Gt' || op === 'Lt') {
    if (values.length !== 1 || !/^-?\d+$/.test(asStr(values[0]) ?? ''))
      out.add(
        `${path}.values`,
        "Required value: must be specified single integer value when `operator` is 'Lt' or 'Gt'",
      );
  }
}

export const LabelSelectorRequirement = obj(
  'LabelSelectorRequirement',
  'A selector requirement: a key, an operator and values.',
  {
    key: required(str('The label key that the selector applies to.', { format: qualifiedName })),
    operator: required(
      enumOf(SELECTOR_OPERATORS, 'How the key relates to the values: In, NotIn, Exists or DoesNotExist.'),
    ),
    values: arr(str('A value.'), 'Values for In and NotIn (non-empty); empty for Exists and DoesNotExist.'),
  },
  { check: checkRequirement },
);

export const LabelSelector = obj(
  'LabelSelector',
  'A label query over a set of objects. matchLabels and matchExpressions are ANDed; empty selects everything.',
  {
    matchLabels: labelsMap('Labels an object must have, each equal to the given value.'),
    matchExpressions: arr(LabelSelectorRequirement, 'Label selector requirements, all of which must hold.'),
  },
);

export const ObjectReference = obj('ObjectReference', 'A reference to an object of any kind.', {
  apiVersion: str('API version of the referent.'),
  kind: str('Kind of the referent.'),
  namespace: str('Namespace of the referent.'),
  name: str('Name of the referent.'),
  uid: str('UID of the referent.'),
  resourceVersion: str('Specific resourceVersion of the referent.'),
  fieldPath: str('A piece of the object rather than the whole, e.g. spec.containers{name}.'),
});

/** A status condition type; kinds add their own time fields (lastUpdateTime, lastProbeTime...). */
export function condition(name: string, description: string, times: Record<string, string>): ObjectSchema {
  const fields: Record<string, Schema> = {
    type: required(str('Type of the condition.')),
    status: required(enumOf(CONDITION_STATUS, 'Status of the condition: True, False or Unknown.')),
    reason: str('One-word CamelCase reason for the last transition.'),
    message: str('Human-readable details of the last transition.'),
  };
  for (const [field, desc] of Object.entries(times)) fields[field] = time(desc);
  return obj(name, description, fields);
}

/** Whether `selector` (a LabelSelector) selects an object with `labels`. Empty selects all. */
export function selectorMatches(selector: unknown, labels: Record<string, unknown>): boolean {
  const sel = asObj(selector);
  const has = (k: string) => Object.hasOwn(labels, k);
  for (const [k, v] of Object.entries(asObj(own(sel, 'matchLabels')) ?? {})) {
    if (!has(k) || labels[k] !== v) return false;
  }
  for (const e of asArr(own(sel, 'matchExpressions')) ?? []) {
    const r = asObj(e);
    const key = asStr(own(r, 'key')) ?? '';
    const values = asArr(own(r, 'values')) ?? [];
    const present = has(key);
    switch (own(r, 'operator')) {
      case 'In':
        if (!present || !values.includes(labels[key])) return false;
        break;
      case 'NotIn':
        if (present && values.includes(labels[key])) return false;
        break;
      case 'Exists':
        if (!present) return false;
        break;
      case 'DoesNotExist':
        if (present) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** Whether a LabelSelector selects nothing in particular (and so everything). */
export function selectorIsEmpty(selector: unknown): boolean {
  const sel = asObj(selector);
  return (
    Object.keys(asObj(own(sel, 'matchLabels')) ?? {}).length === 0 &&
    (asArr(own(sel, 'matchExpressions')) ?? []).length === 0
  );
}
