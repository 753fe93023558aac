import { parentPort, workerData } from 'node:worker_threads';
import type { SimBug } from './simulation.js';
import { runSeed } from './simulation.js';

const { seeds, duration, bug } = workerData as { seeds: number[]; duration: number; bug?: SimBug };
for (const seed of seeds) parentPort?.postMessage(runSeed({ seed, duration, bug }));
