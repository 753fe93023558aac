// The pure core of berthctl rollout, after kubectl's polymorphichelpers (rollout_status.go,
// history.go, rollback.go, objectrestarter.go, objectpauser.go): what a Deployment's status
// says about its rollout, its revision history, and the Deployment each command writes back.
// Objects in, objects or text out; the commands do the reading, writing and retrying.
import { InvalidArgumentError } from 'commander';
import type { KindInfo } from '../../pkg/api/kinds.js';
import type { ApiObject, JsonObject } from '../../pkg/api/types.js';
import { CtlError, UsageError } from './errors.js';
import { parseObjectArgs } from './object-args.js';
import { writePodTemplate } from './printers/describe-pod.js';
import { DescribeWriter } from './printers/tabwriter.js';

export const POD_TEMPLATE_HASH = 'pod-template-hash';
export const REVISION = 'deployment.kubernetes.io/revision';
export const CHANGE_CAUSE = 'kubernetes.io/change-cause';
export const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';
/** The Progressing reason the controller sets when the progress deadline passed. */
export const TIMED_OUT_REASON = 'ProgressDeadlineExceeded';

/** Deployment annotations a rollback keeps, and ReplicaSet annotations it does not copy. */
const ANNOTATIONS_TO_SKIP = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  REVISION,
  'deployment.kubernetes.io/revision-history',
  'deployment.kubernetes.io/desired-replicas',
  'deployment.kubernetes.io/max-replicas',
  'deprecated.deployment.rollback.to',
]);

type Obj = Record<string, unknown>;
const objOf = (v: unknown): Obj =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {};
const numOf = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/**
 * The Deployments named by `args` (`deploy/web`, `deployment web`, `deployments.apps/web`);
 * other kinds are refused with kubectl's words for `what` ('status viewer', ...).
 */
export function deploymentNames(args: string[], what: string): string[] {
  const names: string[] = [];
  for (const { kind, names: n } of parseObjectArgs(args)) {
    if (kind.kind !== 'Deployment') throw notImplemented(kind, what);
    if (n.length === 0) throw new UsageError(`name the deployment, e.g. deploy/web`);
    names.push(...n);
  }
  return names;
}

function notImplemented(kind: KindInfo, what: string): CtlError {
  return new CtlError(
    `no ${what} has been implemented for ${kind.group ? `${kind.kind}.${kind.group}` : kind.kind}`,
  );
}

/** A Deployment's revision annotation; 0 when absent or not a number (kubectl's Revision). */
export function revisionOf(o: ApiObject): number {
  const v = o.metadata.annotations?.[REVISION];
  if (v === undefined) return 0;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : 0;
}

export interface RolloutStatus {
  /** One line, without its newline. */
  message: string;
  /** The rollout is complete: stop watching. */
  done: boolean;
}

/**
 * kubectl's DeploymentStatusViewer.Status: what to print about `d`'s rollout, or a CtlError
 * when it failed (progress deadline exceeded) or is not the `revision` asked for (> 0).
 */
export function rolloutStatus(d: ApiObject, revision = 0): RolloutStatus {
  const name = d.metadata.name ?? '';
  if (revision > 0) {
    const running = revisionOf(d);
    if (revision !== running)
      throw new CtlError(
        `desired revision (${revision}) is different from the running revision (${running})`,
      );
  }
  const spec = objOf(d.spec);
  const status = objOf(d.status);
  if ((d.metadata.generation ?? 0) > numOf(status.observedGeneration)) {
    return { message: 'Waiting for deployment spec update to be observed...', done: false };
  }
  const conditions = Array.isArray(status.conditions) ? status.conditions.map(objOf) : [];
  const progressing = conditions.find((c) => c.type === 'Progressing');
  if (progressing?.reason === TIMED_OUT_REASON) {
    throw new CtlError(`deployment "${name}" exceeded its progress deadline`);
  }
  const replicas = numOf(status.replicas);
  const updated = numOf(status.updatedReplicas);
  const available = numOf(status.availableReplicas);
  const waiting = (what: string) => ({
    message: `Waiting for deployment "${name}" rollout to finish: ${what}...`,
    done: false,
  });
  if (typeof spec.replicas === 'number' && updated < spec.replicas) {
    return waiting(`${updated} out of ${spec.replicas} new replicas have been updated`);
  }
  if (replicas > updated) return waiting(`${replicas - updated} old replicas are pending termination`);
  if (available < updated) return waiting(`${available} of ${updated} updated replicas are available`);
  return { message: `deployment "${name}" successfully rolled out`, done: true };
}

/** The ReplicaSets `d` controls (a controller ownerReference with its uid). */
export function ownedReplicaSets(d: ApiObject, replicaSets: readonly ApiObject[]): ApiObject[] {
  return replicaSets.filter((rs) =>
    (rs.metadata.ownerReferences ?? []).some((r) => r.controller === true && r.uid === d.metadata.uid),
  );
}

/** Pod templates equal but for the pod-template-hash label (the controller's equalIgnoreHash). */
export function equalIgnoreHash(a: unknown, b: unknown): boolean {
  return stableJson(withoutHash(a)) === stableJson(withoutHash(b));
}

function withoutHash(template: unknown): Obj {
  const t = structuredClone(objOf(template));
  const labels = objOf(objOf(t.metadata).labels);
  if (POD_TEMPLATE_HASH in labels) {
    delete labels[POD_TEMPLATE_HASH];
    if (Object.keys(labels).length === 0) delete objOf(t.metadata).labels;
  }
  return t;
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Obj;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export interface HistoryEntry {
  revision: number;
  /** The ReplicaSet's pod template, with the change-cause annotation when the RS has one. */
  template: Obj;
  changeCause: string;
}

/** kubectl's ViewHistory: one entry per revision, lowest first (a later RS wins a tie). */
export function rolloutHistory(replicaSets: readonly ApiObject[]): HistoryEntry[] {
  const byRevision = new Map<number, HistoryEntry>();
  for (const rs of replicaSets) {
    const template = structuredClone(objOf(objOf(rs.spec).template));
    const changeCause = rs.metadata.annotations?.[CHANGE_CAUSE] ?? '';
    if (changeCause !== '') {
      const metadata = objOf(template.metadata);
      metadata.annotations = { ...objOf(metadata.annotations), [CHANGE_CAUSE]: changeCause };
      template.metadata = metadata;
    }
    const revision = revisionOf(rs);
    byRevision.set(revision, { revision, template, changeCause });
  }
  return [...byRevision.values()].sort((a, b) => a.revision - b.revision);
}

/** `deployment.apps/web` and its REVISION / CHANGE-CAUSE table, as `kubectl rollout history` prints them. */
export function formatHistory(prefix: string, entries: readonly HistoryEntry[]): string {
  if (entries.length === 0) return `${prefix}\nNo rollout history found.\n`;
  const rows = [
    ['REVISION', 'CHANGE-CAUSE'],
    ...entries.map((e) => [String(e.revision), e.changeCause || '<none>']),
  ];
  return `${prefix}\n${historyTable(rows)}\n\n`;
}

/** kubectl's tabbedString: a tabwriter with no minimum width and two spaces of padding. */
function historyTable(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 2))).join(''))
    .join('\n');
}

/**
 * One revision's pod template, as `kubectl rollout history --revision N` prints it: kubectl's
 * DescribePodTemplate through a bare PrefixWriter (tabs are left as they are, not aligned).
 */
export function formatRevision(prefix: string, entries: readonly HistoryEntry[], revision: number): string {
  const entry = entries.find((e) => e.revision === revision);
  if (!entry) throw new CtlError('unable to find the specified revision');
  const w = new PrefixWriter();
  writePodTemplate(w, entry.template);
  return `${prefix} with revision #${revision}\n${w.toString()}\n`;
}

/** kubectl's PrefixWriter without the tabwriter printTemplate does not use. */
class PrefixWriter extends DescribeWriter {
  private text = '';
  override write(level: number, text: string): void {
    this.text += '  '.repeat(level) + text;
  }
  override line(text: string): void {
    this.text += `${text}\n`;
  }
  override flush(): void {}
  override toString(): string {
    return this.text;
  }
}

/**
 * kubectl's deploymentRevision: the ReplicaSet of `toRevision`, or with 0 the one before the
 * latest; a CtlError when there is none.
 */
export function rollbackTarget(
  name: string,
  replicaSets: readonly ApiObject[],
  toRevision: number,
): ApiObject {
  let latest: ApiObject | undefined;
  let latestRevision = -1;
  let previous: ApiObject | undefined;
  let previousRevision = -1;
  for (const rs of replicaSets) {
    const v = revisionOf(rs);
    if (toRevision > 0) {
      if (v === toRevision) return rs;
    } else if (latestRevision < v) {
      previous = latest;
      previousRevision = latestRevision;
      latest = rs;
      latestRevision = v;
    } else if (previousRevision < v) {
      previous = rs;
      previousRevision = v;
    }
  }
  if (toRevision > 0) throw new CtlError(`unable to find specified revision ${toRevision} in history`);
  if (!previous) throw new CtlError(`no rollout history found for deployment "${name}"`);
  return previous;
}

export type Rollback =
  | { kind: 'skipped'; revision: number }
  | { kind: 'update'; deployment: ApiObject; revision: number };

/**
 * kubectl's DeploymentRollbacker.Rollback on `d`: its template replaced by `rs`'s (without
 * pod-template-hash), the ReplicaSet's annotations copied over but for the controller's
 * own; skipped when the template already is that revision's. `d` is not mutated.
 */
export function rollback(d: ApiObject, rs: ApiObject): Rollback {
  const revision = revisionOf(rs);
  if (objOf(d.spec).paused === true) {
    throw new CtlError(
      `you cannot rollback a paused deployment; resume it first with 'berthctl rollout resume deployment/${d.metadata.name ?? ''}' and try again`,
    );
  }
  const template = objOf(objOf(rs.spec).template);
  if (equalIgnoreHash(template, objOf(d.spec).template)) return { kind: 'skipped', revision };
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(d.metadata.annotations ?? {})) {
    if (ANNOTATIONS_TO_SKIP.has(k)) annotations[k] = v;
  }
  for (const [k, v] of Object.entries(rs.metadata.annotations ?? {})) {
    if (!ANNOTATIONS_TO_SKIP.has(k)) annotations[k] = v;
  }
  const deployment: ApiObject = {
    ...d,
    metadata: { ...d.metadata, annotations },
    spec: { ...d.spec, template: withoutHash(template) as JsonObject },
  };
  return { kind: 'update', deployment, revision };
}

/** kubectl's ObjectRestarter: the template annotated with the restart time (`now`, RFC 3339). */
export function restart(d: ApiObject, now: Date): ApiObject {
  const spec = objOf(d.spec);
  if (spec.paused === true) throw new CtlError(`can't restart paused deployment (run rollout resume first)`);
  const template = objOf(spec.template);
  const metadata = objOf(template.metadata);
  const annotations = { ...objOf(metadata.annotations), [RESTARTED_AT]: rfc3339Local(now) };
  return {
    ...d,
    spec: { ...d.spec, template: { ...template, metadata: { ...metadata, annotations } } as JsonObject },
  };
}

/**
 * kubectl's ObjectPauser and ObjectResumer: `d` with spec.paused set to `paused`; a CtlError in
 * kubectl's words when it already is.
 */
export function setPaused(d: ApiObject, paused: boolean): ApiObject {
  if ((objOf(d.spec).paused === true) === paused) {
    throw new CtlError(
      `deployments.apps "${d.metadata.name ?? ''}" ${paused ? 'is already paused' : 'is not paused'}`,
    );
  }
  return { ...d, spec: { ...d.spec, paused } };
}

/** Go's time.Format(time.RFC3339) in local time: seconds, and Z or the UTC offset. */
export function rfc3339Local(t: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const date = `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())}`;
  const time = `${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}`;
  const offset = -t.getTimezoneOffset();
  if (offset === 0) return `${date}T${time}Z`;
  const abs = Math.abs(offset);
  return `${date}T${time}${offset < 0 ? '-' : '+'}${p(Math.floor(abs / 60))}:${p(abs % 60)}`;
}

/** The value of `-w` / `--watch`: true alone, or true/false after = (kubectl's `-w=false`). */
export function parseWatchFlag(value: string): boolean {
  const v = value.replace(/^=/, '').toLowerCase();
  if (v === 'true' || v === '1' || v === 't') return true;
  if (v === 'false' || v === '0' || v === 'f') return false;
  throw new InvalidArgumentError(`takes true or false, got "${value}" (name the deployment before -w)`);
}
