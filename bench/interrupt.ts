// A benchmark interrupted (Ctrl-C, SIGTERM) must not leave its nodes or containers behind.
// cli.ts exits right after its own handler, so this one works synchronously.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import type { BerthCluster } from '../test/support/berth-cluster.js';

const CLUSTER_LABEL = 'berth.io/cluster';

/** Clean up `cluster` (and the containers labelled with its id, once known) on SIGINT/SIGTERM; returns the undo. */
export function cleanUpOnInterrupt(cluster: BerthCluster, clusterId: () => string | undefined): () => void {
  const onSignal = () => {
    for (const n of cluster.nodes) n.proc?.kill('SIGKILL');
    rmSync(cluster.root, { recursive: true, force: true });
    const id = clusterId();
    if (!id) return;
    try {
      const ids = execFileSync('docker', ['ps', '-aq', '--filter', `label=${CLUSTER_LABEL}=${id}`], {
        encoding: 'utf8',
      })
        .split('\n')
        .filter((x) => x !== '');
      if (ids.length > 0) execFileSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
    } catch {
      // Best effort: the process is going away.
    }
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}
