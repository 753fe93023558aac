// Who a client certificate speaks for, read from its subject the way Kubernetes does:
// Organization (O=) values are groups, the Common Name is the user. Only the CA decides
// these fields (signCsr's overrides), so they can be trusted once the chain verifies.
import type { CertificateInfo } from './certs.js';

/** Full control of the cluster (as Kubernetes' system:masters). */
export const ADMIN_GROUP = 'system:masters';
/** May read everything, change nothing. */
export const READONLY_GROUP = 'berth:readonly';
/** Node agents; the CN must then be nodeCommonName(name). */
export const NODES_GROUP = 'system:nodes';
export const NODE_CN_PREFIX = 'system:node:';

export const IdentityKind = {
  Admin: 'admin',
  Readonly: 'readonly',
  Node: 'node',
  Unknown: 'unknown',
} as const;
export type IdentityKind = (typeof IdentityKind)[keyof typeof IdentityKind];

export type Identity =
  | { kind: 'admin'; name: string }
  | { kind: 'readonly'; name: string }
  | { kind: 'node'; nodeName: string }
  | { kind: 'unknown' };

/** The CN a node's client certificate carries, e.g. `system:node:worker-1`. */
export function nodeCommonName(nodeName: string): string {
  return NODE_CN_PREFIX + nodeName;
}

/**
 * Maps a subject to an identity. When a certificate holds several groups the most
 * privileged wins (admin, then node, then readonly), as groups only ever add rights.
 * A subject without a CN, or a node group without a node CN, is unknown.
 */
export function identityFromCertificate(
  info: Pick<CertificateInfo, 'commonName' | 'organizations'>,
): Identity {
  const { commonName: cn, organizations: groups } = info;
  if (cn === '') return { kind: IdentityKind.Unknown };
  if (groups.includes(ADMIN_GROUP)) return { kind: IdentityKind.Admin, name: cn };
  if (groups.includes(NODES_GROUP) && cn.startsWith(NODE_CN_PREFIX) && cn.length > NODE_CN_PREFIX.length) {
    return { kind: IdentityKind.Node, nodeName: cn.slice(NODE_CN_PREFIX.length) };
  }
  if (groups.includes(READONLY_GROUP)) return { kind: IdentityKind.Readonly, name: cn };
  return { kind: IdentityKind.Unknown };
}
