// The API's error catalogue: a stable `code`, the gRPC status the edge answers with, and a
// message a person can act on. Kubernetes' reasons are kept beside them (`reason`), so a
// Kubernetes user recognises them ("the object has been modified; please apply your changes
// to the latest version and try again"). Field errors carry their path.

import { GrpcCode } from '../store/errors.js';

export const ApiErrorCode = {
  Invalid: 'API_INVALID',
  BadRequest: 'API_BAD_REQUEST',
  NotFound: 'API_NOT_FOUND',
  AlreadyExists: 'API_ALREADY_EXISTS',
  Conflict: 'API_CONFLICT',
  Expired: 'API_EXPIRED',
  TooLarge: 'API_TOO_LARGE',
  Unavailable: 'API_UNAVAILABLE',
  Forbidden: 'API_FORBIDDEN',
  Unauthenticated: 'API_UNAUTHENTICATED',
  Internal: 'API_INTERNAL',
} as const;
export type ApiErrorCode = (typeof ApiErrorCode)[keyof typeof ApiErrorCode];

/** Kubernetes' StatusReason for each code (shown in -o json errors and Watch ERROR events). */
export const REASONS: Record<ApiErrorCode, string> = {
  API_INVALID: 'Invalid',
  API_BAD_REQUEST: 'BadRequest',
  API_NOT_FOUND: 'NotFound',
  API_ALREADY_EXISTS: 'AlreadyExists',
  API_CONFLICT: 'Conflict',
  API_EXPIRED: 'Expired',
  API_TOO_LARGE: 'RequestEntityTooLarge',
  API_UNAVAILABLE: 'ServiceUnavailable',
  API_FORBIDDEN: 'Forbidden',
  API_UNAUTHENTICATED: 'Unauthorized',
  API_INTERNAL: 'InternalError',
};

/** The gRPC status each code is answered with. */
export const GRPC_CODES: Record<ApiErrorCode, GrpcCode | 16 | 13> = {
  API_INVALID: GrpcCode.InvalidArgument,
  API_BAD_REQUEST: GrpcCode.InvalidArgument,
  API_NOT_FOUND: GrpcCode.NotFound,
  API_ALREADY_EXISTS: GrpcCode.AlreadyExists,
  API_CONFLICT: GrpcCode.Aborted,
  API_EXPIRED: GrpcCode.OutOfRange,
  API_TOO_LARGE: GrpcCode.ResourceExhausted,
  API_UNAVAILABLE: GrpcCode.Unavailable,
  API_FORBIDDEN: GrpcCode.PermissionDenied,
  API_UNAUTHENTICATED: 16,
  API_INTERNAL: 13,
};

/** One problem with one field: `spec.template.spec.containers[0].foo: unknown field`. */
export interface FieldError {
  /** Dotted path with [i] for list items and [key] for map entries. */
  path: string;
  message: string;
}

export function formatFieldError(e: FieldError): string {
  return e.path ? `${e.path}: ${e.message}` : e.message;
}

export class ApiError extends Error {
  readonly grpc: number;
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly fieldErrors: readonly FieldError[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ApiError';
    this.grpc = GRPC_CODES[code];
  }
  get reason(): string {
    return REASONS[this.code];
  }
}

/** `deployment.apps "web"`, the way Kubernetes names an object in messages. */
export type ObjectRef = string;

/** Field errors a message lists before it says how many more there are. */
const LISTED_ERRORS = 10;
/** Field errors an ApiError carries (the trailer's size stays bounded). */
const CARRIED_ERRORS = 100;
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 3)}...` : s);

/** Several field errors, reported together; messages stay a readable size whatever the input. */
export const invalid = (ref: ObjectRef, errors: readonly FieldError[]) => {
  const listed = errors.slice(0, LISTED_ERRORS).map((e) => clip(formatFieldError(e), 300));
  const more = errors.length > LISTED_ERRORS ? `; and ${errors.length - LISTED_ERRORS} more` : '';
  const carried = errors
    .slice(0, CARRIED_ERRORS)
    .map((e) => ({ path: clip(e.path, 300), message: clip(e.message, 300) }));
  return new ApiError(
    ApiErrorCode.Invalid,
    `${clip(ref, 200)} is invalid: ${listed.join('; ')}${more}`,
    carried,
  );
};

export const badRequest = (message: string) => new ApiError(ApiErrorCode.BadRequest, message);

export const notFound = (ref: ObjectRef) => new ApiError(ApiErrorCode.NotFound, `${ref} not found`);

export const alreadyExists = (ref: ObjectRef) =>
  new ApiError(ApiErrorCode.AlreadyExists, `${ref} already exists`);

export const conflict = (ref: ObjectRef) =>
  new ApiError(
    ApiErrorCode.Conflict,
    `Operation cannot be fulfilled on ${ref}: the object has been modified; please apply your changes to the latest version and try again`,
  );

export const preconditionFailed = (ref: ObjectRef, what: string) =>
  new ApiError(ApiErrorCode.Conflict, `Operation cannot be fulfilled on ${ref}: ${what}`);

export const expired = (requested: number, oldest: number) =>
  new ApiError(
    ApiErrorCode.Expired,
    `too old resource version: ${requested} (${oldest}); list again and watch from the list's resourceVersion`,
  );

export const tooLarge = (bytes: number, limit: number) =>
  new ApiError(ApiErrorCode.TooLarge, `request is too large: ${bytes} bytes, the limit is ${limit} bytes`);

/** The caller's identity may not make this request (answered PERMISSION_DENIED). */
export const forbidden = (message: string) => new ApiError(ApiErrorCode.Forbidden, message);

export const unavailable = (why: string, cause?: unknown) =>
  new ApiError(ApiErrorCode.Unavailable, `the cluster cannot serve this now (${why}); retry shortly`, [], {
    cause,
  });

export const internal = (why: string, cause?: unknown) =>
  new ApiError(ApiErrorCode.Internal, `internal error: ${why}`, [], { cause });
