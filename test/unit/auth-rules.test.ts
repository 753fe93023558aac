// The client port's authorization table: complete against the protos (a new RPC cannot be
// forgotten), and the decisions for each kind of caller.
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import test from 'ava';
import type { Caller } from '../../pkg/auth/identity.js';
import {
  authorize,
  CLIENT_PORT_SERVICES,
  DecisionStatus,
  METHOD_RULES,
  NO_CLIENT_CERTIFICATE,
  needsRequest,
  OTHER_PORT_SERVICES,
  txnWrites,
  UNRECOGNISED_SUBJECT,
} from '../../pkg/auth/rules.js';
import { protoDir } from '../../pkg/rpc/proto-path.js';

/** Every .proto under proto/, relative to it. */
function protoFiles(root: string, dir = root): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? protoFiles(root, join(dir, e.name))
      : e.name.endsWith('.proto')
        ? [relative(root, join(dir, e.name))]
        : [],
  );
}

/** Every service any proto declares, with its methods' paths. */
function servedMethods(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const file of protoFiles(protoDir())) {
    const def = protoLoader.loadSync(file, { keepCase: true, includeDirs: [protoDir()] });
    for (const [name, entry] of Object.entries(def)) {
      if ('format' in entry) continue; // a message or an enum
      out.set(
        name,
        Object.values(entry as protoLoader.ServiceDefinition).map((m) => m.path),
      );
    }
  }
  return out;
}

test('every method of every service on the client port has a rule, and every rule a method', (t) => {
  const declared = servedMethods();
  t.deepEqual([...declared.keys()].sort(), [...CLIENT_PORT_SERVICES, ...OTHER_PORT_SERVICES].sort());
  const paths = CLIENT_PORT_SERVICES.flatMap((name) => declared.get(name) ?? []);
  for (const path of paths) t.truthy(METHOD_RULES[path], `${path} is missing from pkg/auth/rules.ts`);
  for (const path of Object.keys(METHOD_RULES)) t.true(paths.includes(path), `${path} is served by no proto`);
});

const admin: Caller = { kind: 'admin', name: 'root' };
const alice: Caller = { kind: 'readonly', name: 'alice' };
const n1: Caller = { kind: 'node', nodeName: 'n1' };
const insecure: Caller = { kind: 'insecure' };
const unknown: Caller = { kind: 'unknown' };
const allPaths = Object.keys(METHOD_RULES);

test('insecure and admin callers may call everything', (t) => {
  for (const path of allPaths) {
    t.true(authorize(insecure, path).allowed, path);
    t.true(authorize(admin, path).allowed, path);
  }
  t.true(authorize(insecure, '/x.Y/Z').allowed);
});

test('an unrecognised subject, or no certificate, is unauthenticated for every method', (t) => {
  for (const path of allPaths) {
    t.like(authorize(unknown, path), {
      allowed: false,
      status: DecisionStatus.Unauthenticated,
      message: UNRECOGNISED_SUBJECT,
    });
    t.like(authorize(undefined, path), { allowed: false, message: NO_CLIENT_CERTIFICATE });
  }
});

test('a method missing from the table is refused with a message naming it', (t) => {
  const d = authorize(admin, '/berth.api.v1.Objects/Patch');
  t.false(d.allowed);
  t.regex(d.allowed ? '' : d.message, /Objects\/Patch has no entry in Berth's authorization table/);
});

const READS = [
  '/etcdserverpb.KV/Range',
  '/etcdserverpb.Watch/Watch',
  '/etcdserverpb.Lease/LeaseTimeToLive',
  '/etcdserverpb.Lease/LeaseLeases',
  '/etcdserverpb.Cluster/MemberList',
  '/etcdserverpb.Maintenance/Status',
  '/berth.api.v1.Objects/Get',
  '/berth.api.v1.Objects/List',
  '/berth.api.v1.Objects/Watch',
  '/berth.api.v1.Objects/Version',
  '/berth.api.v1.Pods/Logs',
  '/berth.api.v1.Pods/Top',
];
/** Callable by every identity: it acts on the caller's own certificate. */
const SELF = ['/berth.security.v1.Certificates/Renew'];

test('a read-only user reads and nothing else', (t) => {
  for (const path of allPaths) {
    const d = authorize(alice, path);
    t.is(d.allowed, READS.includes(path) || SELF.includes(path), path);
  }
  t.deepEqual(authorize(alice, '/berth.api.v1.Objects/Create'), {
    allowed: false,
    status: DecisionStatus.PermissionDenied,
    message: 'user "alice" is read-only: Objects/Create is not allowed',
  });
});

test('special methods are reads when the request only reads', (t) => {
  const txnRead = { ok: true, size: 1, value: { success: [{ request_range: { key: 'a' } }], failure: [] } };
  const txnPut = { ok: true, size: 1, value: { success: [], failure: [{ request_put: { key: 'a' } }] } };
  const nested = { success: [{ request_txn: { success: [{ request_delete_range: { key: 'a' } }] } }] };
  t.true(needsRequest(alice, '/etcdserverpb.KV/Txn'));
  t.false(needsRequest(admin, '/etcdserverpb.KV/Txn'));
  t.true(authorize(alice, '/etcdserverpb.KV/Txn', txnRead).allowed);
  t.false(authorize(alice, '/etcdserverpb.KV/Txn', txnPut).allowed);
  t.false(authorize(alice, '/etcdserverpb.KV/Txn').allowed, 'without the request it counts as a write');
  t.true(txnWrites(nested));
  t.false(txnWrites({ success: [], failure: [] }));
  t.true(txnWrites(undefined), 'a malformed request counts as a write');
  t.false(authorize(alice, '/etcdserverpb.KV/Txn', { ok: false, size: 1, error: 'bad' }).allowed);
  t.true(
    authorize(alice, '/etcdserverpb.Maintenance/Alarm', { ok: true, size: 1, value: { action: 'GET' } })
      .allowed,
  );
  t.false(
    authorize(alice, '/etcdserverpb.Maintenance/Alarm', {
      ok: true,
      size: 1,
      value: { action: 'DEACTIVATE' },
    }).allowed,
  );
});

test('a node reads, uses the Pods service, adds learners, and writes objects through admission', (t) => {
  for (const path of READS) t.like(authorize(n1, path), { allowed: true, admission: false }, path);
  t.true(authorize(n1, '/berth.api.v1.Pods/Exec').allowed);
  t.true(authorize(n1, '/berth.security.v1.Certificates/Renew').allowed);
  t.false(authorize(n1, '/berth.security.v1.Certificates/Issue').allowed);
  t.false(authorize(alice, '/berth.security.v1.Certificates/Issue').allowed);
  for (const m of ['Create', 'Update', 'UpdateStatus', 'Apply', 'Delete']) {
    t.deepEqual(authorize(n1, `/berth.api.v1.Objects/${m}`), { allowed: true, admission: true });
  }
  const add = '/etcdserverpb.Cluster/MemberAdd';
  t.true(needsRequest(n1, add));
  t.true(
    authorize(n1, add, { ok: true, size: 1, value: { peerURLs: ['http://h:2380'], isLearner: true } })
      .allowed,
  );
  const voter = authorize(n1, add, {
    ok: true,
    size: 1,
    value: { peerURLs: ['http://h:2380'], isLearner: false },
  });
  t.false(voter.allowed);
  t.regex(
    voter.allowed ? '' : voter.message,
    /node "n1" may not call Cluster\/MemberAdd: a node may add only a learner/,
  );
  t.false(authorize(alice, add).allowed);
});

test('a node may not write the raw store, leases, membership or maintenance', (t) => {
  for (const path of [
    '/etcdserverpb.KV/Put',
    '/etcdserverpb.KV/DeleteRange',
    '/etcdserverpb.KV/Compact',
    '/etcdserverpb.Lease/LeaseGrant',
    '/etcdserverpb.Lease/LeaseRevoke',
    '/etcdserverpb.Lease/LeaseKeepAlive',
    '/etcdserverpb.Cluster/MemberRemove',
    '/etcdserverpb.Cluster/MemberUpdate',
    '/etcdserverpb.Cluster/MemberPromote',
    '/etcdserverpb.Maintenance/MoveLeader',
  ]) {
    t.deepEqual(
      authorize(n1, path),
      {
        allowed: false,
        status: DecisionStatus.PermissionDenied,
        message: `node "n1" may not call ${path.slice(path.indexOf('.') + 1)}`,
      },
      path,
    );
  }
  const put = { ok: true, size: 1, value: { success: [{ request_put: { key: 'a' } }] } };
  t.false(authorize(n1, '/etcdserverpb.KV/Txn', put).allowed);
  t.true(authorize(n1, '/etcdserverpb.KV/Txn', { ok: true, size: 1, value: { success: [] } }).allowed);
});
