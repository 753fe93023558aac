// Persistent storage: the names (annotations, finalizers, phases) shared by the API server's
// storage admission, the PV controllers (pkg/controller/pv-*.ts), the scheduler's volume
// binding and the agent, and the small readers all of them need. Kubernetes' names where
// Kubernetes has one; `berth.io/` names for the local-path provisioner, after rancher's
// local-path-provisioner that k3s ships.
//
//   claim created ─► API server: default class, pvc-protection finalizer
//     ─► scheduler picks a node ─► annotation volume.kubernetes.io/selected-node on the claim
//     ─► provisioner (berth.io/local-path) creates PV pvc-<uid>, pre-bound, finalizer
//        berth.io/local-path-cleanup ─► binder binds both ─► agent makes the directory
//   claim deleted (no pod uses it) ─► PV Released ─► Delete: PV deleted; the agent of its
//        node removes the directory, then the finalizer

import { matches, type Requirement } from './labels.js';
import { asArr, asObj, asStr, own } from './schema/dsl.js';
import { tryParseQuantity } from './schema/quantity.js';
import type { ApiObject } from './types.js';

/** On a StorageClass: "true" makes it the class of claims that name none. */
export const DEFAULT_CLASS_ANNOTATION = 'storageclass.kubernetes.io/is-default-class';
/** The beta spelling, still honoured by Kubernetes. */
export const BETA_DEFAULT_CLASS_ANNOTATION = 'storageclass.beta.kubernetes.io/is-default-class';
/** On a claim: the node the scheduler chose for its first consumer (WaitForFirstConsumer). */
export const SELECTED_NODE_ANNOTATION = 'volume.kubernetes.io/selected-node';
/** On a PV: the provisioner that made it. */
export const PROVISIONED_BY_ANNOTATION = 'pv.kubernetes.io/provisioned-by';
/** On a claim: the binder finished binding it (Kubernetes' pv.kubernetes.io/bind-completed). */
export const BIND_COMPLETED_ANNOTATION = 'pv.kubernetes.io/bind-completed';
/** On a PV: the binder, not a user, set its claimRef (so it may clear it again). */
export const BOUND_BY_CONTROLLER_ANNOTATION = 'pv.kubernetes.io/bound-by-controller';

/** Keeps a claim while a non-terminated pod uses it. */
export const PVC_PROTECTION_FINALIZER = 'kubernetes.io/pvc-protection';
/** Keeps a PV while it is Bound. */
export const PV_PROTECTION_FINALIZER = 'kubernetes.io/pv-protection';

/** Berth's node-local provisioner (rancher's local-path-provisioner, as k3s ships it). */
export const LOCAL_PATH_PROVISIONER = 'berth.io/local-path';
/** The default StorageClass every node ensures exists. */
export const LOCAL_PATH_CLASS = 'local-path';
/**
 * On a local-path PV: the node's agent removes the directory, then this finalizer, once the
 * PV is being deleted. The provisioner adds it to every PV it creates.
 */
export const LOCAL_PATH_FINALIZER = 'berth.io/local-path-cleanup';
/** On a Node: where its agent keeps local-path volumes (set by the agent). */
export const LOCAL_PATH_ROOT_ANNOTATION = 'berth.io/local-path-root';
/** Where local-path volumes go on a node that has not said (no LOCAL_PATH_ROOT_ANNOTATION). */
export const DEFAULT_LOCAL_PATH_ROOT = '/var/lib/berth/local-path';
/** The node label local-path PVs' node affinity names. */
export const HOSTNAME_LABEL = 'kubernetes.io/hostname';

export const VolumePhase = {
  Pending: 'Pending',
  Available: 'Available',
  Bound: 'Bound',
  Released: 'Released',
  Failed: 'Failed',
} as const;

export const ClaimPhase = { Pending: 'Pending', Bound: 'Bound', Lost: 'Lost' } as const;

export const ACCESS_MODES = ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod'] as const;

/** kubectl's abbreviations: RWO, ROX, RWX, RWOP. */
export const ACCESS_MODE_SHORT: Readonly<Record<string, string>> = {
  ReadWriteOnce: 'RWO',
  ReadOnlyMany: 'ROX',
  ReadWriteMany: 'RWX',
  ReadWriteOncePod: 'RWOP',
};

/** Whether a StorageClass is marked the default (either spelling of the annotation). */
export function isDefaultClass(sc: ApiObject): boolean {
  const a = sc.metadata.annotations ?? {};
  return a[DEFAULT_CLASS_ANNOTATION] === 'true' || a[BETA_DEFAULT_CLASS_ANNOTATION] === 'true';
}

/**
 * The class a claim without storageClassName gets: the default class, the newest when
 * several are (Kubernetes since 1.26), undefined when none is.
 */
export function defaultClassName(classes: readonly ApiObject[]): string | undefined {
  const defaults = classes.filter((c) => isDefaultClass(c) && !c.metadata.deletionTimestamp);
  defaults.sort(
    (a, b) =>
      (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '') ||
      (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''),
  );
  return defaults[0]?.metadata.name;
}

const specOf = (o: ApiObject) => asObj(o.spec) ?? {};

/** A claim's or PV's storageClassName; '' for none. */
export const classOf = (o: ApiObject): string => asStr(own(specOf(o), 'storageClassName')) ?? '';

export const accessModesOf = (o: ApiObject): string[] =>
  (asArr(own(specOf(o), 'accessModes')) ?? []).filter((m): m is string => typeof m === 'string');

/** A claim's requested storage in bytes (0 when unreadable). */
export const requestOf = (claim: ApiObject): number =>
  tryParseQuantity(own(asObj(own(asObj(own(specOf(claim), 'resources')), 'requests')), 'storage')) ?? 0;

/** A PV's capacity in bytes (0 when unreadable). */
export const capacityOf = (pv: ApiObject): number =>
  tryParseQuantity(own(asObj(own(specOf(pv), 'capacity')), 'storage')) ?? 0;

export const phaseOf = (o: ApiObject): string => asStr(own(asObj(o.status), 'phase')) ?? '';

export interface ClaimRef {
  namespace?: string;
  name?: string;
  uid?: string;
}

export const claimRefOf = (pv: ApiObject): ClaimRef | undefined =>
  asObj(own(specOf(pv), 'claimRef')) as ClaimRef | undefined;

/** The claims a pod's volumes name (in the pod's namespace). */
export function claimsOfPod(pod: ApiObject): string[] {
  const names: string[] = [];
  for (const v of asArr(own(specOf(pod), 'volumes')) ?? []) {
    const name = asStr(own(asObj(own(asObj(v), 'persistentVolumeClaim')), 'claimName'));
    if (name) names.push(name);
  }
  return names;
}

/** A pod that has finished for good no longer holds its claims. */
export function podTerminated(pod: ApiObject): boolean {
  const phase = asStr(own(asObj(pod.status), 'phase'));
  return phase === 'Succeeded' || phase === 'Failed';
}

/**
 * Whether a PV's required node affinity lets it be used on a node (its labels and name).
 * No affinity: any node. Terms are ORed, a term's requirements ANDed, as for pods.
 */
export function volumeAllowsNode(
  pv: ApiObject,
  nodeName: string,
  nodeLabels: Readonly<Record<string, string>>,
): boolean {
  const required = asObj(own(asObj(own(specOf(pv), 'nodeAffinity')), 'required'));
  const terms = asArr(own(required, 'nodeSelectorTerms'));
  if (!terms) return true;
  const req = (e: unknown): Requirement => {
    const r = asObj(e);
    return {
      key: asStr(own(r, 'key')) ?? '',
      operator: (asStr(own(r, 'operator')) ?? 'In') as Requirement['operator'],
      values: (asArr(own(r, 'values')) ?? []).filter((v): v is string => typeof v === 'string'),
    };
  };
  return terms.some((t) => {
    const term = asObj(t);
    const labels = (asArr(own(term, 'matchExpressions')) ?? []).map(req);
    const fields = (asArr(own(term, 'matchFields')) ?? []).map(req);
    if (labels.length === 0 && fields.length === 0) return false;
    return matches(labels, { ...nodeLabels }) && matches(fields, { 'metadata.name': nodeName });
  });
}
