// The Docker adapter against the real engine. Everything made here carries TEST_LABEL and a
// unique name prefix, and after.always removes it all by that label. Traffic goes only to
// loopback: a pod is reached through its port published on 127.0.0.1.

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import Docker from 'dockerode';
import { createDockerRuntime, Demuxer, ExecTimeoutError } from '../../pkg/agent/docker-runtime.js';
import { type ContainerInfo, type ContainerSpec, ImagePullError } from '../../pkg/agent/runtime.js';
import { createSandboxImageEnsurer, SANDBOX_IMAGE, writeTar } from '../../pkg/agent/sandbox-image.js';

const TEST_LABEL = 'berth.io/test';
const TEST_VALUE = 'agent-docker-runtime';
const PREFIX = `berth-adrt-${randomBytes(4).toString('hex')}`;
const IMAGE = 'berth/busybox:test';
const TEST_SANDBOX_IMAGE = `berth/pause-${PREFIX}:1`;

const docker = new Docker();
const rt = createDockerRuntime();
let seq = 0;

function name(what: string): string {
  seq += 1;
  return `${PREFIX}-${what}-${seq}`;
}

function labels(extra: Record<string, string> = {}): Record<string, string> {
  return { [TEST_LABEL]: TEST_VALUE, 'berth.io/test-run': PREFIX, ...extra };
}

async function sandbox(ports: Array<{ containerPort: number; hostPort: number }> = []): Promise<string> {
  const id = await rt.createSandbox({
    name: name('sandbox'),
    labels: labels({ 'berth.io/role': 'sandbox' }),
    hostname: 'pod-host',
    ports: ports.map((p) => ({ ...p, protocol: 'TCP' as const, hostIp: '127.0.0.1' })),
  });
  await rt.start(id);
  return id;
}

async function container(sandboxId: string, spec: Partial<ContainerSpec>, start = true): Promise<string> {
  const id = await rt.createContainer({
    name: name('c'),
    image: IMAGE,
    env: [],
    labels: labels(),
    mounts: [],
    sandboxId,
    ...spec,
  });
  if (start) await rt.start(id);
  return id;
}

async function waitFor(id: string, ok: (i: ContainerInfo) => boolean, ms = 15_000): Promise<ContainerInfo> {
  const deadline = Date.now() + ms;
  for (;;) {
    const info = await rt.inspect(id);
    if (info && ok(info)) return info;
    if (Date.now() > deadline) throw new Error(`container ${id} did not get there: ${JSON.stringify(info)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const exited = (i: ContainerInfo) => i.state === 'exited';

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString();
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function httpGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

test.after.always('remove everything this test made', async () => {
  const all = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${TEST_VALUE}`] } });
  await Promise.all(all.map((c) => rt.remove(c.Id)));
  await docker
    .getImage(TEST_SANDBOX_IMAGE)
    .remove({ force: true })
    .catch(() => undefined);
});

test('version and findImage', async (t) => {
  t.regex(await rt.version(), /^docker:\/\/\d+\.\d+/);
  const found = await rt.findImage(IMAGE);
  t.regex(found?.id ?? '', /^sha256:/);
  t.is(await rt.findImage('berth/does-not-exist:1'), undefined);
});

// The image names a registry on a loopback port nothing listens on: the engine's attempt stays
// on this machine (no DNS, no registry) and fails at once.
const UNREACHABLE = '127.0.0.1:1/berth/does-not-exist:1';

test('pulling a missing image fails with the engine message, fast', async (t) => {
  const started = Date.now();
  const err = await t.throwsAsync(rt.pullImage(UNREACHABLE), { instanceOf: ImagePullError });
  t.true(Date.now() - started < 30_000);
  t.is(err?.image, UNREACHABLE);
  t.regex(err?.message ?? '', /127\.0\.0\.1:1/);
  t.true((err?.message.length ?? 0) > 0);
  t.notRegex(err?.message ?? '', /^\(HTTP code/);
});

test('tar writer: headers, padding and end blocks', (t) => {
  const tar = writeTar([
    { path: 'bin', type: 'dir', mode: 0o755 },
    { path: 'bin/x', type: 'file', mode: 0o644, data: Buffer.from('hello') },
    { path: 'bin/y', type: 'symlink', mode: 0o777, linkTarget: '/bin/x' },
  ]);
  t.is(tar.length, 512 + 512 + 512 + 512 + 1024);
  t.is(tar.subarray(0, 4).toString(), 'bin/');
  t.is(tar.subarray(1024, 1029).toString(), 'hello');
  t.is(tar.subarray(1536 + 156, 1536 + 157).toString(), '2');
});

test('demuxer splits frames across chunks and passes a tty stream through', (t) => {
  const frame = (type: number, text: string) => {
    const h = Buffer.alloc(8);
    h[0] = type;
    h.writeUInt32BE(Buffer.byteLength(text), 4);
    return Buffer.concat([h, Buffer.from(text)]);
  };
  const got: string[] = [];
  const d = new Demuxer((s, p) => got.push(`${s}:${p.toString()}`));
  const both = Buffer.concat([frame(1, 'out'), frame(2, 'err')]);
  d.write(both.subarray(0, 5));
  d.write(both.subarray(5, 13));
  d.write(both.subarray(13));
  t.deepEqual(got, ['stdout:out', 'stderr:err']);
  const raw: string[] = [];
  new Demuxer((_s, p) => raw.push(p.toString())).write(Buffer.from('plain tty output'));
  t.deepEqual(raw, ['plain tty output']);
});

test('sandbox image is made once under concurrent callers, then reused', async (t) => {
  const counting = new Docker();
  let imports = 0;
  const importImage = counting.importImage.bind(counting);
  counting.importImage = ((...args: Parameters<typeof importImage>) => {
    imports += 1;
    return importImage(...args);
  }) as typeof counting.importImage;
  const ensure = createSandboxImageEnsurer(counting, TEST_SANDBOX_IMAGE);
  const names = await Promise.all([ensure(), ensure(), ensure()]);
  t.deepEqual(names, [TEST_SANDBOX_IMAGE, TEST_SANDBOX_IMAGE, TEST_SANDBOX_IMAGE]);
  t.is(imports, 1);
  await createSandboxImageEnsurer(counting, TEST_SANDBOX_IMAGE)();
  t.is(imports, 1, 'a present image is reused');
  // The real one: made or found, and a sandbox on it stops at once, whatever its shell was doing.
  t.is(await rt.ensureSandboxImage(), SANDBOX_IMAGE);
  const id = await sandbox();
  const started = Date.now();
  await rt.stop(id, 10);
  t.true(Date.now() - started < 3000, `sandbox took ${Date.now() - started}ms to stop`);
  t.is((await rt.inspect(id))?.state, 'exited');
});

test('a pod: shared network namespace, bind mount, port published on loopback', async (t) => {
  const www = await mkdtemp(join(tmpdir(), 'berth-adrt-www-'));
  t.teardown(() => rm(www, { recursive: true, force: true }));
  await writeFile(join(www, 'index.html'), 'hello from berth\n');
  const hostPort = await freePort();
  const sb = await sandbox([{ containerPort: 8080, hostPort }]);
  const web = await container(sb, {
    command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
    mounts: [{ hostPath: www, containerPath: '/www', readOnly: true }],
  });
  const client = await container(sb, {
    command: ['sh', '-c', 'while :; do wget -qO- http://127.0.0.1:8080/ && sleep 1000; sleep 0.2; done'],
  });

  let body = '';
  for (let i = 0; i < 50 && body === ''; i++) {
    body = await httpGet(hostPort).catch(() => '');
    if (body === '') await new Promise((r) => setTimeout(r, 100));
  }
  t.is(body, 'hello from berth\n');

  const viaExec = await rt.exec(client, ['wget', '-qO-', 'http://127.0.0.1:8080/'], 5000);
  t.is(viaExec.exitCode, 0);
  t.is(viaExec.stdout.toString(), 'hello from berth\n');
  const hostname = await rt.exec(web, ['hostname'], 5000);
  t.is(hostname.stdout.toString().trim(), 'pod-host');
  // The loop's own fetch lands in its log.
  let logged = '';
  for (let i = 0; i < 50 && !logged.includes('hello'); i++) {
    logged = await readAll(await rt.logs(client, { follow: false, timestamps: false }));
    if (!logged.includes('hello')) await new Promise((r) => setTimeout(r, 100));
  }
  t.is(logged, 'hello from berth\n');

  const sbInfo = await rt.inspect(sb);
  t.regex(sbInfo?.ip ?? '', /^\d+\.\d+\.\d+\.\d+$/);
  t.is(sbInfo?.state, 'running');
  const raw = await docker.getContainer(sb).inspect();
  t.deepEqual(raw.HostConfig.PortBindings, {
    '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: String(hostPort) }],
  });
  t.is(raw.HostConfig.RestartPolicy?.Name, 'no');
});

test('env, workingDir and limits', async (t) => {
  const sb = await sandbox();
  const id = await container(sb, {
    command: ['sleep', '1000'],
    env: ['FOO=bar', 'EMPTY='],
    workingDir: '/tmp',
    cpuLimit: 0.5,
    memoryLimit: 64 * 1024 * 1024,
  });
  const env = await rt.exec(id, ['env'], 5000);
  t.regex(env.stdout.toString(), /^FOO=bar$/m);
  t.regex(env.stdout.toString(), /^EMPTY=$/m);
  t.is((await rt.exec(id, ['pwd'], 5000)).stdout.toString(), '/tmp\n');
  const raw = await docker.getContainer(id).inspect();
  t.is(raw.HostConfig.NanoCpus, 500_000_000);
  t.is(raw.HostConfig.Memory, 64 * 1024 * 1024);
  t.is(raw.HostConfig.MemorySwap, 64 * 1024 * 1024);
  t.is(raw.HostConfig.NetworkMode, `container:${sb}`);
  t.is(raw.HostConfig.Init, false);
  t.is(raw.HostConfig.RestartPolicy?.Name, 'no');
});

test('command and args follow Kubernetes semantics', async (t) => {
  const sb = await sandbox();
  const run = async (spec: Partial<ContainerSpec>) => {
    const id = await container(sb, spec);
    await waitFor(id, exited);
    return readAll(await rt.logs(id, { follow: false, timestamps: false }));
  };
  // The image's CMD is ["/bin/sh"]: it must not be appended to a command.
  t.is(await run({ command: ['echo', 'only-command'] }), 'only-command\n');
  t.is(await run({ args: ['echo', 'only-args'] }), 'only-args\n');
  t.is(await run({ command: ['echo'], args: ['both', 'given'] }), 'both given\n');
});

test('exit code and reason', async (t) => {
  const sb = await sandbox();
  const failed = await waitFor(await container(sb, { command: ['sh', '-c', 'exit 3'] }), exited);
  t.is(failed.exitCode, 3);
  t.is(failed.reason, 'Error');
  t.truthy(failed.startedAt);
  t.truthy(failed.finishedAt);
  const ok = await waitFor(await container(sb, { command: ['true'] }), exited);
  t.is(ok.exitCode, 0);
  t.is(ok.reason, 'Completed');
  const created = await container(sb, { command: ['true'] }, false);
  const info = await rt.inspect(created);
  t.is(info?.state, 'created');
  t.is(info?.startedAt, undefined);
  t.is(info?.exitCode, undefined);
});

test('stop: TERM handled at once, TERM ignored killed after the grace period', async (t) => {
  const sb = await sandbox();
  const polite = await container(sb, {
    command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1 & wait $!; done'],
  });
  const stubborn = await container(sb, { command: ['sh', '-c', 'trap "" TERM; sleep 1000'] });
  await new Promise((r) => setTimeout(r, 300)); // let the shells install their traps
  let started = Date.now();
  await rt.stop(polite, 10);
  t.true(Date.now() - started < 3000, `polite stop took ${Date.now() - started}ms`);
  t.is((await rt.inspect(polite))?.exitCode, 0);

  started = Date.now();
  await rt.stop(stubborn, 2);
  const took = Date.now() - started;
  t.true(took >= 1800 && took < 6000, `stubborn stop took ${took}ms`);
  const info = await rt.inspect(stubborn);
  t.is(info?.exitCode, 137);
  t.is(info?.reason, 'Error');
  await t.notThrowsAsync(rt.stop(stubborn, 2), 'stopping a stopped container is fine');
});

test('logs: tail, stderr interleaved, follow ends when the container exits', async (t) => {
  const sb = await sandbox();
  const id = await container(sb, {
    command: [
      'sh',
      '-c',
      'for i in 1 2 3 4 5; do echo line$i; done; sleep 0.3; echo oops >&2; sleep 1; echo late',
    ],
  });
  const followed = readAll(await rt.logs(id, { follow: true, timestamps: false }));
  t.is(await followed, 'line1\nline2\nline3\nline4\nline5\noops\nlate\n');
  await waitFor(id, exited);
  t.is(await readAll(await rt.logs(id, { follow: false, tail: 2, timestamps: false })), 'oops\nlate\n');
  const stamped = await readAll(await rt.logs(id, { follow: false, tail: 1, timestamps: true }));
  t.regex(stamped, /^\d{4}-\d\d-\d\dT\S+ late\n$/);
  const future = Math.floor(Date.now() / 1000) + 3600;
  t.is(await readAll(await rt.logs(id, { follow: false, since: future, timestamps: false })), '');
});

test('exec: exit code, separate streams, timeout', async (t) => {
  const sb = await sandbox();
  const id = await container(sb, { command: ['sleep', '1000'] });
  const r = await rt.exec(id, ['sh', '-c', 'echo out; echo err >&2; exit 7'], 5000);
  t.is(r.exitCode, 7);
  t.is(r.stdout.toString(), 'out\n');
  t.is(r.stderr.toString(), 'err\n');
  const started = Date.now();
  await t.throwsAsync(rt.exec(id, ['sleep', '5'], 300), { instanceOf: ExecTimeoutError });
  t.true(Date.now() - started < 2000);
});

test('stats returns numbers', async (t) => {
  const sb = await sandbox();
  const id = await container(sb, { command: ['sh', '-c', 'while :; do :; done'], cpuLimit: 0.5 });
  const s = await rt.stats(id);
  t.true(Number.isFinite(s.cpuCores) && s.cpuCores > 0 && s.cpuCores < 1, `cpu ${s.cpuCores}`);
  t.true(Number.isFinite(s.memoryBytes) && s.memoryBytes > 0, `memory ${s.memoryBytes}`);
});

test('list by labels; remove is idempotent', async (t) => {
  const mark = { 'berth.io/pod-uid': `${PREFIX}-list` };
  const sb = await rt.createSandbox({
    name: name('sandbox'),
    labels: labels(mark),
    hostname: 'h',
    ports: [],
  });
  const c = await rt.createContainer({
    name: name('c'),
    image: IMAGE,
    command: ['true'],
    env: [],
    labels: labels({ ...mark, 'berth.io/container': 'main' }),
    mounts: [],
    sandboxId: sb,
  });
  const both = await rt.list(mark);
  t.deepEqual(both.map((i) => i.id).sort(), [sb, c].sort());
  const main = await rt.list({ ...mark, 'berth.io/container': 'main' });
  t.is(main.length, 1);
  t.is(main[0]?.image, IMAGE);
  t.is(main[0]?.state, 'created');
  t.is(main[0]?.labels['berth.io/container'], 'main');
  t.true(main[0]?.name.startsWith(PREFIX));

  await rt.remove(c);
  await t.notThrowsAsync(rt.remove(c));
  await t.notThrowsAsync(rt.stop(c, 1));
  t.is(await rt.inspect(c), undefined);
  await t.throwsAsync(rt.start(c));
  t.deepEqual(
    (await rt.list(mark)).map((i) => i.id),
    [sb],
  );
});
