// ContainerRuntime on a Docker engine through dockerode. The only file of the agent that
// talks to Docker; the pod logic sees just the interface in runtime.ts.
//
// Choices worth knowing:
// - The sandbox image is made locally (sandbox-image.ts): no registry is reachable.
// - Containers are never tty, so logs and exec output use Docker's multiplexed stream format
//   (8-byte frame headers), demultiplexed here.
// - exec past its timeout rejects with ExecTimeoutError (not exitCode -1, so a probe can tell
//   a timeout from a failure); the engine cannot kill an exec'd process, which may run on.
// - start tolerates an already running container but not a missing one (the caller must
//   learn it has to create it again); stop and remove tolerate a missing container.

import { type Readable, Transform, type TransformCallback } from 'node:stream';
import Docker from 'dockerode';
import type { Logger } from 'pino';
import {
  type ContainerInfo,
  type ContainerRuntime,
  type ContainerSpec,
  type ContainerState,
  type ContainerStats,
  type ExecResult,
  type ImageInfo,
  ImagePullError,
  type LogOptions,
  type SandboxSpec,
} from './runtime.js';
import { createSandboxImageEnsurer, ensureSandboxImageOn, followProgress } from './sandbox-image.js';

export interface DockerRuntimeOptions {
  /** The engine's socket; default /var/run/docker.sock (or DOCKER_HOST). */
  socketPath?: string;
  logger?: Logger;
  /** Upper bound on one pull, so a stalled registry cannot hang the agent; default 10 min. */
  pullTimeoutMs?: number;
}

/** exec did not finish within its timeout. The process may still run in the container. */
export class ExecTimeoutError extends Error {
  constructor(
    readonly containerId: string,
    readonly command: string[],
    readonly timeoutMs: number,
  ) {
    super(`exec ${JSON.stringify(command)} in ${containerId.slice(0, 12)} timed out after ${timeoutMs}ms`);
    this.name = 'ExecTimeoutError';
  }
}

/** Reasons a finished container carries (Kubernetes' terminated.reason). */
export const Reasons = { oomKilled: 'OOMKilled', completed: 'Completed', error: 'Error' } as const;

const NEVER = '0001-01-01T00:00:00Z';
const STATES: ReadonlySet<string> = new Set<ContainerState>([
  'created',
  'running',
  'paused',
  'restarting',
  'exited',
  'dead',
  'removing',
]);

interface EngineError {
  statusCode?: number;
  json?: { message?: string } | null;
  message?: string;
}

function statusOf(err: unknown): number | undefined {
  return (err as EngineError | null)?.statusCode;
}

/** The engine's own words, without dockerode's "(HTTP code 500) server error - " prefix. */
export function engineMessage(err: unknown): string {
  const e = err as EngineError | null;
  const fromJson = e?.json?.message;
  if (typeof fromJson === 'string' && fromJson !== '') return fromJson;
  const message = e?.message ?? String(err);
  return message.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

/** Run fn; a 404 from the engine (and any status in `also`) yields undefined. */
async function tolerate<T>(fn: () => Promise<T>, also: number[] = []): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    const status = statusOf(err);
    if (status === 404 || (status !== undefined && also.includes(status))) return undefined;
    throw err;
  }
}

/**
 * Splits Docker's multiplexed stream (frames of [type, 0, 0, 0, size32be] + payload) into
 * payloads. A stream that does not start with a valid header (a tty) passes through raw.
 */
export class Demuxer {
  private buffered: Buffer = Buffer.alloc(0);
  private raw = false;

  constructor(private readonly onFrame: (stream: 'stdout' | 'stderr', payload: Buffer) => void) {}

  write(chunk: Buffer): void {
    if (this.raw) {
      this.onFrame('stdout', chunk);
      return;
    }
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 8) {
      const type = this.buffered[0] ?? 0;
      if (type > 2 || this.buffered[1] !== 0 || this.buffered[2] !== 0 || this.buffered[3] !== 0) {
        this.raw = true;
        const rest = this.buffered;
        this.buffered = Buffer.alloc(0);
        this.onFrame('stdout', rest);
        return;
      }
      const size = this.buffered.readUInt32BE(4);
      if (this.buffered.length < 8 + size) return;
      this.onFrame(type === 2 ? 'stderr' : 'stdout', this.buffered.subarray(8, 8 + size));
      this.buffered = this.buffered.subarray(8 + size);
    }
  }
}

/** A Transform from the multiplexed format to the interleaved text of stdout and stderr. */
function demuxTransform(): Transform {
  let demuxer: Demuxer;
  const transform = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      demuxer.write(chunk);
      done();
    },
  });
  demuxer = new Demuxer((_stream, payload) => transform.push(payload));
  return transform;
}

function time(value: string | undefined): string | undefined {
  return value === undefined || value === '' || value === NEVER ? undefined : value;
}

function toInfo(c: Docker.ContainerInspectInfo): ContainerInfo {
  const status = c.State.Status;
  const state = (STATES.has(status) ? status : 'dead') as ContainerState;
  const info: ContainerInfo = {
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    image: c.Config.Image,
    imageId: c.Image,
    labels: c.Config.Labels ?? {},
    state,
  };
  const startedAt = time(c.State.StartedAt);
  if (startedAt) info.startedAt = startedAt;
  if (state === 'exited' || state === 'dead') {
    const finishedAt = time(c.State.FinishedAt);
    if (finishedAt) info.finishedAt = finishedAt;
    info.exitCode = c.State.ExitCode;
    info.reason = c.State.OOMKilled
      ? Reasons.oomKilled
      : c.State.ExitCode === 0
        ? Reasons.completed
        : Reasons.error;
  }
  // Only a sandbox (bridge) has an address; a joined container reports none.
  const settings = c.NetworkSettings as {
    IPAddress?: string;
    Networks?: Record<string, { IPAddress?: string }>;
  };
  const ip =
    settings?.IPAddress || Object.values(settings?.Networks ?? {}).find((n) => n?.IPAddress)?.IPAddress;
  if (ip) info.ip = ip;
  return info;
}

/** Cores in use: Docker's CLI formula (cpuDelta / systemDelta × online CPUs), without the ×100. */
export function cpuCores(s: Docker.ContainerStats): number {
  const cpuDelta = (s.cpu_stats?.cpu_usage?.total_usage ?? 0) - (s.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const systemDelta = (s.cpu_stats?.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0);
  const online = s.cpu_stats?.online_cpus || s.cpu_stats?.cpu_usage?.percpu_usage?.length || 1;
  if (cpuDelta <= 0 || systemDelta <= 0) return 0;
  return (cpuDelta / systemDelta) * online;
}

/** Working set as Docker's CLI shows it: usage less inactive file cache (cgroup v1 or v2). */
export function memoryBytes(s: Docker.ContainerStats): number {
  const usage = s.memory_stats?.usage ?? 0;
  const stats = (s.memory_stats?.stats ?? {}) as Partial<Record<string, number>>;
  const cache = stats.total_inactive_file ?? stats.inactive_file ?? stats.cache ?? 0;
  return cache < usage ? usage - cache : usage;
}

/** Engine port key: '8080/tcp'. */
function portKey(containerPort: number, protocol: string): string {
  return `${containerPort}/${protocol.toLowerCase()}`;
}

export function createDockerRuntime(options: DockerRuntimeOptions = {}): ContainerRuntime {
  const docker = options.socketPath ? new Docker({ socketPath: options.socketPath }) : new Docker();
  const log = options.logger?.child({ component: 'docker-runtime' });
  const pullTimeoutMs = options.pullTimeoutMs ?? 10 * 60_000;
  const ensureSandboxImage = createSandboxImageEnsurer(docker);

  async function findImage(image: string): Promise<ImageInfo | undefined> {
    const found = await tolerate(() => docker.getImage(image).inspect());
    return found ? { id: found.Id } : undefined;
  }

  /** The last inspect of each container list() saw, by id. */
  const seen = new Map<string, ContainerInfo>();

  async function inspect(id: string): Promise<ContainerInfo | undefined> {
    const found = await tolerate(() => docker.getContainer(id).inspect());
    return found ? toInfo(found) : undefined;
  }

  return {
    async version() {
      const v = await docker.version();
      return `docker://${v.Version}`;
    },

    findImage,

    async pullImage(image) {
      const signal = AbortSignal.timeout(pullTimeoutMs);
      try {
        const stream = await docker.pull(image, { abortSignal: signal });
        await followProgress(docker, stream);
        if (signal.aborted) throw new Error('aborted'); // an aborted stream just ends
      } catch (err) {
        const message = signal.aborted ? `pull timed out after ${pullTimeoutMs}ms` : engineMessage(err);
        log?.info({ image, err: message }, 'image pull failed');
        throw new ImagePullError(image, message);
      }
      const found = await findImage(image);
      if (!found) throw new ImagePullError(image, `pull of ${image} ended but the image is not present`);
      log?.info({ image, id: found.id }, 'image pulled');
      return found;
    },

    ensureSandboxImage,

    async createSandbox(spec: SandboxSpec) {
      const exposed: Record<string, object> = {};
      const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
      for (const p of spec.ports) {
        const key = portKey(p.containerPort, p.protocol);
        exposed[key] = {};
        bindings[key] = [...(bindings[key] ?? []), { HostIp: p.hostIp, HostPort: String(p.hostPort) }];
      }
      const create = async () =>
        docker.createContainer({
          name: spec.name,
          Image: await ensureSandboxImage(),
          Hostname: spec.hostname,
          Labels: spec.labels,
          ExposedPorts: exposed,
          // The sandbox holds only the network namespace, nothing to flush. A SIGTERM that
          // lands before its shell has set the trap is ignored (PID 1) and the stop would wait
          // out the whole grace period; under load that happens, so it is killed instead.
          StopSignal: 'SIGKILL',
          HostConfig: {
            NetworkMode: 'bridge',
            PortBindings: bindings,
            RestartPolicy: { Name: 'no' },
            Init: false,
          },
        });
      try {
        return (await create()).id;
      } catch (err) {
        // The memoized image was removed behind our back: make it again, once.
        if (statusOf(err) !== 404) throw err;
        log?.warn({ err: engineMessage(err) }, 'sandbox image missing, importing it again');
        await ensureSandboxImageOn(docker);
        return (await create()).id;
      }
    },

    async createContainer(spec: ContainerSpec) {
      // Kubernetes: command replaces ENTRYPOINT (and drops the image's CMD), args replace CMD.
      const entry: { Entrypoint?: string[]; Cmd?: string[] } = {};
      if (spec.command !== undefined) {
        entry.Entrypoint = spec.command;
        entry.Cmd = spec.args ?? [];
      } else if (spec.args !== undefined) {
        entry.Cmd = spec.args;
      }
      const hostConfig: Docker.HostConfig = {
        NetworkMode: `container:${spec.sandboxId}`,
        Binds: spec.mounts.map((m) => `${m.hostPath}:${m.containerPath}${m.readOnly ? ':ro' : ''}`),
        RestartPolicy: { Name: 'no' },
        Init: false,
      };
      if (spec.cpuLimit !== undefined) hostConfig.NanoCpus = Math.round(spec.cpuLimit * 1e9);
      if (spec.memoryLimit !== undefined) {
        hostConfig.Memory = spec.memoryLimit;
        hostConfig.MemorySwap = spec.memoryLimit; // no swap beyond the limit
      }
      const created = await docker.createContainer({
        name: spec.name,
        Image: spec.image,
        ...entry,
        ...(spec.workingDir ? { WorkingDir: spec.workingDir } : {}),
        Env: spec.env,
        Labels: spec.labels,
        HostConfig: hostConfig,
      });
      return created.id;
    },

    async start(id) {
      // Already running (304) is fine; a missing container (404) is not: the caller must
      // create it again rather than believe it runs.
      try {
        await docker.getContainer(id).start();
      } catch (err) {
        if (statusOf(err) !== 304) throw err;
      }
    },

    async stop(id, graceSeconds) {
      await tolerate(() => docker.getContainer(id).stop({ t: Math.max(0, Math.floor(graceSeconds)) }), [304]);
    },

    async remove(id) {
      seen.delete(id);
      // 409: removal already in progress (another caller); it will be gone.
      await tolerate(() => docker.getContainer(id).remove({ force: true, v: true }), [409]);
    },

    async list(labels) {
      const filters = { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) };
      const summaries = await docker.listContainers({ all: true, filters });
      // The summary lacks exit codes and times, so each container is inspected, but only
      // when its state moved since the last look: what an inspect says does not change
      // while a container stays running, or stays exited. Containers may vanish meanwhile.
      const infos = await Promise.all(
        summaries.map(async (s) => {
          const cached = seen.get(s.Id);
          if (cached && cached.state === s.State) return cached;
          const info = await inspect(s.Id);
          if (info) seen.set(s.Id, info);
          return info;
        }),
      );
      const live = new Set(summaries.map((s) => s.Id));
      // Forget containers of this selection that are gone.
      for (const [id, info] of seen) {
        if (!live.has(id) && Object.entries(labels).every(([k, v]) => info.labels[k] === v)) seen.delete(id);
      }
      return infos.filter((i): i is ContainerInfo => i !== undefined);
    },

    inspect,

    async logs(id, o: LogOptions) {
      const common = {
        stdout: true,
        stderr: true,
        timestamps: o.timestamps,
        ...(o.tail !== undefined ? { tail: o.tail } : {}),
        ...(o.since !== undefined ? { since: o.since } : {}),
      };
      const out = demuxTransform();
      const container = docker.getContainer(id);
      if (o.follow) {
        const stream = await container.logs({ ...common, follow: true });
        stream.on('error', (err: Error) => out.destroy(err));
        // A reader that goes away must not leave the engine's follow request open.
        out.on('close', () => (stream as Readable).destroy());
        stream.pipe(out);
      } else {
        out.end(await container.logs({ ...common, follow: false }));
      }
      return out;
    },

    async exec(id, command, timeoutMs) {
      const exec = await docker.getContainer(id).exec({
        Cmd: command,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      try {
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        const demuxer = new Demuxer((s, payload) => (s === 'stderr' ? stderr : stdout).push(payload));
        const stream = await exec.start({ Detach: false, Tty: false, abortSignal: controller.signal });
        await new Promise<void>((resolve, reject) => {
          stream.on('data', (chunk: Buffer) => demuxer.write(chunk));
          stream.on('end', resolve);
          stream.on('close', resolve);
          stream.on('error', reject);
          if (controller.signal.aborted) reject(new Error('aborted'));
          controller.signal.addEventListener('abort', () => reject(new Error('aborted')));
        });
        // The stream can end a moment before the engine records the exit code.
        let info = await exec.inspect();
        for (let i = 0; info.Running && i < 50 && !controller.signal.aborted; i++) {
          await new Promise((r) => setTimeout(r, 20));
          info = await exec.inspect();
        }
        if (controller.signal.aborted) throw new Error('aborted');
        const result: ExecResult = {
          exitCode: info.ExitCode ?? -1,
          stdout: Buffer.concat(stdout),
          stderr: Buffer.concat(stderr),
        };
        return result;
      } catch (err) {
        if (controller.signal.aborted) throw new ExecTimeoutError(id, command, timeoutMs);
        throw err;
      } finally {
        clearTimeout(timer);
      }
    },

    async stats(id) {
      const s = await docker.getContainer(id).stats({ stream: false });
      const result: ContainerStats = { cpuCores: cpuCores(s), memoryBytes: memoryBytes(s) };
      return result;
    },
  };
}
