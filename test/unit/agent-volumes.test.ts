import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { Pod, Volume } from '../../pkg/agent/container-spec.js';
import type { ConfigLookups } from '../../pkg/agent/env.js';
import {
  memoryRoot,
  mountsFor,
  podDir,
  prepareVolumes,
  removePodDir,
  updateVolumes,
  volumeDir,
} from '../../pkg/agent/volumes.js';

const UID = 'pod-uid-1';

async function tmp(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fs.mkdtemp(join(tmpdir(), 'berth-volumes-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

function store(
  cms: Record<string, Record<string, string>>,
  secrets: Record<string, Record<string, string>> = {},
) {
  const l: ConfigLookups = {
    configMap: async (ns, name) => cms[`${ns}/${name}`],
    secret: async (ns, name) => secrets[`${ns}/${name}`],
  };
  return l;
}

const pod = (volumes: Volume[]): Pod => ({
  metadata: { name: 'p', namespace: 'ns', uid: UID },
  spec: { containers: [{ name: 'c', image: 'i' }], volumes },
});

const mode = async (p: string) => (await fs.stat(p)).mode & 0o777;

test('emptyDir and configMap with all keys, atomic layout and default mode', async (t) => {
  const data = await tmp(t);
  const p = pod([
    { name: 'scratch', emptyDir: {} },
    { name: 'cfg', configMap: { name: 'app' } },
  ]);
  const r = await prepareVolumes(p, data, store({ 'ns/app': { 'a.conf': 'A', b: 'B' } }));
  t.deepEqual(r.errors, []);
  const cfg = volumeDir(data, UID, 'cfg');
  t.is(r.mounts.get('cfg'), cfg);
  t.is(r.mounts.get('scratch'), join(data, 'pods', UID, 'volumes', 'scratch'));
  t.true((await fs.stat(r.mounts.get('scratch') ?? '')).isDirectory());
  t.is(await fs.readFile(join(cfg, 'a.conf'), 'utf8'), 'A');
  t.is(await fs.readlink(join(cfg, 'a.conf')), '..data/a.conf');
  t.regex(await fs.readlink(join(cfg, '..data')), /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\./);
  t.is(await mode(join(cfg, 'b')), 0o644);
});

test('secret items with paths and modes (decimal in JSON), optional and missing sources', async (t) => {
  const data = await tmp(t);
  const p = pod([
    {
      name: 'tls',
      secret: {
        secretName: 'tls',
        defaultMode: 256,
        items: [
          { key: 'crt', path: 'certs/tls.crt' },
          { key: 'key', path: 'tls.key', mode: 384 },
        ],
      },
    },
    { name: 'opt', configMap: { name: 'gone', optional: true } },
    { name: 'req', configMap: { name: 'gone' } },
    { name: 'nokey', secret: { secretName: 'tls', items: [{ key: 'nope', path: 'x' }] } },
    { name: 'claim', persistentVolumeClaim: { claimName: 'c' } },
  ]);
  const r = await prepareVolumes(p, data, store({}, { 'ns/tls': { crt: 'CERT', key: 'KEY', other: 'O' } }));
  t.deepEqual(r.errors, ['configmap "gone" not found', 'key "nope" not found in secret "tls"']);
  t.deepEqual(r.unmounted, [
    { name: 'claim', error: 'persistentvolumeclaim "c": this agent has no access to claims' },
  ]);
  t.deepEqual([...r.mounts.keys()], ['tls', 'opt']);
  // Secrets in memory (tmpfs), never in the data directory.
  const tls = r.mounts.get('tls') as string;
  t.is(tls, volumeDir(memoryRoot(data), UID, 'tls'));
  t.false(tls.startsWith(data), tls);
  t.is(await fs.readFile(join(tls, 'certs/tls.crt'), 'utf8'), 'CERT');
  t.is(await mode(join(tls, 'certs/tls.crt')), 0o400);
  t.is(await mode(join(tls, 'tls.key')), 0o600);
  await t.throwsAsync(fs.access(join(tls, 'other')));
  t.deepEqual(
    (await fs.readdir(volumeDir(data, UID, 'opt'))).filter((f) => !f.startsWith('..')),
    [],
  );
  await removePodDir(data, UID);
  await t.throwsAsync(fs.access(tls));
});

test('updateVolumes rewrites changed data only, swapping ..data and dropping removed keys', async (t) => {
  const data = await tmp(t);
  const cms: Record<string, Record<string, string>> = { 'ns/app': { a: '1', b: '2' } };
  const p = pod([
    { name: 'cfg', configMap: { name: 'app' } },
    { name: 'e', emptyDir: {} },
  ]);
  await prepareVolumes(p, data, store(cms));
  const cfg = volumeDir(data, UID, 'cfg');
  const before = await fs.readlink(join(cfg, '..data'));

  t.deepEqual(await updateVolumes(p, data, store(cms)), { changed: [], errors: [] });
  t.is(await fs.readlink(join(cfg, '..data')), before, 'unchanged data writes nothing');

  cms['ns/app'] = { a: '10', c: '3' };
  t.deepEqual(await updateVolumes(p, data, store(cms)), { changed: ['cfg'], errors: [] });
  const after = await fs.readlink(join(cfg, '..data'));
  t.not(after, before);
  t.is(await fs.readFile(join(cfg, 'a'), 'utf8'), '10');
  t.is(await fs.readFile(join(cfg, 'c'), 'utf8'), '3');
  await t.throwsAsync(fs.lstat(join(cfg, 'b')));
  t.deepEqual(
    (await fs.readdir(cfg)).sort(),
    ['..data', after, 'a', 'c'].sort(),
    'the old data directory is gone',
  );

  // The ConfigMap disappears: keep the last contents and report it.
  delete cms['ns/app'];
  t.deepEqual(await updateVolumes(p, data, store(cms)), {
    changed: [],
    errors: ['configmap "app" not found'],
  });
  t.is(await fs.readFile(join(cfg, 'a'), 'utf8'), '10');
});

test('a mode change alone is a change', async (t) => {
  const data = await tmp(t);
  const cms = { 'ns/app': { a: '1' } };
  await prepareVolumes(pod([{ name: 'cfg', configMap: { name: 'app' } }]), data, store(cms));
  const r = await updateVolumes(
    pod([{ name: 'cfg', configMap: { name: 'app', defaultMode: 0o600 } }]),
    data,
    store(cms),
  );
  t.deepEqual(r.changed, ['cfg']);
  t.is(await mode(join(volumeDir(data, UID, 'cfg'), 'a')), 0o600);
});

test('hostPath: DirectoryOrCreate creates, Directory must exist', async (t) => {
  const data = await tmp(t);
  const made = join(data, 'host', 'made');
  const r = await prepareVolumes(
    pod([
      { name: 'h1', hostPath: { path: made, type: 'DirectoryOrCreate' } },
      { name: 'h2', hostPath: { path: join(data, 'missing'), type: 'Directory' } },
      { name: 'h3', hostPath: { path: join(data, 'f'), type: 'FileOrCreate' } },
    ]),
    data,
    store({}),
  );
  t.deepEqual(r.errors, [`hostPath ${join(data, 'missing')} is not a directory`]);
  t.is(r.mounts.get('h1'), made);
  t.true((await fs.stat(made)).isDirectory());
  t.true((await fs.stat(join(data, 'f'))).isFile());
});

test('mountsFor: readOnly, forced for configMap/secret, subPath created and kept inside the volume', async (t) => {
  const data = await tmp(t);
  const volumes: Volume[] = [
    { name: 'cfg', configMap: { name: 'app' } },
    { name: 'scratch', emptyDir: {} },
  ];
  const p = pod(volumes);
  const { mounts: paths } = await prepareVolumes(p, data, store({ 'ns/app': { 'a.conf': 'A' } }));
  const scratch = paths.get('scratch') ?? '';
  await fs.symlink('/etc', join(scratch, 'escape'));
  const r = await mountsFor(
    {
      name: 'c',
      image: 'i',
      volumeMounts: [
        { name: 'cfg', mountPath: '/etc/app' },
        { name: 'cfg', mountPath: '/etc/a.conf', subPath: 'a.conf' },
        { name: 'scratch', mountPath: '/data', readOnly: true },
        { name: 'scratch', mountPath: '/logs', subPath: 'logs/app' },
        { name: 'scratch', mountPath: '/bad', subPath: 'escape' },
        { name: 'scratch', mountPath: '/bad2', subPath: '../x' },
        { name: 'nope', mountPath: '/n' },
      ],
    },
    paths,
    volumes,
  );
  const real = await fs.realpath(volumeDir(data, UID, 'cfg'));
  t.deepEqual(r.mounts.slice(0, 3), [
    { hostPath: volumeDir(data, UID, 'cfg'), containerPath: '/etc/app', readOnly: true },
    {
      hostPath: join(real, await fs.readlink(join(real, '..data')), 'a.conf'),
      containerPath: '/etc/a.conf',
      readOnly: true,
    },
    { hostPath: scratch, containerPath: '/data', readOnly: true },
  ]);
  t.is(r.mounts[3]?.containerPath, '/logs');
  t.false(r.mounts[3]?.readOnly);
  t.true((await fs.stat(join(scratch, 'logs/app'))).isDirectory());
  t.is(r.mounts.length, 4);
  t.is(r.errors.length, 3);
  t.regex(r.errors[0] ?? '', /leaves its volume/);
  t.regex(r.errors[1] ?? '', /without '\.\.'/);
  t.regex(r.errors[2] ?? '', /"nope" is not ready/);
});

test('removePodDir removes the pod directory and refuses odd uids', async (t) => {
  const data = await tmp(t);
  await prepareVolumes(pod([{ name: 'e', emptyDir: {} }]), data, store({}));
  await removePodDir(data, UID);
  await t.throwsAsync(fs.access(podDir(data, UID).toString()));
  await t.throwsAsync(removePodDir(data, '../x'));
  await t.throwsAsync(removePodDir(data, ''));
});
