// berthctl top: CPU and memory of pods and nodes from the engines' stats, in kubectl top's
// columns and units (CPU in millicores, memory in MiB). -o json gives metrics.k8s.io-shaped
// lists (PodMetricsList, NodeMetricsList) with the exact values. The autoscaler reads the
// same call (pkg/controller/pod-metrics-top.ts), unrounded.
import { type Command, Option } from 'commander';
import type { NodeUsage, PodUsage } from '../../../pkg/client/pods-client.js';
import type { CtlContext, CtlIO } from '../context.js';
import { renderTable } from '../output.js';
import { action, examples } from './run.js';

const MI = 1024 * 1024;
/**
 * Deadline of a top request unless --timeout is given: each node samples its containers'
 * stats (a second or two from the engine), more than the default request timeout allows for.
 */
const DEFAULT_TOP_TIMEOUT_MS = 30_000;
const SORT_KEYS = ['cpu', 'memory'] as const;
type SortKey = (typeof SORT_KEYS)[number];

interface TopPodsFlags {
  allNamespaces?: boolean;
  containers?: boolean;
  sortBy?: SortKey;
}

interface TopNodesFlags {
  sortBy?: SortKey;
}

/** Millicores as kubectl prints them: rounded up ('3m'), as resource.Quantity's MilliValue. */
export function formatCpu(cores: number): string {
  return `${Math.ceil(cores * 1000 - 1e-9)}m`;
}

/** MiB as kubectl prints them: whole MiB, rounded down ('12Mi'). */
export function formatMemory(bytes: number): string {
  return `${Math.floor(bytes / MI)}Mi`;
}

/** A share of the capacity, as kubectl: whole percent, rounded down. */
export function formatPercent(used: number, capacity: number): string {
  if (!(capacity > 0)) return '<unknown>';
  return `${Math.floor((used * 100) / capacity)}%`;
}

const sum = (p: PodUsage, key: 'cpuCores' | 'memoryBytes') => p.containers.reduce((s, c) => s + c[key], 0);

/** The quantities metrics-server reports: CPU in nanocores, memory in KiB. */
function usageJson(cores: number, bytes: number) {
  return { cpu: `${Math.round(cores * 1e9)}n`, memory: `${Math.round(bytes / 1024)}Ki` };
}

async function topPods(ctx: CtlContext, flags: TopPodsFlags, timeoutMs: number) {
  const all = flags.allNamespaces === true;
  const { pods } = await ctx.pods.top(
    all ? { allNamespaces: true, timeoutMs } : { namespace: ctx.namespace, timeoutMs },
  );
  const byKey: Record<SortKey, (p: PodUsage) => number> = {
    cpu: (p) => sum(p, 'cpuCores'),
    memory: (p) => sum(p, 'memoryBytes'),
  };
  const sorted = [...pods].sort((a, b) =>
    flags.sortBy
      ? byKey[flags.sortBy](b) - byKey[flags.sortBy](a)
      : a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name),
  );
  if (ctx.json) {
    ctx.printJson({
      apiVersion: 'metrics.k8s.io/v1beta1',
      kind: 'PodMetricsList',
      items: sorted.map((p) => ({
        metadata: { name: p.name, namespace: p.namespace },
        node: p.node,
        containers: p.containers.map((c) => ({ name: c.name, usage: usageJson(c.cpuCores, c.memoryBytes) })),
      })),
    });
    return;
  }
  if (sorted.length === 0) {
    ctx.io.stderr(`No resources found${all ? '' : ` in ${ctx.namespace} namespace`}.\n`);
    return;
  }
  const ns = (p: PodUsage) => (all ? [p.namespace] : []);
  if (flags.containers) {
    const head = [...(all ? ['NAMESPACE'] : []), 'POD', 'NAME', 'CPU(cores)', 'MEMORY(bytes)'];
    const rows = sorted.flatMap((p) =>
      p.containers.map((c) => [...ns(p), p.name, c.name, formatCpu(c.cpuCores), formatMemory(c.memoryBytes)]),
    );
    ctx.println(renderTable(head, rows));
    return;
  }
  const head = [...(all ? ['NAMESPACE'] : []), 'NAME', 'CPU(cores)', 'MEMORY(bytes)'];
  const rows = sorted.map((p) => [
    ...ns(p),
    p.name,
    formatCpu(sum(p, 'cpuCores')),
    formatMemory(sum(p, 'memoryBytes')),
  ]);
  ctx.println(renderTable(head, rows));
}

async function topNodes(ctx: CtlContext, flags: TopNodesFlags, timeoutMs: number) {
  // Every registered node has a row, as in kubectl: one whose agent did not answer shows <unknown>.
  const [{ nodes: usage }, list] = await Promise.all([
    ctx.pods.top({ allNamespaces: true, timeoutMs }),
    ctx.api.list('nodes'),
  ]);
  const byName = new Map(usage.map((n) => [n.name, n]));
  const names = [...new Set([...list.items.map((n) => n.metadata.name ?? ''), ...byName.keys()])];
  const measured = names.map((name) => ({ name, u: byName.get(name) }));
  const key = (u: NodeUsage | undefined) =>
    u === undefined ? -1 : flags.sortBy === 'memory' ? u.memoryBytes : u.cpuCores;
  measured.sort((a, b) => (flags.sortBy ? key(b.u) - key(a.u) : a.name.localeCompare(b.name)));
  if (ctx.json) {
    ctx.printJson({
      apiVersion: 'metrics.k8s.io/v1beta1',
      kind: 'NodeMetricsList',
      items: measured
        .filter((n) => n.u !== undefined)
        .map(({ name, u }) => {
          const n = u as NodeUsage;
          return {
            metadata: { name },
            usage: usageJson(n.cpuCores, n.memoryBytes),
            // Not in metrics.k8s.io: what the percentages are of.
            capacity: usageJson(n.cpuCapacity, n.memoryCapacity),
          };
        }),
    });
    return;
  }
  if (measured.length === 0) {
    ctx.io.stderr('No resources found.\n');
    return;
  }
  const unknown = '<unknown>';
  const rows = measured.map(({ name, u }) =>
    u
      ? [
          name,
          formatCpu(u.cpuCores),
          formatPercent(u.cpuCores, u.cpuCapacity),
          formatMemory(u.memoryBytes),
          formatPercent(u.memoryBytes, u.memoryCapacity),
        ]
      : [name, unknown, unknown, unknown, unknown],
  );
  ctx.println(renderTable(['NAME', 'CPU(cores)', 'CPU%', 'MEMORY(bytes)', 'MEMORY%'], rows));
}

/** An action given --timeout when it is on the command line, else DEFAULT_TOP_TIMEOUT_MS. */
function withTimeout<O>(io: CtlIO, body: (ctx: CtlContext, flags: O, timeoutMs: number) => Promise<void>) {
  return (...raw: unknown[]) => {
    const cmd = raw[raw.length - 1] as Command;
    const explicit = cmd.getOptionValueSourceWithGlobals('timeout') === 'cli';
    return action(io, (ctx, flags: O) =>
      body(ctx, flags, explicit ? ctx.options.timeoutMs : DEFAULT_TOP_TIMEOUT_MS),
    )(...raw);
  };
}

const sortOption = () =>
  new Option('--sort-by <key>', 'sort by usage, highest first (default: by name)').choices(SORT_KEYS);

export function addTopCommand(program: Command, io: CtlIO): void {
  const top = program
    .command('top')
    .description('Show CPU and memory usage of pods or nodes')
    .addHelpText('after', examples('berthctl top pods', 'berthctl top pods -A', 'berthctl top nodes'));
  top
    .command('pods')
    .alias('pod')
    .alias('po')
    .description('Show CPU (millicores) and memory (MiB) of the pods of a namespace, or of all')
    .option('-A, --all-namespaces', 'pods of every namespace')
    .option('--containers', "each container's usage")
    .addOption(sortOption())
    .addHelpText(
      'after',
      examples(
        'berthctl top pods',
        'berthctl top pods -n shop --containers',
        'berthctl top pods -A --sort-by memory',
        'berthctl top pods -o json',
      ),
    )
    .action(withTimeout(io, (ctx, flags: TopPodsFlags, timeoutMs) => topPods(ctx, flags, timeoutMs)));
  top
    .command('nodes')
    .alias('node')
    .alias('no')
    .description('Show CPU and memory usage of the nodes, and their share of the capacity')
    .addOption(sortOption())
    .addHelpText('after', examples('berthctl top nodes', 'berthctl top nodes --sort-by cpu -o json'))
    .action(withTimeout(io, (ctx, flags: TopNodesFlags, timeoutMs) => topNodes(ctx, flags, timeoutMs)));
}
