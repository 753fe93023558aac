// berth-node's flag for encryption at rest: the key file Secrets are sealed with
// (pkg/api/server/encryption.ts). The file is read at start (loadKeyring), not at parse
// time, so flag parsing stays free of I/O. Every node of a cluster must hold every key any
// Secret is sealed with; the primary seals new writes.
import { readFile, stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { EncryptionError, type Keyring, parseKeyringFile } from '../../pkg/api/server/encryption.js';
import { NodeConfigError } from './config.js';

export interface EncryptionConfig {
  /** The key file; undefined: Secrets are stored unencrypted. */
  keyFile?: string;
}

export interface RawEncryptionFlags {
  encryptionKeyFile?: string;
}

export const UNENCRYPTED_WARNING = 'Secrets are stored unencrypted: give --encryption-key-file';

export function addEncryptionFlags(cmd: Command): Command {
  return cmd.option(
    '--encryption-key-file <path>',
    'JSON key file Secrets are encrypted at rest with (AES-256-GCM; mode 0600); ' +
      'every node of a cluster must be given the same keys',
  );
}

export function toEncryptionConfig(f: RawEncryptionFlags): EncryptionConfig {
  if (f.encryptionKeyFile === '') throw new NodeConfigError('--encryption-key-file: give a path');
  return f.encryptionKeyFile === undefined ? {} : { keyFile: f.encryptionKeyFile };
}

/** Read and check the key file: owner-only, well formed. Every problem is a NodeConfigError. */
export async function loadKeyring(path: string): Promise<Keyring> {
  let text: string;
  try {
    const st = await stat(path);
    // The keys open every Secret: a file others can read gives them all away.
    if ((st.mode & 0o077) !== 0) {
      throw new NodeConfigError(
        `--encryption-key-file: ${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}): run chmod 600 ${path}`,
      );
    }
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof NodeConfigError) throw err;
    throw new NodeConfigError(`--encryption-key-file: cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return parseKeyringFile(text);
  } catch (err) {
    if (err instanceof EncryptionError)
      throw new NodeConfigError(`--encryption-key-file: ${path}: ${err.message}`);
    throw err;
  }
}
