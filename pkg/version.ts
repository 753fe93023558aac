// Berth's version, read once from the package.json beside proto/ (the one this code ships in).

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { protoDir } from './rpc/proto-path.js';

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(dirname(protoDir()), 'package.json'), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export const BERTH_VERSION = readVersion();
