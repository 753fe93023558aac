// berthctl rollout's pure core (cmd/ctl/rollout-status.ts): kubectl's rollout status messages,
// history table and revision view, the rollback target and patch, restart, pause and resume;
// and the command line's usage errors, run in-process (no cluster: nothing is dialed).
import test from 'ava';
import type { ApiObject } from '../../pkg/api/types.js';
import type { CtlIO } from '../../cmd/ctl/context.js';
import { CtlError, UsageError } from '../../cmd/ctl/errors.js';
import { run } from '../../cmd/ctl/program.js';
import {
  CHANGE_CAUSE,
  deploymentNames,
  equalIgnoreHash,
  formatHistory,
  formatRevision,
  ownedReplicaSets,
  parseWatchFlag,
  RESTARTED_AT,
  REVISION,
  restart,
  rfc3339Local,
  rollback,
  rollbackTarget,
  rolloutHistory,
  rolloutStatus,
  setPaused,
} from '../../cmd/ctl/rollout-status.js';

const UID = 'd-uid';

function deployment(
  over: { spec?: object; status?: object; generation?: number; annotations?: object } = {},
) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'web',
      namespace: 'default',
      uid: UID,
      generation: over.generation ?? 2,
      annotations: { [REVISION]: '2', ...over.annotations },
    },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: 'web' } },
      template: template('v2'),
      ...over.spec,
    },
    status: { observedGeneration: 2, replicas: 3, updatedReplicas: 3, availableReplicas: 3, ...over.status },
  } as unknown as ApiObject;
}

function template(version: string, hash?: string) {
  return {
    metadata: { labels: { app: 'web', ...(hash ? { 'pod-template-hash': hash } : {}) } },
    spec: {
      containers: [{ name: 'web', image: 'berth/busybox:test', env: [{ name: 'VERSION', value: version }] }],
    },
  };
}

function replicaSet(revision: number, version: string, opts: { owner?: string; cause?: string } = {}) {
  const hash = `h${version}`;
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `web-${hash}`,
      namespace: 'default',
      annotations: {
        [REVISION]: String(revision),
        'deployment.kubernetes.io/desired-replicas': '3',
        ...(opts.cause ? { [CHANGE_CAUSE]: opts.cause } : {}),
      },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: opts.owner ?? UID, controller: true },
      ],
    },
    spec: { replicas: 0, template: template(version, hash) },
  } as unknown as ApiObject;
}

// ---- status: kubectl's DeploymentStatusViewer, message for message

test('status: the spec update not yet observed comes first', (t) => {
  const d = deployment({ generation: 3, status: { observedGeneration: 2 } });
  t.deepEqual(rolloutStatus(d), {
    message: 'Waiting for deployment spec update to be observed...',
    done: false,
  });
});

test('status: new replicas updated, old pending termination, updated available, done', (t) => {
  const at = (status: object) => rolloutStatus(deployment({ status }));
  t.is(
    at({ replicas: 4, updatedReplicas: 1, availableReplicas: 3 }).message,
    'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...',
  );
  t.is(
    at({ replicas: 4, updatedReplicas: 3, availableReplicas: 3 }).message,
    'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...',
  );
  t.is(
    at({ replicas: 3, updatedReplicas: 3, availableReplicas: 2 }).message,
    'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...',
  );
  t.deepEqual(at({}), { message: 'deployment "web" successfully rolled out', done: true });
});

test('status: ProgressDeadlineExceeded fails, once the generation is observed', (t) => {
  const conditions = [
    { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
    { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' },
  ];
  const failed = deployment({ status: { conditions, updatedReplicas: 1 } });
  const err = t.throws(() => rolloutStatus(failed), { instanceOf: CtlError });
  t.is(err?.message, 'deployment "web" exceeded its progress deadline');
  // A newer spec not yet seen by the controller: the old verdict does not count yet.
  const newer = deployment({ generation: 3, status: { conditions } });
  t.is(rolloutStatus(newer).message, 'Waiting for deployment spec update to be observed...');
});

test('status --revision: another running revision is an error', (t) => {
  t.true(rolloutStatus(deployment(), 2).done);
  t.throws(() => rolloutStatus(deployment(), 1), {
    instanceOf: CtlError,
    message: 'desired revision (1) is different from the running revision (2)',
  });
});

test('status: a missing status is zero replicas, not a crash', (t) => {
  const d = deployment();
  d.status = undefined;
  d.metadata.generation = 1;
  t.is(rolloutStatus(d).message, 'Waiting for deployment spec update to be observed...');
  d.metadata.generation = 0;
  t.is(
    rolloutStatus(d).message,
    'Waiting for deployment "web" rollout to finish: 0 out of 3 new replicas have been updated...',
  );
});

// ---- names

test('names: deploy/NAME, deployment NAME, deployments.apps/NAME; other kinds refused', (t) => {
  t.deepEqual(deploymentNames(['deploy/web'], 'x'), ['web']);
  t.deepEqual(deploymentNames(['deployment', 'web', 'api'], 'x'), ['web', 'api']);
  t.deepEqual(deploymentNames(['deployments.apps/web'], 'x'), ['web']);
  t.deepEqual(deploymentNames(['deployment.apps', 'web'], 'x'), ['web']);
  t.throws(() => deploymentNames(['deploy'], 'x'), { instanceOf: UsageError });
  t.throws(() => deploymentNames(['pod/web'], 'status viewer'), {
    instanceOf: CtlError,
    message: 'no status viewer has been implemented for Pod',
  });
  t.throws(() => deploymentNames(['rs/web'], 'rollbacker'), {
    message: 'no rollbacker has been implemented for ReplicaSet.apps',
  });
});

// ---- history

test('history: owned ReplicaSets only, by revision, change-cause or <none>', (t) => {
  const rss = [
    replicaSet(3, 'c', { cause: 'kubectl set image' }),
    replicaSet(1, 'a'),
    replicaSet(2, 'b', { owner: 'someone-else' }),
    replicaSet(2, 'b2'),
  ];
  const owned = ownedReplicaSets(deployment(), rss);
  t.is(owned.length, 3);
  const entries = rolloutHistory(owned);
  t.deepEqual(
    entries.map((e) => [e.revision, e.changeCause]),
    [
      [1, ''],
      [2, ''],
      [3, 'kubectl set image'],
    ],
  );
  t.is(
    formatHistory('deployment.apps/web', entries),
    'deployment.apps/web\nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>\n3         kubectl set image\n\n',
  );
  t.is(formatHistory('deployment.apps/web', []), 'deployment.apps/web\nNo rollout history found.\n');
});

test('history --revision: the pod template as kubectl prints it (raw tabs), or an error', (t) => {
  const entries = rolloutHistory([replicaSet(1, 'a', { cause: 'first' }), replicaSet(2, 'b')]);
  const text = formatRevision('deployment.apps/web', entries, 1);
  t.true(text.startsWith('deployment.apps/web with revision #1\nPod Template:\n'), text);
  t.true(text.includes('  Labels:\tapp=web\n  \tpod-template-hash=ha\n'), text);
  t.true(text.includes(`  Annotations:\t${CHANGE_CAUSE}: first\n`), text);
  t.true(text.includes('  Containers:\n   web:\n'), text);
  t.true(text.includes('    Environment:\n      VERSION:\ta\n'), text);
  t.true(text.endsWith('\n\n'), JSON.stringify(text.slice(-20)));
  t.throws(() => formatRevision('deployment.apps/web', entries, 7), {
    instanceOf: CtlError,
    message: 'unable to find the specified revision',
  });
});

// ---- undo

test('undo target: the revision before the latest, or the one asked for', (t) => {
  const rss = [replicaSet(1, 'a'), replicaSet(3, 'c'), replicaSet(2, 'b')];
  t.is(rollbackTarget('web', rss, 0).metadata.name, 'web-hb');
  t.is(rollbackTarget('web', rss, 1).metadata.name, 'web-ha');
  t.throws(() => rollbackTarget('web', rss, 9), {
    instanceOf: CtlError,
    message: 'unable to find specified revision 9 in history',
  });
  t.throws(() => rollbackTarget('web', [replicaSet(1, 'a')], 0), {
    instanceOf: CtlError,
    message: 'no rollout history found for deployment "web"',
  });
});

test('undo: the template without pod-template-hash, RS annotations but the controller ones', (t) => {
  const d = deployment({ annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } });
  const before = structuredClone(d);
  const r = rollback(d, replicaSet(1, 'a', { cause: 'v1' }));
  if (r.kind !== 'update') return t.fail(r.kind);
  t.deepEqual(d, before, 'the input is not mutated');
  t.deepEqual(r.deployment.spec?.template, template('a'));
  t.deepEqual(r.deployment.metadata.annotations, {
    [REVISION]: '2',
    'kubectl.kubernetes.io/last-applied-configuration': '{}',
    [CHANGE_CAUSE]: 'v1',
  });
  t.is(r.revision, 1);
  // Already that template: nothing to write.
  t.deepEqual(rollback(d, replicaSet(2, 'v2')), { kind: 'skipped', revision: 2 });
  t.throws(() => rollback(deployment({ spec: { paused: true } }), replicaSet(1, 'a')), {
    instanceOf: CtlError,
    message: /^you cannot rollback a paused deployment; resume it first/,
  });
});

test('equalIgnoreHash ignores the hash label and key order only', (t) => {
  t.true(equalIgnoreHash(template('a', 'x'), template('a')));
  const reordered = { spec: template('a').spec, metadata: template('a').metadata };
  t.true(equalIgnoreHash(reordered, template('a', 'y')));
  t.false(equalIgnoreHash(template('a'), template('b')));
});

// ---- restart, pause, resume

test('restart: the template annotated with the time in RFC 3339; refused when paused', (t) => {
  const now = new Date('2024-05-06T07:08:09.123Z');
  const d = restart(deployment(), now);
  const tpl = d.spec?.template as { metadata: { annotations: Record<string, string> } } | undefined;
  const annotations = tpl?.metadata.annotations ?? {};
  t.is(annotations[RESTARTED_AT], rfc3339Local(now));
  t.regex(rfc3339Local(now), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/);
  t.is(Date.parse(rfc3339Local(now)), Date.parse('2024-05-06T07:08:09Z'));
  t.throws(() => restart(deployment({ spec: { paused: true } }), now), {
    message: "can't restart paused deployment (run rollout resume first)",
  });
});

test('pause and resume: set spec.paused; already so is kubectl error', (t) => {
  t.is(setPaused(deployment(), true).spec?.paused, true);
  t.is(setPaused(deployment({ spec: { paused: true } }), false).spec?.paused, false);
  t.throws(() => setPaused(deployment({ spec: { paused: true } }), true), {
    instanceOf: CtlError,
    message: 'deployments.apps "web" is already paused',
  });
  t.throws(() => setPaused(deployment(), false), { message: 'deployments.apps "web" is not paused' });
});

test('-w takes kubectl spellings of a boolean', (t) => {
  t.false(parseWatchFlag('=false'));
  t.false(parseWatchFlag('false'));
  t.true(parseWatchFlag('=true'));
  t.throws(() => parseWatchFlag('deploy/web'));
});

// ---- the command line, in process

async function ctl(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const io: CtlIO = {
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
    },
    readStdin: async () => new Uint8Array(),
    stderrIsTTY: false,
    onInterrupt: () => () => {},
  };
  // Nothing listens here: a command that got as far as dialing fails fast.
  const code = await run(['--endpoints', '127.0.0.1:1', '--timeout', '300ms', ...argv], io);
  return { code, stdout, stderr };
}

test('command line: usage errors exit 2, wrong kinds exit 1, before any request', async (t) => {
  const bare = await ctl(['rollout']);
  t.is(bare.code, 2);
  const noName = await ctl(['rollout', 'status', 'deploy']);
  t.is(noName.code, 2, noName.stderr);
  t.regex(noName.stderr, /name the deployment/);
  const two = await ctl(['rollout', 'status', 'deploy/a', 'deploy/b']);
  t.is(two.code, 2, two.stderr);
  const badW = await ctl(['rollout', 'status', 'deploy/web', '-w=maybe']);
  t.is(badW.code, 2, badW.stderr);
  const pod = await ctl(['rollout', 'undo', 'pod/web']);
  t.is(pod.code, 1);
  t.is(pod.stderr, 'berthctl: no rollbacker has been implemented for Pod\n');
  const unknown = await ctl(['rollout', 'sideways', 'deploy/web']);
  t.is(unknown.code, 2);
});
