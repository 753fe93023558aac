// TlsSource: a grpc-js server and channel on mutual TLS from one in-memory source. A new
// certificate given to `update` is what the next handshake presents (rotation without a
// restart); an open channel keeps working across it; strangers are refused.
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { certificateInfo, createCA, issueCertificate } from '../../pkg/pki/index.js';
import { staticChannelCredentials, TlsSource } from '../../pkg/rpc/tls.js';

const identity = (b: Buffer): Buffer => b;
const PATH = '/berth.test.Serial/Serial';
const service: grpc.ServiceDefinition = {
  Serial: {
    path: PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
    originalName: 'serial',
  },
};

function call(client: grpc.Client): Promise<string> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      PATH,
      identity,
      identity,
      Buffer.from('?'),
      new grpc.Metadata(),
      { deadline: Date.now() + 5000 },
      (err, value) => (err ? reject(err) : resolve(value?.toString('utf8') ?? '')),
    ),
  );
}

test('server and client from one source; update rotates what new handshakes present', async (t) => {
  const ca = await createCA({ commonName: 'berth-ca' });
  const san = { ipAddresses: ['127.0.0.1'], usage: 'both' as const, validDays: 1 };
  const node1 = await issueCertificate(ca, {
    commonName: 'system:node:n1',
    organizations: ['system:nodes'],
    ...san,
  });
  const client1 = await issueCertificate(ca, {
    commonName: 'admin',
    organizations: ['system:masters'],
    ...san,
  });
  const serverSource = new TlsSource({ caPem: ca.certPem, ...node1 });

  const srv = new grpc.Server();
  srv.addService(service, {
    // Answers with the serial of the certificate the client presented.
    Serial: (c: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const peer = c.getAuthContext().sslPeerCertificate;
      cb(null, Buffer.from(peer ? certificateInfo(new X509Certificate(peer.raw).toString()).serial : 'none'));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    srv.bindAsync('127.0.0.1:0', serverSource.serverCredentials(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  t.teardown(() => srv.forceShutdown());
  const address = `127.0.0.1:${port}`;

  const clientSource = new TlsSource({ caPem: ca.certPem, ...client1 });
  const open = new grpc.Client(address, clientSource.channelCredentials());
  t.teardown(() => open.close());
  t.is(await call(open), certificateInfo(client1.certPem).serial);

  // Both sides rotate: new channels present the new client certificate; the open one still works.
  const client2 = await issueCertificate(ca, {
    commonName: 'admin',
    organizations: ['system:masters'],
    ...san,
  });
  clientSource.update({ caPem: ca.certPem, ...client2 });
  serverSource.update({
    caPem: ca.certPem,
    ...(await issueCertificate(ca, {
      commonName: 'system:node:n1',
      organizations: ['system:nodes'],
      ...san,
    })),
  });
  // (Its own subchannel pool: grpc-js would otherwise share the open connection.)
  const fresh = new grpc.Client(address, clientSource.channelCredentials(), {
    'grpc.use_local_subchannel_pool': 1,
  });
  t.teardown(() => fresh.close());
  t.is(await call(fresh), certificateInfo(client2.certPem).serial);
  t.is(await call(open), certificateInfo(client1.certPem).serial);

  // A certificate from another CA, and no certificate, are refused at the handshake.
  const other = await createCA({ commonName: 'other-ca' });
  const stranger = await issueCertificate(other, {
    commonName: 'admin',
    organizations: ['system:masters'],
    ...san,
  });
  const foreign = new grpc.Client(address, staticChannelCredentials({ caPem: ca.certPem, ...stranger }));
  t.teardown(() => foreign.close());
  t.is((await t.throwsAsync<grpc.ServiceError>(call(foreign)))?.code, grpc.status.UNAVAILABLE);
  const anonymous = new grpc.Client(address, grpc.credentials.createSsl(Buffer.from(ca.certPem)));
  t.teardown(() => anonymous.close());
  t.is((await t.throwsAsync<grpc.ServiceError>(call(anonymous)))?.code, grpc.status.UNAVAILABLE);
});
