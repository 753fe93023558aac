// Service cluster IPs and node ports, allocated by the API server over a real (in-process)
// store: picks and requests on create, the Kubernetes messages for bad requests, values kept
// across apply and replace, type changes, dry runs, two API servers racing on one store,
// values freed by deletes, and what takes no allocation (headless, ExternalName, status).
import test, { type ExecutionContext } from 'ava';
import pino from 'pino';
import { ApiError, ApiErrorCode } from '../../pkg/api/errors.js';
import { ApiServer, type ApiServerOptions } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import {
  allocate,
  ipv4ToNumber,
  prepareServiceUpdate,
  SERVICE_RANGES_KEY,
  serviceRanges,
} from '../../pkg/api/server/service-alloc.js';
import type { ApiObject } from '../../pkg/api/types.js';
import { createLocalStore } from '../../pkg/store/local-store.js';
import type { KV } from '../../pkg/store/types.js';

const logger = pino({ level: 'silent' });
const enc = new TextEncoder();

async function server(
  options: Partial<ApiServerOptions> = {},
): Promise<{ api: ApiServer; kv: KV; guardRevision: () => Promise<number> }> {
  const kv = options.kv ?? createLocalStore();
  const api = new ApiServer({ kv, logger, ...options });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  const guardRevision = async () =>
    (await kv.range({ key: enc.encode(SERVICE_RANGES_KEY) })).kvs[0]?.modRevision ?? 0;
  return { api, kv, guardRevision };
}

interface Port {
  name?: string;
  port: number;
  protocol?: string;
  nodePort?: number;
}

function service(name: string, spec: Record<string, unknown> = {}, namespace = 'default') {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { selector: { app: name }, ports: [{ port: 80 }], ...spec },
  };
}

interface SpecView {
  type?: string;
  clusterIP?: string;
  clusterIPs?: string[];
  ipFamilies?: string[];
  ipFamilyPolicy?: string;
  externalTrafficPolicy?: string;
  ports: Port[];
}
const specOf = (o: ApiObject) => o.spec as unknown as SpecView;
const nodePorts = (o: ApiObject) => specOf(o).ports.map((p) => p.nodePort);

function inCIDR(ip: string | undefined, cidr = '127.96.0.0/16'): boolean {
  const r = serviceRanges(cidr);
  const n = ipv4ToNumber(ip ?? '');
  return n !== undefined && n >= r.firstIP && n <= r.lastIP;
}

async function rejects(t: ExecutionContext, p: Promise<unknown>, code: ApiErrorCode, message?: string) {
  const err = await t.throwsAsync(p);
  t.true(err instanceof ApiError, `an ApiError, got ${String(err)}`);
  t.is((err as ApiError).code, code, (err as Error).message);
  if (message !== undefined) t.true((err as Error).message.includes(message), (err as Error).message);
  return err as ApiError;
}

test('create: ClusterIP, NodePort and LoadBalancer Services get an IP from the range and node ports', async (t) => {
  const { api } = await server();
  const c = await api.create(service('c'));
  const s = specOf(c);
  t.true(inCIDR(s.clusterIP), s.clusterIP);
  t.not(s.clusterIP, '127.96.0.1', 'random picks skip the first address');
  t.deepEqual(s.clusterIPs, [s.clusterIP]);
  t.deepEqual(s.ipFamilies, ['IPv4']);
  t.is(s.ipFamilyPolicy, 'SingleStack');
  t.is(s.ports[0]?.nodePort, undefined);
  t.deepEqual(await api.get('svc', 'default', 'c'), c);

  const np = await api.create(
    service('np', {
      type: 'NodePort',
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP' },
        { name: 'dns-tcp', port: 53, protocol: 'TCP' },
        { name: 'web', port: 80 },
      ],
    }),
  );
  const [udp, tcp, web] = nodePorts(np);
  t.true(udp !== undefined && udp >= 30000 && udp <= 32767, String(udp));
  t.is(tcp, udp, 'one port number over TCP and UDP shares its node port');
  t.true(web !== undefined && web !== udp && web >= 30000 && web <= 32767);
  t.true(inCIDR(specOf(np).clusterIP));
  t.not(specOf(np).clusterIP, s.clusterIP);

  const lb = await api.create(service('lb', { type: 'LoadBalancer' }));
  t.true(inCIDR(specOf(lb).clusterIP));
  t.true((nodePorts(lb)[0] ?? 0) >= 30000);
});

test('create: a requested IP and node port are kept', async (t) => {
  const { api } = await server();
  const s = await api.create(
    service('s', {
      type: 'NodePort',
      clusterIP: '127.96.3.4',
      ports: [
        { name: 'a', port: 80, nodePort: 30080 },
        { name: 'b', port: 80, protocol: 'UDP', nodePort: 30080 },
      ],
    }),
  );
  t.is(specOf(s).clusterIP, '127.96.3.4');
  t.deepEqual(specOf(s).clusterIPs, ['127.96.3.4']);
  t.deepEqual(nodePorts(s), [30080, 30080]);
  // The first address is kept from random picks only; it may be asked for.
  t.is(specOf(await api.create(service('first', { clusterIP: '127.96.0.1' }))).clusterIP, '127.96.0.1');
});

test('requests out of range or taken are refused with Kubernetes messages', async (t) => {
  const { api, guardRevision } = await server();
  await api.create(
    service('a', { type: 'NodePort', clusterIP: '127.96.0.10', ports: [{ port: 80, nodePort: 30080 }] }),
  );
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other' } });
  const before = await guardRevision();
  const cases: [Record<string, unknown>, string][] = [
    [
      { clusterIP: '1.2.3.4' },
      'spec.clusterIP: Invalid value: "1.2.3.4": provided IP is not in the valid range. The range of valid IPs is 127.96.0.0/16',
    ],
    [{ clusterIP: '127.96.255.255' }, 'provided IP is not in the valid range'],
    [{ clusterIP: '127.96.0.0' }, 'provided IP is not in the valid range'],
    [
      { clusterIP: '127.96.0.10' },
      'spec.clusterIP: Invalid value: "127.96.0.10": provided IP is already allocated',
    ],
    [
      { type: 'NodePort', ports: [{ port: 80, nodePort: 99 }] },
      'spec.ports[0].nodePort: Invalid value: 99: provided port is not in the valid range. The range of valid ports is 30000-32767',
    ],
    [
      { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] },
      'spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated',
    ],
    [
      // Another Service's port is taken whatever the protocol.
      { type: 'LoadBalancer', ports: [{ port: 53, protocol: 'UDP', nodePort: 30080 }] },
      'spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated',
    ],
    [
      {
        type: 'NodePort',
        ports: [
          { name: 'a', port: 80, nodePort: 30090 },
          { name: 'b', port: 81, nodePort: 30090 },
        ],
      },
      'spec.ports[1].nodePort: Duplicate value: 30090',
    ],
    [{ ipFamilies: ['IPv6'] }, 'spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'],
    [{ ipFamilyPolicy: 'RequireDualStack' }, 'this cluster is not configured for dual-stack services'],
    [{ clusterIP: '127.96.0.20', clusterIPs: ['127.96.0.20', 'fd00::20'] }, 'spec.clusterIPs: Invalid value'],
  ];
  for (const [spec, message] of cases) {
    const err = await rejects(t, api.create(service('b', spec, 'other')), ApiErrorCode.Invalid, message);
    t.regex(err.message, /^services "b" is invalid: /);
  }
  t.is(await guardRevision(), before, 'refused writes leave the guard alone');
  // Updates are held to the same rules.
  const b = await api.create(service('b', { type: 'NodePort' }));
  await rejects(
    t,
    api.update({ ...b, spec: { ...b.spec, ports: [{ port: 80, nodePort: 30080 }] } }),
    ApiErrorCode.Invalid,
    'spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated',
  );
});

test('apply and replace without the allocated values keep them', async (t) => {
  const { api, guardRevision } = await server();
  const manifest = service('web', { type: 'NodePort', ports: [{ name: 'http', port: 80 }] });
  const first = await api.apply(manifest);
  t.is(first.result, 'created');
  const ip = specOf(first.object).clusterIP;
  const [np] = nodePorts(first.object);
  t.true(inCIDR(ip));
  t.truthy(np);
  const guard = await guardRevision();

  const again = await api.apply(manifest);
  t.is(again.result, 'unchanged');
  t.is(again.object.metadata.resourceVersion, first.object.metadata.resourceVersion);

  const relabelled = await api.apply({
    ...manifest,
    metadata: { ...manifest.metadata, labels: { tier: 'web' } },
  });
  t.is(relabelled.result, 'configured');
  t.is(specOf(relabelled.object).clusterIP, ip);
  t.deepEqual(nodePorts(relabelled.object), [np]);
  t.is(relabelled.object.metadata.generation, 1, 'nothing in the spec changed');

  // A port added by apply gets its own node port; the first keeps its own.
  const twoPorts = service('web', {
    type: 'NodePort',
    ports: [
      { name: 'http', port: 80 },
      { name: 'https', port: 443 },
    ],
  });
  const grown = await api.apply(twoPorts);
  t.is(nodePorts(grown.object)[0], np);
  t.truthy(nodePorts(grown.object)[1]);
  t.not(nodePorts(grown.object)[1], np);

  // A replace (berthctl replace, edit) that leaves them out keeps them too, port matched by name.
  const replaced = await api.update(
    service('web', {
      type: 'NodePort',
      ports: [
        { name: 'https', port: 8443 },
        { name: 'http', port: 80 },
      ],
    }),
  );
  t.is(specOf(replaced).clusterIP, ip);
  t.deepEqual(nodePorts(replaced), [nodePorts(grown.object)[1], np]);
  t.true((await guardRevision()) > guard, 'the added port was an allocation');

  // Status and metadata writes take nothing: no list, no guard.
  const g = await guardRevision();
  const labelled = await api.update({ ...replaced, metadata: { ...replaced.metadata, labels: { x: 'y' } } });
  await api.update({ ...labelled, status: { loadBalancer: {} } }, {}, true);
  t.is(await guardRevision(), g);

  // Changing the cluster IP stays forbidden.
  await rejects(
    t,
    api.update({
      ...labelled,
      metadata: { ...labelled.metadata, resourceVersion: undefined },
      spec: { ...labelled.spec, clusterIP: '127.96.9.9', clusterIPs: ['127.96.9.9'] },
    }),
    ApiErrorCode.Invalid,
    'spec.clusterIP: Invalid value: "127.96.9.9": field is immutable',
  );
});

test('type changes: to ClusterIP drops node ports, to NodePort allocates, ExternalName drops the IP', async (t) => {
  const { api } = await server();
  const manifest = (type: string, extra: Record<string, unknown> = {}) =>
    service('web', { type, ports: [{ name: 'http', port: 80 }], ...extra });
  const np = (await api.apply(manifest('NodePort'))).object;
  const ip = specOf(np).clusterIP;
  t.is(specOf(np).externalTrafficPolicy, 'Cluster');

  const cip = (await api.apply(manifest('ClusterIP'))).object;
  t.deepEqual(nodePorts(cip), [undefined]);
  t.is(specOf(cip).externalTrafficPolicy, undefined);
  t.is(specOf(cip).clusterIP, ip);

  const back = (await api.apply(manifest('LoadBalancer'))).object;
  t.true((nodePorts(back)[0] ?? 0) >= 30000);
  t.is(specOf(back).clusterIP, ip);

  // The same through a replace of what `get` returned, with only the type edited.
  const replaced = await api.update({ ...back, spec: { ...back.spec, type: 'ClusterIP' } });
  t.deepEqual(nodePorts(replaced), [undefined]);
  t.is(specOf(replaced).clusterIP, ip);

  const ext = (await api.apply(service('web', { type: 'ExternalName', externalName: 'db.example.com' })))
    .object;
  t.is(specOf(ext).clusterIP, undefined);
  t.is(specOf(ext).clusterIPs, undefined);
  t.is(specOf(ext).ipFamilies, undefined);

  const again = (await api.apply(manifest('NodePort'))).object;
  t.true(inCIDR(specOf(again).clusterIP));
  t.true((nodePorts(again)[0] ?? 0) >= 30000);
});

test('dry run reports what would be allocated and keeps nothing', async (t) => {
  const { api, kv, guardRevision } = await server();
  const revision = async () =>
    (await kv.range({ key: enc.encode('/registry/'), countOnly: true })).header.revision;
  const before = await revision();
  const dry = await api.create(service('web', { type: 'NodePort' }), { dryRun: true });
  t.true(inCIDR(specOf(dry).clusterIP));
  t.true((nodePorts(dry)[0] ?? 0) >= 30000);
  const applied = await api.apply(service('web', { type: 'NodePort' }), { dryRun: true });
  t.is(applied.result, 'created');
  t.true(inCIDR(specOf(applied.object).clusterIP));
  t.is(await revision(), before);
  t.is(await guardRevision(), 0);

  const real = await api.create(service('web'));
  const changed = await api.apply(service('web', { type: 'NodePort' }), { dryRun: true });
  t.is(changed.result, 'configured');
  t.true((nodePorts(changed.object)[0] ?? 0) >= 30000);
  t.is(specOf(changed.object).clusterIP, specOf(real).clusterIP);
  t.deepEqual(await api.get('svc', 'default', 'web'), real);
});

test('two API servers racing 20 creates on one store hand out distinct IPs and node ports', async (t) => {
  // Small ranges, so that without the guard two random picks would collide.
  const options = { serviceCIDR: '10.0.0.0/27', nodePortRange: [30000, 30024] as [number, number] };
  const a = await server(options);
  const b = new ApiServer({ kv: a.kv, logger, ...options });
  const created = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      (i % 2 === 0 ? a.api : b).create(service(`s${i}`, { type: 'NodePort' })),
    ),
  );
  const ips = created.map((s) => specOf(s).clusterIP);
  const ports = created.map((s) => nodePorts(s)[0]);
  t.is(new Set(ips).size, 20, ips.join(' '));
  t.is(new Set(ports).size, 20, ports.join(' '));
  for (const ip of ips) t.true(inCIDR(ip, '10.0.0.0/27'), ip);
  // What is stored agrees with what was answered.
  const stored = (await a.api.list('svc')).items;
  t.deepEqual(stored.map((s) => specOf(s).clusterIP).sort(), [...ips].sort());
});

test('deleting a Service frees its IP and node port; a full range is a clear error', async (t) => {
  // 10.1.0.0/29: .0 network, .7 broadcast, .1 kept from random picks: .2-.6 to hand out.
  const { api } = await server({ serviceCIDR: '10.1.0.0/29', nodePortRange: [30000, 30004] });
  const made = [];
  for (let i = 0; i < 5; i++) made.push(await api.create(service(`s${i}`, { type: 'NodePort' })));
  t.deepEqual(made.map((s) => specOf(s).clusterIP).sort(), [
    '10.1.0.2',
    '10.1.0.3',
    '10.1.0.4',
    '10.1.0.5',
    '10.1.0.6',
  ]);
  await rejects(
    t,
    api.create(service('full')),
    ApiErrorCode.Internal,
    'failed to allocate a serviceIP: range is full',
  );
  await rejects(
    t,
    api.create(service('full', { type: 'NodePort', clusterIP: '10.1.0.1' })),
    ApiErrorCode.Internal,
    'failed to allocate a nodePort: range is full',
  );
  const gone = made[2] as ApiObject;
  await api.delete('svc', 'default', gone.metadata.name as string);
  const next = await api.create(service('next', { type: 'NodePort' }));
  t.is(specOf(next).clusterIP, specOf(gone).clusterIP);
  t.deepEqual(nodePorts(next), nodePorts(gone));
  // Giving a node port up (type ClusterIP) frees it too.
  await api.apply(service('s0', { type: 'ClusterIP' }));
  const reuse = await api.create(service('reuse', { type: 'NodePort', clusterIP: '10.1.0.1' }));
  t.deepEqual(nodePorts(reuse), nodePorts(made[0] as ApiObject));
});

test('headless and ExternalName Services get nothing and take no guard', async (t) => {
  const { api, guardRevision } = await server();
  const headless = await api.create(service('db', { clusterIP: 'None' }));
  t.is(specOf(headless).clusterIP, 'None');
  t.is(specOf(headless).clusterIPs, undefined);
  t.is(specOf(headless).ipFamilies, undefined);
  const ext = await api.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'ext' },
    spec: { type: 'ExternalName', externalName: 'db.example.com' },
  });
  t.is(specOf(ext).clusterIP, undefined);
  t.is(specOf(ext).clusterIPs, undefined);
  t.is(await guardRevision(), 0);
  // A headless Service keeps "None" through an apply that does not mention it.
  await api.apply(service('hl', { clusterIP: 'None' }));
  const kept = await api.apply(service('hl'));
  t.is(specOf(kept.object).clusterIP, 'None');
});

test('a bad range is refused when the API server is made', (t) => {
  const kv = createLocalStore();
  t.throws(() => new ApiServer({ kv, logger, serviceCIDR: '10.0.0.0/8' }), { message: /too large/ });
  t.throws(() => new ApiServer({ kv, logger, serviceCIDR: '10.0.0.1/24' }), {
    message: /did you mean 10\.0\.0\.0\/24/,
  });
  t.throws(() => new ApiServer({ kv, logger, serviceCIDR: 'fd00::/108' }), { message: /only IPv4/ });
  t.throws(() => new ApiServer({ kv, logger, nodePortRange: [32767, 30000] }), { message: /above the last/ });
});

test('allocate and prepareServiceUpdate are pure and deterministic with a given random', (t) => {
  const ranges = serviceRanges('10.2.0.0/24', [30000, 30009]);
  const svc = service('a', { type: 'NodePort' }) as unknown as ApiObject;
  const taken = service('b', {
    type: 'NodePort',
    clusterIP: '10.2.0.2',
    ports: [{ port: 80, nodePort: 30000 }],
  });
  // random() = 0 starts the scan at the bottom: the next free after the taken ones.
  const { object, errors } = allocate(svc, undefined, [taken as unknown as ApiObject], ranges, () => 0);
  t.deepEqual(errors, []);
  t.is(specOf(object).clusterIP, '10.2.0.3');
  t.deepEqual(nodePorts(object), [30001]);
  t.is((svc.spec as { clusterIP?: string }).clusterIP, undefined, 'the input is not changed');

  // Ports matched by name, else number and protocol; a port the update gives keeps its own.
  const current = {
    ...svc,
    spec: {
      type: 'NodePort',
      clusterIP: '10.2.0.3',
      ports: [
        { name: 'a', port: 80, nodePort: 30001 },
        { name: 'b', port: 81, nodePort: 30002 },
      ],
    },
  } as unknown as ApiObject;
  const incoming = {
    ...svc,
    spec: {
      type: 'NodePort',
      ports: [
        { name: 'b', port: 91 },
        { name: 'c', port: 80 },
        { name: 'a', port: 82, nodePort: 30005 },
      ],
    },
  } as unknown as ApiObject;
  const prepared = prepareServiceUpdate(incoming, current);
  t.is(specOf(prepared).clusterIP, '10.2.0.3');
  t.deepEqual(nodePorts(prepared), [30002, 30001, 30005]);
});

test('a Service stored before allocation existed gets its cluster IP on an unchanged update', async (t) => {
  const { api, kv } = await server();
  const created = await api.create(service('old', { type: 'NodePort' }));
  // What an older Berth stored: no cluster IP, a node port given by the user.
  const legacy = {
    ...created,
    spec: {
      ...(created.spec as Record<string, unknown>),
      ports: [{ port: 80, nodePort: 30080, targetPort: 80, protocol: 'TCP' }],
    },
  } as Record<string, unknown> & ApiObject;
  const spec = legacy.spec as Record<string, unknown>;
  delete spec.clusterIP;
  delete spec.clusterIPs;
  const { resourceVersion: _rv, ...meta } = legacy.metadata;
  await kv.put({
    key: enc.encode('/registry/services/default/old'),
    value: enc.encode(JSON.stringify({ ...legacy, metadata: meta })),
  });
  const stored = await api.get('services', 'default', 'old');
  t.is(specOf(stored).clusterIP, undefined);
  const updated = await api.update(stored);
  t.regex(specOf(updated).clusterIP ?? '', /^127\.96\./);
  t.is(specOf(updated).ports[0]?.nodePort, 30080, 'the node port it had is kept');
  const again = await api.update(updated);
  t.is(
    again.metadata.resourceVersion,
    updated.metadata.resourceVersion,
    'then an unchanged update writes nothing',
  );
});
