// The join port's one call. A machine with a token asks to become a member: the token is
// checked against its record in the store (unknown, expired and wrong secrets are refused
// alike, and logged), the name must be free, the member's own key is certified by the CA
// (CN system:node:<name>, O system:nodes), the member is added as a Raft learner, and the
// answer carries what it needs to start. Only members holding the CA key (voters) serve it.

import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { checkJoinToken, NODES_GROUP, nodeCommonName, signCsr, type TokenRecord } from '../pki/index.js';
import type { MemberInfo } from '../store/grpc-mapping.js';
import type { KV } from '../store/types.js';
import { type JoinReply, type JoinRequest, joinService } from './protos.js';
import { getToken } from './token-store.js';

/** A member's certificate lifetime unless told otherwise (rotated at two thirds). */
export const DEFAULT_NODE_CERT_DAYS = 365;
const NAME_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const HOST_PORT_RE = /^[^\s/:]+:\d{1,5}$/;

export interface JoinServiceDeps {
  kv: Pick<KV, 'range' | 'put' | 'deleteRange'>;
  members(): Promise<MemberInfo[]>;
  addLearner(peerUrl: string): Promise<MemberInfo>;
  clusterId: string;
  ca: { certPem: string; keyPem: string };
  /** The keyring file's text, or '' when Secrets are not encrypted. */
  keyringText: string;
  certDays: number;
  logger: Logger;
  now?: () => Date;
  /**
   * Tokens init made that the first leader has not stored yet: a join that comes that early
   * still works. Empty once they are in the store (where they can be revoked).
   */
  pendingTokens?: () => readonly TokenRecord[];
}

export class JoinRefused extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
    this.name = 'JoinRefused';
  }
}

/** The decision and the work, without gRPC (tested directly). */
export async function handleJoin(deps: JoinServiceDeps, req: JoinRequest): Promise<JoinReply> {
  const now = (deps.now ?? (() => new Date()))();
  const record =
    (await getToken(deps.kv, req.token_id)) ?? deps.pendingTokens?.().find((t) => t.id === req.token_id);
  const check = checkJoinToken(record, req.token_id, req.token_secret, now);
  if (!check.ok) {
    const why = { unknown: 'unknown token', expired: 'the token has expired', 'wrong-secret': 'wrong token' };
    throw new JoinRefused(grpc.status.PERMISSION_DENIED, `join refused: ${why[check.reason]}`);
  }
  if (!NAME_RE.test(req.name))
    throw new JoinRefused(
      grpc.status.INVALID_ARGUMENT,
      `name "${req.name}" must be lowercase letters, digits and '-', at most 63 characters`,
    );
  if (!HOST_PORT_RE.test(req.peer_url))
    throw new JoinRefused(grpc.status.INVALID_ARGUMENT, `peer address "${req.peer_url}" is not host:port`);
  const members = await deps.members();
  if (members.some((m) => m.name === req.name))
    throw new JoinRefused(
      grpc.status.ALREADY_EXISTS,
      `a member named ${req.name} exists already: remove it first (berthctl member remove ${req.name}) or choose another name`,
    );
  let certPem: string;
  try {
    certPem = await signCsr(deps.ca, req.csr_pem, {
      usage: 'both',
      validDays: deps.certDays,
      commonName: nodeCommonName(req.name),
      organizations: [NODES_GROUP],
      now,
    });
  } catch (err) {
    throw new JoinRefused(grpc.status.INVALID_ARGUMENT, `certificate request: ${(err as Error).message}`);
  }
  // Added by peer address; a member added earlier by the same address (a retried join) is taken.
  const existing = members.find((m) => m.peerUrls.includes(req.peer_url));
  if (existing && !existing.isLearner)
    throw new JoinRefused(
      grpc.status.ALREADY_EXISTS,
      `peer address ${req.peer_url} belongs to a voting member already: remove it first`,
    );
  if (!existing) await deps.addLearner(req.peer_url);
  return {
    ca_cert_pem: deps.ca.certPem,
    cert_pem: certPem,
    ca_key_pem: check.role === 'voter' ? deps.ca.keyPem : '',
    encryption_keyring: deps.keyringText,
    role: check.role,
    client_urls: members.flatMap((m) => m.clientUrls),
    cluster_id: deps.clusterId,
  };
}

export function addJoinService(server: grpc.Server, deps: JoinServiceDeps): void {
  server.addService(joinService(), {
    Join: (call: grpc.ServerUnaryCall<JoinRequest, JoinReply>, callback: grpc.sendUnaryData<JoinReply>) => {
      const req = call.request;
      handleJoin(deps, req).then(
        (reply) => {
          deps.logger.info({ name: req.name, role: reply.role, peer: call.getPeer() }, 'a member joined');
          callback(null, reply);
        },
        (err: unknown) => {
          const refused = err instanceof JoinRefused;
          deps.logger.warn(
            { name: req.name, token: req.token_id, peer: call.getPeer(), reason: (err as Error).message },
            'join refused',
          );
          callback({
            code: refused ? err.code : grpc.status.UNAVAILABLE,
            details: refused ? err.message : `join failed, retry: ${(err as Error).message}`,
          });
        },
      );
    },
  });
}
