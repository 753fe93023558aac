// One warning per refusal, without letting a misbehaving client flood the log: the first
// refusal of a (caller, method) pair is logged at once, repeats within the interval are
// counted and reported with the next one logged. Pure; time is passed in.

export interface RefusalLimiterOptions {
  /** Repeats of one key inside this window are counted, not logged. */
  intervalMs: number;
  /** Keys remembered at most (the table is cleared when full). */
  maxKeys?: number;
}

export interface RefusalLimiter {
  /** Whether to log this refusal now, and how many were held back since the last one logged. */
  record(key: string, nowMs: number): { log: boolean; suppressed: number };
}

export function createRefusalLimiter(options: RefusalLimiterOptions): RefusalLimiter {
  const maxKeys = options.maxKeys ?? 1024;
  const seen = new Map<string, { lastMs: number; suppressed: number }>();
  return {
    record(key, nowMs) {
      const entry = seen.get(key);
      if (entry && nowMs - entry.lastMs < options.intervalMs) {
        entry.suppressed++;
        return { log: false, suppressed: entry.suppressed };
      }
      if (!entry && seen.size >= maxKeys) seen.clear();
      const suppressed = entry?.suppressed ?? 0;
      seen.set(key, { lastMs: nowMs, suppressed: 0 });
      return { log: true, suppressed };
    },
  };
}
