// The API's error catalogue at the gRPC edge: every code maps to one status, and the client
// rebuilds the same ApiError (code, message, field errors) from what travels.
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { ApiError, ApiErrorCode, GRPC_CODES, REASONS } from '../../pkg/api/errors.js';
import { toStatus } from '../../pkg/api/server/grpc-api.js';
import { fromStoreError } from '../../pkg/api/server/object-store.js';
import { apiErrorOf } from '../../pkg/client/api-client.js';
import { CompactedError, noLeader, requestTimeout } from '../../pkg/store/errors.js';

const EXPECTED: Record<ApiErrorCode, number> = {
  API_INVALID: grpc.status.INVALID_ARGUMENT,
  API_BAD_REQUEST: grpc.status.INVALID_ARGUMENT,
  API_NOT_FOUND: grpc.status.NOT_FOUND,
  API_ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  API_CONFLICT: grpc.status.ABORTED,
  API_EXPIRED: grpc.status.OUT_OF_RANGE,
  API_TOO_LARGE: grpc.status.RESOURCE_EXHAUSTED,
  API_UNAVAILABLE: grpc.status.UNAVAILABLE,
  API_FORBIDDEN: grpc.status.PERMISSION_DENIED,
  API_UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  API_INTERNAL: grpc.status.INTERNAL,
};

test('every error code has its gRPC status and reason, and survives the trip to the client', (t) => {
  for (const code of Object.values(ApiErrorCode)) {
    t.is(GRPC_CODES[code] as number, EXPECTED[code], code);
    t.truthy(REASONS[code], code);
    const fields = code === ApiErrorCode.Invalid ? [{ path: 'spec.replicas', message: 'must be >= 0' }] : [];
    const err = new ApiError(code, `message for ${code}`, fields);
    const status = toStatus(err);
    t.is(status.code, EXPECTED[code]);
    const back = apiErrorOf({
      code: status.code as number,
      details: status.details as string,
      notSent: false,
      metadata: status.metadata as grpc.Metadata,
    });
    t.is(back.code, code);
    t.is(back.message, `message for ${code}`);
    t.deepEqual(back.fieldErrors, fields);
  }
});

test('store failures become UNAVAILABLE (retry) or Expired; anything else is INTERNAL', (t) => {
  t.is(fromStoreError(noLeader()).code, ApiErrorCode.Unavailable);
  t.regex(fromStoreError(noLeader()).message, /\(no leader\)/);
  t.is(fromStoreError(requestTimeout()).code, ApiErrorCode.Unavailable);
  t.is(fromStoreError(new CompactedError(42)).code, ApiErrorCode.Expired);
  t.is(fromStoreError(new Error('boom')).code, ApiErrorCode.Internal);
  t.is(toStatus(new Error('boom')).code, grpc.status.INTERNAL);
});

test('a status without Berth trailers still becomes a useful ApiError', (t) => {
  t.is(
    apiErrorOf(
      { code: grpc.status.UNAVAILABLE, details: 'connect ECONNREFUSED', notSent: true },
      '127.0.0.1:1',
    ).code,
    ApiErrorCode.Unavailable,
  );
  t.is(
    apiErrorOf({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'too big', notSent: false }).code,
    ApiErrorCode.TooLarge,
  );
  t.regex(
    apiErrorOf({ code: grpc.status.UNIMPLEMENTED, details: 'x', notSent: false }).message,
    /does not serve Berth's object API/,
  );
});
