// What the benchmarks that run a cluster with the agent share: the cluster's id (every
// container it makes is labelled with it), removing its containers (all, or one node's, as a
// dead machine would leave nothing running), and polling until something holds.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BerthCluster } from '../test/support/berth-cluster.js';
import { sleep } from './stats.js';

const run = promisify(execFile);

const CLUSTER_LABEL = 'berth.io/cluster';
const NODE_LABEL = 'berth.io/node';

/** The cluster id, from the first member's identity file. */
export async function clusterIdOf(cluster: BerthCluster): Promise<string> {
  const text = await readFile(join(cluster.node(0).dataDir, 'member.json'), 'utf8');
  return (JSON.parse(text) as { clusterId: string }).clusterId;
}

/** Remove the cluster's containers (only `node`'s, when given). Nobody else's. */
export async function removeContainers(clusterId: string, node?: string): Promise<void> {
  const filters = ['--filter', `label=${CLUSTER_LABEL}=${clusterId}`];
  if (node) filters.push('--filter', `label=${NODE_LABEL}=${node}`);
  const { stdout } = await run('docker', ['ps', '-aq', ...filters]);
  const ids = stdout.split('\n').filter((s) => s !== '');
  if (ids.length > 0) await run('docker', ['rm', '-f', '-v', ...ids]);
}

/** Poll `check` every `everyMs` until it returns a value; throws `what` after `timeoutMs`. */
export async function poll<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = ` (last error: ${(err as Error).message})`;
    }
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last}`);
    await sleep(everyMs);
  }
}
