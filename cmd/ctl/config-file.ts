// berthctl's config file, kubeconfig's idea in a smaller shape: named contexts, each with a
// cluster's endpoints and a default namespace, and the current one.
//
//   current-context: local
//   contexts:
//     - name: local
//       endpoints: [127.0.0.1:2379, 127.0.0.2:2379, 127.0.0.3:2379]
//       namespace: default
//       # A TLS cluster (berth-node init writes these): base64 of PEM text, all three or none,
//       # named as in kubeconfig so the shape is familiar.
//       certificate-authority-data: LS0tLS1CRUdJTi...
//       client-certificate-data: LS0tLS1CRUdJTi...
//       client-key-data: LS0tLS1CRUdJTi...
//
// Where it is: --config, else $BERTH_CONFIG, else ~/.berth/config. A missing file is an
// empty config. Written atomically (temp file, rename) so an interrupted write loses nothing.

import { mkdir, open, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import YAML from 'yaml';
import { staticChannelCredentials, type TlsMaterial } from '../../pkg/rpc/tls.js';
import { CtlError } from './errors.js';

export const CONFIG_ENV = 'BERTH_CONFIG';

/** The kubeconfig names of a context's TLS fields, in the order they are checked and written. */
export const TLS_FIELDS = [
  'certificate-authority-data',
  'client-certificate-data',
  'client-key-data',
] as const;
export type TlsField = (typeof TLS_FIELDS)[number];

export interface Context {
  name: string;
  endpoints: string[];
  namespace?: string;
  /** Base64 of the cluster CA's certificate (PEM). */
  'certificate-authority-data'?: string;
  /** Base64 of this user's certificate (PEM). */
  'client-certificate-data'?: string;
  /** Base64 of this user's private key (PEM): the reason the file is written 0600. */
  'client-key-data'?: string;
}

export interface CtlConfig {
  'current-context'?: string;
  contexts: Context[];
}

export function defaultConfigPath(): string {
  return process.env[CONFIG_ENV] || join(homedir(), '.berth', 'config');
}

/**
 * The config file at `path`. `warn` gets one line (without newline) when the file holds a
 * private key and group or others may read it: like ssh, berthctl says so and goes on.
 */
export async function loadConfig(path: string, warn?: (line: string) => void): Promise<CtlConfig> {
  let text: string;
  let mode: number;
  try {
    // One open for both, so the mode checked is the mode of the file read.
    const fh = await open(path, 'r');
    try {
      mode = (await fh.stat()).mode;
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
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
  const config = checkConfig(doc ?? {}, path);
  if (warn && (mode & 0o077) !== 0 && config.contexts.some((c) => c['client-key-data'] !== undefined)) {
    const octal = (mode & 0o777).toString(8).padStart(4, '0');
    warn(
      `warning: the config file ${path} holds a private key and is readable by others (mode ${octal}); run: chmod 600 ${path}`,
    );
  }
  return config;
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
      ...checkTls(ctx as Record<string, unknown>, ctx.name, bad),
    });
  });
  const current = d['current-context'];
  if (current !== undefined && typeof current !== 'string') throw bad('current-context must be a string');
  if (current) out['current-context'] = current;
  return out;
}

const PEM_RE = /^\s*-----BEGIN [A-Z0-9 ]+-----/;

/** A context's TLS fields, checked: strings of base64 PEM, all three or none. */
function checkTls(
  ctx: Record<string, unknown>,
  name: string,
  bad: (what: string) => CtlError,
): Partial<Record<TlsField, string>> {
  const present = TLS_FIELDS.filter((f) => ctx[f] !== undefined && ctx[f] !== null);
  if (present.length === 0) return {};
  const missing = TLS_FIELDS.filter((f) => !present.includes(f));
  if (missing.length > 0) {
    throw bad(
      `context "${name}" has ${present.join(', ')} but not ${missing.join(', ')}: give all three or none`,
    );
  }
  const out: Partial<Record<TlsField, string>> = {};
  for (const f of TLS_FIELDS) {
    const v = ctx[f];
    if (typeof v !== 'string' || !PEM_RE.test(decodeData(v))) {
      throw bad(`context "${name}": ${f} must be base64 of PEM text`);
    }
    out[f] = v.replace(/\s+/g, '');
  }
  return out;
}

function decodeData(b64: string): string {
  return Buffer.from(b64.replace(/\s+/g, ''), 'base64').toString('utf8');
}

/** PEM text as a context's *-data field holds it. */
export function encodeData(pem: string): string {
  return Buffer.from(pem, 'utf8').toString('base64');
}

/** The context's CA, certificate and key as PEM text; undefined for a plain (insecure) context. */
export function tlsOf(context: Context | undefined): TlsMaterial | undefined {
  const ca = context?.['certificate-authority-data'];
  const cert = context?.['client-certificate-data'];
  const key = context?.['client-key-data'];
  if (ca === undefined || cert === undefined || key === undefined) return undefined;
  return { caPem: decodeData(ca), certPem: decodeData(cert), keyPem: decodeData(key) };
}

/** Mutual TLS credentials of the context; undefined (dial plain) when it carries none. */
export function credentialsOf(context: Context | undefined): grpc.ChannelCredentials | undefined {
  const tls = tlsOf(context);
  return tls ? staticChannelCredentials(tls) : undefined;
}

/** A context that dials with `tls` (user create writes one). */
export function tlsContext(name: string, endpoints: string[], tls: TlsMaterial): Context {
  return {
    name,
    endpoints,
    'certificate-authority-data': encodeData(tls.caPem),
    'client-certificate-data': encodeData(tls.certPem),
    'client-key-data': encodeData(tls.keyPem),
  };
}

/** The config file's text. */
export function renderConfig(config: CtlConfig): string {
  return YAML.stringify(config);
}

export async function saveConfig(path: string, config: CtlConfig): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, renderConfig(config), { mode: 0o600 });
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
