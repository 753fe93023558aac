// berthctl's config file with TLS: contexts with and without kubeconfig-named certificate
// data, the all-three-or-none rule, the private-key permission warning, credentialsOf, and
// the global options a context gives (credentials kept when --endpoints overrides).
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import YAML from 'yaml';
import { withConfig } from '../../cmd/ctl/commands/run.js';
import {
  type Context,
  credentialsOf,
  encodeData,
  loadConfig,
  renderConfig,
  saveConfig,
  TLS_FIELDS,
  tlsContext,
  tlsOf,
} from '../../cmd/ctl/config-file.js';
import type { GlobalOptions } from '../../cmd/ctl/options.js';
import { createCA, issueCertificate } from '../../pkg/pki/index.js';

let dir: string;
let tls: { caPem: string; certPem: string; keyPem: string };

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctl-sec-config-'));
  const ca = await createCA({ commonName: 'test-ca' });
  const admin = await issueCertificate(ca, {
    commonName: 'admin',
    organizations: ['system:masters'],
    usage: 'client',
    validDays: 1,
  });
  tls = { caPem: ca.certPem, certPem: admin.certPem, keyPem: admin.keyPem };
});

test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function file(doc: unknown, mode = 0o600): Promise<string> {
  const path = join(dir, `config-${n++}`);
  await writeFile(path, typeof doc === 'string' ? doc : YAML.stringify(doc), { mode });
  await chmod(path, mode);
  return path;
}

function tlsFields() {
  return {
    'certificate-authority-data': encodeData(tls.caPem),
    'client-certificate-data': encodeData(tls.certPem),
    'client-key-data': encodeData(tls.keyPem),
  };
}

const globals = (over: Partial<GlobalOptions> = {}): GlobalOptions => ({
  endpoints: ['127.0.0.1:2379'],
  output: 'table',
  timeoutMs: 5000,
  namespace: 'default',
  namespaceExplicit: false,
  configPath: '',
  endpointsFromUser: false,
  endpointsFromFlag: false,
  ...over,
});

test('an old config (no certificates) stays valid and dials plain', async (t) => {
  const path = await file({
    'current-context': 'local',
    contexts: [{ name: 'local', endpoints: ['127.0.0.1:2379'], namespace: 'shop' }],
  });
  const c = await loadConfig(path);
  t.deepEqual(c.contexts[0], { name: 'local', endpoints: ['127.0.0.1:2379'], namespace: 'shop' });
  t.is(tlsOf(c.contexts[0]), undefined);
  t.is(credentialsOf(c.contexts[0]), undefined);
  const g = await withConfig(globals({ configPath: path }));
  t.is(g.tls, undefined);
  t.is(g.namespace, 'shop');
});

test('a context with all three fields gives the PEM back and TLS credentials', async (t) => {
  const path = await file({
    'current-context': 'admin',
    contexts: [{ name: 'admin', endpoints: ['10.0.0.1:2379'], ...tlsFields() }],
  });
  const c = await loadConfig(path);
  const ctx = c.contexts[0] as Context;
  t.deepEqual(tlsOf(ctx), tls);
  const creds = credentialsOf(ctx);
  t.true(creds instanceof grpc.ChannelCredentials);
  t.true(creds?._isSecure());
});

test('base64 wrapped over several lines (as some tools write it) is accepted', async (t) => {
  const wrapped = Object.fromEntries(
    Object.entries(tlsFields()).map(([k, v]) => [k, (v.match(/.{1,64}/g) ?? []).join('\n')]),
  );
  const path = await file({ contexts: [{ name: 'w', endpoints: ['a:1'], ...wrapped }] });
  t.deepEqual(tlsOf((await loadConfig(path)).contexts[0]), tls);
});

test('one or two of the three fields is an error naming the context and what is missing', async (t) => {
  const all = tlsFields();
  for (const keep of [['certificate-authority-data'], ['client-certificate-data', 'client-key-data']]) {
    const partial = Object.fromEntries(keep.map((k) => [k, all[k as keyof typeof all]]));
    const path = await file({ contexts: [{ name: 'half', endpoints: ['a:1'], ...partial }] });
    const err = await t.throwsAsync(loadConfig(path));
    t.regex(err?.message ?? '', new RegExp(`^the config file ${path} is not valid: context "half" has `));
    t.regex(err?.message ?? '', /give all three or none$/);
    for (const f of TLS_FIELDS.filter((f) => !keep.includes(f))) t.true(err?.message.includes(f), f);
  }
});

test('data that is not base64 PEM is an error naming the field', async (t) => {
  const path = await file({
    contexts: [
      { name: 'bad', endpoints: ['a:1'], ...tlsFields(), 'client-key-data': encodeData('not a key') },
    ],
  });
  const err = await t.throwsAsync(loadConfig(path));
  t.regex(err?.message ?? '', /context "bad": client-key-data must be base64 of PEM text$/);
  const num = await file({
    contexts: [{ name: 'num', endpoints: ['a:1'], ...tlsFields(), 'client-key-data': 7 }],
  });
  await t.throwsAsync(loadConfig(num), { message: /context "num": client-key-data must be base64/ });
});

test('a key readable by others: one warning line, and the file still loads', async (t) => {
  const doc = { contexts: [{ name: 'admin', endpoints: ['a:1'], ...tlsFields() }] };
  const open = await file(doc, 0o644);
  const warnings: string[] = [];
  const c = await loadConfig(open, (w) => warnings.push(w));
  t.is(c.contexts.length, 1);
  t.deepEqual(warnings, [
    `warning: the config file ${open} holds a private key and is readable by others (mode 0644); run: chmod 600 ${open}`,
  ]);
  // 0600, or no key at all: nothing to say.
  const quiet: string[] = [];
  await loadConfig(await file(doc, 0o600), (w) => quiet.push(w));
  await loadConfig(await file({ contexts: [{ name: 'x', endpoints: ['a:1'] }] }, 0o644), (w) =>
    quiet.push(w),
  );
  t.deepEqual(quiet, []);
});

test('--endpoints (or $BERTH_ENDPOINTS) replaces the endpoints but keeps the credentials', async (t) => {
  const path = await file({
    'current-context': 'admin',
    contexts: [{ name: 'admin', endpoints: ['10.0.0.1:2379'], ...tlsFields() }],
  });
  const fromContext = await withConfig(globals({ configPath: path }));
  t.deepEqual(fromContext.endpoints, ['10.0.0.1:2379']);
  t.deepEqual(fromContext.tls, tls);
  const overridden = await withConfig(
    globals({ configPath: path, endpoints: ['127.0.0.9:2379'], endpointsFromUser: true }),
  );
  t.deepEqual(overridden.endpoints, ['127.0.0.9:2379']);
  t.deepEqual(overridden.tls, tls);
});

test('saved with mode 0600 and read back the same; tlsContext and renderConfig round trip', async (t) => {
  const path = join(dir, 'saved', 'config');
  const config = { 'current-context': 'alice', contexts: [tlsContext('alice', ['127.0.0.1:2379'], tls)] };
  await saveConfig(path, config);
  t.is((await stat(path)).mode & 0o777, 0o600);
  t.deepEqual(await loadConfig(path), config);
  t.deepEqual(await loadConfig(await file(renderConfig(config))), config);
});
