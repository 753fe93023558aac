// berthctl token: the token pins the context's CA (tokenFor, pure), and create/list/revoke
// go through the KV API of a real 1-node cluster (insecure: list and revoke need no CA,
// create refuses without one). berthctl runs in-process with captured streams.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import YAML from 'yaml';
import { NO_CA_MESSAGE } from '../../cmd/ctl/commands/token.js';
import { joinCommand, parseTtl, shortDuration, tokenFor, tokenRows, ttlLeft } from '../../cmd/ctl/tokens.js';
import { createClient } from '../../pkg/client/client.js';
import { caHash, checkJoinToken, createCA, parseJoinToken, type TokenRecord } from '../../pkg/pki/index.js';
import { getToken, putToken } from '../../pkg/security/token-store.js';
import { BerthCluster } from '../support/berth-cluster.js';
import { ctlInProcess } from '../support/ctl-in-process.js';

const ctl = ctlInProcess;

// ---- pure ----

test('tokenFor pins the CA hash and stores only the secret hash, role and expiry', async (t) => {
  const ca = await createCA({ commonName: 'c' });
  const now = new Date('2026-01-01T00:00:00Z');
  const { token, record } = tokenFor(ca.certPem, {
    role: 'worker',
    ttlMs: 3_600_000,
    now,
    description: 'rack 4',
  });
  const parsed = parseJoinToken(token);
  t.is(parsed.caHash, caHash(ca.certPem));
  t.is(record.id, parsed.id);
  t.is(record.role, 'worker');
  t.is(record.expires, '2026-01-01T01:00:00.000Z');
  t.is(record.description, 'rack 4');
  t.false(JSON.stringify(record).includes(parsed.secret));
  t.deepEqual(checkJoinToken(record, parsed.id, parsed.secret, now), { ok: true, role: 'worker' });
  t.is(tokenFor(ca.certPem, { role: 'voter', ttlMs: 0, now }).record.expires, undefined);
});

test('--ttl: 0 is forever, durations as elsewhere, junk a usage error', (t) => {
  t.is(parseTtl('0'), 0);
  t.is(parseTtl('0s'), 0);
  t.is(parseTtl('24h'), 86_400_000);
  t.is(parseTtl('90m'), 5_400_000);
  t.throws(() => parseTtl('soon'), { message: /is not a duration/ });
});

test('token table: time left, <forever>, <expired>; join command', (t) => {
  const now = new Date('2026-01-01T00:00:00Z');
  const rec = (id: string, expires?: string, description?: string): TokenRecord => ({
    id,
    secretSha256: '0'.repeat(64),
    role: 'voter',
    created: '2025-12-31T00:00:00.000Z',
    ...(expires ? { expires } : {}),
    ...(description ? { description } : {}),
  });
  const rows = tokenRows(
    [
      rec('forevr'),
      rec('soon00', '2026-01-01T23:30:00.000Z', 'ci'),
      rec('gone00', '2025-12-31T12:00:00.000Z'),
    ],
    now,
  );
  t.deepEqual(rows, [
    ['gone00', 'voter', '<expired>', '2025-12-31T12:00:00.000Z', ''],
    ['soon00', 'voter', '23h', '2026-01-01T23:30:00.000Z', 'ci'],
    ['forevr', 'voter', '<forever>', '<never>', ''],
  ]);
  t.is(ttlLeft(rec('x', '2026-01-01T00:00:30.000Z'), now), '30s');
  t.deepEqual(
    [shortDuration(90_000), shortDuration(3_000_000), shortDuration(5 * 86_400_000)],
    ['90s', '50m', '5d'],
  );
  t.is(
    joinCommand('10.0.0.1:2379', 'BERTH1-x'),
    'berth-node join 10.0.0.1:2381 --token BERTH1-x --name <NAME> --address <ADDRESS>',
  );
  t.is(
    joinCommand('[::1]:2379', 'T'),
    'berth-node join [::1]:2381 --token T --name <NAME> --address <ADDRESS>',
  );
});

// ---- against a cluster ----

let cluster: BerthCluster;
let dir: string;
let config: string;

test.before(async () => {
  cluster = await BerthCluster.start({ size: 1, agent: false });
  dir = await mkdtemp(join(tmpdir(), 'ctl-sec-token-'));
  config = join(dir, 'config');
  await writeFile(
    config,
    YAML.stringify({
      'current-context': 'plain',
      contexts: [{ name: 'plain', endpoints: cluster.endpoints() }],
    }),
    { mode: 0o600 },
  );
});

test.after.always(async () => {
  await cluster?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.serial('token create refuses a context without a CA', async (t) => {
  const r = await ctl(['--config', config, 'token', 'create']);
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.is(r.stderr, `berthctl: ${NO_CA_MESSAGE}\n`);
});

test.serial('token list and revoke through the KV API; revoking an unknown id exits 1', async (t) => {
  const client = createClient({ endpoints: cluster.endpoints() });
  t.teardown(() => client.close());
  const ca = await createCA({ commonName: 'c' });
  const now = new Date();
  const a = tokenFor(ca.certPem, { role: 'voter', ttlMs: 3_600_000, now, description: 'first' });
  const b = tokenFor(ca.certPem, { role: 'worker', ttlMs: 0, now });
  await putToken(client, a.record);
  await putToken(client, b.record);

  const list = await ctl(['--config', config, 'token', 'list']);
  t.is(list.code, 0, list.stderr);
  const lines = list.stdout.trimEnd().split('\n');
  t.regex(lines[0] ?? '', /^ID\s+ROLE\s+TTL\s+EXPIRES\s+DESCRIPTION$/);
  t.regex(
    lines[1] ?? '',
    new RegExp(`^${a.record.id}\\s+voter\\s+(59m|60m)\\s+${a.record.expires}\\s+first$`),
  );
  t.regex(lines[2] ?? '', new RegExp(`^${b.record.id}\\s+worker\\s+<forever>\\s+<never>\\s+-$`));

  const json = JSON.parse((await ctl(['--config', config, 'token', 'list', '-o', 'json'])).stdout);
  t.deepEqual(json.tokens.map((x: { id: string }) => x.id).sort(), [a.record.id, b.record.id].sort());
  t.false(JSON.stringify(json).includes(parseJoinToken(a.token).secret));

  const revoke = await ctl(['--config', config, 'token', 'revoke', a.record.id, 'zzzzzz']);
  t.is(revoke.code, 1);
  t.is(revoke.stdout, `token ${a.record.id} revoked\n`);
  t.is(revoke.stderr, 'berthctl: token "zzzzzz" not found\n');
  t.is(await getToken(client, a.record.id), undefined);
  // The whole token works too (its id is taken); the secret is not echoed.
  const whole = await ctl(['--config', config, 'token', 'revoke', b.token]);
  t.is(whole.code, 0, whole.stderr);
  t.is(whole.stdout, `token ${b.record.id} revoked\n`);
  t.is(await getToken(client, b.record.id), undefined);
});
