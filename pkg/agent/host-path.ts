// hostPath checks as the kubelet makes them (HostPathType): the path must be of the given
// type, and the ...OrCreate types make it first. Used by hostPath pod volumes and hostPath PVs.

import * as fs from 'node:fs/promises';
import { dirname } from 'node:path';

/** Undefined when the path is fit to mount; else why it is not. */
export async function checkHostPath(path: string, type: string): Promise<string | undefined> {
  const stat = await fs.stat(path).catch(() => undefined);
  switch (type) {
    case 'DirectoryOrCreate':
      if (!stat) await fs.mkdir(path, { recursive: true, mode: 0o755 });
      else if (!stat.isDirectory()) return `hostPath ${path} is not a directory`;
      return undefined;
    case 'FileOrCreate':
      if (!stat) {
        await fs.mkdir(dirname(path), { recursive: true, mode: 0o755 });
        await fs.writeFile(path, '', { mode: 0o644, flag: 'a' });
      } else if (!stat.isFile()) return `hostPath ${path} is not a file`;
      return undefined;
    case 'Directory':
      return stat?.isDirectory() ? undefined : `hostPath ${path} is not a directory`;
    case 'File':
      return stat?.isFile() ? undefined : `hostPath ${path} is not a file`;
    case 'Socket':
      return stat?.isSocket() ? undefined : `hostPath ${path} is not a socket`;
    case 'CharDevice':
      return stat?.isCharacterDevice() ? undefined : `hostPath ${path} is not a character device`;
    case 'BlockDevice':
      return stat?.isBlockDevice() ? undefined : `hostPath ${path} is not a block device`;
    default:
      return undefined;
  }
}
