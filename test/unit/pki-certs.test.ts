// pkg/pki certificates: a CA issues server and client certificates that real TLS stacks
// accept, and refuses CSRs it cannot trust. The TLS checks run a node:tls server and a
// grpc-js server on 127.0.0.1 and dial them with good, missing and foreign client certs.

import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import {
  ADMIN_GROUP,
  type CertAndKey,
  CsrSignatureError,
  certificateInfo,
  createCA,
  createKeyAndCsr,
  identityFromCertificate,
  issueCertificate,
  MalformedPemError,
  NOT_BEFORE_SKEW_MS,
  needsRotation,
  PkiErrorCode,
  signCsr,
  verifyIssuedBy,
} from '../../pkg/pki/index.js';

const DAY = 24 * 60 * 60 * 1000;

interface Fixture {
  ca: CertAndKey;
  otherCa: CertAndKey;
  server: CertAndKey;
  client: CertAndKey;
  foreignClient: CertAndKey;
}

// Key generation is the slow part; every test shares one set.
let fixture: Promise<Fixture> | undefined;
const fx = (): Promise<Fixture> => {
  fixture ??= (async () => {
    const ca = await createCA({ commonName: 'berth-ca' });
    const otherCa = await createCA({ commonName: 'other-ca' });
    const server = await issueCertificate(ca, {
      commonName: 'node-1',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      usage: 'server',
      validDays: 30,
    });
    const client = await issueCertificate(ca, {
      commonName: 'alice',
      organizations: [ADMIN_GROUP, 'team-a'],
      usage: 'client',
      validDays: 30,
    });
    const foreignClient = await issueCertificate(otherCa, {
      commonName: 'mallory',
      organizations: [ADMIN_GROUP],
      usage: 'client',
      validDays: 30,
    });
    return { ca, otherCa, server, client, foreignClient };
  })();
  return fixture;
};

test('a CA issues certificates that verify against it and not against another CA', async (t) => {
  const { ca, otherCa, server, client, foreignClient } = await fx();
  t.true(verifyIssuedBy(server.certPem, ca.certPem));
  t.true(verifyIssuedBy(client.certPem, ca.certPem));
  t.false(verifyIssuedBy(server.certPem, otherCa.certPem));
  t.false(verifyIssuedBy(foreignClient.certPem, ca.certPem));
  t.true(verifyIssuedBy(ca.certPem, ca.certPem), 'a root is its own issuer');
  t.false(verifyIssuedBy('not a pem', ca.certPem));
  t.regex(server.keyPem, /^-----BEGIN PRIVATE KEY-----/);
  const caCert = new X509Certificate(ca.certPem);
  t.true(caCert.ca);
  t.false(new X509Certificate(server.certPem).ca);
});

test('certificateInfo reads back what was issued', async (t) => {
  const { ca } = await fx();
  const now = new Date('2030-01-02T03:04:05Z');
  const issued = await issueCertificate(ca, {
    commonName: 'node-2',
    organizations: ['system:nodes', 'extra'],
    dnsNames: ['node-2', 'node-2.berth.local'],
    ipAddresses: ['10.0.0.2', '::1'],
    usage: 'both',
    validDays: 10,
    now,
  });
  const info = certificateInfo(issued.certPem);
  t.is(info.commonName, 'node-2');
  t.deepEqual(info.organizations, ['system:nodes', 'extra']);
  t.deepEqual(info.dnsNames, ['node-2', 'node-2.berth.local']);
  t.deepEqual(info.ipAddresses, ['10.0.0.2', '::1']);
  t.is(info.notBefore.getTime(), now.getTime() - NOT_BEFORE_SKEW_MS);
  t.is(info.notAfter.getTime(), now.getTime() + 10 * DAY);
  t.regex(info.serial, /^[0-9a-f]{32}$/);
  t.not(info.serial, certificateInfo(ca.certPem).serial);
  const eku = new X509Certificate(issued.certPem).keyUsage ?? [];
  t.true(eku.includes('1.3.6.1.5.5.7.3.1') && eku.includes('1.3.6.1.5.5.7.3.2'));
  t.throws(() => certificateInfo('garbage'), { instanceOf: MalformedPemError });
});

test('needsRotation turns true once two thirds of the lifetime have passed', async (t) => {
  const now = new Date('2030-01-01T00:00:00Z');
  const ca = await createCA({ commonName: 'rot', validDays: 30, now });
  const at = (days: number) => new Date(now.getTime() + days * DAY);
  t.false(needsRotation(ca.certPem, now));
  t.false(needsRotation(ca.certPem, at(19.9)));
  t.true(needsRotation(ca.certPem, at(20.1)));
  t.true(needsRotation(ca.certPem, at(40)), 'expired');
  t.false(needsRotation(ca.certPem, at(14), 0.5));
  t.true(needsRotation(ca.certPem, at(16), 0.5));
});

test('a CSR with a tampered signature is refused', async (t) => {
  const { ca } = await fx();
  const { csrPem } = await createKeyAndCsr({ commonName: 'node-3' });
  const der = pemToDer(csrPem);
  const last = der.length - 1;
  der[last] = (der[last] ?? 0) ^ 0x01;
  const tampered = derToPem(der, 'CERTIFICATE REQUEST');
  const err = await t.throwsAsync(signCsr(ca, tampered, { usage: 'client', validDays: 1 }), {
    instanceOf: CsrSignatureError,
  });
  t.is(err?.code, PkiErrorCode.CsrSignature);
  await t.throwsAsync(signCsr(ca, 'nonsense', { usage: 'client', validDays: 1 }), {
    instanceOf: MalformedPemError,
  });
});

test("the signer's subject and SANs win over the CSR's request", async (t) => {
  const { ca } = await fx();
  const { csrPem, keyPem } = await createKeyAndCsr({
    commonName: 'system:node:evil',
    organizations: [ADMIN_GROUP],
    dnsNames: ['kubernetes.default'],
    ipAddresses: ['10.9.9.9'],
  });
  const overridden = certificateInfo(
    await signCsr(ca, csrPem, {
      usage: 'client',
      validDays: 1,
      commonName: 'system:node:worker-1',
      organizations: ['system:nodes'],
      dnsNames: [],
      ipAddresses: ['10.0.0.7'],
    }),
  );
  t.is(overridden.commonName, 'system:node:worker-1');
  t.deepEqual(overridden.organizations, ['system:nodes']);
  t.deepEqual(overridden.dnsNames, []);
  t.deepEqual(overridden.ipAddresses, ['10.0.0.7']);
  t.regex(keyPem, /PRIVATE KEY/);

  // Without overrides the CSR's own request is used.
  const asked = certificateInfo(await signCsr(ca, csrPem, { usage: 'client', validDays: 1 }));
  t.is(asked.commonName, 'system:node:evil');
  t.deepEqual(asked.organizations, [ADMIN_GROUP]);
  t.deepEqual(asked.dnsNames, ['kubernetes.default']);
  t.deepEqual(asked.ipAddresses, ['10.9.9.9']);
});

// --- node:tls mutual TLS ---

test('node:tls: a CA-signed client connects; no cert or a foreign cert is refused', async (t) => {
  const { ca, server, client, foreignClient } = await fx();
  const srv = tls.createServer(
    {
      key: server.keyPem,
      cert: server.certPem,
      ca: [ca.certPem],
      requestCert: true,
      rejectUnauthorized: true,
    },
    (sock) => {
      const peer = sock.getPeerCertificate();
      sock.end(`hello ${peer.subject.CN}\n`);
    },
  );
  srv.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  t.teardown(() => srv.close());

  t.is(await tlsTalk(port, ca.certPem, client), 'hello alice\n');
  await t.throwsAsync(tlsTalk(port, ca.certPem, undefined));
  await t.throwsAsync(tlsTalk(port, ca.certPem, foreignClient));
});

function tlsTalk(port: number, caPem: string, client: CertAndKey | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({
      host: '127.0.0.1',
      port,
      ca: [caPem],
      ...(client ? { key: client.keyPem, cert: client.certPem } : {}),
    });
    let data = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      data += d;
    });
    sock.on('error', reject);
    // With TLS 1.3 the server judges the client's certificate after the client thinks the
    // handshake is done, so a refusal can arrive as a bare close rather than an error.
    sock.on('close', () => (data ? resolve(data) : reject(new Error('closed without a greeting'))));
  });
}

// --- grpc-js mutual TLS ---

const identity = (b: Buffer): Buffer => b;
const WHOAMI_PATH = '/berth.pki.test.WhoAmI/WhoAmI';
const whoAmIService: grpc.ServiceDefinition = {
  WhoAmI: {
    path: WHOAMI_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
    originalName: 'whoAmI',
  },
};

test('grpc-js: mTLS with an IP SAN; the handler reads the client certificate', async (t) => {
  const { ca, server, client, foreignClient } = await fx();
  const srv = new grpc.Server();
  srv.addService(whoAmIService, {
    WhoAmI: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      // grpc-js >= 1.10: the verified peer certificate (a tls.PeerCertificate) or undefined.
      const auth = call.getAuthContext();
      const peer = auth.sslPeerCertificate;
      if (!peer) {
        callback({ code: grpc.status.UNAUTHENTICATED, details: 'no client certificate' });
        return;
      }
      // peer.subject.O is a string for one O= and an array for several; parse the DER instead.
      const info = certificateInfo(new X509Certificate(peer.raw).toString());
      const body = {
        transport: auth.transportSecurityType,
        cn: peer.subject.CN,
        info: { commonName: info.commonName, organizations: info.organizations },
        identity: identityFromCertificate(info),
      };
      callback(null, Buffer.from(JSON.stringify(body)));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    srv.bindAsync(
      '127.0.0.1:0',
      grpc.ServerCredentials.createSsl(
        Buffer.from(ca.certPem),
        [{ cert_chain: Buffer.from(server.certPem), private_key: Buffer.from(server.keyPem) }],
        true,
      ),
      (err, p) => (err ? reject(err) : resolve(p)),
    ),
  );
  t.teardown(() => srv.forceShutdown());

  const reply = JSON.parse((await grpcCall(port, ca.certPem, client)).toString('utf8'));
  t.deepEqual(reply, {
    transport: 'ssl',
    cn: 'alice',
    info: { commonName: 'alice', organizations: [ADMIN_GROUP, 'team-a'] },
    identity: { kind: 'admin', name: 'alice' },
  });

  const noCert = await t.throwsAsync<grpc.ServiceError>(grpcCall(port, ca.certPem, undefined));
  t.is(noCert?.code, grpc.status.UNAVAILABLE);
  const foreign = await t.throwsAsync<grpc.ServiceError>(grpcCall(port, ca.certPem, foreignClient));
  t.is(foreign?.code, grpc.status.UNAVAILABLE);
});

function grpcCall(port: number, caPem: string, client: CertAndKey | undefined): Promise<Buffer> {
  const creds = client
    ? grpc.credentials.createSsl(Buffer.from(caPem), Buffer.from(client.keyPem), Buffer.from(client.certPem))
    : grpc.credentials.createSsl(Buffer.from(caPem));
  const c = new grpc.Client(`127.0.0.1:${port}`, creds);
  return new Promise<Buffer>((resolve, reject) => {
    c.makeUnaryRequest(
      WHOAMI_PATH,
      identity,
      identity,
      Buffer.from('?'),
      new grpc.Metadata(),
      { deadline: Date.now() + 5000 },
      (err, value) => (err ? reject(err) : value ? resolve(value) : reject(new Error('empty reply'))),
    );
  }).finally(() => c.close());
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

function derToPem(der: Buffer, label: string): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
