// `berth-node init`: make a new cluster's secrets on its first machine, once. Writes the CA,
// this node's certificate, the Secrets encryption key, two join tokens (voter and worker)
// for the first leader to store, the admin's berthctl config, and the note that the first
// start bootstraps a one-member cluster. It starts nothing: run the node next (systemd, or
// the printed command), then the join commands on the other machines.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import YAML from 'yaml';
import { formatKeyringFile, newKeyring } from '../../pkg/api/server/encryption.js';
import {
  ADMIN_GROUP,
  caHash,
  createCA,
  issueCertificate,
  NODES_GROUP,
  newJoinToken,
  nodeCommonName,
  type TokenRecord,
} from '../../pkg/pki/index.js';
import { DEFAULT_NODE_CERT_DAYS } from '../../pkg/security/join-service.js';
import { DEFAULT_CLIENT_PORT, DEFAULT_JOIN_PORT, hostOf, NodeConfigError, parseHostPort } from './config.js';
import { type Bootstrap, ensurePrivateDir, hasPki, PKI, writePrivateFile } from './pki-dir.js';
import { defaultAdminConfigPath, mergeAdminContext } from './admin-config.js';

const DAY_MS = 86_400_000;
const NAME_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** "24h", "30m", "7d", "90s" or "0" (never) in ms. */
export function parseTtl(value: string): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`"${value}" is not a duration like 24h, 30m, 7d or 0`);
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** The names a node's certificate is valid for: its addresses, loopback, its host name. */
export function nodeSans(addresses: string[]): { ipAddresses: string[]; dnsNames: string[] } {
  const hosts = [...new Set([...addresses.map((a) => a.replace(/^\[|\]$/g, '')), '127.0.0.1'])];
  return {
    ipAddresses: hosts.filter((h) => isIP(h) !== 0),
    dnsNames: [...new Set(['localhost', hostname(), ...hosts.filter((h) => isIP(h) === 0)])],
  };
}

export interface InitFlags {
  name: string;
  address: string;
  dataDir?: string;
  pkiDir?: string;
  advertiseClient?: string;
  advertiseJoin?: string;
  adminConfig: string;
  context: string;
  tokenTtl: number;
  nodeCertDays: number;
}

export function buildInitCommand(): Command {
  return new Command('berth-node init')
    .description(
      "Make a new cluster's CA, this node's certificate, the Secrets encryption key, an admin credential and join tokens. Run once, on the first machine; then start the node.",
    )
    .requiredOption('--name <name>', "this member's name, unique in the cluster (DNS-1123 label)")
    .option('--address <host>', "this machine's address, as the other machines reach it", '127.0.0.1')
    .option('--data-dir <dir>', 'where the node will keep its data (default ./<name>.berth)')
    .option('--pki-dir <dir>', 'where certificates and keys go (default <data-dir>.pki)')
    .option(
      '--advertise-client <host:port>',
      `client address the others use (default <address>:${DEFAULT_CLIENT_PORT})`,
    )
    .option(
      '--advertise-join <host:port>',
      `join address printed in the join commands (default <address>:${DEFAULT_JOIN_PORT})`,
    )
    .option(
      '--admin-config <file>',
      "berthctl config to add the admin's context to",
      defaultAdminConfigPath(),
    )
    .option('--context <name>', 'name of the context in that config', 'berth')
    .addOption(
      new Option('--token-ttl <duration>', 'how long the printed join tokens work (0: until revoked)')
        .argParser(parseTtl)
        .default(parseTtl('24h'), '24h'),
    )
    .option(
      '--node-cert-days <days>',
      'lifetime of node certificates; they are renewed at two thirds of it',
      (v) => {
        const n = Number(v);
        if (!(n > 0)) throw new InvalidArgumentError('--node-cert-days must be a positive number');
        return n;
      },
      DEFAULT_NODE_CERT_DAYS,
    )
    .exitOverride()
    .configureOutput({ outputError: () => {} });
}

export async function runInit(f: InitFlags, print: (line: string) => void): Promise<void> {
  if (!NAME_RE.test(f.name))
    throw new NodeConfigError(
      `--name: "${f.name}" must be lowercase letters, digits and '-', at most 63 characters`,
    );
  const dataDir = f.dataDir ?? `./${f.name}.berth`;
  const pkiDir = f.pkiDir ?? `${dataDir}.pki`;
  if (await hasPki(pkiDir))
    throw new NodeConfigError(
      `${pkiDir} holds a node certificate already: this machine was initialized or joined`,
    );
  const clientAddress = parseHostPort(
    f.advertiseClient ?? `${f.address}:${DEFAULT_CLIENT_PORT}`,
    '--advertise-client',
  );
  const joinAddress = parseHostPort(
    f.advertiseJoin ?? `${f.address}:${DEFAULT_JOIN_PORT}`,
    '--advertise-join',
  );
  await ensurePrivateDir(pkiDir);
  await ensurePrivateDir(dataDir);

  const now = new Date();
  const ca = await createCA({ commonName: 'berth-ca', now });
  const node = await issueCertificate(ca, {
    commonName: nodeCommonName(f.name),
    organizations: [NODES_GROUP],
    ...nodeSans([f.address, hostOf(clientAddress)]),
    usage: 'both',
    validDays: f.nodeCertDays,
    now,
  });
  const admin = await issueCertificate(ca, {
    commonName: 'admin',
    organizations: [ADMIN_GROUP],
    usage: 'client',
    validDays: 365,
    now,
  });
  const hash = caHash(ca.certPem);
  const voter = newJoinToken({
    caHash: hash,
    role: 'voter',
    ttlMs: f.tokenTtl,
    now,
    description: 'made by init',
  });
  const worker = newJoinToken({
    caHash: hash,
    role: 'worker',
    ttlMs: f.tokenTtl,
    now,
    description: 'made by init',
  });
  const bootstrap: Bootstrap = {
    kind: 'new',
    name: f.name,
    clusterToken: randomBytes(16).toString('hex'),
    clientAddress,
  };
  const tokens: TokenRecord[] = [voter.record, worker.record];

  await writePrivateFile(join(pkiDir, PKI.caKey), ca.keyPem);
  await writePrivateFile(join(pkiDir, PKI.caCert), ca.certPem);
  await writePrivateFile(join(pkiDir, PKI.nodeKey), node.keyPem);
  await writePrivateFile(join(pkiDir, PKI.encryption), formatKeyringFile(newKeyring()));
  await writePrivateFile(join(pkiDir, PKI.bootstrapTokens), JSON.stringify(tokens, null, 2));
  await writePrivateFile(join(pkiDir, PKI.bootstrap), JSON.stringify(bootstrap, null, 2));
  const context = {
    name: f.context,
    endpoints: [clientAddress],
    'certificate-authority-data': Buffer.from(ca.certPem).toString('base64'),
    'client-certificate-data': Buffer.from(admin.certPem).toString('base64'),
    'client-key-data': Buffer.from(admin.keyPem).toString('base64'),
  };
  await writePrivateFile(
    join(pkiDir, PKI.admin),
    YAML.stringify({ 'current-context': f.context, contexts: [context] }),
  );
  await mergeAdminContext(f.adminConfig, context);
  // Last: its presence says the directory is complete.
  await writePrivateFile(join(pkiDir, PKI.nodeCert), node.certPem);

  const ttl = f.tokenTtl === 0 ? 'until revoked' : `for ${Math.round(f.tokenTtl / 3_600_000)} h`;
  print(`Initialized cluster CA ${hash}`);
  print(`  certificates and keys: ${pkiDir} (keep a backup; it opens the Secrets)`);
  print(
    `  admin credential: context "${f.context}" in ${f.adminConfig} (a copy: ${join(pkiDir, PKI.admin)})`,
  );
  print('');
  print('Start this node:');
  print(`  berth-node --name ${f.name} --address ${f.address} --data-dir ${dataDir} --pki-dir ${pkiDir}`);
  print('');
  print(`Then, on each other machine (tokens work ${ttl}; berthctl token create makes more):`);
  print(`  voter:  berth-node join ${joinAddress} --token ${voter.token} --name <name> --address <address>`);
  print(`  worker: berth-node join ${joinAddress} --token ${worker.token} --name <name> --address <address>`);
  print('Use 3 or 5 voters: 3 survive the loss of 1, 5 the loss of 2.');
}
