// persistentVolumeClaim volumes on the agent: a claim resolves to its bound volume's path on
// this node, or says why not (the pod then waits with FailedMount); local-path directories are
// made world-writable; subPath cannot escape; deleted local-path volumes are cleaned up only
// under the node's local-path root. No Docker here.
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import pino from 'pino';
import { ApiError, ApiErrorCode } from '../../pkg/api/errors.js';
import type { ApiObject } from '../../pkg/api/types.js';
import type { Pod, Volume } from '../../pkg/agent/container-spec.js';
import type { ConfigLookups } from '../../pkg/agent/env.js';
import { cleanupLocalPathVolumes, cleanupTarget, needsCleanup } from '../../pkg/agent/local-path-cleanup.js';
import {
  type ClaimLookups,
  LOCAL_PATH_FINALIZER,
  type LocalNode,
  localPathRoot,
  mountFailure,
  resolveClaim,
} from '../../pkg/agent/persistent-volumes.js';
import { mountsFor, prepareVolumes } from '../../pkg/agent/volumes.js';

const logger = pino({ level: 'silent' });

async function tmp(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fs.mkdtemp(join(tmpdir(), 'berth-pvc-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

const noConfig: ConfigLookups = { configMap: async () => undefined, secret: async () => undefined };

const nodeOf = (dataDir: string, name = 'n1'): LocalNode => ({
  name,
  labels: { 'kubernetes.io/hostname': name },
  localPathRoot: localPathRoot(dataDir),
});

const claim = (name: string, volumeName?: string, phase = volumeName ? 'Bound' : 'Pending'): ApiObject => ({
  apiVersion: 'v1',
  kind: 'PersistentVolumeClaim',
  metadata: { name, namespace: 'ns', uid: `uid-${name}` },
  spec: { storageClassName: 'local-path', ...(volumeName ? { volumeName } : {}) },
  status: { phase },
});

const affinity = (node: string) => ({
  required: {
    nodeSelectorTerms: [
      { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] },
    ],
  },
});

function pv(
  name: string,
  o: { claim?: string; node?: string; local?: string; hostPath?: string; localPath?: boolean; meta?: object },
): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name,
      ...(o.localPath ? { annotations: { 'pv.kubernetes.io/provisioned-by': 'berth.io/local-path' } } : {}),
      ...o.meta,
    },
    spec: {
      capacity: { storage: '1Gi' },
      ...(o.claim ? { claimRef: { name: o.claim, namespace: 'ns', uid: `uid-${o.claim}` } } : {}),
      ...(o.local ? { local: { path: o.local } } : {}),
      ...(o.hostPath ? { hostPath: { path: o.hostPath } } : {}),
      ...(o.node ? { nodeAffinity: affinity(o.node) } : {}),
    },
    status: { phase: 'Bound' },
  };
}

const lookups = (claims: ApiObject[], pvs: ApiObject[]): ClaimLookups => ({
  claim: async (ns, name) => claims.find((c) => c.metadata.namespace === ns && c.metadata.name === name),
  volume: async (name) => pvs.find((p) => p.metadata.name === name),
});

test('a bound local-path claim: the directory is made under the root, mode 0777', async (t) => {
  const data = await tmp(t);
  const node = nodeOf(data);
  const dir = join(node.localPathRoot, 'pvc-uid-data_ns_data');
  const l = lookups(
    [claim('data', 'pv1')],
    [pv('pv1', { claim: 'data', node: 'n1', hostPath: dir, localPath: true })],
  );
  const r = await resolveClaim('ns', 'data', l, node);
  t.is(r.path, dir);
  t.is((await fs.stat(dir)).mode & 0o777, 0o777);
});

test('a local-path volume outside the root is refused, and nothing is made', async (t) => {
  const data = await tmp(t);
  const outside = join(data, 'elsewhere', 'x');
  const l = lookups(
    [claim('data', 'pv1')],
    [pv('pv1', { claim: 'data', node: 'n1', hostPath: outside, localPath: true })],
  );
  const r = await resolveClaim('ns', 'data', l, nodeOf(data));
  t.regex(r.error ?? '', /is not under this node's local-path root/);
  await t.throwsAsync(fs.access(outside));
});

test('a static local PV must exist; a hostPath PV is used as it is', async (t) => {
  const data = await tmp(t);
  const l = lookups(
    [claim('a', 'pv-a'), claim('b', 'pv-b')],
    [
      pv('pv-a', { claim: 'a', node: 'n1', local: join(data, 'disk') }),
      pv('pv-b', { claim: 'b', hostPath: data }),
    ],
  );
  t.is(
    (await resolveClaim('ns', 'a', l, nodeOf(data))).error,
    `persistentvolume "pv-a": path "${join(data, 'disk')}" does not exist`,
  );
  await fs.mkdir(join(data, 'disk'));
  t.is((await resolveClaim('ns', 'a', l, nodeOf(data))).path, join(data, 'disk'));
  t.is((await resolveClaim('ns', 'b', l, nodeOf(data))).path, data);
});

test('why a claim does not mount: missing, not bound, volume missing, other claim, other node', async (t) => {
  const data = await tmp(t);
  const node = nodeOf(data);
  const l = lookups(
    [
      claim('pending'),
      claim('nopv', 'ghost'),
      claim('stolen', 'pv-other'),
      claim('far', 'pv-far'),
      claim('lost', 'pv-far', 'Lost'),
    ],
    [
      pv('pv-other', { claim: 'someone-else', hostPath: data }),
      pv('pv-far', { claim: 'far', node: 'n2', hostPath: data }),
    ],
  );
  const err = async (name: string) => (await resolveClaim('ns', name, l, node)).error;
  t.is(await err('missing'), 'persistentvolumeclaim "missing" not found');
  t.is(await err('pending'), 'persistentvolumeclaim "pending" is not bound');
  t.is(await err('lost'), 'persistentvolumeclaim "lost" is not bound');
  t.is(await err('nopv'), 'persistentvolume "ghost" not found');
  t.is(await err('stolen'), 'persistentvolume "pv-other" is not bound to persistentvolumeclaim "stolen"');
  t.is(await err('far'), 'persistentvolume "pv-far" has node affinity that does not match node "n1"');
});

test('lookups that fail (kind not served yet) leave the volume unmounted, not a config error', async (t) => {
  const data = await tmp(t);
  const failing: ClaimLookups = {
    claim: async () => {
      throw new Error('the server doesn\'t have a resource type "persistentvolumeclaims"');
    },
    volume: async () => undefined,
  };
  const pod: Pod = {
    metadata: { name: 'p', namespace: 'ns', uid: 'u1' },
    spec: {
      containers: [{ name: 'c', image: 'i' }],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'x' } }],
    },
  };
  const r = await prepareVolumes(pod, data, noConfig, { lookups: failing, node: nodeOf(data) });
  t.deepEqual(r.errors, []);
  t.is(r.unmounted.length, 1);
  t.regex(r.unmounted[0]?.error ?? '', /^persistentvolumeclaim "x": the server doesn't have/);
});

test('prepareVolumes: the claim volume mounts once bound; the FailedMount message names it', async (t) => {
  const data = await tmp(t);
  const node = nodeOf(data);
  const claims = [claim('x')];
  const pvs: ApiObject[] = [];
  const volumes: Volume[] = [
    { name: 'data', persistentVolumeClaim: { claimName: 'x' } },
    { name: 'scratch', emptyDir: {} },
  ];
  const pod: Pod = {
    metadata: { name: 'p', namespace: 'ns', uid: 'u1' },
    spec: { containers: [{ name: 'c', image: 'i' }], volumes },
  };
  const storage = { lookups: lookups(claims, pvs), node };
  let r = await prepareVolumes(pod, data, noConfig, storage);
  t.deepEqual(r.errors, []);
  t.deepEqual(r.unmounted, [{ name: 'data', error: 'persistentvolumeclaim "x" is not bound' }]);
  t.is(
    mountFailure(r.unmounted),
    'Unable to attach or mount volumes: unmounted volumes=[data]: persistentvolumeclaim "x" is not bound',
  );
  const dir = join(node.localPathRoot, 'pvc-uid-x_ns_x');
  claims[0] = claim('x', 'pv1');
  pvs.push(pv('pv1', { claim: 'x', node: 'n1', local: dir, localPath: true }));
  r = await prepareVolumes(pod, data, noConfig, storage);
  t.deepEqual(r.unmounted, []);
  t.is(r.mounts.get('data'), dir);
});

test('mounts: subPath made inside the claim volume, ".." refused, readOnly from the volume or the mount', async (t) => {
  const data = await tmp(t);
  const dir = join(data, 'vol');
  await fs.mkdir(dir);
  const paths = new Map([['data', dir]]);
  const ro: Volume[] = [{ name: 'data', persistentVolumeClaim: { claimName: 'x', readOnly: true } }];
  const rw: Volume[] = [{ name: 'data', persistentVolumeClaim: { claimName: 'x' } }];
  const c = (m: object) => ({
    name: 'c',
    image: 'i',
    volumeMounts: [{ name: 'data', mountPath: '/data', ...m }],
  });
  const sub = await mountsFor(c({ subPath: 'db/main' }), paths, rw);
  t.deepEqual(sub.mounts, [
    { hostPath: join(await fs.realpath(dir), 'db/main'), containerPath: '/data', readOnly: false },
  ]);
  t.true((await fs.stat(join(dir, 'db/main'))).isDirectory());
  const esc = await mountsFor(c({ subPath: '../etc' }), paths, rw);
  t.deepEqual(esc.mounts, []);
  t.regex(esc.errors[0] ?? '', /must be a relative path without '\.\.'/);
  await fs.symlink('/etc', join(dir, 'link'));
  t.regex((await mountsFor(c({ subPath: 'link/x' }), paths, rw)).errors[0] ?? '', /leaves its volume/);
  t.true((await mountsFor(c({}), paths, ro)).mounts[0]?.readOnly);
  t.true((await mountsFor(c({ readOnly: true }), paths, rw)).mounts[0]?.readOnly);
  t.false((await mountsFor(c({}), paths, rw)).mounts[0]?.readOnly);
});

function fakeApi(items: ApiObject[], conflict = false) {
  const updates: ApiObject[] = [];
  return {
    updates,
    api: {
      list: async () => ({ items }),
      update: async (o: ApiObject) => {
        if (conflict) throw new ApiError(ApiErrorCode.Conflict, 'changed');
        updates.push(o);
        return o;
      },
    },
  };
}

const deleting = (
  p: ApiObject,
  finalizers = [LOCAL_PATH_FINALIZER, 'kubernetes.io/pv-protection'],
): ApiObject => ({
  ...p,
  metadata: { ...p.metadata, deletionTimestamp: '2026-11-26T00:00:00Z', finalizers, resourceVersion: '7' },
});

test('cleanup: a deleted local-path volume of this node loses its directory, then the finalizer', async (t) => {
  const data = await tmp(t);
  const node = nodeOf(data);
  const dir = join(node.localPathRoot, 'pvc-1_ns_x');
  await fs.mkdir(join(dir, 'sub'), { recursive: true });
  await fs.writeFile(join(dir, 'sub', 'f'), 'x');
  const other = deleting(
    pv('pv-n2', { node: 'n2', hostPath: join(node.localPathRoot, 'pvc-2'), localPath: true }),
  );
  const alive = pv('pv-alive', { node: 'n1', hostPath: join(node.localPathRoot, 'pvc-3'), localPath: true });
  const mine = deleting(pv('pv-1', { node: 'n1', hostPath: dir, localPath: true }));
  const { api, updates } = fakeApi([other, alive, mine]);
  t.deepEqual(await cleanupLocalPathVolumes({ api, node, logger }), ['pv-1']);
  await t.throwsAsync(fs.access(dir));
  t.is(updates.length, 1);
  t.deepEqual(updates[0]?.metadata.finalizers, ['kubernetes.io/pv-protection']);
  t.is(updates[0]?.metadata.resourceVersion, '7', 'guarded by the listed version');
});

test('cleanup: never outside the local-path root, nor the root itself, nor a PV that names no node', async (t) => {
  const data = await tmp(t);
  const node = nodeOf(data);
  const keep = join(data, 'keep');
  await fs.mkdir(keep);
  const outside = deleting(pv('pv-out', { node: 'n1', hostPath: keep, localPath: true }));
  const root = deleting(pv('pv-root', { node: 'n1', hostPath: node.localPathRoot, localPath: true }));
  const dotdot = deleting(
    pv('pv-dd', { node: 'n1', hostPath: `${node.localPathRoot}/x/../../keep`, localPath: true }),
  );
  t.is(cleanupTarget(outside, node.localPathRoot), undefined);
  t.is(cleanupTarget(root, node.localPathRoot), undefined);
  t.is(cleanupTarget(dotdot, node.localPathRoot), undefined);
  t.false(
    needsCleanup(deleting(pv('pv-any', { hostPath: join(node.localPathRoot, 'p'), localPath: true })), node),
  );
  t.false(
    needsCleanup(deleting(pv('pv-static', { node: 'n1', hostPath: join(node.localPathRoot, 'p') })), node),
  );
  const { api, updates } = fakeApi([outside, root, dotdot]);
  t.deepEqual(await cleanupLocalPathVolumes({ api, node, logger }), []);
  t.is(updates.length, 0);
  t.true((await fs.stat(keep)).isDirectory());
});

test('cleanup: a conflict leaves the finalizer for the next pass', async (t) => {
  const data = await tmp(t);
  const node = nodeOf(data);
  const mine = deleting(
    pv('pv-1', { node: 'n1', hostPath: join(node.localPathRoot, 'pvc-1'), localPath: true }),
  );
  const { api } = fakeApi([mine], true);
  t.deepEqual(await cleanupLocalPathVolumes({ api, node, logger }), []);
});
