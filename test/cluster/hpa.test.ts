// The autoscaler with real load on a real 3-node cluster and the real Docker engine: a
// Deployment whose pods burn CPU on each HTTP request (a busybox CGI loop, capped at 200m so
// the test stays light) is driven through its Service's cluster IP. The HPA (50 % of a 100m
// request) must scale it up, report its metrics and conditions, record events, and scale it
// back to its minimum once the load stops (a 5 s scale-down stabilization window here; the
// nodes re-read metrics every 2 s).
import http from 'node:http';
import test from 'ava';
import { AgentEnv, BUSYBOX, type Json, NAMESPACE, waitFor } from '../support/agent-helpers.js';

let env: AgentEnv;

test.before(async () => {
  env = await AgentEnv.start(3, ['--hpa-sync-period', '2']);
});

test.after.always(async () => {
  await env?.destroy();
});

const APP = 'burner';
// The CGI script: headers end in CRLF (busybox httpd passes them through as written), then
// a busy loop of about 50 ms of one core.
const BURN = [
  '#!/bin/sh',
  "printf 'Content-Type: text/plain\\r\\n\\r\\n'",
  'i=0',
  'while [ $i -lt 20000 ]; do i=$((i+1)); done',
  'echo burned',
  '',
].join('\n');
const CGI = [
  'mkdir -p /www/cgi-bin',
  'printf "%s" "$BURN" > /www/cgi-bin/burn',
  'chmod +x /www/cgi-bin/burn',
  'echo ok > /www/index.html',
  'exec httpd -f -p 8080 -h /www',
].join(' && ');

const deployment = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: APP, namespace: NAMESPACE },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: APP } },
    template: {
      metadata: { labels: { app: APP } },
      spec: {
        terminationGracePeriodSeconds: 0,
        containers: [
          {
            name: 'web',
            image: BUSYBOX,
            imagePullPolicy: 'Never',
            command: ['sh', '-c', CGI],
            env: [{ name: 'BURN', value: BURN }],
            ports: [{ name: 'http', containerPort: 8080 }],
            resources: { requests: { cpu: '100m', memory: '16Mi' }, limits: { cpu: '200m' } },
            readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
          },
        ],
      },
    },
  },
};

const service = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: APP, namespace: NAMESPACE },
  spec: { selector: { app: APP }, ports: [{ port: 80, targetPort: 'http' }] },
};

const hpa = {
  apiVersion: 'autoscaling/v2',
  kind: 'HorizontalPodAutoscaler',
  metadata: { name: APP, namespace: NAMESPACE },
  spec: {
    scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: APP },
    minReplicas: 1,
    maxReplicas: 4,
    metrics: [
      {
        type: 'Resource',
        resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } },
      },
    ],
    behavior: { scaleDown: { stabilizationWindowSeconds: 5 } },
  },
};

function get(host: string, port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path, agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** `workers` clients requesting the CPU-burning path back to back until stopped. */
function load(host: string, port: number, workers: number) {
  let stop = false;
  const counts = { ok: 0, failed: 0 };
  const loops = Array.from({ length: workers }, async () => {
    while (!stop) {
      const status = await get(host, port, '/cgi-bin/burn');
      if (status === 200) counts.ok++;
      else counts.failed++;
    }
  });
  return {
    counts,
    async stop() {
      stop = true;
      await Promise.all(loops);
    },
  };
}

const replicasOf = async (): Promise<number> =>
  ((await env.api.get('deployments', NAMESPACE, APP)) as Json).spec.replicas as number;

test('CPU load through the Service scales the Deployment up, and back down when it stops', async (t) => {
  await env.create('deployments', deployment);
  await env.create('services', service);
  t.teardown(() => env.api.delete('horizontalpodautoscalers', NAMESPACE, APP).catch(() => undefined));
  const svc = (await env.api.get('services', NAMESPACE, APP)) as Json;
  const clusterIP = svc.spec.clusterIP as string;
  await waitFor(
    'the service to answer',
    async () => (await get(clusterIP, 80, '/')) === 200 || undefined,
    45_000,
  );
  await env.create('horizontalpodautoscalers', hpa);

  // Idle: the autoscaler reads the metrics and keeps the minimum.
  const idle = await waitFor(
    'the autoscaler to read an idle utilization',
    async () => {
      const h = (await env.api.get('horizontalpodautoscalers', NAMESPACE, APP)) as Json;
      return h.status?.currentMetrics?.[0]?.resource?.current?.averageUtilization !== undefined
        ? h
        : undefined;
    },
    30_000,
  );
  t.true(idle.status.currentMetrics[0].resource.current.averageUtilization < 50);
  t.is(await replicasOf(), 1);

  // Load: each request burns CPU; three clients keep the pods above 50 % of their request.
  const traffic = load(clusterIP, 80, 3);
  let peak = 1;
  try {
    // The status the autoscaler wrote when it decided to grow (read before a later pass
    // replaces it): the metric above target, and the conditions.
    const up = await waitFor(
      'the autoscaler to scale up',
      async () => {
        peak = Math.max(peak, await replicasOf());
        const h = (await env.api.get('horizontalpodautoscalers', NAMESPACE, APP)) as Json;
        return h.status?.desiredReplicas >= 2 ? h : undefined;
      },
      60_000,
      250,
    );
    peak = Math.max(peak, await replicasOf());
    t.true(peak >= 2, `the Deployment grew: ${peak} replicas`);
    const cpu = up.status.currentMetrics[0].resource;
    t.is(cpu.name, 'cpu');
    t.true(cpu.current.averageUtilization > 50, `utilization ${cpu.current.averageUtilization}%`);
    t.regex(cpu.current.averageValue, /^\d+m$/);
    const condition = (type: string) => up.status.conditions.find((c: Json) => c.type === type);
    t.is(condition('AbleToScale')?.status, 'True');
    t.is(condition('ScalingActive')?.status, 'True');
    t.truthy(condition('ScalingLimited'));
    // The new pods come up behind the Service and serve too.
    await waitFor(
      'the new pods to be ready',
      async () => {
        const pods = await env.api.list('pods', { namespace: NAMESPACE, labelSelector: `app=${APP}` });
        const ready = pods.items.filter((p: Json) =>
          (p.status?.conditions ?? []).some((c: Json) => c.type === 'Ready' && c.status === 'True'),
        );
        return ready.length >= 2 || undefined;
      },
      45_000,
    );
  } finally {
    await traffic.stop();
  }
  t.log(`peak ${peak} replicas; requests ${JSON.stringify(traffic.counts)}`);
  t.true(traffic.counts.ok > 0);
  t.is(traffic.counts.failed, 0, 'no request failed while the Deployment grew');

  // No load: back to the minimum once the 5 s window has passed.
  await waitFor(
    'the autoscaler to scale back down to 1',
    async () => (await replicasOf()) === 1 || undefined,
    90_000,
  );
  const events = await env.api.list('events', {
    namespace: NAMESPACE,
    fieldSelector: `involvedObject.name=${APP}`,
  });
  const rescales = events.items
    .filter(
      (e: Json) => e.involvedObject.kind === 'HorizontalPodAutoscaler' && e.reason === 'SuccessfulRescale',
    )
    .map((e: Json) => e.message as string);
  t.true(
    rescales.some((m) =>
      /New size: \d+; reason: cpu resource utilization \(percentage of request\) above target/.test(m),
    ),
    rescales.join('\n'),
  );
  t.true(
    rescales.some((m) => /New size: 1; reason: All metrics below target/.test(m)),
    rescales.join('\n'),
  );
});
