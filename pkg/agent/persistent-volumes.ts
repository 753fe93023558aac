// PersistentVolumeClaim volumes on this node: a claim resolves to its bound PersistentVolume
// and that to a directory of this node (spec.local.path or spec.hostPath.path), which is then
// bind-mounted like any other volume. Local-path volumes (made by the berth.io/local-path
// provisioner under the node's local-path root) are created here on first use, world-
// writable as rancher's local-path-provisioner makes them, so non-root containers can write.
//
//   claim ─► Bound? ─► PV (claimRef is this claim) ─► nodeAffinity names this node ─► path
//   any step missing: the volume stays unmounted, the pod waits in ContainerCreating (FailedMount)

import * as fs from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import type { ApiObject } from '../api/types.js';
import { compileTerm, termMatches } from '../scheduler/pod-info.js';
import type { NodeSelectorTerm } from '../scheduler/types.js';
import { checkHostPath } from './host-path.js';

// The local-path conventions (Node annotation, provisioner, finalizer) are pkg/api/storage.ts's.
import {
  LOCAL_PATH_FINALIZER,
  LOCAL_PATH_PROVISIONER,
  LOCAL_PATH_ROOT_ANNOTATION,
  PROVISIONED_BY_ANNOTATION,
} from '../api/storage.js';

export {
  LOCAL_PATH_FINALIZER,
  LOCAL_PATH_PROVISIONER,
  LOCAL_PATH_ROOT_ANNOTATION,
  PROVISIONED_BY_ANNOTATION,
};

/** `<dataDir>/local-path`, absolute. */
export const localPathRoot = (dataDir: string): string => resolve(dataDir, 'local-path');

/** Where claims and volumes come from (the agent's store). Undefined: no such object. */
export interface ClaimLookups {
  claim(namespace: string, name: string): Promise<ApiObject | undefined>;
  volume(name: string): Promise<ApiObject | undefined>;
}

/** What the agent knows of its own node, to check a volume is for it. */
export interface LocalNode {
  name: string;
  /** The Node's labels (kubernetes.io/hostname among them). */
  labels: Record<string, string>;
  /** Absolute: see localPathRoot(). */
  localPathRoot: string;
}

interface PvSpec {
  claimRef?: { name?: string; namespace?: string; uid?: string };
  local?: { path?: string };
  hostPath?: { path?: string; type?: string };
  nodeAffinity?: { required?: { nodeSelectorTerms?: NodeSelectorTerm[] } };
}

const pvSpec = (pv: ApiObject): PvSpec => (pv.spec ?? {}) as PvSpec;

/** The PV's directory: local.path, else hostPath.path. */
export function volumePath(pv: ApiObject): string | undefined {
  const s = pvSpec(pv);
  return s.local?.path || s.hostPath?.path || undefined;
}

export const isLocalPath = (pv: ApiObject): boolean =>
  pv.metadata.annotations?.[PROVISIONED_BY_ANNOTATION] === LOCAL_PATH_PROVISIONER;

/** Whether the PV may be used on this node: no required node affinity, or a term that matches. */
export function volumeFitsNode(pv: ApiObject, node: Pick<LocalNode, 'name' | 'labels'>): boolean {
  const terms = pvSpec(pv).nodeAffinity?.required?.nodeSelectorTerms;
  if (!terms) return true;
  return terms.map(compileTerm).some((t) => termMatches(t, node.labels, node.name));
}

/** `child` is strictly inside `root` (both absolute, normalised). */
export const strictlyWithin = (root: string, child: string): boolean =>
  child !== root && child.startsWith(root.endsWith(sep) ? root : root + sep);

/** A claim's host directory, or why there is none yet. */
export type ClaimResolution = { path: string; error?: undefined } | { path?: undefined; error: string };

/** The host directory for a claim, or why there is none yet (short, for FailedMount). */
export async function resolveClaim(
  namespace: string,
  claimName: string,
  lookups: ClaimLookups,
  node: LocalNode,
): Promise<ClaimResolution> {
  const ref = `persistentvolumeclaim "${claimName}"`;
  let claim: ApiObject | undefined;
  try {
    claim = await lookups.claim(namespace, claimName);
  } catch (e) {
    return { error: `${ref}: ${(e as Error).message}` };
  }
  if (!claim) return { error: `${ref} not found` };
  if (claim.metadata.deletionTimestamp) return { error: `${ref} is being deleted` };
  const volumeName = (claim.spec as { volumeName?: string } | undefined)?.volumeName;
  if (!volumeName || claim.status?.phase !== 'Bound') return { error: `${ref} is not bound` };
  const pvRef = `persistentvolume "${volumeName}"`;
  let pv: ApiObject | undefined;
  try {
    pv = await lookups.volume(volumeName);
  } catch (e) {
    return { error: `${pvRef}: ${(e as Error).message}` };
  }
  if (!pv) return { error: `${pvRef} not found` };
  const spec = pvSpec(pv);
  const cr = spec.claimRef;
  if (
    !cr ||
    cr.name !== claimName ||
    (cr.namespace ?? 'default') !== namespace ||
    (cr.uid && claim.metadata.uid && cr.uid !== claim.metadata.uid)
  )
    return { error: `${pvRef} is not bound to ${ref}` };
  if (!volumeFitsNode(pv, node))
    return { error: `${pvRef} has node affinity that does not match node "${node.name}"` };
  const path = volumePath(pv);
  if (!path) return { error: `${pvRef} has no local or hostPath source` };
  if (isLocalPath(pv)) {
    const abs = resolve(path);
    if (dirname(abs) !== node.localPathRoot)
      return {
        error: `${pvRef} path ${path} is not under this node's local-path root ${node.localPathRoot}`,
      };
    // A symlink planted there would have chmod (and the mount) reach outside the root.
    if ((await fs.lstat(abs).catch(() => undefined))?.isSymbolicLink())
      return { error: `${pvRef} path ${path} is a symbolic link` };
    // 0777 as local-path-provisioner: containers may run as any user.
    await fs.mkdir(abs, { recursive: true, mode: 0o777 });
    await fs.chmod(abs, 0o777);
    return { path: abs };
  }
  if (spec.local) {
    const st = await fs.stat(path).catch(() => undefined);
    return st?.isDirectory() ? { path } : { error: `${pvRef}: path "${path}" does not exist` };
  }
  const bad = await checkHostPath(path, spec.hostPath?.type ?? '');
  return bad ? { error: `${pvRef}: ${bad}` } : { path };
}

/** The kubelet's FailedMount message, shortened: which volumes, and why each is not mounted. */
export function mountFailure(unmounted: readonly { name: string; error: string }[]): string {
  const names = unmounted.map((u) => u.name).join(' ');
  return `Unable to attach or mount volumes: unmounted volumes=[${names}]: ${unmounted.map((u) => u.error).join('; ')}`;
}
