// The Pods service (proto/api.proto): logs, exec and usage, answered by the node that runs
// the pod. Any node takes the request: for another node's pod it forwards it to that node's
// client address (the Node's berth.io/client-address annotation), marked `local` so it
// goes no further, and relays the answer. Errors are ApiErrors, as in the Objects service.

import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import type { Logger } from 'pino';
import { ApiError, ApiErrorCode, badRequest } from '../api/errors.js';
import type { ApiServer } from '../api/server/api-server.js';
import { apiProtos, toStatus } from '../api/server/grpc-api.js';
import type { ApiObject } from '../api/types.js';
import { apiErrorOf } from '../client/api-client.js';
import { failureFromError } from '../client/connection.js';
import { CLIENT_ADDRESS_ANNOTATION } from './node-registration.js';
import type { PodIO } from './pod-io.js';

export interface PodsServiceDeps {
  api: ApiServer;
  nodeName: string;
  /** Absent on a node without an agent: it can only forward. */
  io: PodIO | undefined;
  logger: Logger;
  /** For forwarding to other nodes: this node's mutual TLS (absent: plain, --insecure). */
  credentials?: grpc.ChannelCredentials;
}

type Req = Record<string, unknown>;

export function podsService(): protoLoader.ServiceDefinition {
  return apiProtos()['berth.api.v1.Pods'] as protoLoader.ServiceDefinition;
}

const str = (v: unknown) => (typeof v === 'string' ? v : '');
const DEFAULT_EXEC_TIMEOUT_MS = 60_000;

/** Clients to other nodes, one per address, made on first use. */
class Peers {
  private readonly clients = new Map<string, grpc.Client>();
  constructor(private readonly credentials: grpc.ChannelCredentials) {}
  get(address: string): grpc.Client {
    let c = this.clients.get(address);
    if (!c) {
      c = new grpc.Client(address, this.credentials);
      this.clients.set(address, c);
    }
    return c;
  }
  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

export function addPodsService(server: grpc.Server, deps: PodsServiceDeps): { close(): void } {
  const { api } = deps;
  const peers = new Peers(deps.credentials ?? grpc.credentials.createInsecure());
  const def = podsService();
  const method = (name: string) => def[name] as protoLoader.MethodDefinition<object, object>;

  /** The pod and, when another node runs it, that node's client address. */
  const locate = async (req: Req): Promise<{ pod: ApiObject; remote?: string }> => {
    const pod = await api.get('pods', str(req.namespace) || 'default', str(req.pod));
    const node = pod.spec?.nodeName;
    if (typeof node !== 'string' || node === '') {
      throw badRequest(`pod "${pod.metadata.name}" is not on a node yet (not scheduled)`);
    }
    if (node === deps.nodeName || req.local === true) {
      if (!deps.io) throw new ApiError(ApiErrorCode.Unavailable, `node ${deps.nodeName} runs no agent`);
      return { pod };
    }
    const n = await api.get('nodes', undefined, node);
    const remote = n.metadata.annotations?.[CLIENT_ADDRESS_ANNOTATION];
    if (!remote)
      throw new ApiError(ApiErrorCode.Unavailable, `node ${node} has not said where it listens yet`);
    return { pod, remote };
  };

  const relayError = (err: unknown): ApiError => {
    if (err instanceof ApiError) return err;
    const f = failureFromError(err as grpc.ServiceError);
    return apiErrorOf(f);
  };

  const forwardUnary = (address: string, name: string, req: Req): Promise<Req> => {
    const m = method(name);
    return new Promise((resolve, reject) => {
      peers.get(address).makeUnaryRequest(
        m.path,
        m.requestSerialize as (v: object) => Buffer,
        m.responseDeserialize as (b: Buffer) => Req,
        { ...req, local: true },
        // The command's own limit (exec) or the default, plus time for the hop.
        { deadline: Date.now() + (Number(req.timeout_ms) || DEFAULT_EXEC_TIMEOUT_MS) + 10_000 },
        (err, res) => (err ? reject(relayError(err)) : resolve(res as Req)),
      );
    });
  };

  const topLocal = async (req: Req) => {
    if (!deps.io) return { pods: [], nodes: [] };
    const ns = req.all_namespaces === true ? undefined : str(req.namespace) || 'default';
    const pods = (await deps.io.topPods())
      .filter((p) => ns === undefined || p.namespace === ns)
      .map((p) => ({
        namespace: p.namespace,
        name: p.name,
        node: deps.nodeName,
        containers: p.containers.map((c) => ({
          name: c.name,
          cpu_cores: c.cpuCores,
          memory_bytes: c.memoryBytes,
        })),
      }));
    const u = deps.io.nodeUsage();
    const nodes = [
      {
        name: deps.nodeName,
        cpu_cores: u.cpuCores,
        memory_bytes: u.memoryBytes,
        cpu_capacity: u.cpuCapacity,
        memory_capacity: u.memoryCapacity,
      },
    ];
    return { pods, nodes };
  };

  server.addService(def as unknown as grpc.ServiceDefinition, {
    Logs: (call: grpc.ServerWritableStream<Req, object>) => {
      let source: NodeJS.ReadableStream | undefined;
      let remote: grpc.ClientReadableStream<Req> | undefined;
      let done = false;
      call.on('cancelled', () => {
        done = true;
        (source as unknown as { destroy?: () => void })?.destroy?.();
        remote?.cancel();
      });
      const fail = (err: unknown) => {
        if (done) return;
        done = true;
        call.emit('error', toStatus(relayError(err)));
      };
      (async () => {
        const req = call.request;
        const where = await locate(req);
        if (where.remote) {
          const m = method('Logs');
          remote = peers
            .get(where.remote)
            .makeServerStreamRequest(
              m.path,
              m.requestSerialize as (v: object) => Buffer,
              m.responseDeserialize as (b: Buffer) => Req,
              { ...req, local: true },
            );
          remote.on('data', (chunk: Req) => {
            if (!done) call.write(chunk);
          });
          remote.on('error', fail);
          remote.on('end', () => {
            if (!done) {
              done = true;
              call.end();
            }
          });
          return;
        }
        const tail = req.tail_lines;
        source = await (deps.io as PodIO).logs(
          where.pod,
          str(req.container) || undefined,
          req.previous === true,
          {
            follow: req.follow === true,
            timestamps: req.timestamps === true,
            ...(typeof tail === 'number' && tail >= 0 ? { tail } : {}),
          },
        );
        source.on('data', (data: Buffer | string) => {
          if (!done) call.write({ data: typeof data === 'string' ? Buffer.from(data) : data });
        });
        source.on('error', fail);
        source.on('end', () => {
          if (!done) {
            done = true;
            call.end();
          }
        });
      })().catch(fail);
    },
    Exec: (call: grpc.ServerUnaryCall<Req, object>, callback: grpc.sendUnaryData<object>) => {
      (async () => {
        const req = call.request;
        const where = await locate(req);
        if (where.remote) return forwardUnary(where.remote, 'Exec', req);
        const command = Array.isArray(req.command) ? (req.command as string[]) : [];
        const timeout = Number(req.timeout_ms) || DEFAULT_EXEC_TIMEOUT_MS;
        const r = await (deps.io as PodIO).exec(where.pod, str(req.container) || undefined, command, timeout);
        return { stdout: r.stdout, stderr: r.stderr, exit_code: r.exitCode };
      })().then(
        (res) => callback(null, res),
        (err) => callback(toStatus(relayError(err)), null),
      );
    },
    Top: (call: grpc.ServerUnaryCall<Req, object>, callback: grpc.sendUnaryData<object>) => {
      (async () => {
        const req = call.request;
        if (req.local === true) return topLocal(req);
        const nodes = (await api.list('nodes')).items;
        const parts = await Promise.all(
          nodes.map(async (n) => {
            if (n.metadata.name === deps.nodeName) return topLocal(req);
            const address = n.metadata.annotations?.[CLIENT_ADDRESS_ANNOTATION];
            if (!address) return { pods: [], nodes: [] };
            // A node that does not answer is left out, as metrics-server leaves out nodes it cannot scrape.
            return forwardUnary(address, 'Top', req).catch(() => ({ pods: [], nodes: [] }));
          }),
        );
        return {
          pods: parts.flatMap((p) => (p.pods as object[]) ?? []),
          nodes: parts.flatMap((p) => (p.nodes as object[]) ?? []),
        };
      })().then(
        (res) => callback(null, res),
        (err) => callback(toStatus(relayError(err)), null),
      );
    },
  });
  return { close: () => peers.close() };
}
