// Certificate rotation: a node's certificate is renewed at two thirds of its life, for the
// same subject, signed locally when the node holds the CA key (a voter) or by a voter's
// Certificates/Renew over mutual TLS (a worker). Servers built on the TlsSource present the
// new certificate to the next handshake, with no restart. Issue is for admins only.
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { pino } from 'pino';
import {
  ADMIN_GROUP,
  type CertAndKey,
  certificateInfo,
  createCA,
  createKeyAndCsr,
  issueCertificate,
  NODES_GROUP,
  READONLY_GROUP,
  verifyIssuedBy,
} from '../../pkg/pki/index.js';
import { TlsSource } from '../../pkg/rpc/tls.js';
import { addCertificatesService } from '../../pkg/security/certificates-service.js';
import { certificatesService, method } from '../../pkg/security/protos.js';
import { rotateCertificates } from '../../pkg/security/rotation.js';

const logger = pino({ level: 'silent' });
const SECONDS = 1 / 86_400;

async function nodeCert(ca: CertAndKey, name: string, lifetimeS: number) {
  return issueCertificate(ca, {
    commonName: `system:node:${name}`,
    organizations: [NODES_GROUP],
    ipAddresses: ['127.0.0.1'],
    usage: 'both',
    validDays: lifetimeS * SECONDS,
  });
}

async function until<T>(what: string, f: () => T | undefined, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a voter renews its own certificate before it expires, same subject, signed by the CA', async (t) => {
  const ca = await createCA({ commonName: 'berth-ca' });
  const first = await nodeCert(ca, 'n1', 3);
  const tls = new TlsSource({ caPem: ca.certPem, ...first });
  const saved: string[] = [];
  const stop = new AbortController();
  t.teardown(() => stop.abort());
  void rotateCertificates(
    {
      tls,
      caKeyPem: () => ca.keyPem,
      endpoints: async () => [],
      save: async (certPem) => {
        saved.push(certPem);
      },
      certDays: 60 * SECONDS,
      logger,
      checkMs: 200,
    },
    stop.signal,
  );
  const renewed = await until('a renewal', () => (saved.length > 0 ? saved[0] : undefined));
  t.is(tls.current.certPem, renewed, 'the source hands out the new certificate');
  const before = certificateInfo(first.certPem);
  const after = certificateInfo(renewed);
  t.is(after.commonName, 'system:node:n1');
  t.deepEqual(after.organizations, [NODES_GROUP]);
  t.not(after.serial, before.serial);
  t.true(after.notAfter > before.notAfter);
  t.true(verifyIssuedBy(renewed, ca.certPem));
  // Not due again for a while (60 s lifetime): one renewal only.
  await new Promise((r) => setTimeout(r, 800));
  t.is(saved.length, 1);
});

test("a worker (no CA key) renews through a voter's Certificates/Renew; Issue is for admins only", async (t) => {
  const ca = await createCA({ commonName: 'berth-ca' });
  const voter = await nodeCert(ca, 'n1', 3600);
  const voterTls = new TlsSource({ caPem: ca.certPem, ...voter });
  const server = new grpc.Server();
  addCertificatesService(server, {
    ca: () => ({ certPem: ca.certPem, keyPem: ca.keyPem }),
    nodeCertDays: 1,
    logger,
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', voterTls.serverCredentials(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  t.teardown(() => server.forceShutdown());

  const worker = new TlsSource({ caPem: ca.certPem, ...(await nodeCert(ca, 'w1', 3)) });
  const saved: string[] = [];
  const stop = new AbortController();
  t.teardown(() => stop.abort());
  void rotateCertificates(
    {
      tls: worker,
      caKeyPem: () => undefined,
      endpoints: async () => [`127.0.0.1:${port}`],
      save: async (certPem) => {
        saved.push(certPem);
      },
      certDays: 1,
      logger,
      checkMs: 200,
    },
    stop.signal,
  );
  const renewed = await until('a remote renewal', () => saved[0]);
  const info = certificateInfo(renewed);
  t.is(info.commonName, 'system:node:w1', 'a renewal never changes who the certificate names');
  t.true(verifyIssuedBy(renewed, ca.certPem));
  t.is(worker.current.certPem, renewed);

  // Issue: a node may not make credentials for people; an admin may.
  const issue = async (as: TlsSource) => {
    const def = method(certificatesService(), 'Issue');
    const client = new grpc.Client(`127.0.0.1:${port}`, as.channelCredentials(), {
      'grpc.use_local_subchannel_pool': 1,
    });
    const { csrPem } = await createKeyAndCsr({ commonName: 'alice' });
    try {
      return await new Promise<{ cert_pem: string }>((resolve, reject) =>
        client.makeUnaryRequest(
          def.path,
          def.requestSerialize as (v: object) => Buffer,
          def.responseDeserialize as unknown as (b: Buffer) => { cert_pem: string },
          { name: 'alice', role: 'readonly', csr_pem: csrPem, valid_days: 0 },
          new grpc.Metadata(),
          { deadline: Date.now() + 5000 },
          (err, v) => (err || !v ? reject(err) : resolve(v)),
        ),
      );
    } finally {
      client.close();
    }
  };
  const denied = await t.throwsAsync<grpc.ServiceError>(issue(worker));
  t.is(denied?.code, grpc.status.PERMISSION_DENIED);
  const admin = await issueCertificate(ca, {
    commonName: 'root',
    organizations: [ADMIN_GROUP],
    usage: 'client',
    validDays: 1,
  });
  const alice = await issue(new TlsSource({ caPem: ca.certPem, ...admin }));
  const aliceInfo = certificateInfo(alice.cert_pem);
  t.is(aliceInfo.commonName, 'alice');
  t.deepEqual(aliceInfo.organizations, [READONLY_GROUP]);
  t.truthy(new X509Certificate(alice.cert_pem));
});
