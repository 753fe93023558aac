// Where the repository's .proto files are at runtime. Compiled code runs from dist/pkg/...,
// sources (or a bundled install) from elsewhere, so the directory is found by walking up from
// this module to the first folder that holds a package.json and a proto/ directory.
// BERTH_PROTO_DIR overrides the search (for packagings that move the files).

import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Walk up from `start` to the first directory holding package.json and proto/. */
export function findProtoDir(start: string): string | undefined {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && isDirectory(join(dir, 'proto'))) return join(dir, 'proto');
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The absolute path of the proto/ directory; throws a clear error when there is none. */
export function protoDir(): string {
  if (cached) return cached;
  const override = process.env.BERTH_PROTO_DIR;
  if (override) {
    if (!isDirectory(override)) throw new Error(`BERTH_PROTO_DIR=${override} is not a directory`);
    cached = resolve(override);
    return cached;
  }
  const here = dirname(fileURLToPath(import.meta.url));
  const found = findProtoDir(here);
  if (!found) {
    throw new Error(
      `cannot find the proto/ directory: no folder above ${here} holds package.json and proto/ (set BERTH_PROTO_DIR)`,
    );
  }
  cached = found;
  return cached;
}

/** The absolute path of one .proto file, e.g. protoPath('raft.proto'). */
export function protoPath(file: string): string {
  return join(protoDir(), file);
}
