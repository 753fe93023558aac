// berthctl rollout end to end: status, history, undo, restart, pause and resume of a real
// Deployment on a 3-node cluster whose leader runs the scheduler and controllers and whose
// agents run the pods on the local Docker engine (image berth/busybox:test, never pulled).
// berthctl runs as a separate process. The Deployment and every container this cluster made
// are removed at the end; containers of other clusters are never touched.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { waitFor as pollFor } from '../support/agent-helpers.js';
import { BerthCluster } from '../support/berth-cluster.js';

const CTL = fileURLToPath(new URL('../../cmd/ctl/main.js', import.meta.url));
const NAME = 'roll';
const WAIT = ['--watch-timeout', '150s'];

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
function ctl(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CTL, ...args], { timeout: 180_000, env: env() }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function getJson(...args: string[]): Promise<Json> {
  const r = await ctl([...args, '-o', 'json']);
  if (r.code !== 0) throw new Error(`berthctl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** The shared poll (test/support/agent-helpers.ts) with this file's 30 s default. */
const waitFor = <T>(what: string, check: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> =>
  pollFor(what, check, ms, 250);

function docker(...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile('docker', args, { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Ids of this cluster's containers. */
async function clusterContainers(): Promise<string[]> {
  if (!clusterId) return [];
  const r = await docker('ps', '-a', '-q', '--no-trunc', '--filter', `label=berth.io/cluster=${clusterId}`);
  return r.stdout.split('\n').filter((s) => s !== '');
}

interface Version {
  version: string;
  /** A readiness probe that never passes (wrong port). */
  unready?: boolean;
  progressDeadlineSeconds?: number;
}

function manifest(v: Version): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${NAME}
  namespace: default
spec:
  replicas: 3
${v.progressDeadlineSeconds ? `  progressDeadlineSeconds: ${v.progressDeadlineSeconds}\n` : ''}  selector:
    matchLabels:
      app: ${NAME}
  template:
    metadata:
      labels:
        app: ${NAME}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: web
          image: berth/busybox:test
          imagePullPolicy: Never
          command: ["sh", "-c", "echo ok > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"]
          env:
            - name: VERSION
              value: ${v.version}
          readinessProbe:
            httpGet:
              path: /
              port: ${v.unready ? 8081 : 8080}
            periodSeconds: 1
`;
}

async function applyVersion(v: Version): Promise<void> {
  const file = join(tmp, `${v.version}.yaml`);
  await writeFile(file, manifest(v));
  const r = await ctl(['apply', '-f', file]);
  if (r.code !== 0) throw new Error(`apply ${v.version} failed: ${r.stderr}`);
}

const lines = (s: string) => s.split('\n').filter((l) => l !== '');
const SUCCESS = `deployment "${NAME}" successfully rolled out`;

/** Running pods of the Deployment not being deleted. */
async function livePods(): Promise<Json[]> {
  const list = await getJson('get', 'pods', '-l', `app=${NAME}`);
  return list.items.filter((p: Json) => !p.metadata.deletionTimestamp);
}

const envOf = (d: Json) => d.spec.template.spec.containers[0].env[0].value;

async function historyRevisions(): Promise<string[]> {
  const r = await ctl(['rollout', 'history', `deploy/${NAME}`]);
  if (r.code !== 0) throw new Error(r.stderr);
  return lines(r.stdout)
    .slice(2)
    .map((l) => l.split(/\s+/)[0] as string);
}

test.before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'berth-ctl-rollout-'));
  cluster = await BerthCluster.start({ size: 3, agent: true });
  eps = cluster.endpoints().join(',');
  const member = JSON.parse(await readFile(join(cluster.node(0).dataDir, 'member.json'), 'utf8'));
  clusterId = String(member.clusterId);
  await waitFor('every node to register', async () => {
    const r = await ctl(['get', 'nodes', '-o', 'json']);
    return r.code === 0 && JSON.parse(r.stdout).items.length === 3;
  });
});

test.after.always(async () => {
  if (cluster) {
    await ctl(['delete', 'deploy', NAME, '--ignore-not-found', '--timeout', '20s']);
    await waitFor(
      'the agents to remove the containers',
      async () => (await clusterContainers()).length === 0,
      20_000,
    ).catch(() => undefined);
    await cluster.destroy();
    const left = await clusterContainers();
    if (left.length > 0) await docker('rm', '-f', '-v', ...left);
  }
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test.serial('status: a new Deployment rolls out; -w=false prints once', async (t) => {
  await applyVersion({ version: 'v1' });
  const r = await ctl(['rollout', 'status', `deploy/${NAME}`, ...WAIT]);
  t.is(r.code, 0, r.stderr);
  t.is(lines(r.stdout).at(-1), SUCCESS, r.stdout);
  t.is(r.stderr, '');
  const once = await ctl(['rollout', 'status', `deployment`, NAME, '-w=false']);
  t.is(once.code, 0, once.stderr);
  t.is(once.stdout, `${SUCCESS}\n`);
  const d = await getJson('get', `deploy/${NAME}`);
  t.is(d.status.availableReplicas, 3);
});

test.serial('status: a template change prints its progress once per message, then success', async (t) => {
  const before = new Set((await livePods()).map((p) => p.metadata.name));
  await applyVersion({ version: 'v2' });
  const r = await ctl(['rollout', 'status', `deployments.apps/${NAME}`, ...WAIT]);
  t.is(r.code, 0, r.stderr);
  const out = lines(r.stdout);
  t.is(out.at(-1), SUCCESS, r.stdout);
  t.true(out.length >= 2, r.stdout);
  for (const l of out.slice(0, -1)) {
    t.regex(
      l,
      /^Waiting for deployment spec update to be observed\.\.\.$|^Waiting for deployment "roll" rollout to finish: (\d+ out of 3 new replicas have been updated|\d+ old replicas are pending termination|\d+ of \d+ updated replicas are available)\.\.\.$/,
    );
  }
  for (let i = 1; i < out.length; i++) t.not(out[i], out[i - 1], 'each message once');
  const after = await waitFor('the old pods to go', async () => {
    const pods = await livePods();
    return pods.length === 3 ? pods : undefined;
  });
  for (const p of after) t.false(before.has(p.metadata.name), p.metadata.name);
});

test.serial('history: revisions 1 and 2; --revision shows a pod template', async (t) => {
  const r = await ctl(['rollout', 'history', `deploy/${NAME}`]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `deployment.apps/${NAME}\nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>\n\n`);
  const one = await ctl(['rollout', 'history', `deploy/${NAME}`, '--revision', '1']);
  t.is(one.code, 0, one.stderr);
  t.true(one.stdout.startsWith(`deployment.apps/${NAME} with revision #1\nPod Template:\n`), one.stdout);
  t.true(one.stdout.includes('VERSION:\tv1\n'), one.stdout);
  const missing = await ctl(['rollout', 'history', `deploy/${NAME}`, '--revision', '9']);
  t.is(missing.code, 1);
  t.is(missing.stderr, 'berthctl: unable to find the specified revision\n');
});

test.serial('undo: back to revision 1, which becomes revision 3', async (t) => {
  const missing = await ctl(['rollout', 'undo', `deploy/${NAME}`, '--to-revision', '9']);
  t.is(missing.code, 1);
  t.is(missing.stderr, 'berthctl: unable to find specified revision 9 in history\n');
  const r = await ctl(['rollout', 'undo', `deploy/${NAME}`]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `deployment.apps/${NAME} rolled back\n`);
  t.is(envOf(await getJson('get', `deploy/${NAME}`)), 'v1');
  const s = await ctl(['rollout', 'status', `deploy/${NAME}`, ...WAIT]);
  t.is(s.code, 0, s.stderr);
  t.is(lines(s.stdout).at(-1), SUCCESS);
  t.deepEqual(await historyRevisions(), ['2', '3']);
  const three = await ctl(['rollout', 'history', `deploy/${NAME}`, '--revision', '3']);
  t.true(three.stdout.includes('VERSION:\tv1\n'), three.stdout);
  // The template already is revision 3's: nothing to do.
  const again = await ctl(['rollout', 'undo', `deploy/${NAME}`, '--to-revision', '3']);
  t.is(again.code, 0, again.stderr);
  t.is(
    again.stdout,
    `deployment.apps/${NAME} skipped rollback (current template already matches revision 3)\n`,
  );
});

test.serial('restart: a new rollout with new pods', async (t) => {
  const before = new Set((await livePods()).map((p) => p.metadata.name));
  const r = await ctl(['rollout', 'restart', `deploy/${NAME}`]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `deployment.apps/${NAME} restarted\n`);
  const d = await getJson('get', `deploy/${NAME}`);
  t.regex(d.spec.template.metadata.annotations['kubectl.kubernetes.io/restartedAt'], /^\d{4}-\d\d-\d\dT/);
  const s = await ctl(['rollout', 'status', `deploy/${NAME}`, ...WAIT]);
  t.is(s.code, 0, s.stderr);
  t.is(lines(s.stdout).at(-1), SUCCESS);
  const after = await waitFor('the old pods to go', async () => {
    const pods = await livePods();
    return pods.length === 3 ? pods : undefined;
  });
  for (const p of after) t.false(before.has(p.metadata.name), p.metadata.name);
  t.deepEqual(await historyRevisions(), ['2', '3', '4']);
});

test.serial('pause and resume: a paused template change waits for resume', async (t) => {
  const p = await ctl(['rollout', 'pause', `deploy/${NAME}`]);
  t.is(p.code, 0, p.stderr);
  t.is(p.stdout, `deployment.apps/${NAME} paused\n`);
  const again = await ctl(['rollout', 'pause', `deploy/${NAME}`]);
  t.is(again.code, 1);
  t.is(again.stderr, `berthctl: deployments.apps "${NAME}" is already paused\n`);
  const restart = await ctl(['rollout', 'restart', `deploy/${NAME}`]);
  t.is(restart.code, 1);
  t.is(restart.stderr, "berthctl: can't restart paused deployment (run rollout resume first)\n");
  t.is((await getJson('get', `deploy/${NAME}`)).spec.paused, true);

  await applyVersion({ version: 'v5' });
  await new Promise((r) => setTimeout(r, 3000));
  t.deepEqual(await historyRevisions(), ['2', '3', '4'], 'no new ReplicaSet while paused');

  const resume = await ctl(['rollout', 'resume', `deploy/${NAME}`]);
  t.is(resume.code, 0, resume.stderr);
  t.is(resume.stdout, `deployment.apps/${NAME} resumed\n`);
  const notPaused = await ctl(['rollout', 'resume', `deploy/${NAME}`]);
  t.is(notPaused.code, 1);
  t.is(notPaused.stderr, `berthctl: deployments.apps "${NAME}" is not paused\n`);
  const s = await ctl(['rollout', 'status', `deploy/${NAME}`, ...WAIT]);
  t.is(s.code, 0, s.stderr);
  t.is(lines(s.stdout).at(-1), SUCCESS);
  t.deepEqual(await historyRevisions(), ['2', '3', '4', '5']);
});

test.serial(
  'status: a rollout that never gets ready fails on its progress deadline; old pods serve',
  async (t) => {
    await applyVersion({ version: 'v6', unready: true, progressDeadlineSeconds: 10 });
    const r = await ctl(['rollout', 'status', `deploy/${NAME}`, ...WAIT]);
    t.is(r.code, 1, r.stdout);
    t.is(r.stderr, `berthctl: deployment "${NAME}" exceeded its progress deadline\n`);
    const d = await getJson('get', `deploy/${NAME}`);
    const progressing = d.status.conditions.find((c: Json) => c.type === 'Progressing');
    t.is(progressing.reason, 'ProgressDeadlineExceeded');
    t.is(d.status.availableReplicas, 3, JSON.stringify(d.status));
    // The old ReplicaSet's pods still serve.
    const ready = (await livePods()).filter((p) =>
      (p.status?.conditions ?? []).some((c: Json) => c.type === 'Ready' && c.status === 'True'),
    );
    t.is(ready.length, 3);
    const served = await ctl([
      'exec',
      ready[0].metadata.name,
      '--',
      'wget',
      '-qO-',
      'http://127.0.0.1:8080/',
    ]);
    t.is(served.code, 0, served.stderr);
    t.is(served.stdout, 'ok\n');
    // Once failed, -w=false says so at once.
    const once = await ctl(['rollout', 'status', `deploy/${NAME}`, '-w=false']);
    t.is(once.code, 1);
    t.is(once.stderr, `berthctl: deployment "${NAME}" exceeded its progress deadline\n`);
  },
);

test.serial('status --watch-timeout: gives up on a rollout that does not finish', async (t) => {
  // Another never-ready template, now with a long deadline: the rollout neither completes
  // nor fails while we watch.
  await applyVersion({ version: 'v7', unready: true, progressDeadlineSeconds: 600 });
  const r = await ctl(['rollout', 'status', `deploy/${NAME}`, '--watch-timeout', '3s']);
  t.is(r.code, 1, r.stdout);
  t.is(r.stderr, 'berthctl: timed out waiting for the condition\n');
  t.regex(lines(r.stdout).at(-1) ?? '', /^Waiting for deployment "roll" rollout to finish: /);
});
