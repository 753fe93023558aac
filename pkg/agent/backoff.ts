// The kubelet's per-key exponential back-off (client-go flowcontrol.Backoff), used twice:
// restarting crashed containers (CrashLoopBackOff) and retrying failed pulls
// (ImagePullBackOff). Pure: time is passed in or read from the injected `now`.
//
// Container restarts, as the kubelet does them:
//   exit 1 -> noteExited; inBackoff 0 -> restart at once, next() = 10 s
//   exit 2 -> noteExited (window starts at the exit); inBackoff > 0 -> CrashLoopBackOff
//          -> after 10 s restart, next() = 20 s ... capped at maxMs
//   a run longer than resetAfterMs (noteStarted .. noteExited) starts the sequence over.
// Image pulls: a failure calls next() (window from now); inBackoff > 0 -> ImagePullBackOff;
// a successful pull calls reset().

export interface BackoffOptions {
  /** First delay; Kubernetes: 10 s. */
  initialMs?: number;
  /** Cap; Kubernetes: 300 s. */
  maxMs?: number;
  /** A container that ran this long, or a key idle this long past its window, starts over. */
  resetAfterMs?: number;
  now: () => number;
}

export interface Backoff {
  /** Called when (re)trying: the back-off to apply after the next failure, doubled each time. */
  next(key: string, at?: number): number;
  /** Remaining ms of the current window (0: go ahead). */
  inBackoff(key: string, at?: number): number;
  /** The current delay of a key (0 when none), for messages ("back-off 20s restarting ..."). */
  delay(key: string): number;
  noteStarted(key: string, at: number): void;
  /** The window is measured from the exit (the kubelet uses the container's finishedAt). */
  noteExited(key: string, at: number): void;
  reset(key: string): void;
  /** Drop every key starting with the prefix (a deleted pod's containers). */
  forgetPrefix(prefix: string): void;
}

interface Entry {
  delayMs: number;
  /** Start of the current window. */
  since: number;
  startedAt?: number;
}

export function createBackoff(options: BackoffOptions): Backoff {
  const initialMs = options.initialMs ?? 10_000;
  const maxMs = options.maxMs ?? 300_000;
  const resetAfterMs = options.resetAfterMs ?? 600_000;
  const { now } = options;
  const entries = new Map<string, Entry>();

  return {
    next(key, at = now()) {
      const e = entries.get(key);
      // Long idle after the window ended: start over (flowcontrol's hasExpired).
      if (!e || at - (e.since + e.delayMs) > resetAfterMs) {
        entries.set(key, { delayMs: initialMs, since: at });
        return initialMs;
      }
      e.delayMs = Math.min(e.delayMs * 2, maxMs);
      e.since = at;
      return e.delayMs;
    },
    inBackoff(key, at = now()) {
      const e = entries.get(key);
      return e ? Math.max(0, e.since + e.delayMs - at) : 0;
    },
    delay(key) {
      return entries.get(key)?.delayMs ?? 0;
    },
    noteStarted(key, at) {
      const e = entries.get(key);
      if (e) e.startedAt = at;
    },
    noteExited(key, at) {
      const e = entries.get(key);
      if (!e) return;
      if (e.startedAt !== undefined && at - e.startedAt >= resetAfterMs) entries.delete(key);
      else e.since = at;
    },
    reset(key) {
      entries.delete(key);
    },
    forgetPrefix(prefix) {
      for (const k of [...entries.keys()]) if (k.startsWith(prefix)) entries.delete(k);
    },
  };
}

/** The image-pull back-off: the same shape and Kubernetes' same numbers (10 s doubling to 300 s). */
export function createImagePullBackoff(now: () => number): Backoff {
  return createBackoff({ initialMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000, now });
}

/** Kubernetes' way of writing a delay in messages: 10s, 1m20s, 5m0s. */
export function formatDelay(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${s % 60}s`;
}
