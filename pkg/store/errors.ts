// The store's error catalogue. Messages are etcd's own ("etcdserver: ..."), because etcd
// clients match on them to decide whether to retry; `code` is Berth's stable name; `grpc`
// is the status code the gRPC edge answers with (numbers from grpc's status codes).

export const GrpcCode = {
  InvalidArgument: 3,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unavailable: 14,
  DeadlineExceeded: 4,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

export const StoreErrorCode = {
  EmptyKey: 'STORE_EMPTY_KEY',
  KeyNotFound: 'STORE_KEY_NOT_FOUND',
  ValueProvided: 'STORE_VALUE_PROVIDED',
  LeaseProvided: 'STORE_LEASE_PROVIDED',
  TooManyOps: 'STORE_TOO_MANY_OPS',
  DuplicateKey: 'STORE_DUPLICATE_KEY',
  Compacted: 'STORE_COMPACTED',
  FutureRevision: 'STORE_FUTURE_REVISION',
  LeaseNotFound: 'STORE_LEASE_NOT_FOUND',
  LeaseExists: 'STORE_LEASE_EXISTS',
  LeaseTtlTooLarge: 'STORE_LEASE_TTL_TOO_LARGE',
  RequestTooLarge: 'STORE_REQUEST_TOO_LARGE',
  NoLeader: 'STORE_NO_LEADER',
  Timeout: 'STORE_TIMEOUT',
  Stopped: 'STORE_STOPPED',
  InvalidArgument: 'STORE_INVALID_ARGUMENT',
} as const;
export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    readonly grpc: GrpcCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreError';
  }
}

export const emptyKey = () =>
  new StoreError(StoreErrorCode.EmptyKey, GrpcCode.InvalidArgument, 'etcdserver: key is not provided');
export const keyNotFound = () =>
  new StoreError(StoreErrorCode.KeyNotFound, GrpcCode.InvalidArgument, 'etcdserver: key not found');
export const valueProvided = () =>
  new StoreError(StoreErrorCode.ValueProvided, GrpcCode.InvalidArgument, 'etcdserver: value is provided');
export const leaseProvided = () =>
  new StoreError(StoreErrorCode.LeaseProvided, GrpcCode.InvalidArgument, 'etcdserver: lease is provided');
export const tooManyOps = () =>
  new StoreError(
    StoreErrorCode.TooManyOps,
    GrpcCode.InvalidArgument,
    'etcdserver: too many operations in txn request',
  );
export const duplicateKey = () =>
  new StoreError(
    StoreErrorCode.DuplicateKey,
    GrpcCode.InvalidArgument,
    'etcdserver: duplicate key given in txn request',
  );

/** The requested revision is older than the compaction point. */
export class CompactedError extends StoreError {
  constructor(readonly compactRevision: number) {
    super(
      StoreErrorCode.Compacted,
      GrpcCode.OutOfRange,
      'etcdserver: mvcc: required revision has been compacted',
    );
  }
}

export const futureRevision = () =>
  new StoreError(
    StoreErrorCode.FutureRevision,
    GrpcCode.OutOfRange,
    'etcdserver: mvcc: required revision is a future revision',
  );
export const leaseNotFound = () =>
  new StoreError(StoreErrorCode.LeaseNotFound, GrpcCode.NotFound, 'etcdserver: requested lease not found');
export const leaseExists = () =>
  new StoreError(StoreErrorCode.LeaseExists, GrpcCode.FailedPrecondition, 'etcdserver: lease already exists');
export const leaseTtlTooLarge = () =>
  new StoreError(StoreErrorCode.LeaseTtlTooLarge, GrpcCode.OutOfRange, 'etcdserver: too large lease TTL');
export const requestTooLarge = (bytes: number, max: number) =>
  new StoreError(
    StoreErrorCode.RequestTooLarge,
    GrpcCode.InvalidArgument,
    `etcdserver: request is too large (${bytes} bytes, the limit is ${max})`,
  );
export const noLeader = () =>
  new StoreError(StoreErrorCode.NoLeader, GrpcCode.Unavailable, 'etcdserver: no leader');
export const requestTimeout = () =>
  new StoreError(StoreErrorCode.Timeout, GrpcCode.Unavailable, 'etcdserver: request timed out');
export const stopped = () =>
  new StoreError(StoreErrorCode.Stopped, GrpcCode.Unavailable, 'etcdserver: server stopped');
export const invalidArgument = (what: string) =>
  new StoreError(StoreErrorCode.InvalidArgument, GrpcCode.InvalidArgument, `etcdserver: ${what}`);
