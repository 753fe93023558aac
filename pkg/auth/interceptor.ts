// The client port's authorization, as a grpc-js server interceptor: every call is decided
// by rules.ts before its handler runs. A refused call is answered PERMISSION_DENIED (or
// UNAUTHENTICATED: no certificate, or one whose subject means no one) and its handler never
// starts. Methods whose answer depends on the request (Txn, Alarm, MemberAdd) are decided
// when the request arrives, before it is handed on. Node writes to Objects pass here and
// are judged per object by the handler (object-admission.ts).
import * as grpc from '@grpc/grpc-js';
import { type Caller, describeCaller, identityOfCall } from './identity.js';
import { authorize, type Decision, DecisionStatus, needsRequest } from './rules.js';
import { createRefusalLimiter } from './refusal-log.js';

/** The logger calls the interceptor makes (a pino Logger fits). */
export interface AuthzLogger {
  warn(fields: object, message: string): void;
}

export interface AuthzInterceptorOptions {
  logger: AuthzLogger;
  /**
   * The node was started with --insecure: every caller may do everything. Default false:
   * a call without a verified client certificate is refused (grpc-js cannot tell a plain
   * connection from a TLS one without a client certificate, so the node must say which).
   */
  insecure?: boolean;
  /** Repeats of one refusal (caller, method) inside this window are counted, not logged. */
  logIntervalMs?: number;
  now?: () => number;
}

const DEFAULT_LOG_INTERVAL_MS = 60_000;

/** Make the interceptor: `new grpc.Server({ ...options, interceptors: [authzInterceptor(...)] })`. */
export function authzInterceptor(options: AuthzInterceptorOptions): grpc.ServerInterceptor {
  const limiter = createRefusalLimiter({ intervalMs: options.logIntervalMs ?? DEFAULT_LOG_INTERVAL_MS });
  const now = options.now ?? Date.now;

  const refuse = (
    call: grpc.ServerInterceptingCallInterface,
    caller: Caller | undefined,
    path: string,
    d: Exclude<Decision, { allowed: true }>,
  ) => {
    const who = caller ? describeCaller(caller) : 'a caller without a client certificate';
    const { log, suppressed } = limiter.record(`${who}\n${path}`, now());
    if (log) {
      options.logger.warn(
        { caller: who, method: path, peer: call.getPeer(), ...(suppressed > 0 ? { suppressed } : {}) },
        `refused: ${d.message}`,
      );
    }
    call.sendStatus({
      code:
        d.status === DecisionStatus.Unauthenticated
          ? grpc.status.UNAUTHENTICATED
          : grpc.status.PERMISSION_DENIED,
      details: d.message,
      metadata: new grpc.Metadata(),
    });
  };

  return (descriptor, call) => {
    const path = descriptor.path;
    const caller: Caller | undefined = options.insecure ? { kind: 'insecure' } : identityOfCall(call);
    const deferred = needsRequest(caller, path);
    const upfront = deferred ? undefined : authorize(caller, path);
    let refused = false;
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            // Not handing the metadata on keeps the handler from starting (and reading).
            if (upfront && !upfront.allowed) {
              refused = true;
              refuse(call, caller, path, upfront);
              return;
            }
            nextMetadata(metadata);
          },
          onReceiveMessage: (message, nextMessage) => {
            if (refused) return;
            if (deferred) {
              const d = authorize(caller, path, message);
              if (!d.allowed) {
                refused = true;
                refuse(call, caller, path, d);
                return;
              }
            }
            nextMessage(message);
          },
          onReceiveHalfClose: (nextHalfClose) => {
            if (!refused) nextHalfClose();
          },
        });
      },
    });
  };
}
