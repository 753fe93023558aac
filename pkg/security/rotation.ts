// A node's certificate is renewed once two thirds of its life have passed: a new key and a
// request for the same subject, signed here when this member holds the CA key (voters), else
// by a voter through Certificates/Renew. The new pair is saved, then handed to the TlsSource,
// so every later handshake (server and client side) uses it; open connections carry on.

import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  certificateInfo,
  createKeyAndCsr,
  NOT_BEFORE_SKEW_MS,
  needsRotation,
  signCsr,
} from '../pki/index.js';
import type { TlsSource } from '../rpc/tls.js';
import { unary } from '../rpc/unary.js';
import { type CertificateReply, certificatesService, method } from './protos.js';

export interface RotationDeps {
  tls: TlsSource;
  /** The CA key when this member can sign for itself. */
  caKeyPem(): string | undefined;
  /** Client addresses of voters to ask otherwise. */
  endpoints(): Promise<string[]>;
  save(certPem: string, keyPem: string): Promise<void>;
  certDays: number;
  logger: Logger;
  /** How often to look (ms); a tenth of the lifetime, within [1 s, 1 h], when not given. */
  checkMs?: number;
}

async function renewRemotely(tls: TlsSource, endpoints: string[], csrPem: string): Promise<string> {
  const def = method(certificatesService(), 'Renew');
  let last: Error = new Error('no voter to ask');
  for (const address of endpoints) {
    const client = new grpc.Client(address, tls.channelCredentials());
    try {
      const reply = await unary<CertificateReply>(client, def, { csr_pem: csrPem }, 10_000);
      return reply.cert_pem;
    } catch (err) {
      last = err as Error;
    } finally {
      client.close();
    }
  }
  throw last;
}

/** Renew now: a new key, the same subject. Resolves with the new certificate. */
export async function renewCertificate(deps: RotationDeps): Promise<string> {
  const current = deps.tls.current;
  const info = certificateInfo(current.certPem);
  const { keyPem, csrPem } = await createKeyAndCsr({
    commonName: info.commonName,
    organizations: info.organizations,
    dnsNames: info.dnsNames,
    ipAddresses: info.ipAddresses,
  });
  const caKeyPem = deps.caKeyPem();
  const certPem = caKeyPem
    ? await signCsr({ certPem: current.caPem, keyPem: caKeyPem }, csrPem, {
        usage: 'both',
        validDays: deps.certDays,
        commonName: info.commonName,
        organizations: info.organizations,
      })
    : await renewRemotely(deps.tls, await deps.endpoints(), csrPem);
  await deps.save(certPem, keyPem);
  deps.tls.update({ caPem: current.caPem, certPem, keyPem });
  return certPem;
}

/** Check now and then until `signal` aborts; failures are logged and retried. */
export async function rotateCertificates(deps: RotationDeps, signal: AbortSignal): Promise<void> {
  const interval = () => {
    if (deps.checkMs !== undefined) return deps.checkMs;
    const { notBefore, notAfter } = certificateInfo(deps.tls.current.certPem);
    const issued = notBefore.getTime() + NOT_BEFORE_SKEW_MS;
    return Math.min(3_600_000, Math.max(1000, (notAfter.getTime() - issued) / 10));
  };
  while (!signal.aborted) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, interval());
      signal.addEventListener('abort', done, { once: true });
    });
    if (signal.aborted) return;
    if (!needsRotation(deps.tls.current.certPem, new Date())) continue;
    try {
      const certPem = await renewCertificate(deps);
      deps.logger.info({ notAfter: certificateInfo(certPem).notAfter.toISOString() }, 'certificate rotated');
    } catch (err) {
      deps.logger.warn({ err: (err as Error).message }, 'certificate rotation failed; will retry');
    }
  }
}
