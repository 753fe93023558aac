// Reading manifests for apply, create and delete -f: files, directories (their .yaml, .yml
// and .json files, sorted) or standard input; YAML with several documents or JSON; a `List`
// expands into its items. Every problem names the file and the document.

import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import YAML from 'yaml';
import { CtlError } from './errors.js';

export interface Manifest {
  /** Where it came from: 'deploy.yaml#2' (document 2), '-' for stdin. */
  source: string;
  object: Record<string, unknown>;
}

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** The files `path` names: itself, or a directory's manifest files (recursively with `recursive`). */
async function filesOf(path: string, recursive: boolean): Promise<string[]> {
  let s: Awaited<ReturnType<typeof stat>>;
  try {
    s = await stat(path);
  } catch {
    throw new CtlError(`the path "${path}" does not exist`);
  }
  if (!s.isDirectory()) return [path];
  const out: string[] = [];
  for (const entry of (await readdir(path, { withFileTypes: true })).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    const full = join(path, entry.name);
    if (entry.isDirectory() && recursive) out.push(...(await filesOf(full, true)));
    else if (entry.isFile() && EXTENSIONS.has(extname(entry.name))) out.push(full);
  }
  if (out.length === 0) throw new CtlError(`no manifest files (.yaml, .yml, .json) in ${path}`);
  return out;
}

/** Parse one file's text into manifests. */
export function parseManifests(text: string, name: string): Manifest[] {
  // YAML 1.1, as kubectl reads manifests: 0644 is octal (defaultMode), yes/no are booleans.
  const docs = YAML.parseAllDocuments(text, { uniqueKeys: true, version: '1.1' });
  const out: Manifest[] = [];
  docs.forEach((doc, i) => {
    const source = docs.length > 1 ? `${name}#${i + 1}` : name;
    if (doc.errors.length > 0) {
      const e = doc.errors[0] as Error & { linePos?: { line: number; col: number }[] };
      const at = e.linePos?.[0] ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : '';
      const first = (e.message.split('\n')[0] ?? '').replace(/:\s*$/, '');
      throw new CtlError(`${source}: not valid YAML or JSON${at}: ${first}`);
    }
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (value === null || value === undefined) return; // an empty document ('---' at the end)
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new CtlError(`${source}: a manifest must be a mapping with apiVersion, kind and metadata`);
    }
    const obj = value as Record<string, unknown>;
    if (obj.kind === 'List' && Array.isArray(obj.items)) {
      obj.items.forEach((item, j) => {
        if (typeof item !== 'object' || item === null || Array.isArray(item)) {
          throw new CtlError(`${source}: items[${j}] must be a mapping`);
        }
        out.push({ source: `${source} items[${j}]`, object: item as Record<string, unknown> });
      });
      return;
    }
    out.push({ source, object: obj });
  });
  return out;
}

/** Every manifest in `paths` ('-' is standard input, read by `readStdin`). */
export async function readManifests(
  paths: string[],
  readStdin: () => Promise<Uint8Array>,
  recursive = false,
): Promise<Manifest[]> {
  const out: Manifest[] = [];
  for (const path of paths) {
    if (path === '-') {
      out.push(...parseManifests(new TextDecoder().decode(await readStdin()), '-'));
      continue;
    }
    for (const file of await filesOf(path, recursive)) {
      out.push(...parseManifests(await readFile(file, 'utf8'), file));
    }
  }
  if (out.length === 0) throw new CtlError(`no objects found in ${paths.join(', ')}`);
  return out;
}
