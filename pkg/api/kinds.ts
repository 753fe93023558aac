// The kinds Berth serves and how each is addressed: Kubernetes' group/version, plural
// resource name, short names, scope. One table, used by the API server (store keys), by
// berthctl (names on the command line) and by explain. Later issues add rows
// (PersistentVolume(Claim), HorizontalPodAutoscaler) and nothing else needs to change.

export interface KindInfo {
  kind: string;
  /** '' for the core group. */
  group: string;
  version: string;
  /** `group/version`, or just `version` for the core group. */
  apiVersion: string;
  /** Plural lower-case name: the store key segment and kubectl's resource name. */
  resource: string;
  singular: string;
  shortNames: readonly string[];
  namespaced: boolean;
  /**
   * Has a status subresource: Update keeps the stored status, UpdateStatus changes only
   * status, and a change of the rest bumps metadata.generation.
   */
  statusSubresource: boolean;
}

function kind(
  kindName: string,
  group: string,
  version: string,
  resource: string,
  shortNames: string[],
  namespaced: boolean,
  statusSubresource: boolean,
): KindInfo {
  return {
    kind: kindName,
    group,
    version,
    apiVersion: group ? `${group}/${version}` : version,
    resource,
    singular: kindName.toLowerCase(),
    shortNames,
    namespaced,
    statusSubresource,
  };
}

export const KINDS: readonly KindInfo[] = [
  kind('Namespace', '', 'v1', 'namespaces', ['ns'], false, true),
  kind('Node', '', 'v1', 'nodes', ['no'], false, true),
  kind('Pod', '', 'v1', 'pods', ['po'], true, true),
  kind('Service', '', 'v1', 'services', ['svc'], true, true),
  kind('Endpoints', '', 'v1', 'endpoints', ['ep'], true, false),
  kind('ConfigMap', '', 'v1', 'configmaps', ['cm'], true, false),
  kind('Secret', '', 'v1', 'secrets', [], true, false),
  kind('Event', '', 'v1', 'events', ['ev'], true, false),
  kind('PersistentVolume', '', 'v1', 'persistentvolumes', ['pv'], false, true),
  kind('PersistentVolumeClaim', '', 'v1', 'persistentvolumeclaims', ['pvc'], true, true),
  kind('ReplicaSet', 'apps', 'v1', 'replicasets', ['rs'], true, true),
  kind('Deployment', 'apps', 'v1', 'deployments', ['deploy'], true, true),
  kind('Lease', 'coordination.k8s.io', 'v1', 'leases', [], true, false),
  kind('Ingress', 'networking.k8s.io', 'v1', 'ingresses', ['ing'], true, true),
  kind('StorageClass', 'storage.k8s.io', 'v1', 'storageclasses', ['sc'], false, false),
  kind('HorizontalPodAutoscaler', 'autoscaling', 'v2', 'horizontalpodautoscalers', ['hpa'], true, true),
];

/** `deployments.apps`: kubectl's fully qualified resource name (just `pods` in the core group). */
export function qualifiedResource(k: KindInfo): string {
  return k.group ? `${k.resource}.${k.group}` : k.resource;
}

/** `deployment.apps/web`-style prefix: kubectl's `kind.group` in lower case. */
export function qualifiedSingular(k: KindInfo): string {
  return k.group ? `${k.singular}.${k.group}` : k.singular;
}

/** The kind of an object's `apiVersion` + `kind`, or undefined when Berth does not serve it. */
export function kindOf(apiVersion: string, kindName: string): KindInfo | undefined {
  return KINDS.find((k) => k.apiVersion === apiVersion && k.kind === kindName);
}

/**
 * The kind a user means by `name` on the command line: a kind (`Deployment`), a plural
 * (`deployments`), a singular (`deployment`), a short name (`deploy`), optionally qualified
 * with the group (`deployments.apps`, `deployment.apps`). Case-insensitive.
 */
export function kindByName(name: string): KindInfo | undefined {
  const lower = name.toLowerCase();
  const dot = lower.indexOf('.');
  const base = dot < 0 ? lower : lower.slice(0, dot);
  const group = dot < 0 ? undefined : lower.slice(dot + 1);
  return KINDS.find(
    (k) =>
      (group === undefined || group === k.group) &&
      (base === k.resource || base === k.singular || k.shortNames.includes(base)),
  );
}

/** The key prefix of a kind's objects: every namespace, or one namespace. */
export function keyPrefix(k: KindInfo, namespace?: string): string {
  if (!k.namespaced || namespace === undefined) return `/registry/${k.resource}/`;
  return `/registry/${k.resource}/${namespace}/`;
}

/** The store key of one object: `/registry/<resource>/<namespace>/<name>` or `/registry/<resource>/<name>`. */
export function objectKey(k: KindInfo, namespace: string | undefined, name: string): string {
  return k.namespaced
    ? `/registry/${k.resource}/${namespace ?? ''}/${name}`
    : `/registry/${k.resource}/${name}`;
}
