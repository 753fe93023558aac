import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import type { SimBug, SimResult } from './simulation.js';
import { runSeed } from './simulation.js';

const USAGE = `usage: npm run sim -- [--seeds N | --seed S] [--json] [--verbose] [--duration T] [--bug NAME] [--workers K]
  --seeds N     run seeds 1..N (default 100)
  --seed S      run one seed (replays exactly; add --verbose for its trace)
  --duration T  virtual time units per seed (default 6000; faults stop at 70%)
  --bug NAME    inject a known bug to see the checks catch it: send-before-sync | stale-read
  --workers K   worker threads (default: number of CPUs)
  --json        print the summary as one JSON line, last`;

interface Summary {
  seeds: number;
  violations: number;
  failed_seeds: number[];
  elections: number;
  committed: number;
  snapshots: number;
  snapshots_installed: number;
  conf_changes: number;
  transfers: number;
  crashes: number;
  partitions: number;
  reads: number;
  writes: number;
  /** Worst time (virtual units; a tick is 10) from healing every fault to a commit on every member. */
  liveness_max: number;
  seconds: number;
}

function summarize(results: SimResult[], seconds: number): Summary {
  const sum = (f: (r: SimResult) => number) => results.reduce((a, r) => a + f(r), 0);
  const failed = results.filter((r) => r.violation).map((r) => r.seed);
  return {
    seeds: results.length,
    violations: failed.length,
    failed_seeds: failed.slice(0, 20),
    elections: sum((r) => r.elections),
    committed: sum((r) => r.committed),
    snapshots: sum((r) => r.snapshots),
    snapshots_installed: sum((r) => r.snapshotsInstalled),
    conf_changes: sum((r) => r.confChanges),
    transfers: sum((r) => r.transfers),
    crashes: sum((r) => r.crashes),
    partitions: sum((r) => r.partitions),
    reads: sum((r) => r.readsOk),
    writes: sum((r) => r.writesOk),
    liveness_max: results.reduce((a, r) => Math.max(a, r.livenessTime ?? 0), 0),
    seconds: Math.round(seconds * 10) / 10,
  };
}

async function runParallel(
  seeds: number[],
  workers: number,
  duration: number,
  bug?: SimBug,
): Promise<SimResult[]> {
  const results: SimResult[] = [];
  const chunks: number[][] = Array.from({ length: workers }, () => []);
  for (const [i, s] of seeds.entries()) chunks[i % workers]?.push(s);
  await Promise.all(
    chunks
      .filter((c) => c.length > 0)
      .map(
        (chunk) =>
          new Promise<void>((resolve, reject) => {
            const w = new Worker(new URL('./worker.js', import.meta.url), {
              workerData: { seeds: chunk, duration, bug },
            });
            w.on('message', (r: SimResult) => results.push(r));
            w.on('error', reject);
            w.on('exit', (code) =>
              code === 0 ? resolve() : reject(new Error(`simulation worker exited with ${code}`)),
            );
          }),
      ),
  );
  return results.sort((a, b) => a.seed - b.seed);
}

async function main(): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse();
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values } = args;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const bug = values.bug as SimBug | undefined;
  if (bug && bug !== 'send-before-sync' && bug !== 'stale-read') {
    console.error(`unknown --bug ${bug}\n${USAGE}`);
    return 2;
  }
  const duration = Number(values.duration ?? 6000);
  const started = performance.now();
  let results: SimResult[];
  if (values.seed !== undefined) {
    const seed = Number(values.seed);
    results = [runSeed({ seed, duration, bug, verbose: values.verbose ?? false })];
  } else {
    const n = Number(values.seeds ?? 100);
    if (!Number.isInteger(n) || n <= 0) {
      console.error(`--seeds must be a positive integer, got ${values.seeds}`);
      return 2;
    }
    const workers = Math.max(1, Math.min(Number(values.workers ?? availableParallelism()), n));
    results = await runParallel(
      Array.from({ length: n }, (_, i) => i + 1),
      workers,
      duration,
      bug,
    );
  }
  for (const r of results.filter((x) => x.violation)) {
    const extra = bug ? ` --bug ${bug}` : '';
    console.log(`seed ${r.seed}: VIOLATION: ${r.violation}`);
    console.log(`  replay: npm run sim -- --seed ${r.seed}${extra} --verbose`);
  }
  const summary = summarize(results, (performance.now() - started) / 1000);
  if (values.json) console.log(JSON.stringify(summary));
  else console.log(summary);
  return summary.violations === 0 ? 0 : 1;
}

function parse() {
  return parseArgs({
    options: {
      seeds: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean' },
      verbose: { type: 'boolean' },
      duration: { type: 'string' },
      bug: { type: 'string' },
      workers: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

process.exitCode = await main();
