// The shape every Berth object shares: Kubernetes' TypeMeta + ObjectMeta, then kind-specific
// fields (spec, status, data, ...). Objects are plain JSON values; the schema in schema/
// says which fields each kind has, validation.ts checks them, defaults.ts fills them in.

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  /** The store's mod revision of the object's key, as a decimal string. */
  resourceVersion?: string;
  /** Bumped by the server when anything outside metadata and status changes. */
  generation?: number;
  /** RFC 3339, seconds precision, UTC ('2026-11-26T13:24:07Z'). */
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
}

/** Any object of any kind. Kind-specific fields are left as JSON. */
export interface ApiObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: JsonObject;
  status?: JsonObject;
  [field: string]: unknown;
}

/** An object list as List answers it (kubectl's `get -o json` shape). */
export interface ApiList {
  apiVersion: 'v1';
  kind: 'List';
  metadata: { resourceVersion: string };
  items: ApiObject[];
}

/** Seconds-precision RFC 3339 time, as Kubernetes writes metav1.Time. */
export function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
