// berthctl cordon, uncordon, drain: take a node out of scheduling and empty it, as kubectl
// does. Cordon is a guarded update of spec.unschedulable, re-read and retried on a conflict.
// Drain cordons, then deletes every pod on the node gracefully and waits until they are gone.
// Pods no controller owns would be lost for good: drain refuses them unless --force.
import { type Command, InvalidArgumentError } from 'commander';
import { ApiError, ApiErrorCode } from '../../../pkg/api/errors.js';
import type { ApiObject } from '../../../pkg/api/types.js';
import type { CtlContext, CtlIO } from '../context.js';
import { CtlError, formatDuration } from '../errors.js';
import { action, examples } from './run.js';

const ATTEMPTS = 5;
const DEFAULT_DRAIN_TIMEOUT_MS = 5 * 60_000;
const POLL_MS = 500;
/** How often drain says what it still waits for. */
const PROGRESS_MS = 5000;

/**
 * Set spec.unschedulable to `unschedulable`; false when it already was. A conflict (someone
 * else wrote the node: its agent, every few seconds) reads it again and retries.
 */
async function setUnschedulable(ctx: CtlContext, name: string, unschedulable: boolean): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    const node = await ctx.api.get('nodes', undefined, name);
    const spec = { ...(node.spec ?? {}) };
    if ((spec.unschedulable === true) === unschedulable) return false;
    // kubectl leaves unschedulable out when false (omitempty); so do we.
    if (unschedulable) spec.unschedulable = true;
    else delete spec.unschedulable;
    try {
      await ctx.api.update({ ...node, spec });
      return true;
    } catch (err) {
      const retry =
        err instanceof ApiError &&
        (err.code === ApiErrorCode.Conflict || err.code === ApiErrorCode.Unavailable);
      if (!retry || attempt >= ATTEMPTS) throw err;
    }
  }
}

async function cordon(ctx: CtlContext, names: string[], unschedulable: boolean): Promise<void> {
  const verb = unschedulable ? 'cordoned' : 'uncordoned';
  for (const name of names) {
    const changed = await setUnschedulable(ctx, name, unschedulable);
    ctx.println(`node/${name} ${changed ? verb : `already ${verb}`}`);
  }
}

interface DrainFlags {
  gracePeriod?: number;
  force?: boolean;
  ignoreDaemonsets?: boolean;
}

const podRef = (p: ApiObject) => `${p.metadata.namespace}/${p.metadata.name}`;
const ownersOf = (p: ApiObject) => p.metadata.ownerReferences ?? [];
const isFinished = (p: ApiObject) => ['Succeeded', 'Failed'].includes(String(p.status?.phase ?? ''));

/** kubectl drain's rules: which pods go, which are skipped, which stop the drain. */
function classify(pods: ApiObject[], flags: DrainFlags) {
  const evict: ApiObject[] = [];
  const daemonSet: ApiObject[] = [];
  const unowned: ApiObject[] = [];
  for (const p of pods) {
    const owners = ownersOf(p);
    if (owners.some((o) => o.kind === 'DaemonSet')) daemonSet.push(p);
    else {
      // A finished pod has nothing left to lose; one nobody owns would not come back elsewhere.
      if (owners.length === 0 && !isFinished(p)) unowned.push(p);
      evict.push(p);
    }
  }
  const problems: string[] = [];
  if (unowned.length > 0 && !flags.force) {
    problems.push(
      `cannot delete pods that declare no controller (use --force to override): ${unowned.map(podRef).join(', ')}`,
    );
  }
  if (daemonSet.length > 0 && !flags.ignoreDaemonsets) {
    problems.push(
      `cannot delete DaemonSet-managed pods (use --ignore-daemonsets to ignore): ${daemonSet.map(podRef).join(', ')}`,
    );
  }
  return { evict, daemonSet, unowned, problems };
}

/** Whether the pod `p` was is gone: deleted, or replaced by another of the same name. */
async function isGone(ctx: CtlContext, p: ApiObject): Promise<boolean> {
  try {
    const now = await ctx.api.get('pods', p.metadata.namespace, p.metadata.name ?? '');
    return now.metadata.uid !== p.metadata.uid;
  } catch (err) {
    if (err instanceof ApiError && err.code === ApiErrorCode.NotFound) return true;
    throw err;
  }
}

async function drain(ctx: CtlContext, flags: DrainFlags, name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await cordon(ctx, [name], true);

  const list = await ctx.api.list('pods', { allNamespaces: true, fieldSelector: `spec.nodeName=${name}` });
  const { evict, daemonSet, unowned, problems } = classify(list.items, flags);
  if (problems.length > 0) {
    throw new CtlError(`unable to drain node "${name}": ${problems.join('; ')}`);
  }
  if (daemonSet.length > 0) {
    ctx.io.stderr(`Warning: ignoring DaemonSet-managed pods: ${daemonSet.map(podRef).join(', ')}\n`);
  }
  if (unowned.length > 0) {
    ctx.io.stderr(`Warning: deleting pods that declare no controller: ${unowned.map(podRef).join(', ')}\n`);
  }

  const pending: ApiObject[] = [];
  for (const p of evict) {
    ctx.println(`evicting pod ${podRef(p)}`);
    try {
      await ctx.api.delete('pods', p.metadata.namespace, p.metadata.name ?? '', {
        ...(flags.gracePeriod !== undefined && flags.gracePeriod >= 0
          ? { gracePeriodSeconds: flags.gracePeriod }
          : {}),
        ...(p.metadata.uid ? { preconditionUid: p.metadata.uid } : {}),
      });
    } catch (err) {
      // Gone already, or replaced by a new pod of that name (the precondition): nothing to wait for.
      const gone =
        err instanceof ApiError && (err.code === ApiErrorCode.NotFound || err.code === ApiErrorCode.Conflict);
      if (!gone) throw err;
    }
    pending.push(p);
  }

  let interrupted = false;
  const stop = ctx.io.onInterrupt(() => {
    interrupted = true;
  });
  try {
    let nextProgress = Date.now() + PROGRESS_MS;
    while (pending.length > 0) {
      for (const p of [...pending]) {
        if (await isGone(ctx, p)) {
          pending.splice(pending.indexOf(p), 1);
          ctx.println(`pod/${p.metadata.name} evicted`);
        }
      }
      if (pending.length === 0) break;
      if (interrupted) throw new CtlError(`drain of node "${name}" interrupted; it stays cordoned`);
      if (Date.now() >= deadline) {
        throw new CtlError(
          `drain of node "${name}" did not complete within ${formatDuration(timeoutMs)}: still terminating: ${pending.map(podRef).join(', ')}; it stays cordoned (raise --timeout to wait longer)`,
        );
      }
      if (Date.now() >= nextProgress) {
        ctx.io.stderr(
          `waiting for ${pending.length} pod(s) to terminate: ${pending.map(podRef).join(', ')}\n`,
        );
        nextProgress = Date.now() + PROGRESS_MS;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    stop();
  }
  ctx.println(`node/${name} drained`);
}

/** --grace-period: whole seconds, -1 for each pod's own terminationGracePeriodSeconds. */
function parseGracePeriod(value: string): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < -1) {
    throw new InvalidArgumentError(`"${value}" is not a number of seconds (-1: the pod's own)`);
  }
  return n;
}

export function addNodeCommands(program: Command, io: CtlIO): void {
  program
    .command('cordon')
    .description('Mark nodes unschedulable: new pods are not placed there, running ones stay')
    .argument('<node...>', 'node names')
    .addHelpText('after', examples('berthctl cordon n1', 'berthctl cordon n1 n2'))
    .action(action(io, (ctx, _flags: object, names: string[]) => cordon(ctx, names, true)));

  program
    .command('uncordon')
    .description('Mark nodes schedulable again')
    .argument('<node...>', 'node names')
    .addHelpText('after', examples('berthctl uncordon n1'))
    .action(action(io, (ctx, _flags: object, names: string[]) => cordon(ctx, names, false)));

  program
    .command('drain')
    .description(
      'Cordon a node, then delete its pods gracefully and wait until they are gone (for maintenance). ' +
        `Pods no controller owns are refused unless --force. Waits for --timeout when given, else ${formatDuration(DEFAULT_DRAIN_TIMEOUT_MS)}.`,
    )
    .argument('<node>', 'node name')
    .option('--grace-period <seconds>', "each pod's grace period (-1: the pod's own)", parseGracePeriod)
    .option('--force', 'also delete pods that no controller owns (they are gone for good)')
    .option('--ignore-daemonsets', 'leave DaemonSet-managed pods in place')
    .addHelpText(
      'after',
      examples(
        'berthctl drain n1',
        'berthctl drain n1 --ignore-daemonsets --grace-period 10 --timeout 2m',
        'berthctl drain n1 --force && berthctl uncordon n1',
      ),
    )
    .action((...raw: unknown[]) => {
      // --timeout is berthctl's global flag: given, it bounds the wait; else drain waits 5m.
      const cmd = raw[raw.length - 1] as Command;
      const explicit = cmd.getOptionValueSourceWithGlobals('timeout') === 'cli';
      return action(io, (ctx, flags: DrainFlags, name: string) =>
        drain(ctx, flags, name, explicit ? ctx.options.timeoutMs : DEFAULT_DRAIN_TIMEOUT_MS),
      )(...raw);
    });
}
