// The admin's berthctl config written by init: the same file berthctl reads (~/.berth/config
// unless $BERTH_CONFIG says otherwise), with the new context added (or replaced, by name)
// and made current. Other contexts are kept. Owner-only: it holds a private key.

import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import YAML from 'yaml';
import { NodeConfigError } from './config.js';
import { writePrivateFile } from './pki-dir.js';

export function defaultAdminConfigPath(): string {
  return process.env.BERTH_CONFIG || join(homedir(), '.berth', 'config');
}

export async function mergeAdminContext(path: string, context: { name: string } & Record<string, unknown>) {
  let doc: { 'current-context'?: string; contexts?: Array<{ name: string }> } = {};
  try {
    doc = (YAML.parse(await readFile(path, 'utf8')) ?? {}) as typeof doc;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new NodeConfigError(`cannot update ${path}: ${(err as Error).message}`);
  }
  const contexts = (Array.isArray(doc.contexts) ? doc.contexts : []).filter((c) => c?.name !== context.name);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writePrivateFile(
    path,
    YAML.stringify({ ...doc, 'current-context': context.name, contexts: [...contexts, context] }),
  );
}
