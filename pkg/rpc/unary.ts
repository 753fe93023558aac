// One unary call on a raw grpc.Client with a method definition from @grpc/proto-loader: for
// the few callers (join, renewal, leave, berthctl user create) that need no client library.
import * as grpc from '@grpc/grpc-js';

export function unary<Res>(
  client: grpc.Client,
  // biome-ignore lint/suspicious/noExplicitAny: any message type; the caller names the answer's
  method: grpc.MethodDefinition<object, any>,
  request: object,
  timeoutMs: number,
): Promise<Res> {
  return new Promise<Res>((resolve, reject) =>
    client.makeUnaryRequest(
      method.path,
      method.requestSerialize as (v: object) => Buffer,
      method.responseDeserialize as (b: Buffer) => Res,
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err, value) =>
        err ? reject(err) : value !== undefined ? resolve(value) : reject(new Error('an empty answer')),
    ),
  );
}
