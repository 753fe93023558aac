// Services on a real 3-node cluster with the real Docker engine: one pod per node (required
// pod anti-affinity), each answering with its own name. Reached through every node's
// NodePort, the ClusterIP, a LoadBalancer's ingress addresses and every node's Ingress
// router, the answers must come from the pods of every node. Containers get the Services'
// environment variables. Loopback only: node addresses 127.0.K.i, cluster IPs in 127/8.
import test from 'ava';
import {
  AgentEnv,
  BUSYBOX,
  dockerExec,
  httpGet,
  type Json,
  NAMESPACE,
  waitFor,
} from '../support/agent-helpers.js';
import { containersWith } from '../support/agent-helpers.js';

let env: AgentEnv;

test.before(async () => {
  env = await AgentEnv.start(3);
});

test.after.always(async () => {
  await env?.destroy();
});

const APP = 'echo';

function echoDeployment(replicas: number): Json {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: APP, namespace: NAMESPACE },
    spec: {
      replicas,
      selector: { matchLabels: { app: APP } },
      template: {
        metadata: { labels: { app: APP } },
        spec: {
          terminationGracePeriodSeconds: 1,
          affinity: {
            podAntiAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: [
                { labelSelector: { matchLabels: { app: APP } }, topologyKey: 'kubernetes.io/hostname' },
              ],
            },
          },
          containers: [
            {
              name: 'web',
              image: BUSYBOX,
              imagePullPolicy: 'Never',
              command: ['sh', '-c', 'echo "$POD_NAME" > /tmp/index.html && exec httpd -f -p 8080 -h /tmp'],
              env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
              ports: [{ name: 'http', containerPort: 8080 }],
              readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
            },
          ],
        },
      },
    },
  };
}

function service(name: string, type: string, extra: Json = {}): Json {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NAMESPACE },
    spec: { type, selector: { app: APP }, ports: [{ name: 'web', port: 80, targetPort: 'http' }], ...extra },
  };
}

/** Which pods answer `count` GETs at host:port (with a Host header when given). */
async function answers(host: string, port: number, count: number, path = '/'): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    const r = await httpGet(host, port, path);
    if (r.status !== 200) throw new Error(`GET ${host}:${port}${path}: HTTP ${r.status} ${r.body}`);
    seen.add(r.body.trim());
  }
  return seen;
}

let pods: Json[] = [];

test.serial(
  'the Deployment has one ready pod on each node and its Service endpoints list all three',
  async (t) => {
    await env.api.create(echoDeployment(3));
    await env.api.create(service(APP, 'NodePort'));
    pods = await waitFor(
      'three ready echo pods',
      async () => {
        const list = (await env.api.list('pods', { namespace: NAMESPACE, labelSelector: `app=${APP}` }))
          .items as Json[];
        const ready = list.filter((p) =>
          (p.status?.conditions ?? []).some((c: Json) => c.type === 'Ready' && c.status === 'True'),
        );
        return ready.length === 3 ? ready : undefined;
      },
      90_000,
      500,
    );
    t.deepEqual(new Set(pods.map((p) => p.spec.nodeName)).size, 3);
    const ep = await waitFor(
      'endpoints with three ready addresses',
      async () => {
        const e = (await env.api.get('endpoints', NAMESPACE, APP)) as Json;
        return (e.subsets ?? []).flatMap((s: Json) => s.addresses ?? []).length === 3 ? e : undefined;
      },
      20_000,
    );
    t.is(ep.subsets[0].ports[0].name, 'web');
  },
);

test.serial('every node’s NodePort reaches the pods of every node', async (t) => {
  const svc = (await env.api.get('services', NAMESPACE, APP)) as Json;
  const nodePort = svc.spec.ports[0].nodePort as number;
  t.true(nodePort >= 30000 && nodePort <= 32767, `nodePort ${nodePort} allocated from 30000-32767`);
  const names = new Set(pods.map((p) => p.metadata.name));
  for (let i = 0; i < 3; i++) {
    const address = env.nodeAddress(i);
    const seen = await waitFor(
      `all three pods through ${address}:${nodePort}`,
      async () => {
        const s = await answers(address, nodePort, 9);
        return s.size === 3 ? s : undefined;
      },
      20_000,
      250,
    );
    t.deepEqual([...seen].sort(), [...names].sort(), `through ${address}:${nodePort}`);
  }
});

test.serial(
  'the ClusterIP reaches the pods of every node, and containers get the Service’s variables',
  async (t) => {
    const svc = (await env.api.get('services', NAMESPACE, APP)) as Json;
    const ip = svc.spec.clusterIP as string;
    t.regex(ip, /^127\./, 'a local cluster allocates cluster IPs inside 127/8');
    const seen = await waitFor(
      `all three pods through ${ip}:80`,
      async () => {
        const s = await answers(ip, 80, 9);
        return s.size === 3 ? s : undefined;
      },
      20_000,
      250,
    );
    t.deepEqual([...seen].sort(), pods.map((p) => p.metadata.name).sort());

    // Pods created after the Service see it in their environment, as the kubelet does.
    await env.api.delete('pods', NAMESPACE, pods[0].metadata.name, { gracePeriodSeconds: 0 });
    const replacement = await waitFor(
      'a replacement pod running',
      async () => {
        const list = (await env.api.list('pods', { namespace: NAMESPACE, labelSelector: `app=${APP}` }))
          .items as Json[];
        const known = new Set(pods.map((p) => p.metadata.name));
        return list.find((p) => !known.has(p.metadata.name) && p.status?.phase === 'Running');
      },
      60_000,
      500,
    );
    const [container] = await containersWith({
      'berth.io/pod-uid': replacement.metadata.uid,
      'berth.io/role': 'container',
    });
    t.truthy(container, 'the replacement pod has a container');
    const out = await dockerExec(container?.id ?? '', ['env']);
    t.true(out.stdout.includes(`ECHO_SERVICE_HOST=${ip}\n`), out.stdout);
    t.true(out.stdout.includes('ECHO_SERVICE_PORT=80\n'), out.stdout);
    t.true(out.stdout.includes(`ECHO_PORT_80_TCP=tcp://${ip}:80\n`), out.stdout);
    pods = await waitFor(
      'three ready echo pods again',
      async () => {
        const list = (await env.api.list('pods', { namespace: NAMESPACE, labelSelector: `app=${APP}` }))
          .items as Json[];
        const ready = list.filter(
          (p) =>
            !p.metadata.deletionTimestamp &&
            (p.status?.conditions ?? []).some((c: Json) => c.type === 'Ready' && c.status === 'True'),
        );
        return ready.length === 3 ? ready : undefined;
      },
      60_000,
      500,
    );
  },
);

test.serial('a LoadBalancer Service lists the node addresses and answers on each of them', async (t) => {
  await env.api.create(service('echo-lb', 'LoadBalancer'));
  const svc = await waitFor(
    'status.loadBalancer.ingress',
    async () => {
      const s = (await env.api.get('services', NAMESPACE, 'echo-lb')) as Json;
      return (s.status?.loadBalancer?.ingress ?? []).length === 3 ? s : undefined;
    },
    20_000,
  );
  const ips = (svc.status.loadBalancer.ingress as Json[]).map((i) => i.ip).sort();
  t.deepEqual(ips, [0, 1, 2].map((i) => env.nodeAddress(i)).sort());
  const nodePort = svc.spec.ports[0].nodePort as number;
  for (const ip of ips) {
    const seen = await waitFor(`answers at ${ip}:${nodePort}`, () => answers(ip, nodePort, 3), 20_000, 250);
    t.true(seen.size >= 1);
  }
});

test.serial('every node’s Ingress router routes by host and path, 404 when nothing matches', async (t) => {
  await env.api.create({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: 'echo', namespace: NAMESPACE },
    spec: {
      rules: [
        {
          host: 'echo.test',
          http: {
            paths: [
              { path: '/', pathType: 'Prefix', backend: { service: { name: APP, port: { name: 'web' } } } },
            ],
          },
        },
      ],
    },
  });
  const names = new Set(pods.map((p) => p.metadata.name));
  for (let i = 0; i < 3; i++) {
    const address = env.nodeAddress(i);
    const seen = await waitFor(
      `all three pods through the Ingress on ${address}`,
      async () => {
        const s = new Set<string>();
        for (let k = 0; k < 9; k++) {
          const r = await httpWithHost(address, 'echo.test', '/index.html');
          if (r.status !== 200) return undefined;
          s.add(r.body.trim());
        }
        return s.size === 3 ? s : undefined;
      },
      20_000,
      250,
    );
    t.deepEqual([...seen].sort(), [...names].sort());
    const miss = await httpWithHost(address, 'other.test', '/');
    t.is(miss.status, 404);
  }
  const ing = await waitFor(
    'the Ingress status listing the nodes',
    async () => {
      const o = (await env.api.get('ingresses', NAMESPACE, 'echo')) as Json;
      return (o.status?.loadBalancer?.ingress ?? []).length === 3 ? o : undefined;
    },
    20_000,
  );
  t.deepEqual(
    (ing.status.loadBalancer.ingress as Json[]).map((i) => i.ip).sort(),
    [0, 1, 2].map((i) => env.nodeAddress(i)).sort(),
  );
});

async function httpWithHost(
  address: string,
  host: string,
  path: string,
): Promise<{ status: number; body: string }> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port: 80, path, headers: { host }, timeout: 3000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}
