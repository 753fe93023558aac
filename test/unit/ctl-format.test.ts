// berthctl's pure parts: flag parsing, member resolution, the cluster status summary, tables,
// key/value and event formatting, and error lines. No cluster, no network.
import test from 'ava';
import {
  type MemberProbe,
  statusRows,
  statusSummary,
  summarizeStatus,
} from '../../cmd/ctl/cluster-status.js';
import { keyRange } from '../../cmd/ctl/commands/kv.js';
import { joinInstructions } from '../../cmd/ctl/commands/member.js';
import { CtlError, errorMessage, formatDuration, healthOfError } from '../../cmd/ctl/errors.js';
import { eventJson, eventLine, rangeJson, rangeTable } from '../../cmd/ctl/kv-format.js';
import { formatMemberId, memberRows, resolveMember } from '../../cmd/ctl/members.js';
import { parseDuration, parseEndpointList, parseNonNegativeInt } from '../../cmd/ctl/options.js';
import { renderTable } from '../../cmd/ctl/output.js';
import type { MemberInfo, StatusResponse } from '../../pkg/client/cluster.js';
import { GrpcCode, noLeader, StoreError, StoreErrorCode } from '../../pkg/store/errors.js';
import type { KeyValue, RangeResponse } from '../../pkg/store/types.js';

const enc = (s: string) => new TextEncoder().encode(s);

function member(name: string, id: string, n: number, isLearner = false): MemberInfo {
  return {
    id,
    name,
    peerUrls: [`127.0.0.${n}:2380`],
    clientUrls: name === '' ? [] : [`127.0.0.${n}:2379`],
    isLearner,
  };
}

const N1 = member('n1', '64188700022663', 1); // 3a61e5cfc987
const N2 = member('n2', '55237612063149', 2);
const N3 = member('n3', '240521232768092', 3);

function status(self: MemberInfo, leader: string, term: number, applied = 10): StatusResponse {
  return {
    header: { clusterId: '7', memberId: self.id, revision: 5, raftTerm: term },
    version: '3.4.0',
    dbSize: 0,
    leader,
    raftIndex: applied,
    raftTerm: term,
    raftAppliedIndex: applied,
    errors: [],
    isLearner: self.isLearner,
  };
}

function kv(key: string, value: string | Uint8Array, extra: Partial<KeyValue> = {}): KeyValue {
  return {
    key: enc(key),
    value: typeof value === 'string' ? enc(value) : value,
    createRevision: 2,
    modRevision: 3,
    version: 1,
    lease: 0,
    ...extra,
  };
}

// ---- flags ----

test('durations are Go-style, a bare number is seconds', (t) => {
  t.is(parseDuration('5s'), 5000);
  t.is(parseDuration('500ms'), 500);
  t.is(parseDuration('1m30s'), 90_000);
  t.is(parseDuration('2'), 2000);
  t.is(parseDuration('1.5s'), 1500);
  for (const bad of ['', 'abc', '5 s', '0s', '-1s', '5x']) t.throws(() => parseDuration(bad), undefined, bad);
  t.is(formatDuration(5000), '5s');
  t.is(formatDuration(500), '500ms');
  t.is(formatDuration(90_000), '1m30s');
  t.is(formatDuration(1500), '1.5s');
});

test('endpoint lists take host:port, http:// and https://host:port, and name a bad one', (t) => {
  t.deepEqual(parseEndpointList('127.0.0.1:2379, http://10.0.0.2:2379/,'), [
    '127.0.0.1:2379',
    '10.0.0.2:2379',
  ]);
  t.throws(() => parseEndpointList('  ,'), { message: /at least one/ });
  t.throws(() => parseEndpointList('localhost'), { message: /localhost is not host:port/ });
  t.deepEqual(parseEndpointList('https://a:1'), ['a:1']);
  t.is(parseNonNegativeInt('42'), 42);
  for (const bad of ['-1', '1.5', 'x', '']) t.throws(() => parseNonNegativeInt(bad), undefined, bad);
});

// ---- members ----

test('member ids show as at least 12 hex digits; names and hex ids both resolve', (t) => {
  t.is(formatMemberId('1'), '000000000001');
  t.is(formatMemberId('18446744073709551615'), 'ffffffffffffffff');
  t.is(resolveMember([N1, N2, N3], 'n2'), N2);
  t.is(resolveMember([N1, N2, N3], formatMemberId(N3.id)), N3);
  t.is(resolveMember([N1, N2, N3], `0x${formatMemberId(N3.id).toUpperCase()}`), N3);
  const err = t.throws(() => resolveMember([N1, N2], 'n9'), { instanceOf: CtlError });
  t.is(
    err?.message,
    `member "n9" not found; members: n1 (${formatMemberId(N1.id)}), n2 (${formatMemberId(N2.id)})`,
  );
});

test('member list rows: sorted by name (n2 before n10), unstarted members last', (t) => {
  const n10 = member('n10', '99', 10);
  const fresh = member('', '5', 4, true);
  const rows = memberRows([fresh, n10, N2, N1]);
  t.deepEqual(
    rows.map((r) => r[0]),
    ['n1', 'n2', 'n10', '(unstarted)'],
  );
  t.deepEqual(rows[3], ['(unstarted)', '000000000005', '127.0.0.4:2380', '', 'true']);
});

test('member add prints the berth-node command that joins, with --listen-peer only off 2380', (t) => {
  const text = joinInstructions('n4', '10.0.0.4:2380', [N1, N2, member('', '5', 5, true)]);
  t.regex(text, /berth-node --name n4 --address 10\.0\.0\.4 --join 127\.0\.0\.1:2379,127\.0\.0\.2:2379\n/);
  t.regex(
    joinInstructions('n4', 'http://10.0.0.4:7000', [N1]),
    /--address 10\.0\.0\.4 --listen-peer 10\.0\.0\.4:7000/,
  );
});

// ---- cluster status ----

test('cluster status: roles, health and the summary line', (t) => {
  const probes: MemberProbe[] = [
    { member: N3, status: status(N3, N2.id, 3, 12) },
    { member: N1, status: status(N1, N2.id, 3, 12) },
    { member: N2, status: status(N2, N2.id, 3, 12) },
  ];
  const s = summarizeStatus('7', probes);
  t.deepEqual(s.leader, { name: 'n2', id: formatMemberId(N2.id) });
  t.is(s.term, 3);
  t.is(statusSummary(s), 'leader: n2, term 3, 3/3 members healthy');
  t.deepEqual(statusRows(s), [
    ['n1', formatMemberId(N1.id), '127.0.0.1:2379', 'follower', 3, 12, 'ok'],
    ['n2', formatMemberId(N2.id), '127.0.0.2:2379', 'leader', 3, 12, 'ok'],
    ['n3', formatMemberId(N3.id), '127.0.0.3:2379', 'follower', 3, 12, 'ok'],
  ]);
});

test('cluster status: the newest term names the leader; unreachable, leaderless and learners show', (t) => {
  const learner = member('n4', '4', 4, true);
  const s = summarizeStatus('7', [
    // An isolated old leader still thinks it leads term 2.
    { member: N1, status: status(N1, N1.id, 2) },
    { member: N2, status: status(N2, N3.id, 4) },
    { member: N3, error: 'unreachable' },
    { member: learner, status: status(learner, '0', 4) },
  ]);
  t.is(s.leader?.name, 'n3');
  t.is(s.term, 4);
  const byName = new Map(s.members.map((r) => [r.name, r]));
  t.is(byName.get('n1')?.role, 'leader');
  t.is(byName.get('n3')?.role, 'unknown');
  t.is(byName.get('n3')?.health, 'unreachable');
  t.is(byName.get('n3')?.term, null);
  t.is(byName.get('n4')?.role, 'learner');
  t.is(byName.get('n4')?.health, 'no leader');
  t.is(statusSummary(s), 'leader: n3, term 4, 2/4 members healthy');

  const none = summarizeStatus('7', [{ member: N1, error: 'unreachable' }]);
  t.is(none.leader, null);
  t.is(statusSummary(none), 'leader: none, 0/1 members healthy');
});

// ---- tables ----

test('tables: aligned columns, no borders, no trailing spaces, one line per row', (t) => {
  const out = renderTable(
    ['NAME', 'VALUE', 'N'],
    [
      ['a', 'two\nlines', 1],
      ['long-name', '', null],
    ],
  );
  t.is(
    out,
    ['NAME        VALUE        N', 'a           two\\nlines   1', 'long-name   -            -'].join('\n'),
  );
});

// ---- keys, values, events ----

test('kv get: table and JSON, text values as text, binary ones as base64, lease column on demand', (t) => {
  const r: RangeResponse = {
    header: { clusterId: '1', memberId: '1', revision: 9, raftTerm: 2 },
    kvs: [kv('/a', 'hello'), kv('/b', new Uint8Array([0xff, 0x00]), { lease: 255 })],
    more: true,
    count: 3,
  };
  const table = rangeTable(r, {});
  t.deepEqual(table.head, ['KEY', 'VALUE', 'VERSION', 'MOD REVISION', 'LEASE']);
  t.deepEqual(table.rows, [
    ['/a', 'hello', '1', '3', '-'],
    ['/b', '<base64:/wA=>', '1', '3', 'ff'],
  ]);
  t.deepEqual(rangeTable(r, { keysOnly: true }).head, ['KEY', 'VERSION', 'MOD REVISION', 'LEASE']);
  const json = rangeJson(r, {});
  t.is(json.revision, 9);
  t.is(json.more, true);
  t.deepEqual(json.kvs[0], {
    key: '/a',
    value: 'hello',
    createRevision: 2,
    modRevision: 3,
    version: 1,
    lease: 0,
  });
  t.is((json.kvs[1] as { valueBase64?: string }).valueBase64, '/wA=');
  t.false('value' in (rangeJson(r, { keysOnly: true }).kvs[0] as object));
});

test('watch events: PUT/DELETE lines (with prev values) and JSON lines', (t) => {
  t.is(eventLine({ type: 'put', kv: kv('/k', 'v2'), prevKv: kv('/k', 'v1') }), 'PUT /k v2 (prev: v1)');
  t.is(eventLine({ type: 'delete', kv: kv('/k', '') }), 'DELETE /k');
  t.deepEqual(JSON.parse(eventJson({ type: 'put', kv: kv('/k', 'v') })), {
    type: 'PUT',
    key: '/k',
    value: 'v',
    modRevision: 3,
  });
  const del = JSON.parse(eventJson({ type: 'delete', kv: kv('/k', ''), prevKv: kv('/k', 'old') }));
  t.is(del.type, 'DELETE');
  t.false('value' in del);
  t.is(del.prevKv.value, 'old');
});

test('key ranges: a key, a prefix, and "" --prefix for every key', (t) => {
  t.deepEqual(keyRange('/a', false), { key: enc('/a') });
  t.deepEqual(keyRange('/a/', true), { key: enc('/a/'), rangeEnd: enc('/a0') });
  t.deepEqual(keyRange('', true), { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) });
  t.throws(() => keyRange('', false), { message: /must not be empty/ });
});

// ---- errors ----

test('error lines: store messages as is, a hint when unreachable, no stack', (t) => {
  const eps = { endpoints: ['127.0.0.1:2379', '127.0.0.2:2379'], timeoutMs: 5000 };
  const unreachable = new StoreError(
    StoreErrorCode.Timeout,
    GrpcCode.Unavailable,
    'berth client: no connection to 127.0.0.2:2379: connection failed',
  );
  t.is(
    errorMessage(unreachable, eps),
    'no connection to 127.0.0.2:2379: connection failed; is the cluster up? tried: 127.0.0.1:2379, 127.0.0.2:2379',
  );
  t.regex(errorMessage(noLeader(), eps), /^etcdserver: no leader; is the cluster up\?/);
  const notFound = new StoreError(
    StoreErrorCode.InvalidArgument,
    GrpcCode.NotFound,
    'etcdserver: member not found',
  );
  t.is(errorMessage(notFound, eps), 'etcdserver: member not found');
  const deadline = new StoreError(
    StoreErrorCode.Timeout,
    GrpcCode.DeadlineExceeded,
    'Deadline exceeded after 5.001s',
  );
  t.is(
    errorMessage(deadline, eps),
    'no answer within 5s (deadline exceeded); raise --timeout to wait longer',
  );
  t.is(errorMessage(new CtlError('key "x" not found'), eps), 'key "x" not found');
  t.is(errorMessage(new TypeError('boom'), eps), 'internal error: boom');
  t.is(healthOfError(unreachable), 'unreachable');
  t.is(healthOfError(deadline), 'timeout');
  t.is(healthOfError(notFound), 'etcdserver: member not found');
});
