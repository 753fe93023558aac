// berthctl end to end: a real 3-node cluster (three berth-node processes on 127.0.K.x) and
// the built CLI run as a separate process, as a user runs it.
import { execFile, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { createClient } from '../../pkg/client/client.js';
import { StoreError } from '../../pkg/store/errors.js';
import { BerthCluster } from '../support/berth-cluster.js';

const CTL = fileURLToPath(new URL('../../cmd/ctl/main.js', import.meta.url));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const NO_CONFIG = join(tmpdir(), 'berth-ctl-e2e-no-config');

/** Run berthctl; never rejects (the exit code is part of the result). */
function ctl(args: string[], input?: string): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CTL, ...args],
      // No config file: the user's own (~/.berth/config, maybe a TLS context) must not apply.
      { timeout: 20_000, env: { ...process.env, BERTH_ENDPOINTS: '', BERTH_CONFIG: NO_CONFIG } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

interface StatusJson {
  leader: { name: string; id: string } | null;
  term: number | null;
  healthyMembers: number;
  totalMembers: number;
  members: { name: string; id: string; role: string; health: string; healthy: boolean }[];
}

let cluster: BerthCluster;
let eps: string;

const on = (...args: string[]) => ctl(['--endpoints', eps, ...args]);

async function statusJson(): Promise<StatusJson> {
  const r = await on('cluster', 'status', '-o', 'json');
  if (r.code !== 0) throw new Error(`cluster status failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusJson;
}

test.before(async () => {
  cluster = await BerthCluster.start({ size: 3 });
  eps = cluster.endpoints().join(',');
  // Every member answers and agrees on a leader.
  const deadline = Date.now() + 15_000;
  for (;;) {
    const s = await statusJson().catch(() => undefined);
    if (s?.leader && s.healthyMembers === 3) return;
    if (Date.now() > deadline) throw new Error(`no healthy cluster in 15 s: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
});

test.after.always(async () => {
  await cluster?.destroy();
});

test.serial('cluster status: three healthy members, one leader, and a summary line', async (t) => {
  const r = await on('cluster', 'status');
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  t.regex(lines[0] ?? '', /^NAME\s+ID\s+ADDRESS\s+ROLE\s+TERM\s+APPLIED INDEX\s+HEALTH$/);
  const rows = lines.slice(1, 4);
  t.deepEqual(
    rows.map((l) => l.split(/\s+/)[0]),
    ['n1', 'n2', 'n3'],
  );
  t.is(rows.filter((l) => /\sleader\s/.test(l)).length, 1);
  t.true(rows.every((l) => / ok$/.test(l)));
  t.regex(lines[5] ?? '', /^leader: n[123], term \d+, 3\/3 members healthy$/);

  const s = await statusJson();
  t.is(s.members.filter((m) => m.role === 'leader').length, 1);
  t.is(s.members.find((m) => m.role === 'leader')?.name, s.leader?.name);
  t.true(s.members.every((m) => m.healthy && /^[0-9a-f]{12}$/.test(m.id)));
});

test.serial('cluster status only needs one endpoint: it asks every member on its own address', async (t) => {
  const r = await ctl(['--endpoints', cluster.node(2).clientAddress, 'cluster', 'status']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /3\/3 members healthy/);
});

test.serial('kv put, get, del round trip; a value from stdin; JSON output', async (t) => {
  t.is((await on('kv', 'put', '/ctl/a', 'hello world')).stdout, 'OK\n');
  t.is((await ctl(['--endpoints', eps, 'kv', 'put', '/ctl/b', '-'], 'from\nstdin')).code, 0);

  const get = await on('kv', 'get', '/ctl/a');
  t.is(get.code, 0, get.stderr);
  t.regex(get.stdout, /^KEY\s+VALUE\s+VERSION\s+MOD REVISION\n\/ctl\/a\s+hello world\s+1\s+\d+\n$/);

  const json = JSON.parse((await on('kv', 'get', '/ctl/', '--prefix', '-o', 'json')).stdout);
  t.is(json.count, 2);
  t.deepEqual(
    json.kvs.map((kv: { key: string; value: string }) => [kv.key, kv.value]),
    [
      ['/ctl/a', 'hello world'],
      ['/ctl/b', 'from\nstdin'],
    ],
  );
  t.is((await on('kv', 'get', '/ctl/', '--prefix', '--count-only')).stdout, '2\n');
  const keys = await on('kv', 'get', '/ctl/', '--prefix', '--keys-only', '--limit', '1');
  t.regex(keys.stdout, /^KEY\s+VERSION\s+MOD REVISION\n\/ctl\/a\s+/);
  t.regex(keys.stderr, /1 more; raise --limit/);

  const past = JSON.parse((await on('kv', 'put', '/ctl/a', 'v2', '-o', 'json')).stdout).revision - 1;
  const old = JSON.parse((await on('kv', 'get', '/ctl/a', '--rev', String(past), '-o', 'json')).stdout);
  t.is(old.kvs[0].value, 'hello world');

  t.is((await on('kv', 'del', '/ctl/', '--prefix')).stdout, '2\n');
  const gone = await on('kv', 'get', '/ctl/a');
  t.is(gone.code, 1);
  t.is(gone.stderr, 'berthctl: key "/ctl/a" not found\n');
});

test.serial('kv watch prints changes as lines until Ctrl-C, then exits 0', async (t) => {
  const child = spawn(
    process.execPath,
    [CTL, '--endpoints', eps, 'kv', 'watch', '/w/', '--prefix', '--prev-kv'],
    { env: { ...process.env, BERTH_CONFIG: NO_CONFIG } },
  );
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  // The watch is running once a write made after it started shows up.
  const deadline = Date.now() + 10_000;
  while (!out.includes('PUT /w/probe') && Date.now() < deadline) {
    await on('kv', 'put', '/w/probe', 'x');
    await new Promise((r) => setTimeout(r, 100));
  }
  await on('kv', 'put', '/w/k', 'v1');
  await on('kv', 'put', '/w/k', 'v2');
  await on('kv', 'del', '/w/k');
  while (!out.includes('DELETE /w/k') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGINT');
  t.is(await exited, 0);
  t.true(out.includes('PUT /w/k v1\nPUT /w/k v2 (prev: v1)\nDELETE /w/k (prev: v2)\n'), out);
});

test.serial('member list: names, 12-hex ids, peer and client addresses', async (t) => {
  const r = await on('member', 'list');
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  t.regex(lines[0] ?? '', /^NAME\s+ID\s+PEER\s+CLIENT\s+LEARNER$/);
  for (const [i, line] of lines.slice(1).entries()) {
    const n = cluster.node(i);
    t.regex(
      line,
      new RegExp(`^${n.name}\\s+[0-9a-f]{12}\\s+${n.peerAddress}\\s+${n.clientAddress}\\s+false$`),
    );
  }
  const json = JSON.parse((await on('member', 'list', '-o', 'json')).stdout);
  t.is(json.members.length, 3);
  t.regex(json.clusterId, /^\d+$/);
});

test.serial('transfer-leader moves leadership to another member, by name then by id', async (t) => {
  const before = await statusJson();
  const target = before.members.find((m) => m.role !== 'leader');
  if (!target) return t.fail('no follower');
  const r = await on('transfer-leader', target.name);
  t.is(r.code, 0, r.stderr);
  t.regex(
    r.stdout,
    new RegExp(`^leader is now ${target.name} \\(was ${before.leader?.name}\\), term \\d+\\n$`),
  );
  const after = await statusJson();
  t.is(after.leader?.name, target.name);
  t.true((after.term ?? 0) > (before.term ?? 0));

  const next = after.members.find((m) => m.role !== 'leader');
  if (!next) return t.fail('no follower');
  const j = JSON.parse((await on('transfer-leader', next.id, '-o', 'json')).stdout);
  t.is(j.to.name, next.name);
  t.is(j.from.name, target.name);
  t.is((await statusJson()).leader?.name, next.name);
  t.regex((await on('transfer-leader', next.name)).stdout, /is already the leader/);
});

test.serial('unknown members get a clear error listing the members, exit 1', async (t) => {
  for (const args of [
    ['transfer-leader', 'n9'],
    ['member', 'remove', 'n9'],
    ['member', 'promote', 'abcdef123456'],
  ]) {
    const r = await on(...args);
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, /^berthctl: member "(n9|abcdef123456)" not found; members: n1 \([0-9a-f]{12}\), n2 /);
    t.is(r.stdout, '');
  }
});

test.serial('member add prints how to join; MoveLeader to a learner is refused; member remove', async (t) => {
  const address = cluster.address(8);
  const add = await on('member', 'add', 'n9', '--peer-url', `${address}:2380`);
  t.is(add.code, 0, add.stderr);
  t.regex(add.stdout, /^Member n9 added to cluster \d+ as a learner, id [0-9a-f]{12}\./);
  t.true(
    add.stdout.includes(`berth-node --name n9 --address ${address} --join ${cluster.endpoints().join(',')}`),
  );
  const id = /id ([0-9a-f]{12})/.exec(add.stdout)?.[1] as string;

  // The CLI refuses before asking; the server refuses too (etcd's code, Berth's message).
  t.regex((await on('transfer-leader', id)).stderr, /is a learner; promote it first/);
  const client = createClient({ endpoints: cluster.endpoints() });
  try {
    const err = await t.throwsAsync(client.cluster.moveLeader(BigInt(`0x${id}`).toString()), {
      instanceOf: StoreError,
    });
    t.is(err?.message, 'etcdserver: target is not a voting member');
    t.is(err?.grpc, 9); // FAILED_PRECONDITION
  } finally {
    await client.close();
  }

  const rm = await on('member', 'remove', id);
  t.is(rm.code, 0, rm.stderr);
  t.regex(rm.stdout, new RegExp(`^Member ${id} removed from cluster \\d+\\.\\n$`));
  t.is(JSON.parse((await on('member', 'list', '-o', 'json')).stdout).members.length, 3);
});

test.serial('no endpoint reachable: exit 1, one line naming the endpoints tried', async (t) => {
  // Addresses of this cluster's subnet where no node runs: connections are refused.
  const dead = [cluster.address(6), cluster.address(7)].map((a) => `${a}:2379`);
  const r = await ctl(['--endpoints', dead.join(','), '--timeout', '2s', 'cluster', 'status']);
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.regex(
    r.stderr,
    new RegExp(`^berthctl: no connection to .*; is the cluster up\\? tried: ${dead.join(', ')}\\n$`),
  );
  t.false(r.stderr.includes('    at '));
});
