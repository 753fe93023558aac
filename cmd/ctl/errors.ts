// How berthctl fails: one line on stderr, `berthctl: <message>`, and an exit code. Users see the
// store's own message (etcd's, for store errors) and, when nothing answered, where we looked.
import { ApiError, ApiErrorCode } from '../../pkg/api/errors.js';
import { GrpcCode, StoreError } from '../../pkg/store/errors.js';

export const ExitCode = {
  Ok: 0,
  /** The command ran and failed: the cluster said no, or could not be reached. */
  Failed: 1,
  /** The command line is wrong: unknown command or flag, missing or bad argument. */
  Usage: 2,
} as const;

/** A failure to report as is (unknown member, key not found): exit 1, no stack trace. */
export class CtlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CtlError';
  }
}

/** The command failed and has already said why, one line per problem: exit 1, nothing more. */
export class ReportedFailure extends Error {
  /** `exitCode`: what berthctl exits with (exec passes its command's code through). */
  constructor(
    readonly failures: number,
    readonly exitCode: number = 1,
  ) {
    super(`${failures} failed`);
    this.name = 'ReportedFailure';
  }
}

/** A usage mistake found after parsing (flags that do not go together): exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const CLIENT_PREFIX = 'berth client: ';

/**
 * The message for a failed command, without the `berthctl: ` prefix. UNAVAILABLE (no
 * connection, no leader, server stopping) gets a hint naming the endpoints tried; a deadline
 * says how long it was.
 */
export function errorMessage(
  err: unknown,
  ctx: { endpoints: readonly string[]; timeoutMs?: number },
): string {
  if (err instanceof StoreError) {
    const msg = err.message.startsWith(CLIENT_PREFIX) ? err.message.slice(CLIENT_PREFIX.length) : err.message;
    if (err.grpc === GrpcCode.Unavailable)
      return `${msg}; is the cluster up? tried: ${ctx.endpoints.join(', ')}`;
    if (err.grpc === GrpcCode.DeadlineExceeded && ctx.timeoutMs !== undefined) {
      // grpc-js' details carry timing diagnostics; people need the limit and what to do.
      return `no answer within ${formatDuration(ctx.timeoutMs)} (deadline exceeded); raise --timeout to wait longer`;
    }
    return msg;
  }
  if (err instanceof ApiError) {
    if (err.code === ApiErrorCode.Unavailable)
      return `${err.message}; is the cluster up? tried: ${ctx.endpoints.join(', ')}`;
    return err.message;
  }
  if (err instanceof CtlError || err instanceof UsageError) return err.message;
  // Not a user error: still one line, but say it is ours.
  return `internal error: ${err instanceof Error ? err.message : String(err)}`;
}

/** Milliseconds as people write durations: '500ms', '5s', '1m30s'. */
export function formatDuration(ms: number): string {
  if (ms < 1000 || ms % 1000 !== 0) return ms < 1000 ? `${ms}ms` : `${ms / 1000}s`;
  const s = ms / 1000;
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
}

/** A member's health as cluster status shows it: 'unreachable', 'timeout' or the error. */
export function healthOfError(err: unknown): string {
  if (!(err instanceof StoreError)) return err instanceof Error ? err.message : String(err);
  if (err.message.includes('no connection to')) return 'unreachable';
  if (err.grpc === GrpcCode.DeadlineExceeded) return 'timeout';
  return err.message.startsWith(CLIENT_PREFIX) ? err.message.slice(CLIENT_PREFIX.length) : err.message;
}
