// `berth-node join ADDRESS --token TOKEN`: become a member of a running cluster, once per
// machine. The token pins the CA (the hash of its public key) and carries a secret:
//
//   1. TLS to the join port without trusting anything yet; find, in the chain the server
//      shows, the CA whose hash the token names, and check the server's certificate is
//      signed by it. Nothing is sent before that: a man in the middle gets nothing.
//   2. Over TLS now verified against that CA: send the token's id and secret, the name, the
//      peer address and a request for a key made here (the key never leaves the machine).
//   3. Write what comes back to the PKI directory. Starting the node comes next.

import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { Command } from 'commander';
import {
  caHash,
  checkCaHash,
  createKeyAndCsr,
  NODES_GROUP,
  nodeCommonName,
  parseJoinToken,
  verifyIssuedBy,
} from '../../pkg/pki/index.js';
import { unary } from '../../pkg/rpc/unary.js';
import { type JoinReply, joinService, method } from '../../pkg/security/protos.js';
import {
  DEFAULT_CLIENT_PORT,
  DEFAULT_JOIN_PORT,
  DEFAULT_PEER_PORT,
  hostOf,
  NodeConfigError,
  parseHostPort,
} from './config.js';
import { nodeSans } from './init.js';
import { type Bootstrap, ensurePrivateDir, hasPki, PKI, writePrivateFile } from './pki-dir.js';

export interface JoinFlags {
  token: string;
  name: string;
  address: string;
  dataDir?: string;
  pkiDir?: string;
  advertisePeer?: string;
  advertiseClient?: string;
}

export function buildJoinCommand(): Command {
  return new Command('berth-node join')
    .description(
      'Join a running cluster with a token from `berth-node init` or `berthctl token create`. Run once per machine; then start the node.',
    )
    .argument('<address>', `a voting member's join address, host[:port] (port ${DEFAULT_JOIN_PORT})`)
    .requiredOption('--token <token>', 'the join token (BERTH1-...)')
    .requiredOption('--name <name>', "this member's name, unique in the cluster (DNS-1123 label)")
    .option('--address <host>', "this machine's address, as the other machines reach it", '127.0.0.1')
    .option('--data-dir <dir>', 'where the node will keep its data (default ./<name>.berth)')
    .option('--pki-dir <dir>', 'where certificates and keys go (default <data-dir>.pki)')
    .option('--advertise-peer <host:port>', `peer address (default <address>:${DEFAULT_PEER_PORT})`)
    .option('--advertise-client <host:port>', `client address (default <address>:${DEFAULT_CLIENT_PORT})`)
    .exitOverride()
    .configureOutput({ outputError: () => {} });
}

/** The CA the server's chain holds whose key hashes to `pinned`; throws when none does. */
export async function fetchPinnedCa(host: string, port: number, pinned: string): Promise<string> {
  const chain = await new Promise<tls.DetailedPeerCertificate>((resolve, reject) => {
    const socket = tls.connect(
      { host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'], timeout: 10_000 },
      () => {
        resolve(socket.getPeerCertificate(true));
        socket.end();
      },
    );
    socket.on('timeout', () => socket.destroy(new Error('timed out')));
    socket.on('error', (err) =>
      reject(new NodeConfigError(`cannot reach the join service at ${host}:${port}: ${err.message}`)),
    );
  });
  const seen = new Set<string>();
  let leaf: string | undefined;
  for (let c: tls.DetailedPeerCertificate | undefined = chain; c?.raw && !seen.has(c.fingerprint256); ) {
    seen.add(c.fingerprint256);
    const pem = new X509Certificate(c.raw).toString();
    leaf ??= pem;
    if (checkCaHash(pem, pinned)) {
      if (!verifyIssuedBy(leaf, pem))
        throw new NodeConfigError(
          `the server at ${host}:${port} shows the pinned CA but is not signed by it`,
        );
      return pem;
    }
    c = c.issuerCertificate;
  }
  throw new NodeConfigError(
    `the server at ${host}:${port} does not belong to the cluster this token is for (its CA is not ${pinned}): check the address and the token`,
  );
}

function callJoinOnce(address: string, caPem: string, request: object): Promise<JoinReply> {
  const def = method(joinService(), 'Join');
  const client = new grpc.Client(address, grpc.credentials.createSsl(Buffer.from(caPem)));
  return unary<JoinReply>(client, def, request, 30_000).finally(() => client.close());
}

/** How long a join keeps trying while the cluster cannot answer (no leader yet, a restart). */
const JOIN_PATIENCE_MS = 60_000;

/** Join, retrying while the cluster is unavailable; a refusal is final. */
async function callJoin(address: string, caPem: string, request: object, print: (line: string) => void) {
  const deadline = Date.now() + JOIN_PATIENCE_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await callJoinOnce(address, caPem, request);
    } catch (err) {
      const e = err as grpc.ServiceError;
      const message = e.details || e.message;
      if (e.code !== grpc.status.UNAVAILABLE || Date.now() > deadline)
        throw new NodeConfigError(`join refused by ${address}: ${message}`);
      if (attempt === 1) print(`The cluster cannot answer yet (${message}); retrying for up to a minute...`);
      await new Promise((r) => setTimeout(r, Math.min(2000, 200 * attempt)));
    }
  }
}

export async function runJoin(target: string, f: JoinFlags, print: (line: string) => void): Promise<void> {
  let token: ReturnType<typeof parseJoinToken>;
  try {
    token = parseJoinToken(f.token);
  } catch (err) {
    throw new NodeConfigError(`--token: ${(err as Error).message}`);
  }
  const address = parseHostPort(target, 'join address', DEFAULT_JOIN_PORT);
  const dataDir = f.dataDir ?? `./${f.name}.berth`;
  const pkiDir = f.pkiDir ?? `${dataDir}.pki`;
  if (await hasPki(pkiDir))
    throw new NodeConfigError(
      `${pkiDir} holds a node certificate already: this machine was initialized or joined`,
    );
  const peer = parseHostPort(f.advertisePeer ?? `${f.address}:${DEFAULT_PEER_PORT}`, '--advertise-peer');
  const client = parseHostPort(
    f.advertiseClient ?? `${f.address}:${DEFAULT_CLIENT_PORT}`,
    '--advertise-client',
  );

  const caPem = await fetchPinnedCa(
    hostOf(address),
    Number(address.slice(address.lastIndexOf(':') + 1)),
    token.caHash,
  );
  const { keyPem, csrPem } = await createKeyAndCsr({
    commonName: nodeCommonName(f.name),
    organizations: [NODES_GROUP],
    ...nodeSans([f.address, hostOf(client), hostOf(peer)]),
  });
  const reply = await callJoin(
    address,
    caPem,
    {
      token_id: token.id,
      token_secret: token.secret,
      name: f.name,
      csr_pem: csrPem,
      peer_url: peer,
    },
    print,
  );
  if (caHash(reply.ca_cert_pem) !== caHash(caPem))
    throw new NodeConfigError('join: the answer names another CA than the one the token pins');
  const role = reply.role === 'worker' ? 'worker' : 'voter';
  await ensurePrivateDir(pkiDir);
  await ensurePrivateDir(dataDir);
  const bootstrap: Bootstrap = {
    kind: 'join',
    name: f.name,
    role,
    endpoints: reply.client_urls.length > 0 ? reply.client_urls : [address],
    clusterId: reply.cluster_id,
    clientAddress: client,
  };
  await writePrivateFile(join(pkiDir, PKI.caCert), reply.ca_cert_pem);
  if (reply.ca_key_pem) await writePrivateFile(join(pkiDir, PKI.caKey), reply.ca_key_pem);
  if (reply.encryption_keyring)
    await writePrivateFile(join(pkiDir, PKI.encryption), reply.encryption_keyring);
  await writePrivateFile(join(pkiDir, PKI.nodeKey), keyPem);
  await writePrivateFile(join(pkiDir, PKI.bootstrap), JSON.stringify(bootstrap, null, 2));
  await writePrivateFile(join(pkiDir, PKI.nodeCert), reply.cert_pem);

  print(
    `Joined cluster ${reply.cluster_id} as a ${role === 'voter' ? 'voter' : 'worker (runs pods, does not vote)'}.`,
  );
  print(`  certificates and keys: ${pkiDir}`);
  print('Start this node:');
  print(`  berth-node --name ${f.name} --address ${f.address} --data-dir ${dataDir} --pki-dir ${pkiDir}`);
}
