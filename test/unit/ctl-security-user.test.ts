// berthctl user create against an in-process Certificates service on 127.0.0.1 with mutual
// TLS: the admin's context dials it, the CA signs the CSR, and stdout is a config file whose
// context carries the new credential (CN = the name, O = the role's group, signed by the CA).
// berthctl runs in-process with captured streams.
import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { issueUserCertificate } from '../../cmd/ctl/certificates.js';
import { NO_TLS_MESSAGE } from '../../cmd/ctl/commands/user.js';
import { credentialsOf, loadConfig, renderConfig, tlsContext, tlsOf } from '../../cmd/ctl/config-file.js';
import {
  ADMIN_GROUP,
  type CertAndKey,
  certificateInfo,
  createCA,
  identityFromCertificate,
  issueCertificate,
  READONLY_GROUP,
  signCsr,
  verifyIssuedBy,
} from '../../pkg/pki/index.js';
import { certificatesService } from '../../pkg/security/protos.js';
import { ctlInProcess } from '../support/ctl-in-process.js';

const CTL = fileURLToPath(new URL('../../cmd/ctl/main.js', import.meta.url));

const ctl = ctlInProcess;

interface IssueCall {
  name: string;
  role: string;
  csr_pem: string;
  valid_days: number;
}

/** A Certificates server: `signer` signs as the real one does; otherwise it is a worker (UNAVAILABLE). */
async function certificatesServer(ca: CertAndKey, server: CertAndKey, signer: boolean, calls: IssueCall[]) {
  const s = new grpc.Server();
  s.addService(certificatesService(), {
    Renew: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.UNIMPLEMENTED }),
    Issue: (call: grpc.ServerUnaryCall<IssueCall, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      calls.push(call.request);
      const peer = call.getAuthContext().sslPeerCertificate;
      const who = peer ? certificateInfo(new X509Certificate(peer.raw).toString()) : undefined;
      if (!who || identityFromCertificate(who).kind !== 'admin')
        return cb({ code: grpc.status.PERMISSION_DENIED, details: 'only an admin may issue credentials' });
      if (!signer)
        return cb({ code: grpc.status.UNAVAILABLE, details: 'this member holds no CA key (a worker)' });
      const { name, role, csr_pem, valid_days } = call.request;
      signCsr(ca, csr_pem, {
        usage: 'client',
        validDays: valid_days || 365,
        commonName: name,
        organizations: [role === 'admin' ? ADMIN_GROUP : READONLY_GROUP],
        dnsNames: [],
        ipAddresses: [],
      }).then(
        (cert_pem) => cb(null, { cert_pem, ca_cert_pem: ca.certPem }),
        (err: Error) => cb({ code: grpc.status.INVALID_ARGUMENT, details: err.message }),
      );
    },
  });
  const creds = grpc.ServerCredentials.createSsl(
    Buffer.from(ca.certPem),
    [{ cert_chain: Buffer.from(server.certPem), private_key: Buffer.from(server.keyPem) }],
    true,
  );
  const port = await new Promise<number>((resolve, reject) =>
    s.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server: s, endpoint: `127.0.0.1:${port}` };
}

let dir: string;
let ca: CertAndKey;
let admin: CertAndKey;
let signer: string;
let worker: string;
const servers: grpc.Server[] = [];
const calls: IssueCall[] = [];

async function configWith(name: string, endpoints: string[], identity: CertAndKey): Promise<string> {
  const path = join(dir, `${name}.conf`);
  const ctx = tlsContext(name, endpoints, {
    caPem: ca.certPem,
    certPem: identity.certPem,
    keyPem: identity.keyPem,
  });
  await writeFile(path, renderConfig({ 'current-context': name, contexts: [ctx] }), { mode: 0o600 });
  return path;
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctl-sec-user-'));
  ca = await createCA({ commonName: 'berth-ca' });
  const serverCert = await issueCertificate(ca, {
    commonName: 'system:node:n1',
    organizations: ['system:nodes'],
    ipAddresses: ['127.0.0.1'],
    usage: 'both',
    validDays: 1,
  });
  admin = await issueCertificate(ca, {
    commonName: 'root',
    organizations: [ADMIN_GROUP],
    usage: 'client',
    validDays: 1,
  });
  const s = await certificatesServer(ca, serverCert, true, calls);
  const w = await certificatesServer(ca, serverCert, false, calls);
  servers.push(s.server, w.server);
  signer = s.endpoint;
  worker = w.endpoint;
});

test.after.always(async () => {
  for (const s of servers) s.forceShutdown();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.serial('user create alice --readonly prints a config for alice, signed by the CA', async (t) => {
  // The worker is asked first and says UNAVAILABLE: the next endpoint signs.
  const adminConf = await configWith('admin', [worker, signer], admin);
  calls.length = 0;
  const r = await ctl(['--config', adminConf, 'user', 'create', 'alice', '--readonly', '--days', '30']);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(
    calls.map((c) => [c.name, c.role, c.valid_days]),
    [
      ['alice', 'readonly', 30],
      ['alice', 'readonly', 30],
    ],
  );
  t.regex(
    r.stderr,
    /^berthctl: issued readonly credential "alice", valid until \S+; the config holds its private key/,
  );

  const alicePath = join(dir, 'alice-out.conf');
  await writeFile(alicePath, r.stdout, { mode: 0o600 });
  const config = await loadConfig(alicePath);
  t.is(config['current-context'], 'alice');
  t.is(config.contexts.length, 1);
  const ctx = config.contexts[0];
  t.is(ctx?.name, 'alice');
  t.deepEqual(ctx?.endpoints, [worker, signer]);
  const tls = tlsOf(ctx);
  if (!tls) return t.fail('no TLS in the printed context');
  t.is(tls.caPem, ca.certPem);
  const info = certificateInfo(tls.certPem);
  t.is(info.commonName, 'alice');
  t.deepEqual(info.organizations, [READONLY_GROUP]);
  t.true(verifyIssuedBy(tls.certPem, ca.certPem));
  t.true(new X509Certificate(tls.certPem).checkPrivateKey(createPrivateKey(tls.keyPem)));
  t.true(Math.abs(info.notAfter.getTime() - Date.now() - 30 * 86_400_000) < 86_400_000);

  // The printed config dials with mutual TLS: the server knows alice, and refuses her Issue.
  const err = await t.throwsAsync(
    issueUserCertificate(
      { name: 'mallory', role: 'admin', csr_pem: 'x', valid_days: 0 },
      { endpoints: [signer], credentials: credentialsOf(ctx) as grpc.ChannelCredentials, timeoutMs: 5000 },
    ),
  );
  t.regex(err?.message ?? '', /refused to issue the certificate: only an admin may issue credentials/);
});

test.serial(
  'user create --admin gives O=system:masters; --endpoint-address replaces the endpoints',
  async (t) => {
    const adminConf = await configWith('admin2', [signer], admin);
    const r = await ctl([
      '--config',
      adminConf,
      'user',
      'create',
      'bob',
      '--admin',
      '--endpoint-address',
      '203.0.113.7:2379,203.0.113.8:2379',
    ]);
    t.is(r.code, 0, r.stderr);
    const path = join(dir, 'bob.conf');
    await writeFile(path, r.stdout, { mode: 0o600 });
    const ctx = (await loadConfig(path)).contexts[0];
    t.deepEqual(ctx?.endpoints, ['203.0.113.7:2379', '203.0.113.8:2379']);
    const info = certificateInfo(tlsOf(ctx)?.certPem ?? '');
    t.is(info.commonName, 'bob');
    t.deepEqual(info.organizations, [ADMIN_GROUP]);
  },
);

test.serial('user create: one of --readonly/--admin, a TLS context, and a member that signs', async (t) => {
  const adminConf = await configWith('admin3', [signer], admin);
  for (const flags of [[], ['--readonly', '--admin']]) {
    const r = await ctl(['--config', adminConf, 'user', 'create', 'carol', ...flags]);
    t.is(r.code, 2, flags.join(' '));
    t.regex(r.stderr, /^berthctl: user create needs exactly one of --readonly and --admin\n/);
    t.is(r.stdout, '');
  }

  const plain = join(dir, 'plain.conf');
  await writeFile(
    plain,
    renderConfig({ 'current-context': 'p', contexts: [{ name: 'p', endpoints: [signer] }] }),
  );
  const noTls = await ctl(['--config', plain, 'user', 'create', 'carol', '--readonly']);
  t.is(noTls.code, 1);
  t.is(noTls.stderr, `berthctl: ${NO_TLS_MESSAGE}\n`);

  // Only workers (and a closed port): nobody can sign.
  const workersOnly = await configWith('workers', [worker, '127.0.0.1:1'], admin);
  const none = await ctl([
    '--config',
    workersOnly,
    '--timeout',
    '2s',
    'user',
    'create',
    'carol',
    '--readonly',
  ]);
  t.is(none.code, 1);
  t.regex(
    none.stderr,
    /^berthctl: no member could issue the certificate \(tried 127\.0\.0\.1:\d+: this member holds no CA key/,
  );
  t.is(none.stdout, '');
});

test.serial('as a process: the config on stdout, and no DEP0123 warning for dialling an IP', async (t) => {
  const adminConf = await configWith('admin4', [signer], admin);
  const { BERTH_ENDPOINTS: _ignored, ...env } = process.env;
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [CTL, '--config', adminConf, 'user', 'create', 'dave', '--readonly'],
      { timeout: 20_000, env },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? -1) : 0, stdout, stderr }),
    );
  });
  t.is(r.code, 0, r.stderr);
  t.notRegex(r.stderr, /DEP0123|DeprecationWarning/);
  const path = join(dir, 'dave.conf');
  await writeFile(path, r.stdout, { mode: 0o600 });
  t.is(certificateInfo(tlsOf((await loadConfig(path)).contexts[0])?.certPem ?? '').commonName, 'dave');
});
