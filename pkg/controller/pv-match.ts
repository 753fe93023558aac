// Which PersistentVolume a claim binds to, shared by the binder and the provisioner (which
// provisions only when nothing fits). Kubernetes' findMatchingVolume: a volume pre-bound to
// the claim wins; otherwise the smallest Available volume that fits.

import { selectorMatches } from '../api/schema/meta.js';
import {
  accessModesOf,
  capacityOf,
  claimRefOf,
  classOf,
  HOSTNAME_LABEL,
  phaseOf,
  requestOf,
  VolumePhase,
  volumeAllowsNode,
} from '../api/storage.js';
import type { ApiObject } from '../api/types.js';

/** The node a WaitForFirstConsumer claim is for: its name and labels. */
export interface SelectedNode {
  name: string;
  labels: Readonly<Record<string, string>>;
}

/** A node as the matcher sees it; its hostname label when the Node object is not known. */
export function selectedNodeOf(name: string, node: ApiObject | undefined): SelectedNode {
  return { name, labels: node?.metadata.labels ?? { [HOSTNAME_LABEL]: name } };
}

const volumeModeOf = (o: ApiObject): string =>
  ((o.spec as { volumeMode?: string } | undefined)?.volumeMode ?? 'Filesystem') || 'Filesystem';

/** Whether the volume is reserved for this claim (its claimRef names it, uid unset or equal). */
export function preBoundTo(pv: ApiObject, claim: ApiObject): boolean {
  const ref = claimRefOf(pv);
  if (!ref) return false;
  return (
    ref.name === claim.metadata.name &&
    (ref.namespace ?? '') === (claim.metadata.namespace ?? '') &&
    (!ref.uid || ref.uid === claim.metadata.uid)
  );
}

/**
 * Why a volume cannot serve a claim, or undefined when it can: size, access modes (the
 * volume's must include the claim's), class, volume mode, the claim's selector, and the
 * node the claim's first consumer runs on (when given).
 */
export function mismatch(pv: ApiObject, claim: ApiObject, node?: SelectedNode): string | undefined {
  if (capacityOf(pv) < requestOf(claim)) return 'capacity smaller than the request';
  const modes = accessModesOf(pv);
  if (!accessModesOf(claim).every((m) => modes.includes(m))) return "access modes do not include the claim's";
  if (classOf(pv) !== classOf(claim)) return 'storage class differs';
  if (volumeModeOf(pv) !== volumeModeOf(claim)) return 'volume mode differs';
  const selector = (claim.spec as { selector?: unknown } | undefined)?.selector;
  if (selector != null && !selectorMatches(selector, pv.metadata.labels ?? {}))
    return "labels do not match the claim's selector";
  if (node && !volumeAllowsNode(pv, node.name, node.labels))
    return `node affinity excludes node ${node.name}`;
  return undefined;
}

/**
 * The volume the claim should bind to, or undefined. A volume pre-bound to the claim is
 * taken first (it still has to fit); otherwise the smallest Available, unclaimed volume that
 * fits, by name on ties. `delayBinding` (WaitForFirstConsumer without a chosen node): only a
 * pre-bound volume. A claim naming spec.volumeName considers that volume only.
 */
export function findBestMatch(
  claim: ApiObject,
  volumes: readonly ApiObject[],
  opts: { node?: SelectedNode; delayBinding?: boolean } = {},
): ApiObject | undefined {
  const wanted = (claim.spec as { volumeName?: string } | undefined)?.volumeName ?? '';
  const candidates = volumes.filter(
    (pv) => !pv.metadata.deletionTimestamp && (wanted === '' || pv.metadata.name === wanted),
  );
  const preBound = candidates.filter((pv) => preBoundTo(pv, claim) && !mismatch(pv, claim, opts.node));
  if (preBound.length > 0) return smallest(preBound);
  if (opts.delayBinding) return undefined;
  return smallest(
    candidates.filter(
      (pv) =>
        claimRefOf(pv) === undefined &&
        (phaseOf(pv) === VolumePhase.Available ||
          phaseOf(pv) === VolumePhase.Pending ||
          phaseOf(pv) === '') &&
        !mismatch(pv, claim, opts.node),
    ),
  );
}

function smallest(volumes: ApiObject[]): ApiObject | undefined {
  return [...volumes].sort(
    (a, b) => capacityOf(a) - capacityOf(b) || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''),
  )[0];
}
