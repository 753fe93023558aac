// The agent's view of a container engine: the few operations the kubelet's role needs,
// behind one interface (ContainerRuntime) so the pod logic can be driven by tests. The
// Docker adapter (docker-runtime.ts, dockerode) is the real one.
//
// A pod is one sandbox container, which owns the pod's network namespace and publishes its
// ports on the node's address, plus one container per spec container joined to the
// sandbox's network namespace (Kubernetes' "pause" container pattern). Every container
// carries labels naming the node, the pod and the container, so an agent that restarts
// finds (adopts) the containers it made and removes those no pod wants any more.

/** Labels on every container the agent makes. */
export const Labels = {
  managedBy: 'berth.io/managed-by',
  /** The cluster's id: several clusters (tests) may share one engine and reuse node names. */
  cluster: 'berth.io/cluster',
  node: 'berth.io/node',
  podUid: 'berth.io/pod-uid',
  podName: 'berth.io/pod-name',
  podNamespace: 'berth.io/pod-namespace',
  /** The spec container's name; absent on the sandbox. */
  container: 'berth.io/container',
  /** 'sandbox' or 'container'. */
  role: 'berth.io/role',
  /** How many times this spec container was started before (0 for the first). */
  attempt: 'berth.io/attempt',
  /** Hash of the container's spec: a changed spec means a new container. */
  specHash: 'berth.io/spec-hash',
} as const;

export const MANAGED_BY = 'berth';

export interface PortBinding {
  containerPort: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  /** The node address the port is published on (127.0.0.N locally). */
  hostIp: string;
  hostPort: number;
}

export interface SandboxSpec {
  /** Engine-level name, unique: berth_<node>_<namespace>_<pod>_<uid8>_sandbox. */
  name: string;
  labels: Record<string, string>;
  hostname: string;
  ports: PortBinding[];
}

export interface Mount {
  hostPath: string;
  containerPath: string;
  readOnly: boolean;
}

export interface ContainerSpec {
  name: string;
  image: string;
  /** Overrides the image's entrypoint when set (Kubernetes' `command`). */
  command?: string[];
  /** Overrides the image's cmd when set (Kubernetes' `args`). */
  args?: string[];
  workingDir?: string;
  /** NAME=value pairs. */
  env: string[];
  labels: Record<string, string>;
  mounts: Mount[];
  /** CPU limit in cores (0.5 = half a core); absent: none. */
  cpuLimit?: number;
  /** Memory limit in bytes; absent: none. */
  memoryLimit?: number;
  /** The sandbox whose network namespace (and hostname) the container joins. */
  sandboxId: string;
}

export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'dead' | 'removing';

export interface ContainerInfo {
  id: string;
  name: string;
  image: string;
  /** The image id the container runs (docker-pullable://... in Kubernetes; here the engine's id). */
  imageId: string;
  labels: Record<string, string>;
  state: ContainerState;
  /** RFC 3339; absent when never started. */
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  /** The engine's reason when it ended ('OOMKilled', 'Error', 'Completed'). */
  reason?: string;
  /** The container's address on the engine's bridge (recorded as podIP; never sent traffic). */
  ip?: string;
}

export interface ImageInfo {
  id: string;
}

export interface LogOptions {
  follow: boolean;
  /** Last N lines; absent: all. */
  tail?: number;
  timestamps: boolean;
  /** RFC 3339 or seconds since epoch. */
  since?: number;
}

export interface ExecOptions {
  command: string[];
  stdin?: NodeJS.ReadableStream;
  tty: boolean;
}

export interface ExecResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

export interface ContainerStats {
  /** Cores in use, averaged over the engine's last sample (0.25 = a quarter of a core). */
  cpuCores: number;
  memoryBytes: number;
}

/** Failure to get an image: the engine's message, for ErrImagePull / ImagePullBackOff. */
export class ImagePullError extends Error {
  constructor(
    readonly image: string,
    message: string,
  ) {
    super(message);
    this.name = 'ImagePullError';
  }
}

/** An image that must be present locally (imagePullPolicy Never) is not. */
export class ImageNotPresentError extends Error {
  constructor(readonly image: string) {
    super(`image "${image}" is not present with pull policy of Never`);
    this.name = 'ImageNotPresentError';
  }
}

export interface ContainerRuntime {
  /** The engine's version, for Node status (containerRuntimeVersion: 'docker://20.10.24'). */
  version(): Promise<string>;
  /** The image if present locally, else undefined. */
  findImage(image: string): Promise<ImageInfo | undefined>;
  /** Pull an image; rejects with ImagePullError carrying the engine's message. */
  pullImage(image: string): Promise<ImageInfo>;
  /** The image the sandboxes run, made locally if missing (no registry is needed). */
  ensureSandboxImage(): Promise<string>;
  createSandbox(spec: SandboxSpec): Promise<string>;
  createContainer(spec: ContainerSpec): Promise<string>;
  start(id: string): Promise<void>;
  /** SIGTERM, then SIGKILL after graceSeconds (0: SIGKILL at once). Stopped or gone: no error. */
  stop(id: string, graceSeconds: number): Promise<void>;
  /** Remove (forcefully); gone already: no error. */
  remove(id: string): Promise<void>;
  /** Containers (running or not) whose labels include every given label. */
  list(labels: Record<string, string>): Promise<ContainerInfo[]>;
  inspect(id: string): Promise<ContainerInfo | undefined>;
  /** The container's output (stdout and stderr interleaved, demultiplexed), ending when it does (follow) or at once. */
  logs(id: string, options: LogOptions): Promise<NodeJS.ReadableStream>;
  /** Run a command in a running container and collect its output (probes, berthctl exec without a tty). */
  exec(id: string, command: string[], timeoutMs: number): Promise<ExecResult>;
  /** One sample of usage. */
  stats(id: string): Promise<ContainerStats>;
}
