// A pod's volumes as host directories, bind-mounted into its containers:
//   <dataDir>/pods/<podUid>/volumes/<name>/
// (Secret volumes: the same layout under memoryRoot(dataDir), in tmpfs.)
// ConfigMap and Secret volumes are written the way the kubelet's AtomicWriter does, so a
// container never sees half an update:
//   ..2026_11_26_13_24_07.Ab12Cd/   the files (a fresh directory per change)
//   ..data -> ..2026_11_26_13_24_07.Ab12Cd   swapped by renaming a new symlink over it
//   <key> -> ..data/<key>            what the container opens; relative, so it resolves inside too

import { createHash } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Container, Pod, Volume } from './container-spec.js';
import type { ConfigLookups } from './env.js';
import { checkHostPath } from './host-path.js';
import {
  type ClaimLookups,
  type ClaimResolution,
  type LocalNode,
  resolveClaim,
} from './persistent-volumes.js';
import type { Mount } from './runtime.js';

/** What PersistentVolumeClaim volumes need: the claims and volumes, and this node. */
export interface ClaimStorage {
  lookups: ClaimLookups;
  node: LocalNode;
}

export interface VolumeFile {
  /** Relative path inside the volume. */
  path: string;
  content: string;
  /** Permission bits (JSON numbers are decimal: 420 = 0o644). */
  mode: number;
}

export interface PreparedVolumes {
  /** Volume name -> host directory (or file, for a hostPath file). */
  mounts: Map<string, string>;
  errors: string[];
  /** Claim volumes that cannot be mounted yet (not bound, not on this node): retried, not a config error. */
  unmounted: { name: string; error: string }[];
}

export function podDir(dataDir: string, podUid: string): string {
  if (!podUid || podUid.includes('/') || podUid.includes('\\') || podUid.startsWith('.'))
    throw new Error(`invalid pod uid ${JSON.stringify(podUid)}`);
  return join(dataDir, 'pods', podUid);
}

export function volumeDir(dataDir: string, podUid: string, name: string): string {
  return join(podDir(dataDir, podUid), 'volumes', name);
}

/**
 * Where Secret volumes live: in memory (tmpfs /dev/shm), as the kubelet keeps them, never in
 * the data directory, so Secrets stay encrypted on every disk. One folder per data directory.
 */
export function memoryRoot(dataDir: string): string {
  if (!existsSync(SHM)) return join(dataDir, 'memory');
  return join(SHM, 'berth', createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 16));
}
const SHM = '/dev/shm';

function sourceDir(dataDir: string, podUid: string, name: string, kind: 'configmap' | 'secret'): string {
  return kind === 'secret' ? volumeDir(memoryRoot(dataDir), podUid, name) : volumeDir(dataDir, podUid, name);
}

const DATA = '..data';
const DATA_TMP = '..data_tmp';

// AtomicWriter's rule: relative, no '..' element, nothing starting with '..' (reserved names).
function badPath(p: string): boolean {
  if (p === '' || isAbsolute(p)) return true;
  return p.split('/').some((part) => part === '' || part === '.' || part.startsWith('..'));
}

async function readTree(root: string, prefix = ''): Promise<Map<string, { content: string; mode: number }>> {
  const out = new Map<string, { content: string; mode: number }>();
  for (const entry of await fs.readdir(join(root, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) for (const [k, v] of await readTree(root, rel)) out.set(k, v);
    else {
      const p = join(root, rel);
      out.set(rel, { content: await fs.readFile(p, 'utf8'), mode: (await fs.stat(p)).mode & 0o777 });
    }
  }
  return out;
}

async function readlinkOrUndefined(p: string): Promise<string | undefined> {
  try {
    return await fs.readlink(p);
  } catch {
    return undefined;
  }
}

function stamp(d: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `..${d.getUTCFullYear()}_${two(d.getUTCMonth() + 1)}_${two(d.getUTCDate())}_${two(d.getUTCHours())}_${two(d.getUTCMinutes())}_${two(d.getUTCSeconds())}.`;
}

/** Write `files` into `dir` atomically; unchanged contents and modes write nothing. True when it wrote. */
export async function writeAtomic(dir: string, files: VolumeFile[], now = new Date()): Promise<boolean> {
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  const oldTs = await readlinkOrUndefined(join(dir, DATA));
  const top = (p: string) => p.split('/')[0] ?? p;
  let oldFiles = new Map<string, { content: string; mode: number }>();
  if (oldTs !== undefined) {
    oldFiles = await readTree(join(dir, oldTs)).catch(() => new Map());
    const same =
      oldFiles.size === files.length &&
      files.every((f) => {
        const o = oldFiles.get(f.path);
        return o !== undefined && o.content === f.content && o.mode === (f.mode & 0o777);
      });
    if (same) return false;
  }

  const ts = await fs.mkdtemp(join(dir, stamp(now)));
  await fs.chmod(ts, 0o755);
  for (const f of files) {
    const p = join(ts, f.path);
    await fs.mkdir(dirname(p), { recursive: true, mode: 0o755 });
    await fs.writeFile(p, f.content);
    await fs.chmod(p, f.mode & 0o777);
  }
  // rename(2) over the old link is the one atomic step.
  await fs.rm(join(dir, DATA_TMP), { force: true });
  await fs.symlink(relative(dir, ts), join(dir, DATA_TMP));
  await fs.rename(join(dir, DATA_TMP), join(dir, DATA));

  const wanted = new Set(files.map((f) => top(f.path)));
  for (const name of wanted) {
    const link = join(dir, name);
    if ((await readlinkOrUndefined(link)) !== `${DATA}/${name}`) {
      await fs.rm(link, { force: true, recursive: true });
      await fs.symlink(`${DATA}/${name}`, link);
    }
  }
  for (const old of new Set([...oldFiles.keys()].map(top)))
    if (!wanted.has(old)) await fs.rm(join(dir, old), { force: true });
  // The old directory, and any left by a write that crashed half way.
  const current = relative(dir, ts);
  for (const entry of await fs.readdir(dir))
    if (entry.startsWith('..') && entry !== DATA && entry !== current)
      await fs.rm(join(dir, entry), { recursive: true, force: true });
  return true;
}

type Source = { kind: 'configmap' | 'secret'; name: string; v: NonNullable<Volume['configMap']> };

function sourceOf(v: Volume): Source | undefined {
  if (v.configMap) return { kind: 'configmap', name: v.configMap.name, v: v.configMap };
  if (v.secret) {
    const { secretName, ...rest } = v.secret;
    return { kind: 'secret', name: secretName, v: { name: secretName, ...rest } };
  }
  return undefined;
}

/** The files of a ConfigMap or Secret volume, or why there are none. */
export function volumePayload(
  kind: 'configmap' | 'secret',
  name: string,
  source: {
    items?: { key: string; path: string; mode?: number }[];
    defaultMode?: number;
    optional?: boolean;
  },
  data: Record<string, string> | undefined,
): { files: VolumeFile[]; errors: string[] } {
  if (!data) return { files: [], errors: source.optional ? [] : [`${kind} "${name}" not found`] };
  const mode = source.defaultMode ?? 0o644;
  const items = source.items?.length
    ? source.items
    : Object.keys(data)
        .sort()
        .map((key) => ({ key, path: key, mode: undefined }));
  const files: VolumeFile[] = [];
  const errors: string[] = [];
  for (const item of items) {
    const content = data[item.key];
    if (content === undefined) {
      if (!source.optional) errors.push(`key "${item.key}" not found in ${kind} "${name}"`);
    } else if (badPath(item.path))
      errors.push(`invalid path ${JSON.stringify(item.path)} in ${kind} "${name}"`);
    else files.push({ path: item.path, content, mode: item.mode ?? mode });
  }
  return { files, errors };
}

async function writeSource(pod: Pod, dir: string, s: Source, lookups: ConfigLookups) {
  const ns = pod.metadata.namespace ?? 'default';
  const data =
    s.kind === 'configmap' ? await lookups.configMap(ns, s.name) : await lookups.secret(ns, s.name);
  const { files, errors } = volumePayload(s.kind, s.name, s.v, data);
  // On an error the last good contents stay, as the kubelet leaves them.
  if (errors.length > 0) return { changed: false, errors };
  return { changed: await writeAtomic(dir, files), errors };
}

/** Make every volume of the pod; idempotent, so an agent that restarts calls it again. */
export async function prepareVolumes(
  pod: Pod,
  dataDir: string,
  lookups: ConfigLookups,
  storage?: ClaimStorage,
): Promise<PreparedVolumes> {
  const mounts = new Map<string, string>();
  const errors: string[] = [];
  const unmounted: { name: string; error: string }[] = [];
  const uid = pod.metadata.uid ?? '';
  for (const v of pod.spec.volumes ?? []) {
    try {
      if (v.persistentVolumeClaim) {
        const claimName = v.persistentVolumeClaim.claimName;
        const r: ClaimResolution = storage
          ? await resolveClaim(
              pod.metadata.namespace ?? 'default',
              claimName,
              storage.lookups,
              storage.node,
            ).catch(
              (e: Error): ClaimResolution => ({
                error: `persistentvolumeclaim "${claimName}": ${e.message}`,
              }),
            )
          : { error: `persistentvolumeclaim "${claimName}": this agent has no access to claims` };
        if (r.path !== undefined) mounts.set(v.name, r.path);
        else unmounted.push({ name: v.name, error: r.error });
        continue;
      }
      if (v.hostPath) {
        const bad = await checkHostPath(v.hostPath.path, v.hostPath.type ?? '');
        if (bad) errors.push(bad);
        else mounts.set(v.name, v.hostPath.path);
        continue;
      }
      const source = sourceOf(v);
      const dir = source ? sourceDir(dataDir, uid, v.name, source.kind) : volumeDir(dataDir, uid, v.name);
      if (source) {
        const r = await writeSource(pod, dir, source, lookups);
        errors.push(...r.errors);
        // A first write that failed leaves nothing to mount; a later failure keeps the old data.
        if (r.errors.length === 0 || (await readlinkOrUndefined(join(dir, DATA))) !== undefined)
          mounts.set(v.name, dir);
        continue;
      }
      // emptyDir (medium Memory is a plain directory here).
      await fs.mkdir(dir, { recursive: true, mode: 0o777 });
      await fs.chmod(dir, 0o777); // Kubernetes' emptyDir is world-writable: containers may run as any user.
      mounts.set(v.name, dir);
    } catch (e) {
      errors.push(`volume "${v.name}": ${(e as Error).message}`);
    }
  }
  return { mounts, errors, unmounted };
}

/** Re-write ConfigMap and Secret volumes whose data changed; unchanged data writes nothing. */
export async function updateVolumes(
  pod: Pod,
  dataDir: string,
  lookups: ConfigLookups,
): Promise<{ changed: string[]; errors: string[] }> {
  const changed: string[] = [];
  const errors: string[] = [];
  for (const v of pod.spec.volumes ?? []) {
    const source = sourceOf(v);
    if (!source) continue;
    try {
      const dir = sourceDir(dataDir, pod.metadata.uid ?? '', v.name, source.kind);
      const r = await writeSource(pod, dir, source, lookups);
      if (r.changed) changed.push(v.name);
      errors.push(...r.errors);
    } catch (e) {
      errors.push(`volume "${v.name}": ${(e as Error).message}`);
    }
  }
  return { changed, errors };
}

const within = (base: string, p: string) => p === base || p.startsWith(base + sep);

// A subPath may not leave its volume, even through a symlink a container planted (CVE-2017-1002101).
async function resolveSubPath(volumePath: string, subPath: string): Promise<string> {
  if (isAbsolute(subPath) || subPath.split('/').includes('..'))
    throw new Error(`subPath ${JSON.stringify(subPath)} must be a relative path without '..'`);
  const base = await fs.realpath(volumePath);
  const target = join(volumePath, subPath);
  let existing = target;
  while (
    !(await fs.access(existing, constants.F_OK).then(
      () => true,
      () => false,
    ))
  )
    existing = dirname(existing);
  if (!within(base, await fs.realpath(existing)))
    throw new Error(`subPath ${JSON.stringify(subPath)} leaves its volume`);
  if (existing !== target) await fs.mkdir(target, { recursive: true, mode: 0o755 });
  const real = await fs.realpath(target);
  if (!within(base, real)) throw new Error(`subPath ${JSON.stringify(subPath)} leaves its volume`);
  return real;
}

/**
 * The container's mounts. ConfigMap and Secret volumes are always read-only (as in
 * Kubernetes); `volumes` (the pod's spec.volumes) tells which those are.
 */
export async function mountsFor(
  container: Container,
  volumeHostPaths: ReadonlyMap<string, string>,
  volumes: Volume[] = [],
): Promise<{ mounts: Mount[]; errors: string[] }> {
  const mounts: Mount[] = [];
  const errors: string[] = [];
  for (const m of container.volumeMounts ?? []) {
    const hostPath = volumeHostPaths.get(m.name);
    if (hostPath === undefined) {
      errors.push(`volume "${m.name}" is not ready`);
      continue;
    }
    const v = volumes.find((x) => x.name === m.name);
    const forced = Boolean(v?.configMap || v?.secret || v?.persistentVolumeClaim?.readOnly);
    try {
      const path = m.subPath ? await resolveSubPath(hostPath, m.subPath) : hostPath;
      mounts.push({ hostPath: path, containerPath: m.mountPath, readOnly: forced || m.readOnly === true });
    } catch (e) {
      errors.push(`volumeMount "${m.name}" at ${m.mountPath}: ${(e as Error).message}`);
    }
  }
  return { mounts, errors };
}

/** Remove everything the agent made for a pod (hostPath volumes live elsewhere and stay). */
export async function removePodDir(dataDir: string, podUid: string): Promise<void> {
  await fs.rm(podDir(dataDir, podUid), { recursive: true, force: true });
  await fs.rm(podDir(memoryRoot(dataDir), podUid), { recursive: true, force: true });
}
