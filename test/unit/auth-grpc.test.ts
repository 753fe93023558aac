// Mutual TLS authorization end to end, on loopback: a real gRPC server (Objects over an
// in-process ApiServer, KV over an in-process store) with the authorization interceptor,
// called by raw clients holding admin, read-only and node certificates from a test CA.
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import pino from 'pino';
import { authzInterceptor } from '../../pkg/auth/interceptor.js';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import { addApiService, apiProtos } from '../../pkg/api/server/grpc-api.js';
import { type CertAndKey, createCA, issueCertificate } from '../../pkg/pki/certs.js';
import { ADMIN_GROUP, nodeCommonName, NODES_GROUP, READONLY_GROUP } from '../../pkg/pki/identity.js';
import { addKvServices, type ClusterInfo, etcdProtos, kvServerOptions } from '../../pkg/store/grpc-server.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

type Unary = (req: object, cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void) => void;
type Client = grpc.Client & Record<string, Unary>;

interface Fixture {
  address: string;
  ca: CertAndKey;
  certs: Record<'admin' | 'alice' | 'n1' | 'n2' | 'stranger', CertAndKey>;
  api: ApiServer;
  warnings: string[];
  close(): void;
}

const cluster: ClusterInfo = {
  clusterId: '1',
  memberId: '1',
  raftTerm: () => 1,
  leader: () => '1',
  members: () => [],
  addMember: async (peerUrls, isLearner) => ({ id: '2', name: '', peerUrls, clientUrls: [], isLearner }),
  removeMember: async () => {},
  promoteMember: async () => {},
  status: () => ({
    version: 't',
    dbSize: 0,
    leader: '1',
    raftIndex: 1,
    raftTerm: 1,
    raftAppliedIndex: 1,
    errors: [],
  }),
};

async function serve(options: { insecure?: boolean; requireClientCert?: boolean } = {}): Promise<Fixture> {
  const ca = await createCA({ commonName: 'test-ca' });
  const issue = (commonName: string, organizations: string[], usage: 'server' | 'client') =>
    issueCertificate(ca, { commonName, organizations, usage, validDays: 1, ipAddresses: ['127.0.0.1'] });
  const server = await issue('server', [], 'server');
  const certs = {
    admin: await issue('root', [ADMIN_GROUP], 'client'),
    alice: await issue('alice', [READONLY_GROUP], 'client'),
    n1: await issue(nodeCommonName('n1'), [NODES_GROUP], 'client'),
    n2: await issue(nodeCommonName('n2'), [NODES_GROUP], 'client'),
    stranger: await issue('mallory', ['somewhere'], 'client'),
  };
  const logger = pino({ level: 'silent' });
  const kv = createLocalStore();
  const api = new ApiServer({ kv, logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  const warnings: string[] = [];
  const s = new grpc.Server({
    ...kvServerOptions(),
    interceptors: [
      authzInterceptor({ logger: { warn: (_f, m) => warnings.push(m) }, insecure: options.insecure }),
    ],
  });
  addApiService(s, { api, version: 'test', member: '1', nodeName: 'n1' });
  addKvServices(s, { kv, cluster });
  const creds = options.insecure
    ? grpc.ServerCredentials.createInsecure()
    : grpc.ServerCredentials.createSsl(
        Buffer.from(ca.certPem),
        [{ cert_chain: Buffer.from(server.certPem), private_key: Buffer.from(server.keyPem) }],
        options.requireClientCert ?? true,
      );
  const port = await new Promise<number>((resolve, reject) =>
    s.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { address: `127.0.0.1:${port}`, ca, certs, api, warnings, close: () => s.forceShutdown() };
}

const pkg = (def: object, path: string) =>
  path
    .split('.')
    .reduce(
      (o, k) => (o as Record<string, unknown>)[k],
      grpc.loadPackageDefinition(def as never) as unknown,
    ) as grpc.ServiceClientConstructor;

function client(
  f: Fixture,
  who: keyof Fixture['certs'] | 'none' | 'plain',
  service = 'berth.api.v1.Objects',
): Client {
  const def = service.startsWith('etcd') ? etcdProtos() : apiProtos();
  const creds =
    who === 'plain'
      ? grpc.credentials.createInsecure()
      : who === 'none'
        ? grpc.credentials.createSsl(Buffer.from(f.ca.certPem))
        : grpc.credentials.createSsl(
            Buffer.from(f.ca.certPem),
            Buffer.from(f.certs[who].keyPem),
            Buffer.from(f.certs[who].certPem),
          );
  const Ctor = pkg(def, service);
  return new Ctor(f.address, creds) as unknown as Client;
}

const call = (c: Client, method: string, req: object) =>
  new Promise<Record<string, unknown>>((resolve, reject) =>
    c[method]?.call(c, req, (err, res) => (err ? reject(err) : resolve(res))),
  );

async function fails(
  t: import('ava').ExecutionContext,
  p: Promise<unknown>,
  code: grpc.status,
  message?: RegExp,
) {
  const err = (await t.throwsAsync(p)) as grpc.ServiceError | undefined;
  t.is(err?.code, code, err?.details);
  if (message) t.regex(err?.details ?? '', message);
}

const configMap = (name: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name },
  data: { a: 'b' },
});
const node = (name: string) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: {} });
const pod = (name: string, nodeName: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default' },
  spec: { nodeName, containers: [{ name: 'c', image: 'berth/busybox:test' }] },
});
const json = (o: object) => ({ object: JSON.stringify(o) });

test('readonly reads and may not write; admin may do everything', async (t) => {
  const f = await serve();
  t.teardown(f.close);
  const alice = client(f, 'alice');
  const admin = client(f, 'admin');
  await fails(
    t,
    call(alice, 'Create', json(configMap('x'))),
    grpc.status.PERMISSION_DENIED,
    /^user "alice" is read-only: Objects\/Create is not allowed$/,
  );
  await t.throwsAsync(f.api.get('configmaps', 'default', 'x'), undefined, 'nothing was stored');
  await call(admin, 'Create', json(configMap('x')));
  const got = await call(alice, 'Get', { resource: 'configmaps', namespace: 'default', name: 'x' });
  t.is(JSON.parse(got.object as string).data.a, 'b');
  const list = await call(alice, 'List', { resource: 'configmaps', namespace: 'default' });
  t.is(JSON.parse(list.list as string).items.length, 1);
  await fails(
    t,
    call(alice, 'Delete', { resource: 'configmaps', namespace: 'default', name: 'x' }),
    grpc.status.PERMISSION_DENIED,
  );
  await call(admin, 'Update', json({ ...configMap('x'), data: { a: 'c' } }));
  await call(admin, 'Apply', json(configMap('y')));
  await call(admin, 'Delete', { resource: 'configmaps', namespace: 'default', name: 'x' });
  t.true(f.warnings.some((w) => w.includes('read-only')));
  // The raw store: reads pass, writes do not; a read-only Txn is a read.
  const kv = client(f, 'alice', 'etcdserverpb.KV');
  await call(kv, 'Range', { key: Buffer.from('/registry/') });
  await fails(
    t,
    call(kv, 'Put', { key: Buffer.from('k'), value: Buffer.from('v') }),
    grpc.status.PERMISSION_DENIED,
  );
  await call(kv, 'Txn', { success: [{ request_range: { key: Buffer.from('k') } }] });
  await fails(
    t,
    call(kv, 'Txn', { success: [{ request_put: { key: Buffer.from('k'), value: Buffer.from('v') } }] }),
    grpc.status.PERMISSION_DENIED,
  );
  await call(client(f, 'admin', 'etcdserverpb.KV'), 'Put', {
    key: Buffer.from('k'),
    value: Buffer.from('v'),
  });
});

test('nodes write only their own Node and the status of their own pods', async (t) => {
  const f = await serve();
  t.teardown(f.close);
  const admin = client(f, 'admin');
  const n2 = client(f, 'n2');
  await call(admin, 'Create', json(node('n1')));
  await call(admin, 'Create', json(pod('web-1', 'n1')));
  await call(admin, 'Create', json(pod('web-2', 'n2')));

  await call(n2, 'Create', json(node('n2')));
  await call(n2, 'Update', json({ ...node('n2'), metadata: { name: 'n2', labels: { zone: 'a' } } }));
  await fails(
    t,
    call(n2, 'Update', json(node('n1'))),
    grpc.status.PERMISSION_DENIED,
    /node "n2" may not update node n1/,
  );
  await fails(t, call(n2, 'Delete', { resource: 'nodes', name: 'n1' }), grpc.status.PERMISSION_DENIED);

  const status = (name: string, nodeName: string) =>
    json({ ...pod(name, nodeName), status: { phase: 'Running' } });
  await fails(
    t,
    call(n2, 'UpdateStatus', status('web-1', 'n2')),
    grpc.status.PERMISSION_DENIED,
    /^node "n2" may not modify pod default\/web-1 bound to node "n1"$/,
  );
  t.is((await f.api.get('pods', 'default', 'web-1')).status?.phase, 'Pending');
  await call(n2, 'UpdateStatus', status('web-2', 'n2'));
  t.is((await f.api.get('pods', 'default', 'web-2')).status?.phase, 'Running');
  await fails(t, call(n2, 'Create', json(pod('mine', 'n2'))), grpc.status.PERMISSION_DENIED);
  await fails(t, call(n2, 'Create', json(configMap('c'))), grpc.status.PERMISSION_DENIED);
  await fails(
    t,
    call(n2, 'Delete', { resource: 'pods', namespace: 'default', name: 'web-1' }),
    grpc.status.PERMISSION_DENIED,
  );
  await call(n2, 'Delete', { resource: 'pods', namespace: 'default', name: 'web-2' });
  await fails(t, call(n2, 'UpdateStatus', status('ghost', 'n2')), grpc.status.NOT_FOUND);
  // Reads, and no raw store writes.
  await call(n2, 'List', { resource: 'pods', all_namespaces: true });
  await fails(
    t,
    call(client(f, 'n2', 'etcdserverpb.KV'), 'Put', { key: Buffer.from('k') }),
    grpc.status.PERMISSION_DENIED,
  );
  const clusterClient = client(f, 'n1', 'etcdserverpb.Cluster');
  await call(clusterClient, 'MemberAdd', { peerURLs: ['http://127.0.0.1:2380'], isLearner: true });
  await fails(
    t,
    call(clusterClient, 'MemberAdd', { peerURLs: ['http://127.0.0.1:2380'] }),
    grpc.status.PERMISSION_DENIED,
  );
});

test('an unrecognised subject or a missing certificate is unauthenticated', async (t) => {
  const f = await serve();
  t.teardown(f.close);
  await fails(
    t,
    call(client(f, 'stranger'), 'Get', { resource: 'ns', name: 'default' }),
    grpc.status.UNAUTHENTICATED,
    /^certificate subject not recognised$/,
  );
  // A server that asks for no client certificate: grpc-js then reports none, as on a plain
  // connection; without `insecure` the interceptor must refuse rather than allow.
  const open = await serve({ requireClientCert: false });
  t.teardown(open.close);
  await fails(
    t,
    call(client(open, 'none'), 'Version', {}),
    grpc.status.UNAUTHENTICATED,
    /no valid client certificate/,
  );
});

test('an --insecure node lets every caller do everything, as before', async (t) => {
  const f = await serve({ insecure: true });
  t.teardown(f.close);
  const plain = client(f, 'plain');
  await call(plain, 'Create', json(configMap('x')));
  await call(plain, 'Create', json(pod('p', 'n1')));
  await call(plain, 'UpdateStatus', json({ ...pod('p', 'n1'), status: { phase: 'Running' } }));
  await call(plain, 'Delete', { resource: 'configmaps', namespace: 'default', name: 'x' });
  t.deepEqual(f.warnings, []);
});
