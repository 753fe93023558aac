// Certificates on the client port (mutual TLS, so the caller is known by its certificate):
// Renew signs a new key for the caller's own identity, keeping its subject (nodes rotate
// their certificates with it); Issue, for admins only, makes a credential for a person.
// A member without the CA key (a worker) answers UNAVAILABLE, so clients try a voter.

import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  ADMIN_GROUP,
  certificateInfo,
  identityFromCertificate,
  READONLY_GROUP,
  signCsr,
} from '../pki/index.js';
import { type CertificateReply, certificatesService } from './protos.js';

export const DEFAULT_USER_CERT_DAYS = 365;
const NAME_RE = /^[A-Za-z0-9][-A-Za-z0-9_.@]{0,62}$/;

export interface CertificatesServiceDeps {
  /** The CA, with its key when this member can sign. */
  ca(): { certPem: string; keyPem: string | undefined };
  nodeCertDays: number;
  logger: Logger;
}

type Reply = grpc.sendUnaryData<CertificateReply>;

function callerSubject(call: grpc.ServerUnaryCall<unknown, unknown>) {
  const peer = call.getAuthContext().sslPeerCertificate;
  return peer ? certificateInfo(new X509Certificate(peer.raw).toString()) : undefined;
}

export function addCertificatesService(server: grpc.Server, deps: CertificatesServiceDeps): void {
  const fail = (cb: Reply, code: grpc.status, details: string) => cb({ code, details });
  const signer = (cb: Reply) => {
    const ca = deps.ca();
    if (!ca.keyPem) {
      fail(cb, grpc.status.UNAVAILABLE, 'this member holds no CA key (a worker): ask a voting member');
      return undefined;
    }
    return { certPem: ca.certPem, keyPem: ca.keyPem };
  };

  server.addService(certificatesService(), {
    Renew: (call: grpc.ServerUnaryCall<{ csr_pem: string }, CertificateReply>, cb: Reply) => {
      const who = callerSubject(call);
      if (!who) return fail(cb, grpc.status.UNAUTHENTICATED, 'renewal needs a client certificate');
      if (identityFromCertificate(who).kind === 'unknown')
        return fail(
          cb,
          grpc.status.PERMISSION_DENIED,
          `certificate subject "${who.commonName}" not recognised`,
        );
      const ca = signer(cb);
      if (!ca) return;
      // The same subject and names as now: renewal never widens what a certificate says.
      signCsr(ca, call.request.csr_pem, {
        usage: 'both',
        validDays: deps.nodeCertDays,
        commonName: who.commonName,
        organizations: who.organizations,
        dnsNames: who.dnsNames,
        ipAddresses: who.ipAddresses,
      }).then(
        (certPem) => {
          deps.logger.info({ subject: who.commonName }, 'certificate renewed');
          cb(null, { cert_pem: certPem, ca_cert_pem: ca.certPem });
        },
        (err: Error) => fail(cb, grpc.status.INVALID_ARGUMENT, `certificate request: ${err.message}`),
      );
    },

    Issue: (
      call: grpc.ServerUnaryCall<
        { name: string; role: string; csr_pem: string; valid_days: number },
        CertificateReply
      >,
      cb: Reply,
    ) => {
      const who = callerSubject(call);
      if (!who || identityFromCertificate(who).kind !== 'admin')
        return fail(cb, grpc.status.PERMISSION_DENIED, 'only an admin may issue credentials');
      const { name, role, csr_pem, valid_days } = call.request;
      if (!NAME_RE.test(name))
        return fail(
          cb,
          grpc.status.INVALID_ARGUMENT,
          `user name "${name}" must be letters, digits, '-', '_', '.', '@'`,
        );
      if (name.startsWith('system:'))
        return fail(cb, grpc.status.INVALID_ARGUMENT, 'user names may not start with system:');
      const group = role === 'admin' ? ADMIN_GROUP : role === 'readonly' ? READONLY_GROUP : undefined;
      if (!group)
        return fail(cb, grpc.status.INVALID_ARGUMENT, `role must be admin or readonly, not "${role}"`);
      const ca = signer(cb);
      if (!ca) return;
      signCsr(ca, csr_pem, {
        usage: 'client',
        validDays: valid_days > 0 ? valid_days : DEFAULT_USER_CERT_DAYS,
        commonName: name,
        organizations: [group],
        dnsNames: [],
        ipAddresses: [],
      }).then(
        (certPem) => {
          deps.logger.info({ user: name, role, by: who.commonName }, 'credential issued');
          cb(null, { cert_pem: certPem, ca_cert_pem: ca.certPem });
        },
        (err: Error) => fail(cb, grpc.status.INVALID_ARGUMENT, `certificate request: ${err.message}`),
      );
    },
  });
}
