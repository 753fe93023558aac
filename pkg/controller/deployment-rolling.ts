// The Deployment strategies and scaling, with Kubernetes' arithmetic (deployment/rolling.go,
// recreate.go, sync.go): RollingUpdate scales the new ReplicaSet up within
// replicas + maxSurge and old ones down keeping replicas - maxUnavailable available;
// Recreate scales old ones to 0, waits for their pods to go, then scales the new one up;
// a change of spec.replicas alone is spread over the active ReplicaSets in proportion.

import type { ApiObject } from '../api/types.js';
import type { DeploymentSync } from './deployment-sync.js';
import { deploymentComplete } from './deployment-sync.js';
import {
  activeReplicaSets,
  availableReplicas,
  byCreation,
  bySizeNewer,
  bySizeOlder,
  desiredReplicasAnnotation,
  keptAvailable,
  maxReplicasAnnotation,
  maxSurgeOf,
  maxUnavailableOf,
  newRSNewReplicas,
  specReplicas,
  statusReplicas,
  sum,
} from './deployment-util.js';

const present = (rs: ApiObject | undefined): ApiObject[] => (rs ? [rs] : []);

export async function rolloutRolling(s: DeploymentSync, rsList: ApiObject[]): Promise<void> {
  const got = await s.getAllReplicaSetsAndSyncRevision(rsList, true);
  const newRS = got.newRS as ApiObject;
  const allRSs = [...got.oldRSs, newRS];
  if (await reconcileNewReplicaSet(s, allRSs, newRS)) return s.syncRolloutStatus(allRSs, newRS);
  if (await reconcileOldReplicaSets(s, allRSs, activeReplicaSets(got.oldRSs), newRS)) {
    return s.syncRolloutStatus(allRSs, newRS);
  }
  if (deploymentComplete(s.d, s.status)) await s.cleanupDeployment(got.oldRSs);
  return s.syncRolloutStatus(allRSs, newRS);
}

async function reconcileNewReplicaSet(
  s: DeploymentSync,
  allRSs: ApiObject[],
  newRS: ApiObject,
): Promise<boolean> {
  const desired = s.spec.replicas;
  if (specReplicas(newRS) === desired) return false;
  if (specReplicas(newRS) > desired) return (await s.scaleReplicaSetAndRecordEvent(newRS, desired)).scaled;
  return (await s.scaleReplicaSetAndRecordEvent(newRS, newRSNewReplicas(s.d, allRSs, newRS))).scaled;
}

async function reconcileOldReplicaSets(
  s: DeploymentSync,
  allRSs: ApiObject[],
  oldRSs: ApiObject[],
  newRS: ApiObject,
): Promise<boolean> {
  if (sum(oldRSs, specReplicas) === 0) return false;
  const minAvailable = s.spec.replicas - maxUnavailableOf(s.d);
  const newUnavailable = specReplicas(newRS) - keptAvailable(newRS);
  // Room to scale down: what exists, less what must stay available, less new pods not yet available.
  const maxScaledDown = sum(allRSs, specReplicas) - minAvailable - newUnavailable;
  if (maxScaledDown <= 0) return false;
  const cleaned = await cleanupUnhealthyReplicas(s, oldRSs, maxScaledDown);
  const scaledDown = await scaleDownOldReplicaSetsForRollingUpdate(
    s,
    [...cleaned.oldRSs, newRS],
    cleaned.oldRSs,
  );
  return cleaned.count + scaledDown > 0;
}

/** Scale old ReplicaSets down by their unavailable pods first (they serve nothing). */
async function cleanupUnhealthyReplicas(
  s: DeploymentSync,
  oldRSs: ApiObject[],
  maxCleanup: number,
): Promise<{ oldRSs: ApiObject[]; count: number }> {
  const sorted = [...oldRSs].sort(byCreation);
  let total = 0;
  for (const [i, rs] of sorted.entries()) {
    if (total >= maxCleanup) break;
    const unhealthy = specReplicas(rs) - keptAvailable(rs);
    if (specReplicas(rs) === 0 || unhealthy === 0) continue;
    const down = Math.min(maxCleanup - total, unhealthy);
    sorted[i] = (await s.scaleReplicaSetAndRecordEvent(rs, specReplicas(rs) - down)).rs;
    total += down;
  }
  return { oldRSs: sorted, count: total };
}

/** Scale old ReplicaSets down, oldest first, while availability stays above minAvailable. */
async function scaleDownOldReplicaSetsForRollingUpdate(
  s: DeploymentSync,
  allRSs: ApiObject[],
  oldRSs: ApiObject[],
): Promise<number> {
  const minAvailable = s.spec.replicas - maxUnavailableOf(s.d);
  const available = sum(allRSs, keptAvailable);
  if (available <= minAvailable) return 0;
  const target = available - minAvailable;
  let total = 0;
  for (const rs of [...oldRSs].sort(byCreation)) {
    if (total >= target) break;
    if (specReplicas(rs) === 0) continue;
    const down = Math.min(specReplicas(rs), target - total);
    await s.scaleReplicaSetAndRecordEvent(rs, specReplicas(rs) - down);
    total += down;
  }
  return total;
}

export async function rolloutRecreate(
  s: DeploymentSync,
  rsList: ApiObject[],
  podsByRS: Map<string, ApiObject[]>,
): Promise<void> {
  let { newRS, oldRSs } = await s.getAllReplicaSetsAndSyncRevision(rsList, false);
  let allRSs = [...oldRSs, ...present(newRS)];
  let scaledDown = false;
  for (const rs of activeReplicaSets(oldRSs)) {
    if ((await s.scaleReplicaSetAndRecordEvent(rs, 0)).scaled) scaledDown = true;
  }
  if (scaledDown || oldPodsRunning(newRS, oldRSs, podsByRS)) return s.syncRolloutStatus(allRSs, newRS);
  if (!newRS) {
    ({ newRS, oldRSs } = await s.getAllReplicaSetsAndSyncRevision(rsList, true));
    allRSs = [...oldRSs, ...present(newRS)];
  }
  if (newRS) await s.scaleReplicaSetAndRecordEvent(newRS, s.spec.replicas);
  if (deploymentComplete(s.d, s.status)) await s.cleanupDeployment(oldRSs);
  return s.syncRolloutStatus(allRSs, newRS);
}

/** Whether pods of old ReplicaSets still exist (terminating ones too): Recreate waits for them. */
function oldPodsRunning(
  newRS: ApiObject | undefined,
  oldRSs: ApiObject[],
  podsByRS: Map<string, ApiObject[]>,
): boolean {
  if (sum(oldRSs, statusReplicas) > 0) return true;
  for (const [uid, pods] of podsByRS) {
    if (newRS && uid === newRS.metadata.uid) continue;
    const phase = (p: ApiObject) => (p.status as { phase?: string } | undefined)?.phase;
    if (pods.some((p) => phase(p) !== 'Failed' && phase(p) !== 'Succeeded')) return true;
  }
  return false;
}

/** Paused deployments and changes of spec.replicas alone: size only, no rollout. */
export async function syncScaling(s: DeploymentSync, rsList: ApiObject[]): Promise<void> {
  const { newRS, oldRSs } = await s.getAllReplicaSetsAndSyncRevision(rsList, false);
  await scale(s, newRS, oldRSs);
  if (s.spec.paused) await s.cleanupDeployment(oldRSs);
  await s.syncDeploymentStatus([...oldRSs, ...present(newRS)], newRS);
}

/** Whether spec.replicas changed since the active ReplicaSets were last sized. */
export async function isScalingEvent(s: DeploymentSync, rsList: ApiObject[]): Promise<boolean> {
  const { newRS, oldRSs } = await s.getAllReplicaSetsAndSyncRevision(rsList, false);
  return activeReplicaSets([...oldRSs, ...present(newRS)]).some((rs) => {
    const desired = desiredReplicasAnnotation(rs);
    return desired !== undefined && desired !== s.spec.replicas;
  });
}

async function scale(s: DeploymentSync, newRS: ApiObject | undefined, oldRSs: ApiObject[]): Promise<void> {
  const desired = s.spec.replicas;
  const only = activeOrLatest(newRS, oldRSs);
  if (only) {
    if (specReplicas(only) !== desired) await s.scaleReplicaSetAndRecordEvent(only, desired);
    return;
  }
  if (newRS && isSaturated(desired, newRS)) {
    for (const rs of activeReplicaSets(oldRSs)) await s.scaleReplicaSetAndRecordEvent(rs, 0);
    return;
  }
  if (s.spec.recreate) return;
  const all = activeReplicaSets([...oldRSs, ...present(newRS)]);
  const allowed = desired > 0 ? desired + maxSurgeOf(s.d) : 0;
  const toAdd = allowed - sum(all, specReplicas);
  const op = toAdd > 0 ? 'up' : 'down';
  if (toAdd > 0) all.sort(bySizeNewer);
  else if (toAdd < 0) all.sort(bySizeOlder);
  const sizes = new Map<ApiObject, number>();
  let added = 0;
  for (const rs of all) {
    const p = toAdd === 0 ? 0 : proportion(s, rs, toAdd, added);
    sizes.set(rs, specReplicas(rs) + p);
    added += p;
  }
  const first = all[0];
  // What rounding left over goes to the largest ReplicaSet.
  if (toAdd !== 0 && first) sizes.set(first, Math.max(0, (sizes.get(first) ?? 0) + toAdd - added));
  for (const rs of all) await s.scaleReplicaSet(rs, sizes.get(rs) ?? specReplicas(rs), op);
}

/** The one active ReplicaSet, else the newest when none is active; undefined when several are. */
function activeOrLatest(newRS: ApiObject | undefined, oldRSs: ApiObject[]): ApiObject | undefined {
  const newestFirst = [...oldRSs].sort(byCreation).reverse();
  const active = activeReplicaSets([...newestFirst, ...present(newRS)]);
  if (active.length === 0) return newRS ?? newestFirst[0];
  return active.length === 1 ? active[0] : undefined;
}

function isSaturated(desired: number, rs: ApiObject): boolean {
  return (
    specReplicas(rs) === desired &&
    desiredReplicasAnnotation(rs) === desired &&
    availableReplicas(rs) === desired
  );
}

/** Kubernetes' GetProportion: this RS's share of `toAdd`, bounded by what is left. */
function proportion(s: DeploymentSync, rs: ApiObject, toAdd: number, added: number): number {
  if (specReplicas(rs) === 0 || toAdd === added) return 0;
  const fraction = replicaSetFraction(s, rs);
  const allowed = toAdd - added;
  return toAdd > 0 ? Math.min(fraction, allowed) : Math.max(fraction, allowed);
}

function replicaSetFraction(s: DeploymentSync, rs: ApiObject): number {
  const desired = s.spec.replicas;
  if (desired === 0) return -specReplicas(rs);
  const total = desired + maxSurgeOf(s.d);
  const annotated = maxReplicasAnnotation(rs) ?? s.status.replicas ?? 0;
  if (annotated === 0) return 0;
  const exact = (specReplicas(rs) * total) / annotated;
  return Math.sign(exact) * Math.round(Math.abs(exact)) - specReplicas(rs);
}
