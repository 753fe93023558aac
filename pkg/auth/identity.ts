// Who is calling: the identity a verified client certificate speaks for (pkg/pki's rules),
// read from a grpc-js call. grpc-js reports a certificate only once the TLS handshake has
// verified it against the CA, so what it hands over can be trusted as is.
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { certificateInfo } from '../pki/certs.js';
import { type Identity, identityFromCertificate } from '../pki/identity.js';

export type { Identity } from '../pki/identity.js';

/** Anyone the rules decide for: a certificate's identity, or any caller of an --insecure node. */
export type Caller = Identity | { kind: 'insecure' };

/** The part of a grpc-js call (handler or interceptor) that tells who is on the other end. */
export interface AuthenticatedCall {
  getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null;
}

/** Parsed identities by certificate fingerprint; bounded, as certificates rotate. */
const cache = new Map<string, Identity>();
const CACHE_LIMIT = 1024;

/**
 * The identity of the verified client certificate the call's connection presented, or
 * undefined when there is none. grpc-js gives no certificate both for a plain (insecure)
 * connection and for a TLS one without a verified client certificate, so undefined alone
 * does not mean "insecure": the server's mode decides that (see interceptor.ts).
 */
export function identityOfCall(call: AuthenticatedCall): Identity | undefined {
  const peer = call.getAuthContext()?.sslPeerCertificate;
  if (!peer?.raw) return undefined;
  return identityOfPeer(peer);
}

/** Parsing a certificate costs a few hundred microseconds; every call would pay it. */
export function identityOfPeer(peer: Pick<PeerCertificate, 'raw' | 'fingerprint256'>): Identity {
  const key = peer.fingerprint256 || new X509Certificate(peer.raw).fingerprint256;
  const hit = cache.get(key);
  if (hit) return hit;
  let identity: Identity;
  try {
    identity = identityFromCertificate(certificateInfo(new X509Certificate(peer.raw).toString()));
  } catch {
    // The CA signed it but its subject does not parse: it speaks for no one.
    identity = { kind: 'unknown' };
  }
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, identity);
  return identity;
}

/** `user "alice"`, `node "n1"`: how messages name a caller. */
export function describeCaller(caller: Caller): string {
  switch (caller.kind) {
    case 'admin':
    case 'readonly':
      return `user ${JSON.stringify(caller.name)}`;
    case 'node':
      return `node ${JSON.stringify(caller.nodeName)}`;
    case 'insecure':
      return 'an unauthenticated caller (--insecure)';
    case 'unknown':
      return 'an unrecognised certificate';
  }
}
