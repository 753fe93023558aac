// The scheduler's public surface; see README.md.
export { FILTERS, type Filter, type FilterContext, tolerates } from './filters.js';
export { HOSTNAME_LABEL, type PodInfo, podInfo, podKey, podRequests } from './pod-info.js';
export { NO_NODES, Reason, summarize, summarizePodLevel, untoleratedTaint } from './reasons.js';
export { createScheduler, mulberry32, type Scheduler, type SchedulerOptions } from './scheduler.js';
export { DEFAULT_WEIGHTS } from './scores.js';
export { NodeInfo, Snapshot } from './snapshot.js';
export type * from './types.js';
export {
  claimKey,
  type PodVolumes,
  podVolumes,
  SELECTED_NODE_ANNOTATION,
  type SchedulingClaim,
  type SchedulingStorageClass,
  type SchedulingVolume,
  StorageInfo,
  VolumeReason,
} from './volume-binding.js';
