// The HorizontalPodAutoscaler kind and controller on an in-process API server, with a fake
// PodMetricsSource: validation with field paths and Kubernetes' defaults; a scale up that
// writes the Deployment's spec.replicas, the status and the SuccessfulRescale event; a
// periodic re-check that scales down; a missing request; kubectl's table and describe; and
// the Top-backed source that `berthctl top pods` shares.
import test from 'ava';
import pino from 'pino';
import { describeObject, printObjects } from '../../cmd/ctl/printers/index.js';
import { formatFieldError } from '../../pkg/api/errors.js';
import { kindByName } from '../../pkg/api/kinds.js';
import { parseSelector } from '../../pkg/api/labels.js';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import type { ApiObject } from '../../pkg/api/types.js';
import { validateObject } from '../../pkg/api/validation.js';
import { horizontalPodAutoscalerController } from '../../pkg/controller/hpa.js';
import { ControllerManager, DEFAULT_CONTROLLER_OPTIONS } from '../../pkg/controller/manager.js';
import type { PodMetrics, PodMetricsSource } from '../../pkg/controller/pod-metrics.js';
import { createTopPodMetricsSource } from '../../pkg/controller/pod-metrics-top.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const logger = pino({ level: 'silent' });
const HPA_KIND = kindByName('hpa');

/** A metrics source whose answers the test sets: millicores per pod name. */
class FakeMetrics implements PodMetricsSource {
  cpu = new Map<string, number>();
  calls = 0;
  async podMetrics(_namespace: string): Promise<PodMetrics[]> {
    this.calls++;
    return [...this.cpu].map(([pod, m]) => ({
      pod,
      timestamp: Date.now(),
      windowMs: 1000,
      containers: [{ name: 'app', cpuMillicores: m, memoryBytes: 64 * 2 ** 20 }],
    }));
  }
}

async function setup(t: import('ava').ExecutionContext, metrics: PodMetricsSource) {
  const api = new ApiServer({ kv: createLocalStore(), logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  const manager = new ControllerManager([horizontalPodAutoscalerController], logger, {
    ...DEFAULT_CONTROLLER_OPTIONS,
    hpaSyncPeriodMs: 100,
    podMetrics: metrics,
  });
  await manager.start(api);
  t.teardown(() => manager.stop());
  return api;
}

const template = (cpu: string | null) => ({
  metadata: { labels: { app: 'web' } },
  spec: {
    containers: [{ name: 'app', image: 'nginx', ...(cpu ? { resources: { requests: { cpu } } } : {}) }],
  },
});

function deployment(replicas: number, cpu: string | null = '500m') {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'default' },
    spec: { replicas, selector: { matchLabels: { app: 'web' } }, template: template(cpu) },
  };
}

/** A Running pod, Ready for an hour (no cpu initialization rule applies). */
async function addPod(api: ApiServer, name: string, cpu: string | null = '500m') {
  const created = await api.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { app: 'web' } },
    spec: { ...template(cpu).spec, nodeName: 'n1' },
  });
  const hourAgo = new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z');
  await api.update(
    {
      ...created,
      status: {
        phase: 'Running',
        startTime: hourAgo,
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: hourAgo }],
      },
    },
    {},
    true,
  );
}

function hpa(extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: 'web', namespace: 'default' },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' },
      minReplicas: 1,
      maxReplicas: 10,
      metrics: [
        {
          type: 'Resource',
          resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } },
        },
      ],
      ...extra,
    },
  };
}

async function waitFor<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const condition = (o: ApiObject, type: string) =>
  (
    (o.status?.conditions as
      | { type: string; status: string; reason: string; message: string }[]
      | undefined) ?? []
  ).find((c) => c.type === type);

test('the kind: hpa short name, autoscaling/v2, status subresource', (t) => {
  t.like(HPA_KIND, {
    kind: 'HorizontalPodAutoscaler',
    apiVersion: 'autoscaling/v2',
    resource: 'horizontalpodautoscalers',
    namespaced: true,
    statusSubresource: true,
  });
});

test('validation: field paths, Kubernetes messages, other metric types refused', (t) => {
  const errs = (spec: Record<string, unknown>) =>
    validateObject({ ...hpa(), spec: { ...hpa().spec, ...spec } }).map(formatFieldError);
  t.deepEqual(errs({}), []);
  t.deepEqual(errs({ minReplicas: 5, maxReplicas: 3 }), [
    'spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`',
  ]);
  const noMax = hpa();
  delete (noMax.spec as Record<string, unknown>).maxReplicas;
  t.deepEqual(validateObject(noMax).map(formatFieldError), ['spec.maxReplicas: Required value']);
  t.true(
    errs({ metrics: [{ type: 'Pods', pods: {} }] }).includes(
      'spec.metrics[0].type: Invalid value: "Pods": not supported: Berth autoscales on Resource metrics (cpu, memory) only',
    ),
  );
  t.deepEqual(
    errs({ metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization' } } }] }),
    [
      'spec.metrics[0].resource.target.averageUtilization: Required value: must set averageUtilization for type Utilization',
    ],
  );
  t.regex(
    errs({
      metrics: [
        {
          type: 'Resource',
          resource: { name: 'gpu', target: { type: 'Utilization', averageUtilization: 5 } },
        },
      ],
    })[0] ?? '',
    /^spec\.metrics\[0\]\.resource\.name: Unsupported value: "gpu"/,
  );
  t.regex(
    errs({ scaleTargetRef: { kind: 'StatefulSet', name: 'db' } })[0] ?? '',
    /^spec\.scaleTargetRef\.kind: .*not supported/,
  );
  t.deepEqual(errs({ behavior: { scaleUp: { policies: [] } } }), [
    'spec.behavior.scaleUp.policies: Required value: must specify at least one Policy',
  ]);
  t.is(
    errs({ behavior: { scaleDown: { policies: [{ type: 'Pods', value: 0, periodSeconds: 2000 }] } } }).length,
    2,
  );
});

test('defaults: minReplicas 1, cpu 80%, and a behavior given is completed', async (t) => {
  const api = await setup(t, new FakeMetrics());
  const bare = hpa();
  const spec = bare.spec as Record<string, unknown>;
  delete spec.minReplicas;
  delete spec.metrics;
  spec.behavior = { scaleDown: { stabilizationWindowSeconds: 60 } };
  const created = await api.create(bare);
  t.is(created.spec?.minReplicas, 1);
  t.deepEqual(created.spec?.metrics, [
    { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } },
  ]);
  t.deepEqual(created.spec?.behavior, {
    scaleUp: {
      stabilizationWindowSeconds: 0,
      selectPolicy: 'Max',
      policies: [
        { type: 'Pods', value: 4, periodSeconds: 15 },
        { type: 'Percent', value: 100, periodSeconds: 15 },
      ],
    },
    scaleDown: {
      stabilizationWindowSeconds: 60,
      selectPolicy: 'Max',
      policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }],
    },
  });
});

test('scales a Deployment up: spec.replicas, status, conditions, SuccessfulRescale', async (t) => {
  const metrics = new FakeMetrics();
  const api = await setup(t, metrics);
  await api.create(deployment(2));
  await addPod(api, 'web-a');
  await addPod(api, 'web-b');
  metrics.cpu.set('web-a', 500).set('web-b', 500); // 100% of 500m, target 50%
  await api.create(hpa());
  const d = await waitFor(
    'the deployment to scale to 4',
    () => api.get('deployments', 'default', 'web'),
    (d) => d.spec?.replicas === 4,
  );
  t.is(d.spec?.replicas, 4);
  const h = await waitFor(
    'the hpa status',
    () => api.get('horizontalpodautoscalers', 'default', 'web'),
    (h) => h.status?.desiredReplicas === 4 && h.status?.lastScaleTime !== undefined,
  );
  t.deepEqual(h.status?.currentMetrics, [
    {
      type: 'Resource',
      resource: { name: 'cpu', current: { averageUtilization: 100, averageValue: '500m' } },
    },
  ]);
  t.like(condition(h, 'AbleToScale'), { status: 'True', reason: 'SucceededRescale' });
  t.like(condition(h, 'ScalingActive'), {
    status: 'True',
    reason: 'ValidMetricFound',
    message:
      'the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)',
  });
  t.like(condition(h, 'ScalingLimited'), { status: 'False', reason: 'DesiredWithinRange' });
  const events = await waitFor(
    'the SuccessfulRescale event',
    async () => (await api.list('events', { namespace: 'default' })).items,
    (es) => es.some((e) => e.reason === 'SuccessfulRescale'),
  );
  const e = events.find((x) => x.reason === 'SuccessfulRescale');
  t.is(e?.message, 'New size: 4; reason: cpu resource utilization (percentage of request) above target');
  t.is(e?.type, 'Normal');
  t.is((e?.involvedObject as { kind?: string } | undefined)?.kind, 'HorizontalPodAutoscaler');

  // kubectl's table and describe.
  const kind = HPA_KIND;
  if (!kind) throw new Error('no hpa kind');
  const now = Date.now();
  const table = printObjects(kind, [h], 'table', { now });
  t.regex(table, /^NAME\s+REFERENCE\s+TARGETS\s+MINPODS\s+MAXPODS\s+REPLICAS\s+AGE\n/);
  t.regex(table, /\nweb\s+Deployment\/web\s+cpu: 100%\/50%\s+1\s+10\s+\d+\s+\S+$/);
  const text = describeObject(kind, h, { events, now });
  t.regex(text, /Reference:\s+Deployment\/web\n/);
  t.regex(
    text,
    /Metrics:\s+\( current \/ target \)\n\s+resource cpu on pods {2}\(as a percentage of request\):\s+100% \(500m\) \/ 50%\n/,
  );
  t.regex(text, /Min replicas:\s+1\nMax replicas:\s+10\n/);
  t.regex(text, /Deployment pods:\s+\d+ current \/ 4 desired\n/);
  t.regex(text, /Conditions:\n\s+Type\s+Status\s+Reason\s+Message\n/);
  t.regex(text, /ScalingActive\s+True\s+ValidMetricFound\s+the HPA was able/);
  t.regex(text, /Normal\s+SuccessfulRescale\s+.*New size: 4; reason: cpu resource utilization/);
});

test('re-checks every period and scales down (no window), within min', async (t) => {
  const metrics = new FakeMetrics();
  const api = await setup(t, metrics);
  await api.create(deployment(4));
  for (const n of ['a', 'b', 'c', 'd']) {
    await addPod(api, `web-${n}`);
    metrics.cpu.set(`web-${n}`, 250); // 50%: at target
  }
  await api.create(hpa({ minReplicas: 2, behavior: { scaleDown: { stabilizationWindowSeconds: 0 } } }));
  await waitFor(
    'a first status',
    () => api.get('horizontalpodautoscalers', 'default', 'web'),
    (h) => h.status?.desiredReplicas === 4,
  );
  t.is((await api.get('deployments', 'default', 'web')).spec?.replicas, 4);
  // The load drops to 10%: ceil(0.2 × 4) = 1, held at minReplicas 2.
  for (const n of ['a', 'b', 'c', 'd']) metrics.cpu.set(`web-${n}`, 50);
  await waitFor(
    'the deployment to scale down to 2',
    () => api.get('deployments', 'default', 'web'),
    (d) => d.spec?.replicas === 2,
  );
  const h = await waitFor(
    'ScalingLimited',
    () => api.get('horizontalpodautoscalers', 'default', 'web'),
    (h) => condition(h, 'ScalingLimited')?.reason === 'TooFewReplicas',
  );
  t.like(condition(h, 'ScalingLimited'), { status: 'True' });
  t.true(metrics.calls >= 2);
});

test('a container without a cpu request: ScalingActive False, nothing scaled', async (t) => {
  const metrics = new FakeMetrics();
  const api = await setup(t, metrics);
  await api.create(deployment(1, null));
  await addPod(api, 'web-1', null);
  metrics.cpu.set('web-1', 900);
  await api.create(hpa());
  const h = await waitFor(
    'ScalingActive False',
    () => api.get('horizontalpodautoscalers', 'default', 'web'),
    (h) => condition(h, 'ScalingActive')?.status === 'False',
  );
  t.like(condition(h, 'ScalingActive'), {
    reason: 'FailedGetResourceMetric',
    message:
      'the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu in container app of Pod web-1',
  });
  t.is((await api.get('deployments', 'default', 'web')).spec?.replicas, 1);
  const kind = HPA_KIND;
  if (!kind) throw new Error('no hpa kind');
  t.regex(printObjects(kind, [h], 'table', { now: Date.now() }), /cpu: <unknown>\/50%/);
});

test('a missing target: AbleToScale False FailedGetScale', async (t) => {
  const api = await setup(t, new FakeMetrics());
  await api.create(hpa());
  const h = await waitFor(
    'AbleToScale False',
    () => api.get('horizontalpodautoscalers', 'default', 'web'),
    (h) => condition(h, 'AbleToScale')?.status === 'False',
  );
  t.like(condition(h, 'AbleToScale'), {
    reason: 'FailedGetScale',
    message: `the HPA controller was unable to get the target's current scale: deployments.apps "web" not found`,
  });
});

test('the Top-backed source: what `berthctl top pods` reports, selected by labels, in millicores', async (t) => {
  const podObj = (name: string, app: string): ApiObject => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', labels: { app } },
  });
  let asked: unknown;
  const source = createTopPodMetricsSource({
    top: {
      async top(o) {
        asked = o;
        return {
          pods: [
            {
              namespace: 'shop',
              name: 'web-1',
              node: 'n1',
              containers: [{ name: 'app', cpuCores: 0.25, memoryBytes: 1024 }],
            },
            {
              namespace: 'shop',
              name: 'db-1',
              node: 'n2',
              containers: [{ name: 'db', cpuCores: 1, memoryBytes: 2048 }],
            },
          ],
        };
      },
    },
    listPods: () => [podObj('web-1', 'web'), podObj('db-1', 'db')],
    now: () => 42,
  });
  const got = await source.podMetrics('shop', parseSelector('app=web'));
  t.like(asked, { namespace: 'shop' });
  t.deepEqual(got, [
    {
      pod: 'web-1',
      timestamp: 42,
      windowMs: 1000,
      containers: [{ name: 'app', cpuMillicores: 250, memoryBytes: 1024 }],
    },
  ]);
});
