// `berth-node leave`: take this machine out of its cluster cleanly, with its own node
// credential. The member is removed through the cluster (the last voter is refused, and a
// removal that would leave the others without quorum is for an admin's
// `berthctl member remove`); the running node then stops taking part. Afterwards stop the
// service and delete the data and PKI directories.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Command } from 'commander';
import { TlsSource } from '../../pkg/rpc/tls.js';
import { unary } from '../../pkg/rpc/unary.js';
import { membershipService, method } from '../../pkg/security/protos.js';
import { DEFAULT_CLIENT_PORT, formatMemberId, NodeConfigError, parseHostPort } from './config.js';
import { loadPki, readBootstrap } from './pki-dir.js';

export interface LeaveFlags {
  dataDir: string;
  pkiDir?: string;
  endpoints?: string;
}

export function buildLeaveCommand(): Command {
  return new Command('berth-node leave')
    .description(
      "Remove this machine's member from its cluster (run on the machine, while the cluster is up)",
    )
    .requiredOption('--data-dir <dir>', "the node's data directory")
    .option('--pki-dir <dir>', "the node's PKI directory (default <data-dir>.pki)")
    .option(
      '--endpoints <list>',
      'members to ask, comma-separated (default: this node, then the ones it joined through)',
    )
    .exitOverride()
    .configureOutput({ outputError: () => {} });
}

export async function runLeave(f: LeaveFlags, print: (line: string) => void): Promise<void> {
  const dataDir = f.dataDir;
  const pkiDir = f.pkiDir ?? `${dataDir}.pki`;
  let member: { id: number; name: string };
  try {
    member = JSON.parse(await readFile(join(dataDir, 'member.json'), 'utf8')) as typeof member;
  } catch (err) {
    throw new NodeConfigError(`${dataDir} holds no member (${(err as Error).message}): nothing to leave`);
  }
  const pki = await loadPki(pkiDir);
  const bootstrap = await readBootstrap(pkiDir);
  const known = [bootstrap?.clientAddress, ...(bootstrap?.kind === 'join' ? bootstrap.endpoints : [])];
  const list = f.endpoints ?? known.filter((e): e is string => !!e).join(',');
  if (!list) throw new NodeConfigError(`${pkiDir} does not say where the cluster is: give --endpoints`);
  const endpoints = list
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((e) => parseHostPort(e, '--endpoints', DEFAULT_CLIENT_PORT));
  const credentials = new TlsSource({ caPem: pki.caPem, certPem: pki.certPem, keyPem: pki.keyPem });
  const def = method(membershipService(), 'Leave');
  let last = '';
  for (const address of endpoints) {
    const client = new grpc.Client(address, credentials.channelCredentials());
    try {
      await unary(client, def, {}, 15_000);
      last = '';
      break;
    } catch (err) {
      const e = err as grpc.ServiceError;
      last = `${address}: ${e.details || e.message}`;
      // Only an unreachable member is worth trying the next one for.
      if (e.code !== grpc.status.UNAVAILABLE && e.code !== grpc.status.DEADLINE_EXCEEDED) break;
    } finally {
      client.close();
    }
  }
  if (last) throw new NodeConfigError(`could not leave: ${last}`);
  print(`Member ${member.name} (${formatMemberId(member.id)}) removed from the cluster.`);
  print(`Stop the node now (systemctl stop berth), then delete ${dataDir} and ${pkiDir}.`);
}
