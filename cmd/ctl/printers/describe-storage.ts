// kubectl describe for PersistentVolume, PersistentVolumeClaim and StorageClass
// (k8s.io/kubectl/pkg/describe: PersistentVolumeDescriber, PersistentVolumeClaimDescriber,
// StorageClassDescriber).
import { claimsOfPod, isDefaultClass, podTerminated } from '../../../pkg/api/storage.js';
import type { ApiObject } from '../../../pkg/api/types.js';
import { accessModesShort, volumeClaim } from './columns-storage.js';
import { writeAnnotations, writeLabels } from './describe-pod.js';
import { arr, at, obj, objs, str } from './fields.js';
import type { DescribeWriter } from './tabwriter.js';

const finalizers = (o: ApiObject): string => `[${(o.metadata.finalizers ?? []).join(' ')}]`;

/** The pods of `related` that use the claim (kubectl's getPodsForPVC: not yet terminated). */
export function podsUsingClaim(claim: ApiObject, related: readonly ApiObject[]): string[] {
  return related
    .filter(
      (p) =>
        p.kind === 'Pod' &&
        p.metadata.namespace === claim.metadata.namespace &&
        !podTerminated(p) &&
        claimsOfPod(p).includes(claim.metadata.name ?? ''),
    )
    .map((p) => p.metadata.name ?? '')
    .sort();
}

function writeList(w: DescribeWriter, title: string, items: string[]): void {
  w.write(0, `${title}:\t`);
  if (items.length === 0) {
    w.line('<none>');
    return;
  }
  items.forEach((item, i) => {
    if (i !== 0) w.write(0, '\t');
    w.line(item);
  });
}

export function describeClaim(w: DescribeWriter, pvc: ApiObject, related: readonly ApiObject[]): void {
  const phase = pvc.metadata.deletionTimestamp ? 'Terminating' : str(at(pvc, 'status.phase'));
  w.write(0, `Name:\t${pvc.metadata.name ?? ''}\n`);
  w.write(0, `Namespace:\t${pvc.metadata.namespace ?? ''}\n`);
  w.write(0, `StorageClass:\t${str(at(pvc, 'spec.storageClassName'))}\n`);
  w.write(0, `Status:\t${phase}\n`);
  w.write(0, `Volume:\t${str(at(pvc, 'spec.volumeName'))}\n`);
  writeLabels(w, 'Labels', pvc.metadata.labels);
  writeAnnotations(w, 'Annotations', pvc.metadata.annotations);
  w.write(0, `Finalizers:\t${finalizers(pvc)}\n`);
  const bound = str(at(pvc, 'status.phase')) === 'Bound';
  w.write(0, `Capacity:\t${bound ? str(at(pvc, 'status.capacity.storage')) : ''}\n`);
  w.write(0, `Access Modes:\t${bound ? accessModesShort(at(pvc, 'status.accessModes')) : ''}\n`);
  w.write(0, `VolumeMode:\t${str(at(pvc, 'spec.volumeMode')) || 'Filesystem'}\n`);
  writeList(w, 'Used By', podsUsingClaim(pvc, related));
}

/** kubectl's printNodeSelectorTermsMultilineWithIndent: `key in [a, b]`, ANDed with commas. */
function termText(term: Record<string, unknown>): string {
  const parts = [...objs(term.matchExpressions), ...objs(term.matchFields)].map((r) => {
    const op = str(r.operator);
    const values = arr(r.values).map(str);
    const lower =
      op === 'In'
        ? 'in'
        : op === 'NotIn'
          ? 'notin'
          : op === 'Exists'
            ? 'exists'
            : op === 'DoesNotExist'
              ? 'does not exist'
              : op;
    return values.length > 0 ? `${str(r.key)} ${lower} [${values.join(', ')}]` : `${str(r.key)} ${lower}`;
  });
  return parts.join(', ');
}

export function describeVolume(w: DescribeWriter, pv: ApiObject): void {
  w.write(0, `Name:\t${pv.metadata.name ?? ''}\n`);
  writeLabels(w, 'Labels', pv.metadata.labels);
  writeAnnotations(w, 'Annotations', pv.metadata.annotations);
  w.write(0, `Finalizers:\t${finalizers(pv)}\n`);
  w.write(0, `StorageClass:\t${str(at(pv, 'spec.storageClassName'))}\n`);
  const phase = pv.metadata.deletionTimestamp ? 'Terminating' : str(at(pv, 'status.phase'));
  w.write(0, `Status:\t${phase}\n`);
  w.write(0, `Claim:\t${volumeClaim(pv)}\n`);
  w.write(0, `Reclaim Policy:\t${str(at(pv, 'spec.persistentVolumeReclaimPolicy'))}\n`);
  w.write(0, `Access Modes:\t${accessModesShort(at(pv, 'spec.accessModes'))}\n`);
  w.write(0, `VolumeMode:\t${str(at(pv, 'spec.volumeMode')) || 'Filesystem'}\n`);
  w.write(0, `Capacity:\t${str(at(pv, 'spec.capacity.storage'))}\n`);
  const terms = objs(at(pv, 'spec.nodeAffinity.required.nodeSelectorTerms'));
  if (terms.length === 0) w.write(0, 'Node Affinity:\t<none>\n');
  else {
    w.write(0, 'Node Affinity:\t\n');
    w.write(1, 'Required Terms:\t\n');
    for (const [i, t] of terms.entries()) w.write(2, `Term ${i}:\t${termText(t)}\n`);
  }
  w.write(0, `Message:\t${str(at(pv, 'status.message'))}\n`);
  w.write(0, 'Source:\n');
  const local = obj(at(pv, 'spec.local'));
  const hostPath = obj(at(pv, 'spec.hostPath'));
  if (at(pv, 'spec.local') !== undefined) {
    w.write(1, 'Type:\tLocalVolume (a persistent volume backed by local storage on a node)\n');
    w.write(1, `Path:\t${str(local.path)}\n`);
  } else if (at(pv, 'spec.hostPath') !== undefined) {
    w.write(1, 'Type:\tHostPath (bare host directory volume)\n');
    w.write(1, `Path:\t${str(hostPath.path)}\n`);
    w.write(1, `HostPathType:\t${str(hostPath.type)}\n`);
  }
}

export function describeStorageClass(w: DescribeWriter, sc: ApiObject): void {
  w.write(0, `Name:\t${sc.metadata.name ?? ''}\n`);
  w.write(0, `IsDefaultClass:\t${isDefaultClass(sc) ? 'Yes' : 'No'}\n`);
  writeAnnotations(w, 'Annotations', sc.metadata.annotations);
  w.write(0, `Provisioner:\t${str(sc.provisioner)}\n`);
  const params = obj(sc.parameters);
  const keys = Object.keys(params).sort();
  w.write(
    0,
    `Parameters:\t${keys.length === 0 ? '<none>' : keys.map((k) => `${k}=${str(params[k])}`).join(',')}\n`,
  );
  w.write(
    0,
    `AllowVolumeExpansion:\t${sc.allowVolumeExpansion === undefined ? '<unset>' : String(sc.allowVolumeExpansion === true)}\n`,
  );
  const mounts = arr(sc.mountOptions).map(str);
  w.write(0, `MountOptions:\t${mounts.length === 0 ? '<none>' : mounts.join(', ')}\n`);
  w.write(0, `ReclaimPolicy:\t${str(sc.reclaimPolicy) || 'Delete'}\n`);
  w.write(0, `VolumeBindingMode:\t${str(sc.volumeBindingMode) || 'Immediate'}\n`);
}
