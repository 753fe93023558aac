// The scheduler and controllers run on the Raft leader only: a Deployment placed and kept by
// one leader is taken over by the next when leadership moves, from the store alone, with no
// duplicate pods; and only the current leader's controllers write.
import test from 'ava';
import { createClient } from '../../pkg/client/client.js';
import { AgentEnv, isReady, type Json, NAMESPACE, waitFor } from '../support/agent-helpers.js';

let env: AgentEnv;

test.before(async () => {
  env = await AgentEnv.start(3);
});

test.after.always(async () => {
  await env?.api.delete('deployments', NAMESPACE, 'steady').catch(() => undefined);
  await env?.destroy();
});

const deployment = (replicas: number) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'steady', namespace: NAMESPACE },
  spec: {
    replicas,
    selector: { matchLabels: { app: 'steady' } },
    template: {
      metadata: { labels: { app: 'steady' } },
      spec: {
        terminationGracePeriodSeconds: 2,
        containers: [
          {
            name: 'web',
            image: 'berth/busybox:test',
            imagePullPolicy: 'Never',
            command: ['sh', '-c', 'echo ok > /tmp/index.html && exec httpd -f -p 8080 -h /tmp'],
            ports: [{ containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
          },
        ],
      },
    },
  },
});

async function steadyPods(): Promise<Json[]> {
  const list = await env.api.list('pods', { namespace: NAMESPACE, labelSelector: 'app=steady' });
  return list.items.filter((p: Json) => !p.metadata.deletionTimestamp);
}

async function leaderIndex(): Promise<number> {
  const client = createClient({ endpoints: env.cluster.endpoints(), requestTimeoutMs: 10_000 });
  try {
    return await waitFor(
      'a leader',
      async () => {
        const all = await client.cluster.statusAll();
        const leader = all.find((s) => s.status && s.status.leader === s.status.header.memberId);
        return leader ? env.cluster.endpoints().indexOf(leader.endpoint) : undefined;
      },
      20_000,
    );
  } finally {
    await client.close();
  }
}

test.serial(
  'a new leader takes the Deployment over from the store: no duplicates, scaling works',
  async (t) => {
    await env.api.apply(deployment(4));
    await waitFor(
      '4 ready pods',
      async () => ((await steadyPods()).filter(isReady).length === 4 ? true : undefined),
      60_000,
    );
    const before = (await steadyPods()).map((p) => p.metadata.name).sort();

    const from = await leaderIndex();
    const to = (from + 1) % 3;
    const client = createClient({ endpoints: env.cluster.endpoints() });
    const members = await client.cluster.memberList();
    const target = members.members.find((m) => m.name === env.nodeName(to));
    // On a busy machine a transfer may not finish within the node's own wait: ask again.
    await waitFor(
      'leadership to move',
      async () => client.cluster.moveLeader(target?.id as string).then(() => true),
      60_000,
    );
    await client.close();
    t.is(await leaderIndex(), to);
    await waitFor(
      'the new leader to start its controllers',
      async () => ((await env.logLines(to, 'leading: controllers started')).length > 0 ? true : undefined),
      15_000,
    );
    await waitFor(
      'the old leader to stop its controllers',
      async () =>
        (await env.logLines(from, 'not leading: controllers stopped')).length > 0 ? true : undefined,
      15_000,
    );

    // For a few seconds under the new leader, the same four pods, no more.
    const deadline = Date.now() + 4000;
    while (Date.now() < deadline) {
      const now = (await steadyPods()).map((p) => p.metadata.name).sort();
      t.deepEqual(now, before, 'the new leader adopts the pods as they are');
      await new Promise((r) => setTimeout(r, 250));
    }

    await env.api.apply(deployment(6));
    const pods = await waitFor(
      '6 ready pods under the new leader',
      async () => {
        const p = await steadyPods();
        return p.filter(isReady).length === 6 && p.length === 6 ? p : undefined;
      },
      60_000,
    );
    t.is(pods.length, 6);
    const rs = await env.api.list('replicasets', { namespace: NAMESPACE, labelSelector: 'app=steady' });
    t.is(rs.items.length, 1, 'one ReplicaSet: the new leader found the old one');
  },
);
