// The sandbox ("pause") image, made locally because no registry is reachable.
//
// Choice: `docker import` of a root filesystem built in memory, holding only the host's
// statically linked /bin/busybox (Debian's busybox-static) plus sh and sleep links. Its CMD is
// a shell loop that exits on SIGTERM; the runtime also sets StopSignal SIGKILL on sandboxes,
// since a SIGTERM that lands before the trap is set would be ignored (PID 1) until the grace
// period ends. The tar is written here
// (ustar, ~40 lines) rather than with tar-stream, which is only a transitive dependency.
//
// The tag carries SANDBOX_IMAGE_VERSION, not Berth's version: it changes only when the
// contents or command change, so an upgrade does not rebuild (or orphan) the image. Several
// agents on one engine may import at once; that only retags the same content, harmless.

import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type Docker from 'dockerode';

/** Bump when the root filesystem or the command changes. */
export const SANDBOX_IMAGE_VERSION = '1';
export const SANDBOX_IMAGE = `berth/pause:${SANDBOX_IMAGE_VERSION}`;
export const SANDBOX_COMMAND = [
  '/bin/busybox',
  'sh',
  '-c',
  'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done',
];
const HOST_BUSYBOX = '/bin/busybox';

/** One entry of the in-memory tar: a directory, a regular file or a symbolic link. */
export interface TarEntry {
  path: string;
  type: 'dir' | 'file' | 'symlink';
  mode: number;
  data?: Buffer;
  linkTarget?: string;
}

function octal(value: number, width: number): string {
  // width - 1 digits and a NUL, as ustar expects.
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function header(entry: TarEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  const name = entry.type === 'dir' && !entry.path.endsWith('/') ? `${entry.path}/` : entry.path;
  if (Buffer.byteLength(name) > 100) throw new Error(`tar path too long: ${name}`);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(entry.mode, 8), 100, 8, 'ascii');
  h.write(octal(0, 8), 108, 8, 'ascii'); // uid root
  h.write(octal(0, 8), 116, 8, 'ascii'); // gid root
  h.write(octal(size, 12), 124, 12, 'ascii');
  h.write(octal(0, 12), 136, 12, 'ascii'); // mtime: fixed, so the content is reproducible
  h.write('        ', 148, 8, 'ascii'); // checksum counts as spaces while summing
  h.write(entry.type === 'dir' ? '5' : entry.type === 'symlink' ? '2' : '0', 156, 1, 'ascii');
  if (entry.linkTarget !== undefined) h.write(entry.linkTarget, 157, 100, 'utf8');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return h;
}

/** A ustar archive of the entries, ending with the two zero blocks. */
export function writeTar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const data = entry.type === 'file' ? (entry.data ?? Buffer.alloc(0)) : Buffer.alloc(0);
    parts.push(header(entry, data.length), data);
    const pad = (512 - (data.length % 512)) % 512;
    if (pad > 0) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

async function sandboxRootfs(): Promise<Buffer> {
  let busybox: Buffer;
  try {
    busybox = await readFile(HOST_BUSYBOX);
  } catch (err) {
    throw new Error(
      `cannot make the sandbox image ${SANDBOX_IMAGE}: ${HOST_BUSYBOX} is missing on this host ` +
        `(install Debian's busybox-static): ${(err as Error).message}`,
    );
  }
  return writeTar([
    { path: 'bin', type: 'dir', mode: 0o755 },
    { path: 'bin/busybox', type: 'file', mode: 0o755, data: busybox },
    { path: 'bin/sh', type: 'symlink', mode: 0o777, linkTarget: '/bin/busybox' },
    { path: 'bin/sleep', type: 'symlink', mode: 0o777, linkTarget: '/bin/busybox' },
    { path: 'dev', type: 'dir', mode: 0o755 },
    { path: 'etc', type: 'dir', mode: 0o755 },
    { path: 'proc', type: 'dir', mode: 0o555 },
    { path: 'sys', type: 'dir', mode: 0o555 },
    { path: 'tmp', type: 'dir', mode: 0o1777 },
  ]);
}

/** Progress messages of an engine stream; rejects on the first `error` message. */
export function followProgress(docker: Docker, stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, output: Array<{ error?: string }>) => {
      if (err) return reject(err);
      const failed = output.find((o) => typeof o.error === 'string');
      if (failed) return reject(new Error(failed.error));
      resolve();
    });
  });
}

async function imageExists(docker: Docker, name: string): Promise<boolean> {
  try {
    await docker.getImage(name).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

/**
 * The sandbox image's name (`repo:tag`; another name only in tests), importing it first when the
 * engine lacks it. Callers memoize the promise (createSandboxImageEnsurer) so concurrent callers
 * do not import twice.
 */
export async function ensureSandboxImageOn(docker: Docker, image = SANDBOX_IMAGE): Promise<string> {
  if (await imageExists(docker, image)) return image;
  const colon = image.lastIndexOf(':');
  const [repo, tag] =
    colon > image.lastIndexOf('/') ? [image.slice(0, colon), image.slice(colon + 1)] : [image, 'latest'];
  const tar = await sandboxRootfs();
  const stream = await docker.importImage(Readable.from([tar]), {
    repo,
    tag,
    message: 'berth sandbox (pause) image: busybox-static',
    changes: [`CMD ${JSON.stringify(SANDBOX_COMMAND)}`, 'ENV PATH=/bin'],
  });
  await followProgress(docker, stream);
  if (!(await imageExists(docker, image))) {
    throw new Error(`importing ${image} reported success but the image is not there`);
  }
  return image;
}

/** A memoized ensureSandboxImageOn: one import in flight; a failure is retried on the next call. */
export function createSandboxImageEnsurer(docker: Docker, image = SANDBOX_IMAGE): () => Promise<string> {
  let pending: Promise<string> | undefined;
  return () => {
    if (!pending) {
      pending = ensureSandboxImageOn(docker, image).catch((err: unknown) => {
        pending = undefined;
        throw err;
      });
    }
    return pending;
  };
}
