// Searching a data directory for plaintext, byte by byte: what the encryption-at-rest tests
// use to show a Secret is in no file while a control value (a ConfigMap's) is.
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

export const b64 = (s: string) => Buffer.from(s).toString('base64');

/**
 * A distinctive string: 40 random letters, no common prefix. LevelDB's snappy replaces any
 * 4-byte run seen earlier in a block with a back-reference, so a word like "secret" or a
 * hex run (the blocks are full of hex uids) can be broken up in .ldb files; random mixed-case
 * letters rarely match what is around them.
 */
export function distinctive(): string {
  const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  return [...randomBytes(40)].map((b) => letters[b % letters.length]).join('');
}

/** Overlapping 16-byte pieces: plaintext that snappy broke up somewhere still shows in a piece. */
export function pieces(s: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 16 <= s.length; i += 8) out.push(s.slice(i, i + 16));
  return out;
}

/** Which files under `dir` hold any of `needles`, and how many files were read. */
export async function filesHolding(
  dir: string,
  needles: string[],
): Promise<{ hits: string[]; files: number }> {
  const hits: string[] = [];
  const files = await filesUnder(dir);
  for (const f of files) {
    const bytes = await readFile(f).catch(() => Buffer.alloc(0));
    if (needles.some((s) => bytes.includes(s))) hits.push(f);
  }
  return { hits, files: files.length };
}
