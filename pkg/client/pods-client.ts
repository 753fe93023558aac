// The Pods service's client (proto/api.proto: Logs, Exec, Top), over the same endpoint pool
// and fail-over as the object API's client. Any node answers for any pod (it forwards to the
// pod's node), so an endpoint is as good as another. Every failure is an ApiError.
//
// Retries:
// - Top is a read: retried on the next endpoint on any transient failure;
// - Logs is retried on the next endpoint only while nothing was delivered (a stream that
//   broke half-way would repeat lines if started again);
// - Exec is retried only when it certainly did not run: not sent, or refused before the
//   node looked at the pod ('no leader'). An exec whose answer was lost is not run twice.

import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import type { ApiError } from '../api/errors.js';
import { apiProtos } from '../api/server/grpc-api.js';
import { apiErrorOf } from './api-client.js';
import { type Endpoint, EndpointPool, failureFromError, isFailure } from './connection.js';
import { type ClientOptions, resolveOptions } from './options.js';
import { type AttemptFailure, backoffMs, type CallKind, isRetryable, sleep } from './retry.js';

const SERVICE = 'Pods';
/** What a node adds to an exec's own time limit when it forwards it (grpc-pods.ts), plus slack. */
const EXEC_DEADLINE_MARGIN_MS = 15_000;

export interface LogsOptions {
  /** Required when the pod has more than one container. */
  container?: string;
  /** Keep streaming what the container prints until it ends or the stream is canceled. */
  follow?: boolean;
  /** Only the last N lines. */
  tailLines?: number;
  /** Prefix each line with its RFC 3339 time. */
  timestamps?: boolean;
  /** The previous (terminated) instance of the container. */
  previous?: boolean;
}

export interface ExecOptions {
  container?: string;
  command: string[];
  /** How long the command may run (ms); the node kills it after that. Default: the node's (60 s). */
  timeoutMs?: number;
}

export interface ExecResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

export interface ContainerUsage {
  name: string;
  cpuCores: number;
  memoryBytes: number;
}

export interface PodUsage {
  namespace: string;
  name: string;
  node: string;
  containers: ContainerUsage[];
}

export interface NodeUsage {
  name: string;
  cpuCores: number;
  memoryBytes: number;
  cpuCapacity: number;
  memoryCapacity: number;
}

export interface TopOptions {
  /** Default: 'default' (ignored with allNamespaces). */
  namespace?: string;
  allNamespaces?: boolean;
  /**
   * Deadline of each attempt (ms); default: the request timeout. Nodes sample the engine's
   * stats for about a second or two before they answer.
   */
  timeoutMs?: number;
}

export interface LogsHandle {
  cancel(): void;
}

export interface PodsClient {
  /**
   * The container's log, chunk by chunk (bytes as printed, not split into lines) until the
   * end (without follow: what was logged so far; with follow: until the container stops)
   * or cancel(). `onEnd` is called once: with the error that ended the stream, or none (the
   * end, or canceled). No chunk comes after `onEnd`.
   */
  logs(
    namespace: string,
    pod: string,
    options: LogsOptions,
    onData: (chunk: Buffer) => void,
    onEnd: (err?: ApiError) => void,
  ): LogsHandle;
  /** Run a command in a container and collect its output; never retried once sent. */
  exec(namespace: string, pod: string, options: ExecOptions): Promise<ExecResult>;
  /** Usage of pods (of the namespace, or all) and of every node that answered. */
  top(options?: TopOptions): Promise<{ pods: PodUsage[]; nodes: NodeUsage[] }>;
  readonly endpoints: readonly string[];
  close(): void;
}

function lookup(_service: string, name: string): protoLoader.MethodDefinition<object, object> {
  const m = (apiProtos()['berth.api.v1.Pods'] as protoLoader.ServiceDefinition)[name];
  if (!m) throw new Error(`berth.api.v1.Pods has no method ${name}`);
  return m as protoLoader.MethodDefinition<object, object>;
}

interface WireContainerUsage {
  name: string;
  cpu_cores: number;
  memory_bytes: number;
}

interface WireTopReply {
  pods?: { namespace: string; name: string; node: string; containers?: WireContainerUsage[] }[];
  nodes?: {
    name: string;
    cpu_cores: number;
    memory_bytes: number;
    cpu_capacity: number;
    memory_capacity: number;
  }[];
}

const isTransient = (f: AttemptFailure) =>
  f.code === grpc.status.UNAVAILABLE ||
  f.code === grpc.status.DEADLINE_EXCEEDED ||
  f.code === grpc.status.CANCELLED;

export function createPodsClient(options: ClientOptions): PodsClient {
  const resolved = resolveOptions(options);
  const pool = new EndpointPool(resolved, lookup);

  return {
    endpoints: resolved.endpoints,
    logs(namespace, pod, o, onData, onEnd) {
      const req = {
        namespace,
        pod,
        container: o.container ?? '',
        follow: o.follow === true,
        ...(o.tailLines !== undefined ? { tail_lines: o.tailLines } : {}),
        timestamps: o.timestamps === true,
        previous: o.previous === true,
      };
      return startLogs(pool, req, onData, onEnd);
    },
    async exec(namespace, pod, o) {
      const req = {
        namespace,
        pod,
        container: o.container ?? '',
        command: o.command,
        timeout_ms: o.timeoutMs ?? 0,
      };
      const deadlineMs = (o.timeoutMs ?? 60_000) + EXEC_DEADLINE_MARGIN_MS;
      const r = await unary<WireExecReply>(pool, 'Exec', req, 'write', deadlineMs);
      return {
        stdout: Buffer.from(r.stdout ?? []),
        stderr: Buffer.from(r.stderr ?? []),
        exitCode: r.exit_code,
      };
    },
    async top(o = {}) {
      const req = {
        namespace: o.allNamespaces ? '' : (o.namespace ?? 'default'),
        all_namespaces: o.allNamespaces === true,
      };
      const r = await unary<WireTopReply>(pool, 'Top', req, 'read', o.timeoutMs ?? resolved.requestTimeoutMs);
      return {
        pods: (r.pods ?? []).map((p) => ({
          namespace: p.namespace,
          name: p.name,
          node: p.node,
          containers: (p.containers ?? []).map((c) => ({
            name: c.name,
            cpuCores: c.cpu_cores,
            memoryBytes: c.memory_bytes,
          })),
        })),
        nodes: (r.nodes ?? []).map((n) => ({
          name: n.name,
          cpuCores: n.cpu_cores,
          memoryBytes: n.memory_bytes,
          cpuCapacity: n.cpu_capacity,
          memoryCapacity: n.memory_capacity,
        })),
      };
    },
    close() {
      pool.close();
    },
  };
}

interface WireExecReply {
  stdout?: Uint8Array;
  stderr?: Uint8Array;
  exit_code: number;
}

/**
 * A unary call with its own deadline per attempt (an exec's time limit, top's sampling time,
 * rather than the request timeout), failing over as retry.ts allows for `kind`: a 'write'
 * (exec) only while it certainly did not start.
 */
async function unary<Res>(
  pool: EndpointPool,
  name: string,
  req: object,
  kind: CallKind,
  deadlineMs: number,
): Promise<Res> {
  const m = lookup(SERVICE, name);
  let last: AttemptFailure | undefined;
  let lastEp = pool.endpointAt(0);
  for (let attempt = 0; attempt <= pool.options.retries; attempt++) {
    if (attempt > 0) await sleep(backoffMs(attempt, pool.options.backoff));
    const ep = pool.endpointAt(0);
    lastEp = ep;
    try {
      if (pool.isClosed)
        throw { code: grpc.status.CANCELLED, details: 'berth client: closed', notSent: true };
      await pool.ready(ep);
      const res = await new Promise<Res>((resolve, reject) => {
        ep.client.makeUnaryRequest<object, Res>(
          m.path,
          m.requestSerialize as (v: object) => Buffer,
          m.responseDeserialize as (b: Buffer) => Res,
          req,
          new grpc.Metadata(),
          { deadline: Date.now() + deadlineMs },
          (err, r) => (err ? reject(failureFromError(err)) : resolve(r as Res)),
        );
      });
      pool.succeeded(ep);
      return res;
    } catch (err) {
      last = isFailure(err) ? err : failureFromError(err as Error);
      if (pool.isClosed || !isRetryable(last, kind)) break;
      pool.skip(ep);
    }
  }
  throw apiErrorOf(last as AttemptFailure, lastEp.address);
}

/** One log stream over the pool, started on the next endpoint while nothing came yet. */
function startLogs(
  pool: EndpointPool,
  req: object,
  onData: (chunk: Buffer) => void,
  onEnd: (err?: ApiError) => void,
): LogsHandle {
  const m = lookup(SERVICE, 'Logs');
  let current: grpc.ClientReadableStream<{ data: Uint8Array }> | undefined;
  let ended = false;
  let delivered = false;
  let attempts = 0;
  const finish = (err?: ApiError) => {
    if (ended) return;
    ended = true;
    current?.cancel();
    onEnd(err);
  };
  const failed = (f: AttemptFailure, ep: Endpoint) => {
    if (ended) return;
    if (isTransient(f) || f.notSent) pool.skip(ep);
    const again = !delivered && !pool.isClosed && attempts <= pool.options.retries;
    if (again && (f.notSent || isRetryable(f, 'read'))) {
      void sleep(backoffMs(attempts, pool.options.backoff)).then(open);
      return;
    }
    finish(apiErrorOf(f, ep.address));
  };
  const open = async () => {
    if (ended) return;
    attempts++;
    const ep = pool.endpointAt(0);
    try {
      await pool.ready(ep);
    } catch (err) {
      failed(isFailure(err) ? err : failureFromError(err as Error), ep);
      return;
    }
    if (ended) return;
    const stream = ep.client.makeServerStreamRequest<object, { data: Uint8Array }>(
      m.path,
      m.requestSerialize as (v: object) => Buffer,
      m.responseDeserialize as (b: Buffer) => { data: Uint8Array },
      req,
    );
    current = stream;
    // 'error' and 'end' may both come: act on the first.
    let settled = false;
    stream.on('data', (msg: { data: Uint8Array }) => {
      if (ended) return;
      if (!delivered) pool.succeeded(ep);
      delivered = true;
      onData(Buffer.from(msg.data ?? []));
    });
    stream.on('error', (err: grpc.ServiceError) => {
      if (settled) return;
      settled = true;
      failed(failureFromError(err), ep);
    });
    stream.on('end', () => {
      if (settled) return;
      settled = true;
      pool.succeeded(ep);
      finish();
    });
  };
  void open();
  return { cancel: () => finish() };
}
