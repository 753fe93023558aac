// The agent with the real Docker engine, part one: what a pod looks like once it runs.
// A 3-node cluster with the agent on; pods are created already bound (spec.nodeName: there is
// no scheduler yet) and checked through their status, the engine (docker inspect/exec) and
// HTTP to their published nodeAddress:hostPort. Node registration and heartbeats are here too.
// Crash loops, probes that restart, termination and agent restarts are in
// agent-lifecycle.test.ts (its own cluster, so the two files run side by side).
import os from 'node:os';
import test from 'ava';
import {
  AgentEnv,
  BUSYBOX,
  containerIdOf,
  conditionOf,
  dockerExec,
  holds,
  httpGet,
  inspectContainer,
  isReady,
  type Json,
  NAMESPACE,
  PodRecorder,
  podManifest,
  shContainer,
  statusOf,
  UNPULLABLE,
  waitFor,
} from '../support/agent-helpers.js';

const NODE_LABEL = ['berth.io/test-zone', 'zone-a'] as const;
const TAINT = { key: 'berth.io/dedicated', value: 'agent-test', effect: 'NoSchedule' };

let env: AgentEnv;

test.before(async () => {
  env = await AgentEnv.start(3, [
    '--node-labels',
    `${NODE_LABEL[0]}=${NODE_LABEL[1]}`,
    '--register-with-taints',
    `${TAINT.key}=${TAINT.value}:${TAINT.effect}`,
    '--heartbeat-interval',
    '1000',
  ]);
});

test.after.always(async () => {
  await env?.destroy();
});

/** Lines of `env` output as a map. */
function envMap(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) m.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return m;
}

test.serial(
  'every node registers its Node (capacity, labels, taints, Ready, address) and renews its Lease',
  async (t) => {
    const nodes = (await env.api.list('nodes')).items as Json[];
    t.deepEqual(nodes.map((n) => n.metadata.name).sort(), ['n1', 'n2', 'n3']);
    const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch as string] ?? process.arch;
    for (let i = 0; i < 3; i++) {
      const name = env.nodeName(i);
      // Ready may be written a moment after the object is created.
      const node = await waitFor(`node ${name} Ready`, async () => {
        const n = (await env.api.get('nodes', undefined, name)) as Json;
        return conditionOf(n, 'Ready')?.status === 'True' ? n : undefined;
      });
      const s = node.status;
      for (const key of ['capacity', 'allocatable']) {
        t.is(s[key].cpu, String(os.cpus().length), `${name} ${key}.cpu`);
        t.is(s[key].memory, `${Math.floor(os.totalmem() / 1024)}Ki`, `${name} ${key}.memory`);
        t.is(s[key].pods, '110', `${name} ${key}.pods`);
      }
      const labels = node.metadata.labels;
      t.is(labels['kubernetes.io/hostname'], name);
      t.is(labels['kubernetes.io/os'], 'linux');
      t.is(labels['kubernetes.io/arch'], arch);
      t.is(labels[NODE_LABEL[0]], NODE_LABEL[1], 'the --node-labels label');
      t.deepEqual(node.spec.taints, [TAINT], 'the --register-with-taints taint');
      t.deepEqual(
        s.addresses.find((a: Json) => a.type === 'InternalIP'),
        { type: 'InternalIP', address: env.nodeAddress(i) },
      );
    }

    // The first heartbeat, right after the Node status, creates the Lease.
    const waited = Date.now();
    for (let i = 0; i < 3; i++) {
      await waitFor(`the Lease of ${env.nodeName(i)}`, () =>
        env.api.get('leases', 'berth-node-lease', env.nodeName(i)),
      );
    }
    t.log(`every Lease exists ${Date.now() - waited} ms after every Node was Ready`);
    // Each Lease's renewTime moves about once a second (--heartbeat-interval 1000).
    const seen = new Map<string, { renewTime: string; at: number }[]>();
    const started = Date.now();
    while (Date.now() - started < 4500) {
      for (let i = 0; i < 3; i++) {
        const name = env.nodeName(i);
        const lease = (await env.api.get('leases', 'berth-node-lease', name)) as Json;
        t.is(lease.spec.holderIdentity, name);
        const list = seen.get(name) ?? [];
        if (list.at(-1)?.renewTime !== lease.spec.renewTime) {
          list.push({ renewTime: lease.spec.renewTime, at: Date.now() });
        }
        seen.set(name, list);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const [name, list] of seen) {
      t.true(list.length >= 4, `${name}: renewTime changed ${list.length - 1} times in 4.5 s`);
      const times = list.map((x) => Date.parse(x.renewTime));
      for (let k = 1; k < times.length; k++) {
        const gap = (times[k] as number) - (times[k - 1] as number);
        t.true(gap > 0 && gap < 2500, `${name}: renewTime gap ${gap} ms`);
      }
    }
  },
);

test.serial(
  'a pod runs: sandbox and container, Ready by an HTTP readiness probe, served at its endpoint',
  async (t) => {
    await env.create('configmaps', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'web-content', namespace: NAMESPACE },
      data: { 'index.html': '<h1>hello from berth</h1>\n' },
    });
    await env.createPod(
      podManifest(
        'web',
        'n1',
        [
          {
            name: 'httpd',
            image: BUSYBOX,
            imagePullPolicy: 'Never',
            command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
            ports: [{ name: 'http', containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
            volumeMounts: [{ name: 'content', mountPath: '/www' }],
          },
        ],
        { volumes: [{ name: 'content', configMap: { name: 'web-content' } }] },
      ),
    );
    const pod = await env.waitRunningReady('web');
    t.is(pod.status.phase, 'Running');
    t.is(conditionOf(pod, 'ContainersReady')?.status, 'True');
    t.is(pod.status.hostIP, env.nodeAddress(0));
    t.true(statusOf(pod, 'httpd').ready);
    t.truthy(statusOf(pod, 'httpd').state.running?.startedAt);

    const [ep] = pod.status.endpoints as Json[];
    t.is(pod.status.endpoints.length, 1);
    t.like(ep, { name: 'http', containerPort: 8080, protocol: 'TCP', hostIP: env.nodeAddress(0) });
    t.true(ep.hostPort >= 40000 && ep.hostPort <= 44999, `hostPort ${ep.hostPort} in the default range`);
    const res = await httpGet(ep.hostIP, ep.hostPort, '/');
    t.is(res.status, 200);
    t.is(res.body, '<h1>hello from berth</h1>\n');

    const uid = pod.metadata.uid as string;
    const engine = await env.podContainers(uid);
    const sandbox = engine.filter((c) => c.labels['berth.io/role'] === 'sandbox');
    const containers = engine.filter((c) => c.labels['berth.io/role'] === 'container');
    t.is(sandbox.length, 1, 'one sandbox');
    t.is(containers.length, 1, 'one container');
    t.is(sandbox[0]?.state, 'running');
    t.is(containers[0]?.state, 'running');
    t.is(containers[0]?.id, containerIdOf(pod, 'httpd'), 'status names the engine container');
    t.like(containers[0]?.labels, {
      'berth.io/managed-by': 'berth',
      'berth.io/cluster': env.id,
      'berth.io/node': 'n1',
      'berth.io/pod-uid': uid,
      'berth.io/pod-name': 'web',
      'berth.io/pod-namespace': NAMESPACE,
      'berth.io/container': 'httpd',
    });
    t.like(sandbox[0]?.labels, {
      'berth.io/node': 'n1',
      'berth.io/pod-uid': uid,
      'berth.io/pod-name': 'web',
    });
    // The container lives in the sandbox's network namespace; the port is published on the node's address.
    const inspected = await inspectContainer(containers[0]?.id as string);
    t.is(inspected.HostConfig.NetworkMode, `container:${sandbox[0]?.id}`);
    const sandboxInspect = await inspectContainer(sandbox[0]?.id as string);
    t.deepEqual(sandboxInspect.HostConfig.PortBindings['8080/tcp'], [
      { HostIp: env.nodeAddress(0), HostPort: String(ep.hostPort) },
    ]);
  },
);

test.serial('two containers of a pod share the network namespace and an emptyDir volume', async (t) => {
  await env.createPod(
    podManifest(
      'duo',
      'n2',
      [
        shContainer(
          'server',
          'mkdir -p /tmp/www && echo shared-net > /tmp/www/index.html && echo from-server > /shared/server.txt && exec httpd -f -p 8080 -h /tmp/www',
          { volumeMounts: [{ name: 'scratch', mountPath: '/shared' }] },
        ),
        shContainer(
          'client',
          'until wget -qO- http://127.0.0.1:8080/; do sleep 0.2; done; echo from-client > /scratch/client.txt; exec sleep 3600',
          { volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }] },
        ),
      ],
      { volumes: [{ name: 'scratch', emptyDir: {} }], terminationGracePeriodSeconds: 1 },
    ),
  );
  const pod = await env.waitRunningReady('duo');
  const server = containerIdOf(pod, 'server') as string;
  const client = containerIdOf(pod, 'client') as string;
  t.not(server, client);

  // localhost in one container is the other's: one network namespace.
  const wget = await dockerExec(client, ['wget', '-qO-', 'http://127.0.0.1:8080/']);
  t.is(wget.code, 0, wget.stderr);
  t.is(wget.stdout, 'shared-net\n');
  // The emptyDir is one directory for both, each under its own mount path.
  const fromServer = await waitFor('the server to write its file', async () => {
    const r = await dockerExec(client, ['cat', '/scratch/server.txt']);
    return r.code === 0 ? r.stdout : undefined;
  });
  t.is(fromServer, 'from-server\n');
  const fromClient = await waitFor('the client to write its file', async () => {
    const r = await dockerExec(server, ['cat', '/shared/client.txt']);
    return r.code === 0 ? r.stdout : undefined;
  });
  t.is(fromClient, 'from-client\n');
});

test.serial('env: literal, ConfigMap and Secret keys, field refs, envFrom with a prefix', async (t) => {
  await env.create('configmaps', {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'env-config', namespace: NAMESPACE },
    data: { COLOR: 'blue', SIZE: 'large' },
  });
  await env.create('secrets', {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'env-secret', namespace: NAMESPACE },
    data: { PASSWORD: Buffer.from('hunter2').toString('base64') },
  });
  await env.createPod(
    podManifest(
      'envy',
      'n3',
      [
        shContainer('main', 'exec sleep 3600', {
          env: [
            { name: 'LITERAL', value: 'hello world' },
            { name: 'FROM_CM', valueFrom: { configMapKeyRef: { name: 'env-config', key: 'COLOR' } } },
            { name: 'FROM_SECRET', valueFrom: { secretKeyRef: { name: 'env-secret', key: 'PASSWORD' } } },
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
            { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
          ],
          envFrom: [{ prefix: 'CM_', configMapRef: { name: 'env-config' } }],
        }),
      ],
      { terminationGracePeriodSeconds: 1 },
    ),
  );
  const pod = await env.waitRunningReady('envy');
  const r = await dockerExec(containerIdOf(pod, 'main') as string, ['env']);
  t.is(r.code, 0, r.stderr);
  const vars = envMap(r.stdout);
  t.is(vars.get('LITERAL'), 'hello world');
  t.is(vars.get('FROM_CM'), 'blue');
  t.is(vars.get('FROM_SECRET'), 'hunter2');
  t.is(vars.get('POD_NAME'), 'envy');
  t.is(vars.get('POD_NAMESPACE'), NAMESPACE);
  t.is(vars.get('NODE_NAME'), 'n3');
  t.truthy(pod.status.podIP, 'the pod has an IP');
  t.is(vars.get('POD_IP'), pod.status.podIP);
  t.is(vars.get('CM_COLOR'), 'blue');
  t.is(vars.get('CM_SIZE'), 'large');
});

test.serial('resources.limits cpu 500m and memory 64Mi reach the engine', async (t) => {
  await env.createPod(
    podManifest(
      'limited',
      'n1',
      [
        shContainer('main', 'exec sleep 3600', {
          resources: { limits: { cpu: '500m', memory: '64Mi' } },
        }),
      ],
      { terminationGracePeriodSeconds: 1 },
    ),
  );
  const pod = await env.waitRunningReady('limited');
  const c = await inspectContainer(containerIdOf(pod, 'main') as string);
  t.is(c.HostConfig.NanoCpus, 500_000_000);
  t.is(c.HostConfig.Memory, 67_108_864);
  t.is(pod.status.qosClass, 'Guaranteed', 'requests default to limits');
});

test.serial('a readiness exec probe drives the Ready condition', async (t) => {
  await env.createPod(
    podManifest(
      'gate',
      'n2',
      [
        shContainer('main', 'exec sleep 3600', {
          readinessProbe: { exec: { command: ['test', '-f', '/tmp/ready'] }, periodSeconds: 1 },
        }),
      ],
      { terminationGracePeriodSeconds: 1 },
    ),
  );
  const notReady = await env.waitPod(
    'gate',
    'Running with its readiness probe failing',
    (p) => p.status?.phase === 'Running' && statusOf(p, 'main')?.state?.running !== undefined,
  );
  // Several probe periods pass: it stays not ready while the file is missing.
  await holds('the pod stays not Ready', async () => !isReady((await env.getPod('gate')) as Json), 3000);
  const still = (await env.getPod('gate')) as Json;
  t.is(conditionOf(still, 'Ready')?.status, 'False');
  t.is(conditionOf(still, 'ContainersReady')?.status, 'False');
  t.false(statusOf(still, 'main').ready);
  t.is(statusOf(still, 'main').restartCount, 0, 'readiness never restarts');

  const touched = await dockerExec(containerIdOf(notReady, 'main') as string, ['touch', '/tmp/ready']);
  t.is(touched.code, 0, touched.stderr);
  const ready = await env.waitPod('gate', 'Ready after the file appears', isReady, 15_000);
  t.true(statusOf(ready, 'main').ready);
  t.is(conditionOf(ready, 'ContainersReady')?.status, 'True');
});

test.serial('imagePullPolicy Never with a missing image waits with ErrImageNeverPull', async (t) => {
  const image = 'berth/not-here:never';
  await env.createPod(podManifest('never-pull', 'n3', [{ name: 'main', image, imagePullPolicy: 'Never' }]));
  const pod = await env.waitPod(
    'never-pull',
    'ErrImageNeverPull',
    (p) => statusOf(p, 'main')?.state?.waiting?.reason === 'ErrImageNeverPull',
  );
  t.is(pod.status.phase, 'Pending');
  t.regex(statusOf(pod, 'main').state.waiting.message, /berth\/not-here:never.*pull policy of Never/);
  t.false(isReady(pod));
});

test.serial(
  'a failing pull shows ErrImagePull, then ImagePullBackOff, with the engine message',
  async (t) => {
    const rec = new PodRecorder(env.api, 'bad-pull');
    t.teardown(() => rec.stop());
    await env.createPod(
      podManifest('bad-pull', 'n3', [{ name: 'main', image: UNPULLABLE, imagePullPolicy: 'IfNotPresent' }]),
    );
    const backoff = await env.waitPod(
      'bad-pull',
      'ImagePullBackOff',
      (p) => statusOf(p, 'main')?.state?.waiting?.reason === 'ImagePullBackOff',
    );
    const reasons = rec.waitingReasons('main');
    t.deepEqual(
      reasons.filter((r) => r !== 'ContainerCreating').slice(0, 2),
      ['ErrImagePull', 'ImagePullBackOff'],
      `waiting reasons seen: ${reasons.join(', ')}`,
    );
    const errPull = rec.events
      .map((e) => statusOf(e.pod, 'main')?.state?.waiting)
      .find((w) => w?.reason === 'ErrImagePull');
    // The engine's own words: it could not reach the registry on 127.0.0.1:1.
    t.regex(errPull?.message ?? '', /127\.0\.0\.1:1/);
    t.regex(errPull?.message ?? '', /connection refused|dial tcp/i);
    t.is(backoff.status.phase, 'Pending');
    const backoffMessage = statusOf(backoff, 'main').state.waiting.message as string;
    t.regex(backoffMessage, /Back-off pulling image "127\.0\.0\.1:1\/nothing\/here:1"/);
    // As the kubelet does (1.31+), the back-off message carries the last pull error.
    t.true(
      backoffMessage.includes(errPull?.message ?? '\0'),
      `ImagePullBackOff message "${backoffMessage}" carries the engine's "${errPull?.message}"`,
    );
    const events = await env.eventsOf('bad-pull');
    t.true(
      events.some((e) => e.reason === 'Failed' && String(e.message).includes('Failed to pull image')),
      'a Failed event for the pull',
    );
  },
);

test.serial(
  'restartPolicy Never and OnFailure: exit 0 is Succeeded, exit 1 under Never is Failed',
  async (t) => {
    const cases = [
      { name: 'never-ok', policy: 'Never', code: 0, phase: 'Succeeded' },
      { name: 'never-fail', policy: 'Never', code: 1, phase: 'Failed' },
      { name: 'onfailure-ok', policy: 'OnFailure', code: 0, phase: 'Succeeded' },
    ] as const;
    for (const c of cases) {
      await env.createPod(
        podManifest(c.name, 'n1', [shContainer('main', `echo done; exit ${c.code}`)], {
          restartPolicy: c.policy,
        }),
      );
    }
    for (const c of cases) {
      const pod = await env.waitPod(c.name, `phase ${c.phase}`, (p) => p.status?.phase === c.phase);
      const s = statusOf(pod, 'main');
      t.is(s.state.terminated?.exitCode, c.code, `${c.name} exit code`);
      t.is(s.state.terminated?.reason, c.code === 0 ? 'Completed' : 'Error', `${c.name} reason`);
      t.is(s.restartCount, 0, `${c.name} is not restarted`);
      t.false(isReady(pod), `${c.name} is not Ready`);
    }
    // Through a few resyncs (every 2 s) nothing is restarted and the phases hold.
    await holds(
      'the phases to hold',
      async () => {
        for (const c of cases) if ((await env.getPod(c.name))?.status?.phase !== c.phase) return false;
        return true;
      },
      4500,
    );
    for (const c of cases) {
      const pod = (await env.getPod(c.name)) as Json;
      t.is(pod.status.phase, c.phase, `${c.name} stays ${c.phase}`);
      t.is(statusOf(pod, 'main').restartCount, 0, `${c.name} still not restarted`);
      const engine = await env.podContainers(pod.metadata.uid);
      t.is(
        engine.filter((x) => x.labels['berth.io/role'] === 'container').length,
        1,
        `${c.name}: one container`,
      );
    }
  },
);
