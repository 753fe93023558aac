// A secure 3-node cluster made the way docs/install.md says (berth-node init, then two
// `berth-node join` with init's token), with the agent and the real Docker engine. It
// serves an app through a NodePort and keeps serving when a node dies; joins with a wrong,
// expired or revoked token, clients without a certificate or with one from another CA, a
// read-only user's writes and a node's writes to another node's pods are all refused; and
// a Secret is in no file of any data directory after snapshots and a compaction.
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import YAML from 'yaml';
import { ApiError, ApiErrorCode } from '../../pkg/api/errors.js';
import { type ApiClient, createApiClient } from '../../pkg/client/api-client.js';
import { createClient } from '../../pkg/client/client.js';
import { ADMIN_GROUP, createCA, issueCertificate } from '../../pkg/pki/index.js';
import { staticChannelCredentials, type TlsMaterial } from '../../pkg/rpc/tls.js';
import { BUSYBOX, containersWith, docker, httpGet, type Json, waitFor } from '../support/agent-helpers.js';
import { BerthCluster } from '../support/berth-cluster.js';
import { b64, distinctive, filesHolding, pieces } from '../support/disk-search.js';

const NS = 'default';

let cluster: BerthCluster;
let admin: TlsMaterial;
let api: ApiClient;
let clusterId = '';

const ctl = (args: string[]) => cluster.ctl(args);

async function material(configPath: string): Promise<TlsMaterial> {
  const doc = YAML.parse(await readFile(configPath, 'utf8')) as { contexts: Array<Record<string, string>> };
  const c = doc.contexts[0] as Record<string, string>;
  const pem = (k: string) => Buffer.from(c[k] ?? '', 'base64').toString('utf8');
  return {
    caPem: pem('certificate-authority-data'),
    certPem: pem('client-certificate-data'),
    keyPem: pem('client-key-data'),
  };
}

async function nodeMaterial(i: number): Promise<TlsMaterial> {
  const read = (f: string) => readFile(join(cluster.pkiDir(i), f), 'utf8');
  return { caPem: await read('ca.crt'), certPem: await read('node.crt'), keyPem: await read('node.key') };
}

const apiWith = (credentials: grpc.ChannelCredentials, endpoints = cluster.endpoints()) =>
  createApiClient({ endpoints, credentials, requestTimeoutMs: 10_000, retries: 0 });

test.before(async () => {
  cluster = await BerthCluster.start({ size: 3, agent: true, secure: true, snapshotEntries: 50 });
  admin = await material(cluster.adminConfig);
  api = apiWith(staticChannelCredentials(admin));
  clusterId = (JSON.parse(await readFile(join(cluster.node(0).dataDir, 'member.json'), 'utf8')) as Json)
    .clusterId;
  await waitFor(
    'every node to register',
    async () => (await api.list('nodes')).items.length === 3 || undefined,
    30_000,
  );
});

test.after.always(async () => {
  api?.close();
  await cluster?.destroy();
  if (clusterId) {
    const left = await containersWith({ 'berth.io/cluster': clusterId }).catch(() => []);
    if (left.length > 0) await docker('rm', '-f', '-v', ...left.map((c) => c.id));
  }
});

test.serial('made the documented way: three voters, quorum 2, owner-only directories', async (t) => {
  const r = await ctl(['cluster', 'status', '-o', 'json']);
  t.is(r.code, 0, r.stderr);
  const quorum = (JSON.parse(r.stdout) as Json).quorum;
  t.like(quorum, { voters: 3, quorum: 2, toleratedFailures: 1 });
  const text = await ctl(['cluster', 'status']);
  t.regex(text.stdout, /voters: 3 \(quorum 2\); the cluster survives 1 failure/);
  for (let i = 0; i < 3; i++) {
    t.is((await stat(cluster.node(i).dataDir)).mode & 0o777, 0o700);
    t.is((await stat(cluster.pkiDir(i))).mode & 0o777, 0o700);
    t.is((await stat(join(cluster.pkiDir(i), 'node.key'))).mode & 0o777, 0o600);
  }
  t.is((await stat(cluster.adminConfig)).mode & 0o777, 0o600);
});

test.serial('an app behind a NodePort keeps serving, and the API answering, when a node dies', async (t) => {
  await api.create({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: NS },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: 'web',
              image: BUSYBOX,
              imagePullPolicy: 'Never',
              command: ['sh', '-c', 'echo hello > /tmp/index.html && exec httpd -f -p 8080 -h /tmp'],
              ports: [{ name: 'http', containerPort: 8080 }],
              readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
            },
          ],
        },
      },
    },
  });
  const svc = (await api.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: NS },
    spec: { type: 'NodePort', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http' }] },
  })) as Json;
  const nodePort = svc.spec.ports[0].nodePort as number;
  const ok = async (i: number) =>
    (await httpGet(cluster.node(i).address, nodePort, '/').catch(() => undefined))?.status === 200;
  await waitFor(
    'every NodePort to answer',
    async () => ((await ok(0)) && (await ok(1)) && (await ok(2))) || undefined,
    60_000,
  );

  // A node that does not lead dies (its process; the others keep quorum).
  const status = JSON.parse((await ctl(['cluster', 'status', '-o', 'json'])).stdout) as Json;
  const leaderName =
    status.members?.find((m: Json) => m.isLeader || m.role === 'leader')?.name ?? status.leader;
  const victim = [1, 2].find((i) => cluster.node(i).name !== leaderName) ?? 1;
  await cluster.kill(victim);
  t.teardown(() => (cluster.node(victim).proc ? undefined : cluster.start(victim)));
  const survivors = [0, 1, 2].filter((i) => i !== victim);
  for (let round = 0; round < 10; round++)
    for (const i of survivors) t.true(await ok(i), `NodePort on ${cluster.node(i).name}, round ${round}`);
  const alive = apiWith(
    staticChannelCredentials(admin),
    survivors.map((i) => cluster.node(i).clientAddress),
  );
  t.teardown(() => alive.close());
  t.true((await alive.list('pods', { namespace: NS })).items.length >= 2);
  await cluster.start(victim);
});

test.serial('joins with a wrong, an expired or a revoked token are refused, and logged', async (t) => {
  const join4 = (token: string) =>
    cluster.nodeCommand([
      'join',
      cluster.node(0).address,
      '--token',
      token,
      '--name',
      'n9',
      '--address',
      cluster.address(8),
      '--data-dir',
      join(cluster.root, 'n9'),
    ]);
  const voter = cluster.tokens.voter;
  const wrong = await join4(`${voter.slice(0, voter.lastIndexOf('.') + 1)}${'x'.repeat(16)}`);
  t.not(wrong.code, 0);
  t.regex(wrong.stderr, /join refused.*wrong token/);

  const expiring = await ctl(['token', 'create', '--ttl', '1s']);
  t.is(expiring.code, 0, expiring.stderr);
  await new Promise((r) => setTimeout(r, 2500));
  const expired = await join4(expiring.stdout.trim());
  t.not(expired.code, 0);
  t.regex(expired.stderr, /the token has expired/);

  const revoked = await ctl(['token', 'create']);
  const id = /-([a-z0-9]{6})\./.exec(revoked.stdout)?.[1] as string;
  t.is((await ctl(['token', 'revoke', id])).code, 0);
  const unknown = await join4(revoked.stdout.trim());
  t.not(unknown.code, 0);
  t.regex(unknown.stderr, /unknown token/);

  const logs = (await Promise.all([0, 1, 2].map((i) => readFile(cluster.node(i).logFile, 'utf8')))).join(
    '\n',
  );
  t.true((logs.match(/"join refused"/g) ?? []).length >= 3);
  t.false(
    (await api.list('nodes')).items.some((n) => n.metadata.name === 'n9'),
    'nobody joined',
  );
});

test.serial('clients without a certificate, or with one from another CA, are refused', async (t) => {
  const none = apiWith(grpc.credentials.createSsl(Buffer.from(admin.caPem)));
  t.teardown(() => none.close());
  const e1 = await t.throwsAsync(none.list('pods', { namespace: NS }));
  t.regex(e1?.message ?? '', /no valid client certificate/);

  const other = await createCA({ commonName: 'another-ca' });
  const forged = await issueCertificate(other, {
    commonName: 'admin',
    organizations: [ADMIN_GROUP],
    usage: 'client',
    validDays: 1,
  });
  const stranger = apiWith(staticChannelCredentials({ caPem: admin.caPem, ...forged }));
  t.teardown(() => stranger.close());
  const e2 = await t.throwsAsync(
    stranger.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'forged' } }),
  );
  t.regex(e2?.message ?? '', /no valid client certificate/);
  await t.throwsAsync(api.get('namespaces', '', 'forged'), { instanceOf: ApiError });
  const logs = (await Promise.all([0, 1, 2].map((i) => readFile(cluster.node(i).logFile, 'utf8')))).join(
    '\n',
  );
  t.regex(logs, /"refused: .*no valid client certificate/);
});

test.serial('a read-only user reads, and may not write', async (t) => {
  const r = await ctl(['user', 'create', 'alice', '--readonly']);
  t.is(r.code, 0, r.stderr);
  const conf = join(cluster.root, 'alice.conf');
  await writeFile(conf, r.stdout, { mode: 0o600 });
  await chmod(conf, 0o600);
  const as = (args: string[]) => cluster.ctl(args, conf);
  const get = await as(['get', 'pods', '-n', NS]);
  t.is(get.code, 0, get.stderr);
  t.regex(get.stdout, /web-/);
  const create = await as(['create', 'namespace', 'alices']);
  t.is(create.code, 1);
  t.regex(create.stderr, /user "alice" is read-only/);
  const manifest = join(cluster.root, 'alice.yaml');
  await writeFile(
    manifest,
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: alices\n  namespace: default\ndata:\n  a: b\n',
  );
  const apply = await as(['apply', '-f', manifest]);
  t.is(apply.code, 1);
  t.regex(apply.stderr, /user "alice" is read-only/);
  await t.throwsAsync(api.get('namespaces', '', 'alices'));
  await t.throwsAsync(api.get('configmaps', NS, 'alices'));
});

test.serial("a node's identity may change its own pods and Node, not another node's", async (t) => {
  const pinned = (name: string, node: string) =>
    api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS },
      spec: {
        nodeName: node,
        terminationGracePeriodSeconds: 0,
        containers: [{ name: 'c', image: BUSYBOX, imagePullPolicy: 'Never', command: ['sleep', '3600'] }],
      },
    });
  await pinned('on-n1', cluster.node(0).name);
  await pinned('on-n2', cluster.node(1).name);
  const n2 = apiWith(staticChannelCredentials(await nodeMaterial(1)));
  t.teardown(() => n2.close());
  const mark = async (name: string) => {
    for (;;) {
      const pod = await n2.get('pods', NS, name);
      try {
        return await n2.updateStatus({
          ...pod,
          status: { ...(pod.status as object), message: 'marked by n2' },
        });
      } catch (err) {
        if (!(err instanceof ApiError && err.code === ApiErrorCode.Conflict)) throw err;
      }
    }
  };
  const denied = await t.throwsAsync(mark('on-n1'));
  t.regex(denied?.message ?? '', /node "n2" may not modify pod default\/on-n1 bound to node "n1"/);
  await t.notThrowsAsync(mark('on-n2'));
  const node1 = await n2.get('nodes', '', cluster.node(0).name);
  await t.throwsAsync(n2.update({ ...node1, metadata: { ...node1.metadata, labels: { hacked: 'yes' } } }), {
    message: /node "n2" may not/,
  });
  await api.delete('pods', NS, 'on-n1', { gracePeriodSeconds: 0 });
  await api.delete('pods', NS, 'on-n2', { gracePeriodSeconds: 0 });
});

test.serial('a Secret is in no file of any data directory after snapshots and a compaction', async (t) => {
  const secret = distinctive();
  const control = distinctive();
  await api.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'db', namespace: NS },
    stringData: { password: secret },
  });
  await api.create({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'control', namespace: NS },
    data: { v: control },
  });
  // Snapshots every 50 entries: 150 writes make several on every node.
  for (let batch = 0; batch < 6; batch++) {
    await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        api.create({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: `fill-${batch}-${i}`, namespace: NS },
          data: { n: String(i) },
        }),
      ),
    );
  }
  const kv = createClient({ endpoints: cluster.endpoints(), credentials: staticChannelCredentials(admin) });
  t.teardown(() => kv.close());
  const head = await kv.range({ key: new TextEncoder().encode('/registry/'), countOnly: true });
  await kv.compact({ revision: head.header.revision });
  const back = (await api.get('secrets', NS, 'db')) as Json;
  t.is(Buffer.from(back.data.password, 'base64').toString(), secret);

  for (let i = 0; i < 3; i++) await cluster.stop(i);
  const forbidden = [secret, b64(secret)].flatMap(pieces);
  for (let i = 0; i < 3; i++) {
    const dir = cluster.node(i).dataDir;
    const leaks = await filesHolding(dir, forbidden);
    t.deepEqual(leaks.hits, [], `${cluster.node(i).name}: ${leaks.files} files searched`);
    t.true(
      (await filesHolding(dir, [control])).hits.length > 0,
      `${cluster.node(i).name}: the control is found`,
    );
  }
  for (let i = 0; i < 3; i++) await cluster.start(i);
});
