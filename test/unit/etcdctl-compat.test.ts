// etcdctl (the reference client, Debian's 3.4) against a 3-node Berth cluster and a 3-node
// real etcd cluster, side by side: every command is run against both and the outputs, with
// what legitimately differs (revisions, ids, sizes, addresses, timing) replaced by
// placeholders, must be equal.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import test from 'ava';
import { createApiClient } from '../../pkg/client/api-client.js';
import { BerthCluster } from '../support/berth-cluster.js';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd-cluster.js';

interface Target {
  name: 'berth' | 'etcd';
  endpoints: string[];
}

interface CtlResult {
  code: number;
  stdout: string;
  stderr: string;
}

let berth: BerthCluster | undefined;
let etcd: EtcdCluster | undefined;
const targets: Target[] = [];

const env = { ...process.env, ETCDCTL_API: '3' };

test.before(async () => {
  const [b, e] = await Promise.allSettled([BerthCluster.start({ size: 3 }), startEtcdCluster({ size: 3 })]);
  if (b.status === 'fulfilled') berth = b.value;
  if (e.status === 'fulfilled') etcd = e.value;
  if (b.status === 'rejected') throw b.reason;
  if (e.status === 'rejected') throw e.reason;
  targets.push({ name: 'berth', endpoints: berth?.endpoints() ?? [] });
  targets.push({ name: 'etcd', endpoints: etcd?.endpoints ?? [] });
  // Both must answer a write before the comparisons begin (Berth elects its leader lazily).
  for (const tg of targets) {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = await ctl(tg, ['put', '/__ready', 'x']);
      if (r.code === 0) break;
      if (Date.now() > deadline) throw new Error(`${tg.name} never accepted a write: ${r.stderr}`);
      await sleep(200);
    }
    await ctl(tg, ['del', '/__ready']);
  }
});

test.after.always(async () => {
  await Promise.all([berth?.destroy(), etcd?.stop()]);
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function baseArgs(tg: Target): string[] {
  return ['--endpoints', tg.endpoints.join(','), '--dial-timeout=3s', '--command-timeout=5s'];
}

/** Run etcdctl; never throws: the exit code and both streams are part of what is compared. */
function ctl(tg: Target, args: string[], stdin?: string): Promise<CtlResult> {
  return new Promise((resolve) => {
    const p = execFile(
      'etcdctl',
      [...baseArgs(tg), ...args],
      { env, timeout: 15_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (stdin !== undefined) p.stdin?.end(stdin);
  });
}

/** Run against both clusters (one after the other, so each sees the same sequence). */
async function both(args: (tg: Target) => string[], stdin?: string): Promise<[CtlResult, CtlResult]> {
  const [b, e] = targets as [Target, Target];
  return [await ctl(b, args(b), stdin), await ctl(e, args(e), stdin)];
}

/** Addresses differ by construction (Berth: 127.0.K.i:2379, etcd: http://127.0.10.i:PORT). */
function normAddresses(s: string): string {
  return s.replace(/(https?:\/\/)?127\.\d+\.\d+\.\d+:\d+/g, '<ADDR>');
}

/** Text output: exit code, stdout, stderr with addresses and timing placeholders. */
function normText(r: CtlResult): string {
  const stderr = normAddresses(r.stderr)
    // Durations and timestamps in error messages.
    .replace(/\d+(\.\d+)?(ms|s|µs)\b/g, '<DUR>')
    .replace(/\d{4}-\d\d-\d\d[T ][\d:.]+Z?/g, '<TIME>')
    // etcdctl names each of its gRPC client connections with a random uuid.
    .replace(/client-[0-9a-f-]{36}/g, 'client-<UUID>');
  return `code=${r.code}\n--stdout--\n${normAddresses(r.stdout)}--stderr--\n${stderr}`;
}

/** Lease ids are random per server; the remaining TTL depends on timing. */
function normLease(s: string): string {
  return (
    s
      .replace(/lease [0-9a-f]+ /g, 'lease <LEASE> ')
      .replace(/remaining\(-?\d+s\)/g, 'remaining(<N>s)')
      .replace(/keepalived with TTL\(\d+\)/g, 'keepalived with TTL(<TTL>)')
      // etcd keeps a lease's keys in a Go map, so it lists them in no particular order: sort.
      .replace(
        /attached keys\(\[([^\]]*)\]\)/g,
        (_, ks: string) => `attached keys([${ks.split(' ').sort().join(' ')}])`,
      )
  );
}

const HEADER_ZERO = { cluster_id: 0, member_id: 0, revision: 0, raft_term: 0 };

/** `-w json` output: parse, zero the header and the revision fields (server-specific). */
function normJson(r: CtlResult): unknown {
  if (r.code !== 0) return normText(r);
  const j = JSON.parse(r.stdout) as {
    header?: unknown;
    kvs?: { create_revision?: number; mod_revision?: number; lease?: number }[];
  };
  if (j.header) j.header = HEADER_ZERO;
  for (const kv of j.kvs ?? []) {
    if (kv.create_revision !== undefined) kv.create_revision = 0;
    if (kv.mod_revision !== undefined) kv.mod_revision = 0;
  }
  return j;
}

/** The revision etcdctl reports in `-w json` for a put. */
function revisionOf(r: CtlResult): number {
  if (r.code !== 0) throw new Error(`etcdctl failed: ${r.stderr}`);
  return Number((JSON.parse(r.stdout) as { header: { revision: number } }).header.revision);
}

/** Parse etcdctl's `-w table` output into rows of trimmed cells (header row first). */
function parseTable(s: string): string[][] {
  return s
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .map((l) =>
      l
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim()),
    );
}

function eventually(pred: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  return new Promise((resolve) => {
    const tick = () => {
      if (pred()) resolve(true);
      else if (Date.now() > deadline) resolve(false);
      else setTimeout(tick, 50);
    };
    tick();
  });
}

// ---- kv ----

test.serial('put', async (t) => {
  const [b, e] = await both(() => ['put', '/put/a', '1']);
  t.is(normText(b), normText(e));
  t.is(b.stdout, 'OK\n');
  const [b2, e2] = await both(() => ['put', '/put/a', '2', '--prev-kv']);
  t.is(normText(b2), normText(e2));
  // Empty key: both refuse.
  const [b3, e3] = await both(() => ['put', '', 'x']);
  t.is(normText(b3), normText(e3));
});

test.serial('get: plain, --prefix, --rev, --limit, --keys-only, -w json', async (t) => {
  const revs: number[] = [];
  for (const tg of targets) {
    revs.push(revisionOf(await ctl(tg, ['put', '/get/a', 'a1', '-w', 'json'])));
    await ctl(tg, ['put', '/get/a', 'a2']);
    await ctl(tg, ['put', '/get/b', 'b1']);
    await ctl(tg, ['put', '/get/c', 'c1']);
    await ctl(tg, ['put', '/gex', 'outside']);
  }
  const cases: [string, (tg: Target) => string[]][] = [
    ['plain', () => ['get', '/get/a']],
    ['missing', () => ['get', '/get/zzz']],
    ['prefix', () => ['get', '/get/', '--prefix']],
    ['rev', (tg) => ['get', '/get/a', `--rev=${revs[targets.indexOf(tg)]}`]],
    ['limit', () => ['get', '/get/', '--prefix', '--limit=2']],
    ['keys-only', () => ['get', '/get/', '--prefix', '--keys-only']],
    ['range', () => ['get', '/get/a', '/get/c']],
    ['print-value-only', () => ['get', '/get/b', '--print-value-only']],
    ['count-only', () => ['get', '/get/', '--prefix', '--count-only', '-w', 'fields']],
  ];
  for (const [name, args] of cases) {
    const [b, e] = await both(args);
    t.is(
      normText(b).replace(/"(Revision|ClusterID|MemberID|RaftTerm)" : \d+/g, '"$1" : <N>'),
      normText(e).replace(/"(Revision|ClusterID|MemberID|RaftTerm)" : \d+/g, '"$1" : <N>'),
      `get ${name}`,
    );
  }
  for (const [name, args] of [
    ['json', () => ['get', '/get/a', '-w', 'json']],
    ['json prefix limit', () => ['get', '/get/', '--prefix', '--limit=2', '-w', 'json']],
    ['json rev', (tg: Target) => ['get', '/get/a', `--rev=${revs[targets.indexOf(tg)]}`, '-w', 'json']],
  ] as [string, (tg: Target) => string[]][]) {
    const [b, e] = await both(args);
    t.deepEqual(normJson(b), normJson(e), `get ${name}`);
  }
  // A revision in the future: both refuse, with the same message.
  const [b, e] = await both(() => ['get', '/get/a', '--rev=100000']);
  t.is(normText(b), normText(e), 'future revision');
  t.not(b.code, 0);
});

test.serial('del --prefix', async (t) => {
  for (const tg of targets) {
    for (const k of ['a', 'b', 'c']) await ctl(tg, ['put', `/del/${k}`, k]);
    await ctl(tg, ['put', '/delx', 'keep']);
  }
  const [b1, e1] = await both(() => ['del', '/del/a']);
  t.is(normText(b1), normText(e1));
  const [b2, e2] = await both(() => ['del', '/del/', '--prefix', '--prev-kv']);
  t.is(normText(b2), normText(e2));
  t.is(b2.stdout, '2\n/del/b\nb\n/del/c\nc\n');
  const [b3, e3] = await both(() => ['del', '/del/', '--prefix']);
  t.is(normText(b3), normText(e3), 'nothing left: 0');
  const [b4, e4] = await both(() => ['get', '/del', '--prefix']);
  t.is(normText(b4), normText(e4));
});

// Berth refuses sorting by anything but ascending key (InvalidArgument: "Berth returns keys in
// ascending key order"); etcd sorts. A real difference, kept asserted.
test.serial('get --sort-by / --order', async (t) => {
  for (const tg of targets) {
    await ctl(tg, ['put', '/sort/a', '3']);
    await ctl(tg, ['put', '/sort/b', '1']);
    await ctl(tg, ['put', '/sort/c', '2']);
  }
  const berthOut: string[] = [];
  const etcdOut: string[] = [];
  for (const [by, order] of [
    ['KEY', 'ASCEND'],
    ['KEY', 'DESCEND'],
    ['VALUE', 'ASCEND'],
    ['VALUE', 'DESCEND'],
    ['CREATE', 'DESCEND'],
    ['MODIFY', 'ASCEND'],
    ['VERSION', 'ASCEND'],
  ]) {
    const [b, e] = await both(() => ['get', '/sort/', '--prefix', `--sort-by=${by}`, `--order=${order}`]);
    // One comparison for all, so a failure shows every combination that differs.
    const label = `--sort-by=${by} --order=${order}\n`;
    berthOut.push(label + normText(b).replace(/^\{"level".*\n/gm, ''));
    etcdOut.push(label + normText(e).replace(/^\{"level".*\n/gm, ''));
  }
  t.deepEqual(berthOut, etcdOut);
});

// ---- txn ----

test.serial('txn via stdin (interactive)', async (t) => {
  for (const tg of targets) await ctl(tg, ['put', '/txn/k', 'v1']);
  const scripts = [
    // Success branch: the key exists (mod > 0).
    'mod("/txn/k") > "0"\n\nput /txn/k v2\n\nput /txn/k v3\n\n',
    // Failure branch: value compare fails; failure has several ops.
    'value("/txn/k") = "nope"\n\nput /txn/s yes\n\nput /txn/f no\nget /txn/k\n\n',
    // Several compares, a del and a get in success.
    'version("/txn/k") > "0"\ncreate("/txn/missing") = "0"\n\ndel /txn/f\nget /txn/k\n\nput /txn/x x\n\n',
    // Prefix-less compare on a missing key: version = 0.
    'version("/txn/nokey") = "0"\n\nput /txn/nokey made\n\n\n',
  ];
  for (const script of scripts) {
    const [b, e] = await both(() => ['txn'], script);
    t.is(normText(b), normText(e), script);
    const [bj, ej] = await both(() => ['txn', '-w', 'json'], script);
    t.deepEqual(normTxnJson(bj), normTxnJson(ej), `json: ${script}`);
  }
  const [b, e] = await both(() => ['get', '/txn/', '--prefix']);
  t.is(normText(b), normText(e));
});

function normTxnJson(r: CtlResult): unknown {
  if (r.code !== 0) return normText(r);
  const j = JSON.parse(r.stdout) as { header?: unknown; responses?: Record<string, unknown>[] };
  if (j.header) j.header = HEADER_ZERO;
  // Each op response carries its own header; get responses carry kvs with revisions.
  return JSON.parse(
    JSON.stringify(j, (k, v) => {
      if (k === 'header') return HEADER_ZERO;
      if (k === 'create_revision' || k === 'mod_revision') return 0;
      return v;
    }),
  );
}

// ---- watch ----

/**
 * Start `etcdctl watch ...`, run `write`, collect stdout until it has been quiet for ~1 s
 * (at most 6 s), kill it by its pid.
 */
async function watchOutput(tg: Target, args: string[], write?: () => Promise<void>): Promise<string> {
  let out = '';
  let err = '';
  let lastData = Date.now();
  const w: ChildProcess = spawn('etcdctl', [...baseArgs(tg), 'watch', ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  w.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    lastData = Date.now();
  });
  w.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  try {
    if (write) {
      // A watch without --rev only sees later writes: give it time to register.
      await sleep(1000);
      await write();
    }
    await eventually(() => out !== '' && Date.now() - lastData >= 1000, 6000);
  } finally {
    if (w.pid !== undefined && w.exitCode === null && w.signalCode === null) process.kill(w.pid, 'SIGKILL');
  }
  return `${out}${err ? `--stderr--\n${normAddresses(err)}` : ''}`;
}

test.serial('watch: --prefix, --rev, --prev-kv', async (t) => {
  const revs: number[] = [];
  for (const tg of targets) revs.push(revisionOf(await ctl(tg, ['put', '/watch/a', '0', '-w', 'json'])));

  const writes = (tg: Target, p: string) => async () => {
    await ctl(tg, ['put', `${p}a`, '1']);
    await ctl(tg, ['put', `${p}b`, '2']);
    await ctl(tg, ['put', `${p}a`, '3']);
    await ctl(tg, ['del', `${p}b`]);
    await ctl(tg, ['put', '/watchx', 'outside']);
  };
  const outs: Record<string, string[]> = { prefix: [], rev: [], prevkv: [] };
  for (const [i, tg] of targets.entries()) {
    outs.prefix?.push(await watchOutput(tg, ['--prefix', '/watch/'], writes(tg, '/watch/')));
    // --rev replays from the first put on: it sees 0, then the writes above.
    outs.rev?.push(await watchOutput(tg, ['--prefix', '/watch/', `--rev=${revs[i]}`]));
    outs.prevkv?.push(await watchOutput(tg, ['--prefix', '/watch/', '--prev-kv', `--rev=${revs[i]}`]));
  }
  for (const [name, [b, e]] of Object.entries(outs) as [string, [string, string]][]) {
    t.is(b, e, `watch ${name}`);
    t.not(b, '', `watch ${name} printed something`);
  }
  // A single key with --prev-kv and live writes.
  const live: string[] = [];
  for (const tg of targets) {
    live.push(
      await watchOutput(tg, ['/watch/live', '--prev-kv'], async () => {
        await ctl(tg, ['put', '/watch/live', 'x']);
        await ctl(tg, ['put', '/watch/live', 'y']);
        await ctl(tg, ['del', '/watch/live']);
      }),
    );
  }
  t.is(live[0], live[1], 'watch key --prev-kv live');
});

// ---- lease ----

test.serial('lease: grant, keep-alive --once, timetolive --keys, revoke', async (t) => {
  const ids: string[] = [];
  const [bg, eg] = await both(() => ['lease', 'grant', '60']);
  t.is(normLease(normText(bg)), normLease(normText(eg)));
  for (const r of [bg, eg]) {
    const id = /lease ([0-9a-f]+) granted/.exec(r.stdout)?.[1];
    if (!id) t.fail(`no lease id in ${JSON.stringify(r)}`);
    ids.push(id ?? '0');
  }
  const id = (tg: Target) => ids[targets.indexOf(tg)] as string;
  const [bp, ep] = await both((tg) => ['put', '/lease/a', 'x', `--lease=${id(tg)}`]);
  t.is(normText(bp), normText(ep));
  await both((tg) => ['put', '/lease/b', 'y', `--lease=${id(tg)}`]);

  const [bk, ek] = await both((tg) => ['lease', 'keep-alive', '--once', id(tg)]);
  t.is(normLease(normText(bk)), normLease(normText(ek)), 'keep-alive --once');

  const [bt, et] = await both((tg) => ['lease', 'timetolive', '--keys', id(tg)]);
  t.is(normLease(normText(bt)), normLease(normText(et)), 'timetolive --keys');
  t.regex(bt.stdout, /attached keys\(\[\/lease\/a \/lease\/b\]\)/);

  const [bl, el] = await both(() => ['lease', 'list']);
  t.is(
    normLease(normText(bl)).replace(/^[0-9a-f]+$/gm, '<LEASE>'),
    normLease(normText(el)).replace(/^[0-9a-f]+$/gm, '<LEASE>'),
    'lease list',
  );

  const [br, er] = await both((tg) => ['lease', 'revoke', id(tg)]);
  t.is(normLease(normText(br)), normLease(normText(er)), 'revoke');
  const [bgk, egk] = await both(() => ['get', '/lease/', '--prefix']);
  t.is(normText(bgk), normText(egk), 'keys gone with the lease');
  t.is(bgk.stdout, '');

  const [bt2, et2] = await both((tg) => ['lease', 'timetolive', id(tg)]);
  t.is(normLease(normText(bt2)), normLease(normText(et2)), 'timetolive of a revoked lease');
  const [br2, er2] = await both((tg) => ['lease', 'revoke', id(tg)]);
  t.is(normLease(normText(br2)), normLease(normText(er2)), 'revoke twice');
});

// ---- compaction ----

test.serial('compaction <rev>', async (t) => {
  const revs: number[] = [];
  for (const tg of targets) {
    revs.push(revisionOf(await ctl(tg, ['put', '/compact/a', '1', '-w', 'json'])));
    await ctl(tg, ['put', '/compact/a', '2']);
  }
  const rev = (tg: Target) => String(revs[targets.indexOf(tg)]);
  const [b, e] = await both((tg) => ['compaction', rev(tg)]);
  // "compacted revision N": N is the cluster's own revision.
  const normRev = (s: string) => s.replace(/compacted revision \d+/g, 'compacted revision <REV>');
  t.is(normRev(normText(b)), normRev(normText(e)));
  t.regex(b.stdout, /^compacted revision \d+\n$/);

  const [bo, eo] = await both((tg) => ['get', '/compact/a', `--rev=${Number(rev(tg)) - 1}`]);
  t.is(normText(bo), normText(eo), 'reading below the compaction');
  t.not(bo.code, 0);
  const [ba, ea] = await both((tg) => ['compaction', rev(tg)]);
  t.is(normRev(normText(ba)), normRev(normText(ea)), 'compacting again');
  const [bp, ep] = await both((tg) => ['compaction', '--physical', String(Number(rev(tg)) + 1)]);
  t.is(normRev(normText(bp)), normRev(normText(ep)), 'compaction --physical');
});

// ---- cluster ----

test.serial('member list', async (t) => {
  const [b, e] = await both(() => ['member', 'list']);
  t.is(b.code, 0, b.stderr);
  t.is(e.code, 0, e.stderr);
  const rows = (r: CtlResult) =>
    r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(', '))
      // Member ids are random; names differ by design (Berth n1.., this etcd harness m0..);
      // URLs differ by address and port.
      .map(([, status, , peer, client, learner, ...rest]) => [
        '<ID>',
        status,
        '<NAME>',
        normAddresses(peer ?? ''),
        normAddresses(client ?? ''),
        learner,
        ...rest,
      ])
      .map((r) => r.join(', '))
      .sort();
  t.deepEqual(rows(b), rows(e));
  t.is(rows(b).length, 3);

  const [bt, et] = await both(() => ['member', 'list', '-w', 'table']);
  const table = (r: CtlResult) =>
    parseTable(r.stdout).map((row, i) =>
      i === 0 ? row : row.map((c, j) => (j === 0 ? '<ID>' : j === 2 ? '<NAME>' : normAddresses(c))),
    );
  t.deepEqual(table(bt), table(et));
});

test.serial('endpoint status -w table', async (t) => {
  const [b, e] = await both(() => ['endpoint', 'status', '-w', 'table']);
  t.is(b.code, 0, b.stderr);
  t.is(e.code, 0, e.stderr);
  const table = (r: CtlResult) => {
    const [header, ...rows] = parseTable(r.stdout);
    const col = (name: string) => header?.indexOf(name) ?? -1;
    const keep = new Set([col('IS LEADER'), col('IS LEARNER'), col('ERRORS')]);
    const norm = rows
      .map((row) =>
        row.map((c, j) => {
          if (keep.has(j)) return c;
          // Endpoint, id, version (Berth reports its own), db size, raft term/index: per server.
          if (j === col('VERSION')) return /^\d+\.\d+\.\d+/.test(c) ? '<VERSION>' : c;
          if (j === col('DB SIZE')) return /^\d+(\.\d+)? ?[kMG]?B$/.test(c) ? '<SIZE>' : c;
          if (j === col('ENDPOINT')) return normAddresses(c);
          return /^[0-9a-f]+$/.test(c) ? '<N>' : c;
        }),
      )
      .map((row) => row.join(' | '))
      .sort();
    return { header, rows: norm };
  };
  t.deepEqual(table(b), table(e));
  t.is(table(b).rows.filter((r) => r.includes('| true |')).length, 1, 'one leader');
  t.is(table(b).rows.length, 3);
});

test.serial("etcdctl reads Berth's own objects under /registry/, as the API wrote them", async (t) => {
  const api = createApiClient({ endpoints: berth?.endpoints() ?? [] });
  t.teardown(() => api.close());
  // A ConfigMap: no controller writes to it after us, so the stored JSON is exactly ours.
  const written = await api.apply({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'settings', labels: { app: 'web' } },
    data: { mode: 'fast', 'index.html': '<h1>hello</h1>' },
  });
  const r = await ctl(targets[0] as Target, ['get', '--prefix', '/registry/configmaps/', '-w', 'json']);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { kvs: { key: string; value: string; mod_revision: number }[] };
  const kv = out.kvs.find(
    (k) => Buffer.from(k.key, 'base64').toString() === '/registry/configmaps/default/settings',
  );
  t.truthy(kv, 'the object is at /registry/<resource>/<namespace>/<name>');
  const stored = JSON.parse(Buffer.from(kv?.value ?? '', 'base64').toString()) as { metadata: object };
  t.is(
    String(kv?.mod_revision),
    written.object.metadata.resourceVersion ?? '',
    'resourceVersion is the mod revision',
  );
  const { resourceVersion: _, ...meta } = written.object.metadata;
  t.deepEqual(stored, { ...written.object, metadata: meta });
});
