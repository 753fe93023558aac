// berthctl's config file, kubeconfig's idea in a smaller shape: named contexts, each with a
// cluster's endpoints and a default namespace, and the current one.
//
//   current-context: local
//   contexts:
//     - name: local
//       endpoints: [127.0.0.1:2379, 127.0.0.2:2379, 127.0.0.3:2379]
//       namespace: default
//
// Where it is: --config, else $BERTH_CONFIG, else ~/.berth/config. A missing file is an
// empty config. Written atomically (temp file, rename) so an interrupted write loses nothing.

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import YAML from 'yaml';
import { CtlError } from './errors.js';

export const CONFIG_ENV = 'BERTH_CONFIG';

export interface Context {
  name: string;
  endpoints: string[];
  namespace?: string;
}

export interface CtlConfig {
  'current-context'?: string;
  contexts: Context[];
}

export function defaultConfigPath(): string {
  return process.env[CONFIG_ENV] || join(homedir(), '.berth', 'config');
}

export async function loadConfig(path: string): Promise<CtlConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { contexts: [] };
    throw new CtlError(`cannot read the config file ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new CtlError(`the config file ${path} is not valid YAML: ${(err as Error).message}`);
  }
  return checkConfig(doc ?? {}, path);
}

function checkConfig(doc: unknown, path: string): CtlConfig {
  const bad = (what: string) => new CtlError(`the config file ${path} is not valid: ${what}`);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad('expected a mapping');
  const d = doc as Record<string, unknown>;
  const contexts = d.contexts ?? [];
  if (!Array.isArray(contexts)) throw bad('contexts must be a list');
  const out: CtlConfig = { contexts: [] };
  contexts.forEach((c: unknown, i) => {
    const ctx = c as Partial<Context> | null;
    if (!ctx || typeof ctx.name !== 'string' || ctx.name === '') throw bad(`contexts[${i}].name is required`);
    if (!Array.isArray(ctx.endpoints) || ctx.endpoints.some((e) => typeof e !== 'string')) {
      throw bad(`contexts[${i}].endpoints must be a list of host:port`);
    }
    if (ctx.namespace !== undefined && typeof ctx.namespace !== 'string')
      throw bad(`contexts[${i}].namespace must be a string`);
    out.contexts.push({
      name: ctx.name,
      endpoints: ctx.endpoints,
      ...(ctx.namespace ? { namespace: ctx.namespace } : {}),
    });
  });
  const current = d['current-context'];
  if (current !== undefined && typeof current !== 'string') throw bad('current-context must be a string');
  if (current) out['current-context'] = current;
  return out;
}

export async function saveConfig(path: string, config: CtlConfig): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, YAML.stringify(config), { mode: 0o600 });
  await rename(tmp, path);
}

/** The context in use: `name` (--context), else the current one; undefined when there is none. */
export function contextOf(config: CtlConfig, name?: string): Context | undefined {
  const wanted = name ?? config['current-context'];
  if (wanted === undefined) return undefined;
  const found = config.contexts.find((c) => c.name === wanted);
  if (!found) {
    const known = config.contexts.map((c) => c.name).join(', ') || 'none';
    throw new CtlError(`context "${wanted}" is not in the config file (contexts: ${known})`);
  }
  return found;
}
