// The API's semantics over the store, whatever the transport: admission (validation,
// defaults, namespace checks), object lifecycle metadata (uid, generation, timestamps),
// optimistic concurrency, apply's three-way merge, and (deletion.ts) graceful and cascading
// deletes. The gRPC edge (grpc-api.ts) only translates. Every node runs one; writes go
// through Raft wherever they arrive.
//
//   request ─► resolve kind ─► validate (schema) ─► defaults ─► lifecycle fields ─►
//              Services: cluster IP and node ports (service-alloc.ts) ─►
//              claims and volumes: default class, protection finalizers (storage-admission.ts) ─►
//              guarded Txn (create: key absent; update/delete: key at the read revision)

import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { KV } from '../../store/types.js';
import { applyDefaults } from '../defaults.js';
import {
  ApiError,
  ApiErrorCode,
  alreadyExists,
  conflict,
  type FieldError,
  invalid,
  notFound,
  preconditionFailed,
  unavailable,
} from '../errors.js';
import { matchesFields, parseFieldSelector } from '../fields.js';
import { type KindInfo, kindOf } from '../kinds.js';
import { matches, parseSelector } from '../labels.js';
import { jsonEqual, LAST_APPLIED, lastAppliedOf, threeWayMerge } from '../merge.js';
import { type ApiObject, type JsonObject, type ObjectMeta, rfc3339 } from '../types.js';
import { validateObject, validateUpdate } from '../validation.js';
import type { Keyring } from './encryption.js';
import { type DeleteOptions, type DeleteResult, Deleter } from './deletion.js';
import { refOf, resolveKind } from './names.js';
import { admitStorageCreate } from './storage-admission.js';
import { type Fence, ObjectStore, type TxnExtra } from './object-store.js';
import {
  DEFAULT_NODE_PORT_RANGE,
  DEFAULT_SERVICE_CIDR,
  needsAllocation,
  prepareServiceUpdate,
  ServiceAllocator,
  serviceRanges,
} from './service-alloc.js';
import { type ApiWatchOptions, type WatchHandle, watchObjects, type WatchSink } from './watch.js';

export interface ApiServerOptions {
  kv: KV;
  logger: Logger;
  /** Fence every write (the leader's controllers): see object-store.ts. */
  fence?: Fence;
  /** Wall clock (ms); tests pass their own. */
  now?: () => number;
  /**
   * Where Services' cluster IPs come from (IPv4, /12 to /30). Default DEFAULT_SERVICE_CIDR.
   * Every API server of a cluster must be given the same range, and the same node ports.
   */
  serviceCIDR?: string;
  /** Node ports of NodePort and LoadBalancer Services, inclusive. Default [30000, 32767]. */
  nodePortRange?: [number, number];
  /**
   * Seal Secrets at rest with this keyring (encryption.ts). Absent: stored as plain JSON, as
   * before. Sealed values cannot be read without it, so give every API server of a cluster
   * (the leader's controllers' too) the same keys.
   */
  keyring?: Keyring;
}

export interface WriteOptions {
  /** Namespace for an object whose metadata names none. */
  namespace?: string;
  dryRun?: boolean;
}

export interface ListOptions {
  /** Undefined: every namespace. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export type ApplyResult = 'created' | 'configured' | 'unchanged';

const APPLY_ATTEMPTS = 5;
/** Service writes that lose the allocation guard to another writer pick again this often. */
const ALLOCATION_ATTEMPTS = 16;

export class ApiServer {
  readonly store: ObjectStore;
  readonly logger: Logger;
  readonly now: () => number;
  private readonly deleter: Deleter;
  private readonly services: ServiceAllocator;

  /** Throws a RangeError when serviceCIDR or nodePortRange is not usable. */
  constructor(options: ApiServerOptions) {
    this.store = new ObjectStore(options.kv, options.fence, options.keyring);
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.deleter = new Deleter(this);
    this.services = new ServiceAllocator(
      this.store,
      serviceRanges(
        options.serviceCIDR ?? DEFAULT_SERVICE_CIDR,
        options.nodePortRange ?? DEFAULT_NODE_PORT_RANGE,
      ),
    );
  }

  // ---- reads ----

  async get(resource: string, namespace: string | undefined, name: string): Promise<ApiObject> {
    const kind = resolveKind(resource);
    const ns = this.namespaceFor(kind, namespace);
    const found = await this.store.get(kind, ns, name);
    if (!found) throw notFound(refOf(kind, name));
    return found.object;
  }

  async list(resource: string, options: ListOptions = {}): Promise<{ items: ApiObject[]; revision: number }> {
    const kind = resolveKind(resource);
    const filter = this.filterOf(kind, options);
    const ns = kind.namespaced ? options.namespace : undefined;
    const { items, revision } = await this.store.list(kind, ns);
    return { items: items.filter(filter), revision };
  }

  /** A predicate for `-l` and `--field-selector` (parse errors are INVALID_ARGUMENT). */
  filterOf(kind: KindInfo, options: { labelSelector?: string; fieldSelector?: string }) {
    const labels = parseSelector(options.labelSelector ?? '');
    const fields = parseFieldSelector(options.fieldSelector ?? '', kind);
    return (obj: ApiObject) => matches(labels, obj.metadata.labels) && matchesFields(fields, obj);
  }

  watch(resource: string, options: ApiWatchOptions, sink: WatchSink): Promise<WatchHandle> {
    const kind = resolveKind(resource);
    return watchObjects(this, kind, options, sink);
  }

  // ---- writes ----

  async create(raw: unknown, options: WriteOptions & { uid?: string } = {}): Promise<ApiObject> {
    const { kind, obj } = this.admit(raw, options.namespace);
    const meta = obj.metadata;
    if (!meta.name) meta.name = `${meta.generateName ?? ''}${randomSuffix()}`;
    await this.requireNamespace(kind, meta.namespace);
    meta.uid = options.uid || randomUUID();
    meta.creationTimestamp = rfc3339(this.now());
    delete meta.resourceVersion;
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    if (kind.statusSubresource && kind.kind !== 'Namespace' && kind.kind !== 'Node') meta.generation = 1;
    const created = await admitStorageCreate(this.store, kind, resetStatusOnCreate(kind, obj));
    for (let attempt = 1; ; attempt++) {
      const { object, guard } = await this.allocate(kind, created, undefined);
      if (options.dryRun) return object;
      const revision = await this.store.create(kind, object, 0, guard);
      if (revision !== undefined) {
        object.metadata.resourceVersion = String(revision);
        return object;
      }
      // A retried create whose first answer was lost finds its own object: that is success.
      const existing = await this.store.get(kind, meta.namespace, meta.name);
      if (existing && options.uid && existing.object.metadata.uid === options.uid) return existing.object;
      if (existing || !guard) throw alreadyExists(refOf(kind, meta.name));
      // The name is free, so the guard moved: another Service took values meanwhile.
      await this.allocationRaced(kind, meta.name, attempt);
    }
  }

  /** Replace an object; its status is kept (statusOnly: only its status is replaced). */
  async update(raw: unknown, options: WriteOptions = {}, statusOnly = false): Promise<ApiObject> {
    const prepared = statusOnly ? raw : await this.prepareServiceReplace(raw, options.namespace);
    const { kind, obj } = this.admit(prepared, options.namespace);
    const name = obj.metadata.name;
    if (!name) throw invalid(`${kind.kind}`, [{ path: 'metadata.name', message: 'Required value' }]);
    const current = await this.store.get(kind, obj.metadata.namespace, name);
    if (!current) throw notFound(refOf(kind, name));
    const wanted = obj.metadata.resourceVersion;
    if (wanted !== undefined && wanted !== '') {
      if (!/^\d+$/.test(wanted)) {
        throw invalid(refOf(kind, name), [
          { path: 'metadata.resourceVersion', message: `must be a decimal number, got "${wanted}"` },
        ]);
      }
      if (Number(wanted) !== current.revision) throw conflict(refOf(kind, name));
    }
    const uid = obj.metadata.uid;
    if (uid && uid !== current.object.metadata.uid) {
      throw preconditionFailed(
        refOf(kind, name),
        `Precondition failed: UID in object meta: ${uid}, UID of the stored object: ${current.object.metadata.uid}`,
      );
    }
    const next = statusOnly ? withStatus(current.object, obj) : this.nextVersion(kind, current.object, obj);
    return this.write(kind, next, current.object, current.revision, options.dryRun === true);
  }

  /**
   * kubectl apply on the server. `uid` (optional) is the uid a create gets: a client that
   * retries an apply whose answer was lost sends the same one, and hears 'created' again
   * rather than 'unchanged' when its first attempt was the one that created the object.
   */
  async apply(
    raw: unknown,
    options: WriteOptions & { uid?: string } = {},
  ): Promise<{ object: ApiObject; result: ApplyResult }> {
    const { kind, obj } = this.admit(raw, options.namespace, false);
    const name = obj.metadata.name;
    if (!name) {
      throw invalid(kind.kind, [{ path: 'metadata.name', message: 'Required value: apply needs a name' }]);
    }
    const manifest = withoutLastApplied(obj);
    for (let attempt = 1; ; attempt++) {
      const current = await this.store.get(kind, obj.metadata.namespace, name);
      try {
        if (!current) {
          const created = await this.create(withLastApplied(manifest), options);
          return { object: created, result: 'created' };
        }
        let merged = threeWayMerge(
          lastAppliedOf(current.object),
          manifest as unknown as JsonObject,
          current.object as unknown as JsonObject,
        ) as unknown as ApiObject;
        if (kind.kind === 'Service') merged = prepareServiceUpdate(merged, current.object);
        const errors = validateObject(merged);
        if (errors.length > 0) throw invalid(refOf(kind, name), errors);
        const next = this.nextVersion(kind, current.object, applyDefaults(merged));
        const written = await this.write(
          kind,
          next,
          current.object,
          current.revision,
          options.dryRun === true,
        );
        const ours = options.uid !== undefined && current.object.metadata.uid === options.uid;
        const result = written === current.object ? (ours ? 'created' : 'unchanged') : 'configured';
        return { object: written, result };
      } catch (err) {
        // Someone wrote between our read and our write (or created it first): merge again.
        const raced =
          err instanceof ApiError &&
          (err.code === ApiErrorCode.Conflict || (err.code === ApiErrorCode.AlreadyExists && !current));
        if (!raced || attempt >= APPLY_ATTEMPTS) throw err;
      }
    }
  }

  delete(
    resource: string,
    namespace: string | undefined,
    name: string,
    options: DeleteOptions = {},
  ): Promise<DeleteResult> {
    const kind = resolveKind(resource);
    return this.deleter.delete(kind, this.namespaceFor(kind, namespace), name, options);
  }

  // ---- shared steps (also used by deletion.ts) ----

  resolve(resource: string): KindInfo {
    return resolveKind(resource);
  }

  /** The namespace a request means for `kind` (undefined for cluster-scoped kinds). */
  namespaceFor(kind: KindInfo, namespace: string | undefined): string | undefined {
    if (!kind.namespaced) return undefined;
    return namespace || 'default';
  }

  /**
   * Validate a raw manifest and fill in defaults and the namespace. `defaults` false leaves
   * the manifest as written (apply merges it first, then defaults the result).
   */
  admit(raw: unknown, namespace: string | undefined, defaults = true): { kind: KindInfo; obj: ApiObject } {
    const errors = validateObject(raw);
    const r = raw as Partial<ApiObject> | null;
    const name = typeof r?.metadata?.name === 'string' ? r.metadata.name : '';
    if (errors.length > 0) {
      const k =
        r && typeof r.apiVersion === 'string' && typeof r.kind === 'string'
          ? kindOf(r.apiVersion, r.kind)
          : undefined;
      const kindName = typeof r?.kind === 'string' && r.kind.length <= 63 ? r.kind : 'object';
      throw invalid(k ? refOf(k, name) : `${kindName} ${JSON.stringify(name.slice(0, 100))}`, errors);
    }
    const valid = raw as ApiObject;
    const kind = kindOf(valid.apiVersion, valid.kind) as KindInfo;
    const obj = defaults ? applyDefaults(valid) : (structuredClone(valid) as ApiObject);
    const metadata = { ...obj.metadata };
    if (kind.namespaced) metadata.namespace = metadata.namespace || namespace || 'default';
    else delete metadata.namespace;
    return { kind, obj: { ...obj, metadata } };
  }

  /** The namespace must exist and not be terminating for new objects to go in. */
  async requireNamespace(kind: KindInfo, namespace: string | undefined): Promise<void> {
    if (!kind.namespaced || namespace === undefined) return;
    const ns = await this.store.get(resolveKind('namespaces'), undefined, namespace);
    if (!ns) throw notFound(`namespaces "${namespace}"`);
    if (ns.object.metadata.deletionTimestamp) {
      throw new ApiError(
        ApiErrorCode.Forbidden,
        `unable to create new content in namespace ${namespace} because it is being terminated`,
      );
    }
  }

  /** `incoming` as the next version of `current`: server-owned metadata and status kept. */
  nextVersion(kind: KindInfo, current: ApiObject, incoming: ApiObject): ApiObject {
    const cm = current.metadata;
    const next: ApiObject = {
      ...incoming,
      metadata: {
        ...incoming.metadata,
        name: cm.name,
        uid: cm.uid,
        creationTimestamp: cm.creationTimestamp,
      },
    };
    delete next.metadata.generateName;
    if (cm.generateName) next.metadata.generateName = cm.generateName;
    for (const k of ['deletionTimestamp', 'deletionGracePeriodSeconds', 'generation'] as const) {
      if (cm[k] === undefined) delete next.metadata[k];
      else (next.metadata as Record<string, unknown>)[k] = cm[k];
    }
    if (kind.statusSubresource) {
      if (current.status === undefined) delete next.status;
      else next.status = current.status;
    }
    if (cm.generation !== undefined && !jsonEqual(specOf(next), specOf(current))) {
      next.metadata.generation = cm.generation + 1;
    }
    return next;
  }

  /**
   * Store `next` over `current` (read at `revision`): nothing when equal, the deletion when
   * the last finalizer of a terminating object goes, otherwise a guarded update.
   */
  async write(
    kind: KindInfo,
    next: ApiObject,
    current: ApiObject,
    revision: number,
    dryRun: boolean,
  ): Promise<ApiObject> {
    const name = next.metadata.name as string;
    const errors: FieldError[] = validateUpdate(next, current);
    if (errors.length > 0) throw invalid(refOf(kind, name), errors);
    const { resourceVersion: _a, ...a } = next.metadata;
    const { resourceVersion: _b, ...b } = current.metadata;
    // An unchanged Service stored before allocation existed still gets its addresses.
    const allocates = kind.kind === 'Service' && needsAllocation(next, current);
    if (!allocates && jsonEqual({ ...next, metadata: a }, { ...current, metadata: b })) return current;
    if (!dryRun && current.metadata.deletionTimestamp && (next.metadata.finalizers ?? []).length === 0) {
      const finished = await this.deleter.finishIfReady(kind, next, revision);
      if (finished) return next;
    }
    for (let attempt = 1; ; attempt++) {
      const { object, guard } = await this.allocate(kind, next, current);
      if (dryRun) return object;
      const written = await this.store.update(kind, object, revision, 0, guard);
      if (written !== undefined) {
        return { ...object, metadata: { ...object.metadata, resourceVersion: String(written) } };
      }
      const now = guard ? await this.store.get(kind, next.metadata.namespace, name) : undefined;
      if (now?.revision !== revision) throw conflict(refOf(kind, name));
      // The object did not move, so the guard did: another Service took values meanwhile.
      await this.allocationRaced(kind, name, attempt);
    }
  }

  // ---- Services ----

  /** The version of `next` to store (cluster IP and node ports settled), and its Txn guard. */
  private allocate(
    kind: KindInfo,
    next: ApiObject,
    current: ApiObject | undefined,
  ): Promise<{ object: ApiObject; guard?: TxnExtra }> | { object: ApiObject; guard?: TxnExtra } {
    return kind.kind === 'Service' ? this.services.admit(kind, next, current) : { object: next };
  }

  /** Wait a little (jittered, growing) before allocating again; give up after a few rounds. */
  private async allocationRaced(kind: KindInfo, name: string, attempt: number): Promise<void> {
    if (attempt >= ALLOCATION_ATTEMPTS) {
      throw unavailable(`${refOf(kind, name)}: other Service writes kept taking IPs and ports first`);
    }
    const ms = Math.random() * Math.min(200, 2 ** attempt);
    await new Promise((r) => setTimeout(r, ms));
  }

  /**
   * A replace of a Service may leave out what the server allocated, or keep fields its new
   * type forbids: settle those against the stored version before validation (see
   * prepareServiceUpdate). Anything else, or a Service not stored, is returned as it is.
   */
  private async prepareServiceReplace(raw: unknown, namespace: string | undefined): Promise<unknown> {
    const r = raw as Partial<ApiObject> | null;
    if (typeof r !== 'object' || r === null || r.apiVersion !== 'v1' || r.kind !== 'Service') return raw;
    const meta = r.metadata;
    const name = meta?.name;
    const ns = meta?.namespace || namespace || 'default';
    if (
      typeof name !== 'string' ||
      typeof ns !== 'string' ||
      name === '' ||
      `${ns}/${name}`.split('/').length !== 2
    )
      return raw;
    const kind = resolveKind('services');
    const current = await this.store.get(kind, ns, name);
    return current ? prepareServiceUpdate(r as ApiObject, current.object) : raw;
  }
}

/** Fields whose change bumps metadata.generation: everything but metadata and status. */
function specOf(obj: ApiObject): unknown {
  const { metadata: _m, status: _s, ...rest } = obj;
  return rest;
}

function withStatus(current: ApiObject, incoming: ApiObject): ApiObject {
  const next: ApiObject = { ...current };
  if (incoming.status === undefined) delete next.status;
  else next.status = incoming.status;
  return next;
}

/** New pods start Pending and new workloads with an empty status, whatever the manifest says. */
function resetStatusOnCreate(kind: KindInfo, obj: ApiObject): ApiObject {
  if (kind.kind === 'Pod') return { ...obj, status: { phase: 'Pending' } };
  if (kind.kind === 'Deployment' || kind.kind === 'ReplicaSet') return { ...obj, status: {} };
  return obj;
}

function withoutLastApplied(obj: ApiObject): ApiObject {
  const annotations = { ...obj.metadata.annotations };
  delete annotations[LAST_APPLIED];
  const metadata: ObjectMeta = { ...obj.metadata, annotations };
  if (Object.keys(annotations).length === 0) delete metadata.annotations;
  return { ...obj, metadata };
}

function withLastApplied(manifest: ApiObject): ApiObject {
  return {
    ...manifest,
    metadata: {
      ...manifest.metadata,
      annotations: { ...manifest.metadata.annotations, [LAST_APPLIED]: JSON.stringify(manifest) },
    },
  };
}

/** Five characters for generateName, from Kubernetes' alphabet (no vowels, no 0/1/3). */
function randomSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return Array.from(randomBytes(5), (b) => alphabet[b % alphabet.length]).join('');
}
