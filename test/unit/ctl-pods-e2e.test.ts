// berthctl's pod and node commands end to end: logs, exec, top, cordon, uncordon and drain,
// run as a separate process against a real 3-node cluster whose agents run the pods on the
// local Docker engine (image berth/busybox:test, never pulled). Requests go to one node and
// are forwarded to the pod's node. Every container this cluster made is removed at the end;
// containers of other clusters are never touched.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { waitFor as pollFor } from '../support/agent-helpers.js';
import { BerthCluster } from '../support/berth-cluster.js';

const CTL = fileURLToPath(new URL('../../cmd/ctl/main.js', import.meta.url));
// Fixtures are not compiled: read them from the source tree (this file runs from dist/test/unit).
const PODS = fileURLToPath(new URL('../../../test/fixtures/pods/pods.yaml', import.meta.url));
const TEST_PODS = ['logger', 'multi', 'restarter', 'owned', 'bare'];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

// biome-ignore lint/suspicious/noExplicitAny: parsed -o json output is checked field by field
type Json = any;

let cluster: BerthCluster;
let eps: string;
let tmp: string;
let clusterId: string | undefined;

function env(): NodeJS.ProcessEnv {
  return { ...process.env, BERTH_ENDPOINTS: eps, BERTH_CONFIG: join(tmp, 'config') };
}

/** Run berthctl against the cluster; never rejects. */
function ctl(args: string[], input?: string): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CTL, ...args],
      { timeout: 90_000, env: env() },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** berthctl ... -o json, parsed; fails loudly when the command fails. */
async function getJson(...args: string[]): Promise<Json> {
  const r = await ctl([...args, '-o', 'json']);
  if (r.code !== 0) throw new Error(`berthctl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Only n1's endpoint: whatever runs elsewhere is reached through n1. */
const viaN1 = () => ['--endpoints', cluster.node(0).clientAddress];

/** The shared poll (test/support/agent-helpers.ts) with this file's 30 s default. */
const waitFor = <T>(what: string, check: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> =>
  pollFor(what, check, ms, 200);

const podJson = async (name: string): Promise<Json | undefined> => {
  const r = await ctl(['get', 'pod', name, '-o', 'json']);
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
};

const waitRunning = (name: string) =>
  waitFor(`pod ${name} to run`, async () => {
    const p = await podJson(name);
    return p?.status?.phase === 'Running' ? p : undefined;
  });

function docker(...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile('docker', args, { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Ids of this cluster's containers (agent-made: they carry berth.io/node). */
async function clusterContainers(): Promise<string[]> {
  if (!clusterId) return [];
  const r = await docker(
    'ps',
    '-a',
    '-q',
    '--no-trunc',
    '--filter',
    `label=berth.io/cluster=${clusterId}`,
    '--filter',
    'label=berth.io/node',
  );
  return r.stdout.split('\n').filter((s) => s !== '');
}

test.before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'berth-ctl-pods-'));
  cluster = await BerthCluster.start({ size: 3, agent: true });
  eps = cluster.endpoints().join(',');
  const member = JSON.parse(await readFile(join(cluster.node(0).dataDir, 'member.json'), 'utf8'));
  clusterId = String(member.clusterId);
  await waitFor('every node to register', async () => {
    const r = await ctl(['get', 'nodes', '-o', 'json']);
    return r.code === 0 && JSON.parse(r.stdout).items.length === 3;
  });
  const r = await ctl(['apply', '-f', PODS]);
  if (r.code !== 0) throw new Error(`apply failed: ${r.stderr}`);
  await Promise.all(['logger', 'multi', 'restarter'].map(waitRunning));
});

test.after.always(async () => {
  if (cluster) {
    // Through berthctl, so the agents stop the containers; then whatever is left is removed.
    await ctl([
      'delete',
      'pods',
      ...TEST_PODS,
      '--ignore-not-found',
      '--grace-period',
      '0',
      '--timeout',
      '20s',
    ]);
    await ctl(['delete', 'configmap', 'drain-owner', '--ignore-not-found']);
    await waitFor(
      'the agents to remove the containers',
      async () => (await clusterContainers()).length === 0,
      15_000,
    ).catch(() => undefined);
    await cluster.destroy();
    const left = await clusterContainers();
    if (left.length > 0) await docker('rm', '-f', '-v', ...left);
  }
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

// ---- logs ----

test.serial('logs: a pod on n2 through n1 only prints the lines its container printed', async (t) => {
  const pod = await podJson('logger');
  t.is(pod.spec.nodeName, 'n2');
  const r = await ctl([...viaN1(), 'logs', 'logger']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'line-1\nline-2\nline-3\nline-4\nline-5\n');
  t.is(r.stderr, '');
  // pod/NAME names it too.
  const slash = await ctl([...viaN1(), 'logs', 'pod/logger']);
  t.is(slash.stdout, r.stdout);
});

test.serial('logs --tail N: the last N lines; --timestamps prefixes each with its time', async (t) => {
  const r = await ctl([...viaN1(), 'logs', 'logger', '--tail', '2']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'line-4\nline-5\n');
  const ts = await ctl([...viaN1(), 'logs', 'logger', '--tail', '1', '--timestamps']);
  t.is(ts.code, 0, ts.stderr);
  t.regex(ts.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z line-5\n$/);
});

test.serial('logs: several containers need -c, said in one line; -c picks one', async (t) => {
  const r = await ctl(['logs', 'multi']);
  t.is(r.code, 1);
  t.is(r.stderr, 'berthctl: a container name must be specified for pod "multi", choose one of: [a b]\n');
  const b = await ctl(['logs', 'multi', '-c', 'b']);
  t.is(b.code, 0, b.stderr);
  t.is(b.stdout, 'from-b\n');
  const missing = await ctl(['logs', 'nope']);
  t.is(missing.code, 1);
  t.is(missing.stderr.split('\n').length, 2, missing.stderr);
  t.regex(missing.stderr, /^berthctl: .*nope.* not found\n$/);
});

test.serial('logs -f: prints a line the container prints later, until Ctrl-C', async (t) => {
  const child = spawn(process.execPath, [CTL, ...viaN1(), 'logs', '-f', 'logger'], {
    env: env(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await waitFor('the lines so far', async () => out.includes('line-5\n'), 15_000);
    const touch = await ctl([...viaN1(), 'exec', 'logger', '--', 'touch', '/tmp/go']);
    t.is(touch.code, 0, touch.stderr);
    await waitFor('the late line', async () => out.includes('late-line\n'), 15_000);
    t.is(out, 'line-1\nline-2\nline-3\nline-4\nline-5\nlate-line\n');
  } finally {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGINT');
  }
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), 5000))]);
  t.is(code, 0, err);
  t.is(err, '');
});

test.serial('logs --previous: the instance before the restart', async (t) => {
  await waitFor(
    'restarter to restart',
    async () => ((await podJson('restarter'))?.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1,
  );
  const r = await ctl([...viaN1(), 'logs', 'restarter', '--previous']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^started-\d+-\d+\n$/);
  // The current instance (it may have just started and printed nothing yet) printed another line.
  const now = await waitFor('the current instance to print', async () => {
    const c = await ctl([...viaN1(), 'logs', 'restarter']);
    return c.stdout !== '' ? c : undefined;
  });
  t.regex(now.stdout, /^started-\d+-\d+\n$/);
  t.not(now.stdout, r.stdout);
});

// ---- exec ----

test.serial("exec: runs in the pod's container, with its environment, on another node", async (t) => {
  const r = await ctl([...viaN1(), 'exec', 'logger', '--', 'sh', '-c', 'echo $MY_VAR']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'hello-berth\n');
  t.is(r.stderr, '');
  const c = await ctl(['exec', 'multi', '-c', 'a', '--', 'sh', '-c', 'echo in-a']);
  t.is(c.code, 0, c.stderr);
  t.is(c.stdout, 'in-a\n');
});

test.serial("exec: the command's exit code is berthctl's, and its stderr goes to stderr", async (t) => {
  const r = await ctl([...viaN1(), 'exec', 'logger', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  t.is(r.code, 3);
  t.is(r.stdout, 'out\n');
  t.is(r.stderr, 'err\ncommand terminated with exit code 3\n');
});

test.serial('exec -i / -t: a usage error saying interactive exec is not supported yet', async (t) => {
  const r = await ctl(['exec', '-it', 'logger', '--', 'sh']);
  t.is(r.code, 2);
  t.regex(r.stderr, /^berthctl: interactive exec is not supported yet/);
});

// ---- top ----

test.serial('top pods: kubectl columns, CPU in millicores and memory in Mi', async (t) => {
  const r = await ctl([...viaN1(), 'top', 'pods']);
  t.is(r.code, 0, r.stderr);
  const [head, ...rows] = r.stdout.trimEnd().split('\n');
  t.regex(head ?? '', /^NAME\s+CPU\(cores\)\s+MEMORY\(bytes\)$/);
  const logger = rows.find((l) => l.startsWith('logger '));
  t.truthy(logger, r.stdout);
  t.regex(logger ?? '', /^logger\s+\d+m\s+\d+Mi$/);
  for (const row of rows) t.regex(row, /^\S+\s+\d+m\s+\d+Mi$/);

  const json = await getJson('top', 'pods');
  t.is(json.kind, 'PodMetricsList');
  const item = json.items.find((i: Json) => i.metadata.name === 'logger');
  t.is(item.node, 'n2');
  t.regex(item.containers[0].usage.cpu, /^\d+n$/);
  t.regex(item.containers[0].usage.memory, /^\d+Ki$/);
  t.true(Number.parseInt(item.containers[0].usage.memory, 10) > 0);

  const containers = await ctl(['top', 'pods', '--containers']);
  t.regex(containers.stdout, /^multi\s+a\s+\d+m\s+\d+Mi$/m);
  t.regex(containers.stdout, /^multi\s+b\s+\d+m\s+\d+Mi$/m);
});

test.serial('top nodes: every node with usage and its share of the capacity', async (t) => {
  const r = await ctl([...viaN1(), 'top', 'nodes']);
  t.is(r.code, 0, r.stderr);
  const [head, ...rows] = r.stdout.trimEnd().split('\n');
  t.regex(head ?? '', /^NAME\s+CPU\(cores\)\s+CPU%\s+MEMORY\(bytes\)\s+MEMORY%$/);
  t.deepEqual(
    rows.map((l) => l.split(/\s+/)[0]),
    ['n1', 'n2', 'n3'],
  );
  for (const row of rows) t.regex(row, /^n\d\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%$/);
});

// ---- cordon, uncordon, drain ----

test.serial(
  'cordon sets spec.unschedulable, uncordon clears it; both say when nothing changed',
  async (t) => {
    const c = await ctl(['cordon', 'n1']);
    t.is(c.code, 0, c.stderr);
    t.is(c.stdout, 'node/n1 cordoned\n');
    t.is((await getJson('get', 'node', 'n1')).spec.unschedulable, true);
    t.is((await ctl(['cordon', 'n1'])).stdout, 'node/n1 already cordoned\n');

    const u = await ctl(['uncordon', 'n1']);
    t.is(u.code, 0, u.stderr);
    t.is(u.stdout, 'node/n1 uncordoned\n');
    t.is((await getJson('get', 'node', 'n1')).spec.unschedulable, undefined);
    t.is((await ctl(['uncordon', 'n1'])).stdout, 'node/n1 already uncordoned\n');

    const missing = await ctl(['cordon', 'n9']);
    t.is(missing.code, 1);
    t.regex(missing.stderr, /^berthctl: .*n9.* not found\n$/);
  },
);

test.serial('drain: refuses a pod no controller owns, then evicts the owned pods and waits', async (t) => {
  const owner = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'drain-owner' }, data: { a: 'b' } };
  const made = await ctl(['apply', '-f', '-'], JSON.stringify(owner));
  t.is(made.code, 0, made.stderr);
  const cm = await getJson('get', 'configmap', 'drain-owner');
  const pod = (name: string, owned: boolean) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'default',
      labels: { app: 'ctl-pods-test' },
      ...(owned
        ? {
            ownerReferences: [
              { apiVersion: 'v1', kind: 'ConfigMap', name: 'drain-owner', uid: cm.metadata.uid },
            ],
          }
        : {}),
    },
    spec: {
      nodeName: 'n3',
      terminationGracePeriodSeconds: 1,
      containers: [
        { name: 'main', image: 'berth/busybox:test', imagePullPolicy: 'Never', command: ['sleep', '3600'] },
      ],
    },
  });
  for (const p of [pod('owned', true), pod('bare', false)]) {
    const r = await ctl(['apply', '-f', '-'], JSON.stringify(p));
    t.is(r.code, 0, r.stderr);
  }
  await Promise.all(['owned', 'bare'].map(waitRunning));

  const refused = await ctl(['drain', 'n3', '--timeout', '60s']);
  t.is(refused.code, 1);
  t.is(refused.stdout, 'node/n3 cordoned\n');
  t.is(
    refused.stderr,
    'berthctl: unable to drain node "n3": cannot delete pods that declare no controller (use --force to override): default/bare\n',
  );
  t.truthy(await podJson('owned'), 'nothing is evicted when the drain is refused');
  t.is((await getJson('get', 'node', 'n3')).spec.unschedulable, true);

  const del = await ctl(['delete', 'pod', 'bare', '--timeout', '30s']);
  t.is(del.code, 0, del.stderr);
  const r = await ctl(['drain', 'n3', '--timeout', '60s']);
  t.is(r.code, 0, r.stderr);
  t.is(
    r.stdout,
    'node/n3 already cordoned\nevicting pod default/owned\npod/owned evicted\nnode/n3 drained\n',
  );
  t.is(await podJson('owned'), undefined);
  t.is((await getJson('get', 'pods', '--field-selector', 'spec.nodeName=n3')).items.length, 0);

  const again = await ctl(['uncordon', 'n3']);
  t.is(again.stdout, 'node/n3 uncordoned\n');
});
