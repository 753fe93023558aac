// Kubernetes' VolumeBinding plugin for local volumes: a pod's PersistentVolumeClaims decide
// where it may run. Pure: it reads claims, volumes and classes the loop put in the Snapshot.
//
//   per claim volume:  missing / being deleted / class missing ─► pod-level refusal
//                      bound (spec.volumeName)  ─► the PV's nodeAffinity must match the node
//                      unbound, WaitForFirstConsumer ─► any node (or the node already selected)
//                      unbound, Immediate or no class ─► pod-level refusal (the binder acts first)
// After a choice, the loop marks the unbound WaitForFirstConsumer claims with the node
// (claimsToSelect), so the provisioner makes their volumes there.

import type { ApiObject } from '../api/types.js';
import { isDefaultClass } from '../api/storage.js';
import { type CompiledTerm, compileTerm, type PodInfo, termMatches } from './pod-info.js';
import type { NodeInfo } from './snapshot.js';
import type { NodeSelectorTerm } from './types.js';

// The storage conventions (annotation names, the default class) are pkg/api/storage.ts's.
import { SELECTED_NODE_ANNOTATION } from '../api/storage.js';

export { SELECTED_NODE_ANNOTATION };

/** A PersistentVolumeClaim as the scheduler reads it (Kubernetes' field names). */
export interface SchedulingClaim {
  metadata: {
    name?: string;
    namespace?: string;
    uid?: string;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
  };
  spec?: { storageClassName?: string | null; volumeName?: string };
  status?: { phase?: string };
}

/** A PersistentVolume as the scheduler reads it. */
export interface SchedulingVolume {
  metadata: { name?: string };
  spec?: {
    storageClassName?: string;
    nodeAffinity?: { required?: { nodeSelectorTerms?: NodeSelectorTerm[] } };
  };
}

/** A StorageClass as the scheduler reads it. */
export interface SchedulingStorageClass {
  metadata: { name?: string; annotations?: Record<string, string> };
  provisioner?: string;
  volumeBindingMode?: 'Immediate' | 'WaitForFirstConsumer';
}

/** Claims (by namespace/name), volumes and classes (by name). Read-only outside the Snapshot. */
export class StorageInfo {
  readonly claims = new Map<string, SchedulingClaim>();
  readonly volumes = new Map<string, { pv: SchedulingVolume; terms: CompiledTerm[] | undefined }>();
  readonly classes = new Map<string, SchedulingStorageClass>();

  setClaim(c: SchedulingClaim): void {
    this.claims.set(claimKey(c.metadata.namespace, c.metadata.name ?? ''), c);
  }

  removeClaim(c: SchedulingClaim): void {
    this.claims.delete(claimKey(c.metadata.namespace, c.metadata.name ?? ''));
  }

  setVolume(pv: SchedulingVolume): void {
    const terms = pv.spec?.nodeAffinity?.required?.nodeSelectorTerms;
    this.volumes.set(pv.metadata.name ?? '', { pv, terms: terms ? terms.map(compileTerm) : undefined });
  }

  removeVolume(pv: SchedulingVolume): void {
    this.volumes.delete(pv.metadata.name ?? '');
  }

  setClass(sc: SchedulingStorageClass): void {
    this.classes.set(sc.metadata.name ?? '', sc);
  }

  removeClass(sc: SchedulingStorageClass): void {
    this.classes.delete(sc.metadata.name ?? '');
  }

  /** The claim's class: its storageClassName, else the default class; '' is "no class". */
  classOf(claim: SchedulingClaim): { name: string; sc: SchedulingStorageClass | undefined } {
    const named = claim.spec?.storageClassName;
    if (named === '') return { name: '', sc: undefined };
    if (named) return { name: named, sc: this.classes.get(named) };
    for (const sc of this.classes.values())
      if (isDefaultClass(sc as ApiObject)) return { name: sc.metadata.name ?? '', sc };
    return { name: '', sc: undefined };
  }
}

export const claimKey = (namespace: string | undefined, name: string): string =>
  `${namespace ?? 'default'}/${name}`;

/** Why the pod cannot be placed anywhere because of its claims (Kubernetes' words). */
export const VolumeReason = {
  NodeConflict: 'node(s) had volume node affinity conflict',
  NotAvailable: "node(s) didn't find available persistent volumes to bind",
  UnboundImmediate: 'pod has unbound immediate PersistentVolumeClaims',
  claimNotFound: (name: string) => `persistentvolumeclaim "${name}" not found`,
  claimDeleting: (name: string) => `persistentvolumeclaim "${name}" is being deleted`,
  volumeNotFound: (name: string) => `persistentvolume "${name}" not found`,
  classNotFound: (name: string) => `storageclass.storage.k8s.io "${name}" not found`,
} as const;

/** The pod's claims, computed once per scheduling attempt. */
export interface PodVolumes {
  /** Set when no node can do: the pod-level reason. */
  refusal: string | undefined;
  /** Each bound claim's PV node affinity (undefined: no affinity, any node). */
  bound: (CompiledTerm[] | undefined)[];
  /** Nodes already selected for unbound WaitForFirstConsumer claims. */
  selected: string[];
  /** Keys of unbound WaitForFirstConsumer claims not yet given a node. */
  toSelect: string[];
}

/** Undefined when the pod uses no claim. */
export function podVolumes(pod: PodInfo, storage: StorageInfo): PodVolumes | undefined {
  const names = pod.claims;
  if (names.length === 0) return undefined;
  const out: PodVolumes = { refusal: undefined, bound: [], selected: [], toSelect: [] };
  let unboundImmediate = false;
  for (const name of names) {
    const key = claimKey(pod.namespace, name);
    const claim = storage.claims.get(key);
    if (!claim) return { ...out, refusal: VolumeReason.claimNotFound(name) };
    if (claim.metadata.deletionTimestamp) return { ...out, refusal: VolumeReason.claimDeleting(name) };
    const volumeName = claim.spec?.volumeName;
    if (volumeName) {
      const v = storage.volumes.get(volumeName);
      if (!v) return { ...out, refusal: VolumeReason.volumeNotFound(volumeName) };
      out.bound.push(v.terms);
      continue;
    }
    const cls = storage.classOf(claim);
    if (cls.name !== '' && !cls.sc) return { ...out, refusal: VolumeReason.classNotFound(cls.name) };
    if (cls.sc?.volumeBindingMode !== 'WaitForFirstConsumer') {
      unboundImmediate = true;
      continue;
    }
    const selected = claim.metadata.annotations?.[SELECTED_NODE_ANNOTATION];
    if (selected) out.selected.push(selected);
    else out.toSelect.push(key);
  }
  if (unboundImmediate) return { ...out, refusal: VolumeReason.UnboundImmediate };
  return out;
}

/** The per-node check; the pod-level refusal is handled before the node loop. */
export function volumeBindingReason(v: PodVolumes, node: NodeInfo): string | undefined {
  for (const terms of v.bound) {
    if (terms && !terms.some((t) => termMatches(t, node.labels, node.name))) return VolumeReason.NodeConflict;
  }
  for (const s of v.selected) if (s !== node.name) return VolumeReason.NotAvailable;
  return undefined;
}
