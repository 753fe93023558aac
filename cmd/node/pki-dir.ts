// The node's PKI directory (--pki-dir, /etc/berth/pki on an installed machine): the cluster
// CA, this node's certificate and key, the Secrets encryption keys, and what `init` or
// `join` decided for the first start. Kept apart from the data directory, so a copy of the
// data (a backup, a disk) does not carry the keys that open it. Every file is owner-only.
//
//   ca.crt            the cluster CA's certificate (every member)
//   ca.key            the CA's key (voters only: they sign joins and renewals)
//   node.crt/key      this node: CN system:node:<name>, O system:nodes; server and client
//   encryption.json   the Secrets keyring (pkg/api/server/encryption.ts)
//   admin.conf        the admin's berthctl config (init only)
//   bootstrap.json    how the first start makes its member: a new cluster, or join through
//   bootstrap-tokens.json  join tokens made by init, stored in the cluster by the first leader

import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TokenRecord } from '../../pkg/pki/index.js';
import { NodeConfigError } from './config.js';

export const PKI = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  nodeCert: 'node.crt',
  nodeKey: 'node.key',
  encryption: 'encryption.json',
  admin: 'admin.conf',
  bootstrap: 'bootstrap.json',
  bootstrapTokens: 'bootstrap-tokens.json',
} as const;

export type MemberRole = 'voter' | 'worker';

/** What the first start does when the data directory holds no member yet. */
export type Bootstrap = (
  | { kind: 'new'; name: string; clusterToken?: string }
  | { kind: 'join'; name: string; role: MemberRole; endpoints: string[]; clusterId: string }
) & {
  /** This node's client address (berth-node leave asks it first). */
  clientAddress?: string;
};

export interface NodePki {
  dir: string;
  caPem: string;
  /** Voters only. */
  caKeyPem: string | undefined;
  certPem: string;
  keyPem: string;
}

/** Make `dir` (and parents) and leave it owner-only, whatever it was before. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

/** Write a file owner-only, whole or not at all (a crash leaves the old one). */
export async function writePrivateFile(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, data, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new NodeConfigError(`${path} is unreadable: ${(err as Error).message}`);
  }
}

/** True when the directory holds this node's certificate (init or join ran). */
export async function hasPki(dir: string): Promise<boolean> {
  try {
    return (await stat(join(dir, PKI.nodeCert))).isFile();
  } catch {
    return false;
  }
}

/** The node's certificates; a clear error for a half-made directory or loose permissions. */
export async function loadPki(dir: string): Promise<NodePki> {
  const mode = (await stat(dir)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new NodeConfigError(
      `${dir} is readable by others (mode ${mode.toString(8)}): it holds private keys; chmod 700 ${dir}`,
    );
  }
  const need = async (file: string) => {
    const text = await readOptional(join(dir, file));
    if (text === undefined)
      throw new NodeConfigError(`${join(dir, file)} is missing: run berth-node init or join again`);
    return text;
  };
  return {
    dir,
    caPem: await need(PKI.caCert),
    caKeyPem: await readOptional(join(dir, PKI.caKey)),
    certPem: await need(PKI.nodeCert),
    keyPem: await need(PKI.nodeKey),
  };
}

/** Replace the node's certificate and key (after a renewal). */
export async function saveNodeCertificate(dir: string, certPem: string, keyPem: string): Promise<void> {
  await writePrivateFile(join(dir, PKI.nodeKey), keyPem);
  await writePrivateFile(join(dir, PKI.nodeCert), certPem);
}

export async function readBootstrap(dir: string): Promise<Bootstrap | undefined> {
  const text = await readOptional(join(dir, PKI.bootstrap));
  return text === undefined ? undefined : (JSON.parse(text) as Bootstrap);
}

export async function readBootstrapTokens(dir: string): Promise<TokenRecord[]> {
  const text = await readOptional(join(dir, PKI.bootstrapTokens));
  return text === undefined ? [] : (JSON.parse(text) as TokenRecord[]);
}
