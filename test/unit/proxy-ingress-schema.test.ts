// The Ingress kind (networking.k8s.io/v1): its row in the kinds table, Kubernetes'
// validation rules at their field paths, defaults and the status subresource through an
// in-process API server, explain, and kubectl's get columns and describe text.
import test from 'ava';
import pino from 'pino';
import { describeObject, printObjects } from '../../cmd/ctl/printers/index.js';
import { formatFieldError } from '../../pkg/api/errors.js';
import { explain } from '../../pkg/api/explain.js';
import { type KindInfo, kindByName } from '../../pkg/api/kinds.js';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import type { ApiObject } from '../../pkg/api/types.js';
import { validateObject } from '../../pkg/api/validation.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const logger = pino({ level: 'silent' });
const NOW = Date.parse('2026-11-26T14:00:00Z');

const ING = kindByName('ing') as KindInfo;

type Json = Record<string, unknown>;

const svc = (name: string, port: Json = { number: 80 }) => ({ service: { name, port } });

function ingress(spec: Json, extra: Json = {}): Json {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: 'shop', namespace: 'default' },
    spec,
    ...extra,
  };
}

const errs = (o: unknown) => validateObject(o).map(formatFieldError);

const rule = (paths: Json[], host?: string): Json => ({ ...(host ? { host } : {}), http: { paths } });
const path = (p: string | undefined, pathType: string | undefined, backend: Json = svc('web')): Json => ({
  ...(p === undefined ? {} : { path: p }),
  ...(pathType === undefined ? {} : { pathType }),
  backend,
});

test('the kind: networking.k8s.io/v1 ingresses, short name ing, namespaced, with a status subresource', (t) => {
  t.like(ING, {
    kind: 'Ingress',
    apiVersion: 'networking.k8s.io/v1',
    resource: 'ingresses',
    singular: 'ingress',
    shortNames: ['ing'],
    namespaced: true,
    statusSubresource: true,
  });
  t.is(kindByName('ingresses.networking.k8s.io'), ING);
  t.is(kindByName('Ingress'), ING);
});

test('valid Ingresses pass: rules, wildcard hosts, every path type, default backend only, TLS', (t) => {
  t.deepEqual(
    errs(
      ingress({
        ingressClassName: 'nginx',
        tls: [
          { hosts: ['shop.example.com', '*.shop.example.com'], secretName: 'shop-tls' },
          { hosts: ['sni.example'] },
        ],
        rules: [
          rule(
            [
              path('/', 'Prefix'),
              path('/api/v1', 'Exact', svc('api', { name: 'http' })),
              path(undefined, 'ImplementationSpecific'),
              path('/static', 'Prefix', {
                resource: { apiGroup: 'k8s.example.com', kind: 'Bucket', name: 'assets' },
              }),
            ],
            'shop.example.com',
          ),
          rule([path('/', 'Prefix')], '*.shop.example.com'),
          rule([path('/x', 'ImplementationSpecific')]),
          // A rule with only a host is valid in Kubernetes too (it routes nothing).
          { host: 'only.example' },
        ],
      }),
    ),
    [],
  );
  t.deepEqual(errs(ingress({ defaultBackend: svc('web') })), []);
});

test('spec rules: a default backend or rules, backends, ports, paths and hosts, each at its path', (t) => {
  t.deepEqual(errs(ingress({})), [
    'spec: Invalid value: null: either `defaultBackend` or `rules` must be specified',
  ]);
  t.deepEqual(errs({ ...ingress({}), spec: undefined }), [
    'spec: Invalid value: null: either `defaultBackend` or `rules` must be specified',
  ]);
  t.deepEqual(errs(ingress({ rules: [] })), [
    'spec: Invalid value: []: either `defaultBackend` or `rules` must be specified',
  ]);
  t.deepEqual(errs(ingress({ defaultBackend: {} })), [
    'spec.defaultBackend: Invalid value: "": backend must be specified: `service` or `resource`',
  ]);
  t.deepEqual(errs(ingress({ defaultBackend: { ...svc('web'), resource: { kind: 'Bucket', name: 'b' } } })), [
    'spec.defaultBackend: Invalid value: "": cannot set both resource and service backends',
  ]);
  t.deepEqual(errs(ingress({ defaultBackend: svc('web', { number: 80, name: 'http' }) })), [
    'spec.defaultBackend.service.port: Invalid value: "": cannot set both port name & port number',
  ]);
  t.deepEqual(errs(ingress({ defaultBackend: svc('web', {}) })), [
    'spec.defaultBackend.service.port: Required value: port name or number is required',
  ]);
  t.deepEqual(errs(ingress({ defaultBackend: { service: { port: { number: 80 } } } })), [
    'spec.defaultBackend.service.name: Required value',
  ]);
  t.deepEqual(
    errs(ingress({ defaultBackend: svc('Web_1', { number: 70000 }) })).map((e) => e.split(': Invalid')[0]),
    ['spec.defaultBackend.service.name', 'spec.defaultBackend.service.port.number'],
  );
  t.regex(
    errs(ingress({ defaultBackend: svc('web', { name: 'HTTP' }) }))[0] ?? '',
    /^spec\.defaultBackend\.service\.port\.name: Invalid value: "HTTP"/,
  );
  t.deepEqual(errs(ingress({ defaultBackend: { resource: { kind: 'a/b', name: '..' } } })), [
    `spec.defaultBackend.resource.kind: Invalid value: "a/b": may not contain '/'`,
    `spec.defaultBackend.resource.name: Invalid value: "..": may not be '..'`,
  ]);

  const paths = (...p: Json[]) => errs(ingress({ rules: [rule(p)] }));
  t.deepEqual(paths(path('/', undefined)), ['spec.rules[0].http.paths[0].pathType: Required value']);
  t.deepEqual(paths(path('/', 'Regex')), [
    'spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex": supported values: "Exact", "Prefix", "ImplementationSpecific"',
  ]);
  t.deepEqual(paths(path('api', 'Prefix'), path(undefined, 'Exact'), path('x', 'ImplementationSpecific')), [
    'spec.rules[0].http.paths[0].path: Invalid value: "api": must be an absolute path',
    'spec.rules[0].http.paths[1].path: Invalid value: "": must be an absolute path',
    'spec.rules[0].http.paths[2].path: Invalid value: "x": must be an absolute path',
  ]);
  t.deepEqual(paths(path('/a//b/..', 'Prefix')), [
    `spec.rules[0].http.paths[0].path: Invalid value: "/a//b/..": must not contain '//'`,
    `spec.rules[0].http.paths[0].path: Invalid value: "/a//b/..": cannot end with '/..'`,
  ]);
  t.deepEqual(paths({ path: '/', pathType: 'Prefix' }), [
    'spec.rules[0].http.paths[0].backend: Required value',
  ]);
  t.deepEqual(errs(ingress({ rules: [{ http: {} }] })), ['spec.rules[0].http.paths: Required value']);
  t.deepEqual(errs(ingress({ rules: [{ http: { paths: [] } }] })), [
    'spec.rules[0].http.paths: Required value',
  ]);

  const host = (h: string) => errs(ingress({ rules: [rule([path('/', 'Prefix')], h)] }));
  t.deepEqual(host('10.0.0.1'), [
    'spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address',
  ]);
  t.regex(
    host('Shop.example')[0] ?? '',
    /^spec\.rules\[0\]\.host: Invalid value: "Shop\.example": a lowercase RFC 1123 subdomain/,
  );
  t.regex(host('shop.example:80')[0] ?? '', /^spec\.rules\[0\]\.host: Invalid value/);
  t.regex(host('*')[0] ?? '', /a wildcard DNS-1123 subdomain must start with '\*\.'/);
  t.regex(host('a.*.example')[0] ?? '', /a wildcard DNS-1123 subdomain/);
  t.deepEqual(host('*.example'), []);

  t.deepEqual(
    errs(ingress({ defaultBackend: svc('web'), tls: [{ hosts: ['*'], secretName: 'Bad_Name' }] })).map(
      (e) => e.split(': ')[0],
    ),
    ['spec.tls[0].hosts[0]', 'spec.tls[0].secretName'],
  );
  t.regex(
    errs(ingress({ defaultBackend: svc('web'), ingressClassName: 'Nginx' }))[0] ?? '',
    /^spec\.ingressClassName: Invalid value/,
  );
  t.deepEqual(errs(ingress({ defaultBackend: svc('web'), backend: svc('old') })), [
    'spec.backend: unknown field',
  ]);
  t.deepEqual(
    errs(
      ingress(
        { defaultBackend: svc('web') },
        { status: { loadBalancer: { ingress: [{ ip: 'x', ports: [{ port: 80 }] }] } } },
      ),
    ),
    [
      'status.loadBalancer.ingress[0].ip: Invalid value: "x": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
      'status.loadBalancer.ingress[0].ports[0].protocol: Required value',
    ],
  );
});

test('through the API server: defaulted, generation 1, status kept on update and set by updateStatus', async (t) => {
  const api = new ApiServer({ kv: createLocalStore(), logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  const created = await api.create(ingress({ rules: [rule([path('/', 'Prefix')], 'shop.example')] }));
  t.deepEqual(created.status, { loadBalancer: {} });
  t.is(created.metadata.generation, 1);
  const got = await api.get('ing', 'default', 'shop');
  t.deepEqual(got.spec, {
    rules: [
      { host: 'shop.example', http: { paths: [{ path: '/', pathType: 'Prefix', backend: svc('web') }] } },
    ],
  });

  const withStatus = await api.update(
    {
      ...got,
      status: { loadBalancer: { ingress: [{ ip: '127.0.0.2', ports: [{ port: 80, protocol: 'TCP' }] }] } },
    },
    {},
    true,
  );
  t.deepEqual(withStatus.status, {
    loadBalancer: { ingress: [{ ip: '127.0.0.2', ports: [{ port: 80, protocol: 'TCP' }] }] },
  });
  const changed = await api.update({ ...withStatus, spec: { defaultBackend: svc('web') }, status: {} });
  t.is(changed.metadata.generation, 2);
  t.deepEqual(changed.status, withStatus.status);

  const bad = await t.throwsAsync(
    api.create(
      ingress(
        { rules: [rule([path('/', 'Prefix', {})])] },
        { metadata: { name: 'bad', namespace: 'default' } },
      ),
    ),
  );
  t.regex(bad?.message ?? '', /spec\.rules\[0\]\.http\.paths\[0\]\.backend/);
});

test('explain: the fields of a path, the path types, and TLS said to be stored only', (t) => {
  const p = explain(ING, ['spec', 'rules', 'http', 'paths', 'pathType']);
  t.regex(
    p,
    /^GROUP: {6}networking\.k8s\.io\nKIND: {7}Ingress\nVERSION: {4}v1\n\nFIELD: pathType <string> <required>\n {2}enum: Exact, Prefix, ImplementationSpecific\n/,
  );
  t.regex(explain(ING, ['spec']), /\n {2}tls\t<\[\]IngressTLS>\n/);
  t.regex(explain(ING, ['spec', 'tls']).replace(/\s+/g, ' '), /does not terminate TLS/);
  t.regex(explain(ING, ['spec', 'defaultBackend']), /\n {2}service\t<IngressServiceBackend>\n/);
});

const T0 = '2026-11-26T13:00:00Z';

function ing(name: string, spec: Json, status: Json = {}): ApiObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace: 'default', creationTimestamp: T0 },
    spec,
    status,
  } as unknown as ApiObject;
}

test('get: NAME CLASS HOSTS ADDRESS PORTS AGE, as kubectl prints them', (t) => {
  const lb = (...ips: string[]) => ({
    loadBalancer: {
      ingress: ips.map((ip) => (ip.includes('.') && /^\d/.test(ip) ? { ip } : { hostname: ip })),
    },
  });
  const list = [
    ing(
      'web',
      { ingressClassName: 'nginx', rules: [rule([path('/', 'Prefix')], 'shop.example')] },
      lb('127.0.0.3', '127.0.0.2'),
    ),
    ing('any', { defaultBackend: svc('web'), tls: [{ hosts: ['x.example'] }] }),
    ing(
      'many',
      {
        rules: ['a.example', 'b.example', '', 'c.example', 'd.example'].map((h) =>
          rule([path('/', 'Prefix')], h),
        ),
      },
      lb('lb.example.com', '127.0.0.10'),
    ),
  ];
  t.is(
    printObjects(ING, list, 'table', { now: NOW }),
    [
      'NAME   CLASS    HOSTS                                       ADDRESS            PORTS     AGE',
      'web    nginx    shop.example                                127.0.0.2,127...   80        60m',
      'any    <none>   *                                                              80, 443   60m',
      'many   <none>   a.example,b.example,c.example + 2 more...   127.0.0.10,lb...   80        60m',
    ].join('\n'),
  );
});

test('describe: address, class, default backend with endpoints, TLS, rules per host', (t) => {
  const o = ing(
    'shop',
    {
      ingressClassName: 'nginx',
      defaultBackend: svc('web', { name: 'http' }),
      tls: [{ hosts: ['shop.example'], secretName: 'shop-tls' }, { hosts: ['a.example', 'b.example'] }],
      rules: [
        rule([path('/', 'Prefix'), path('/api', 'Prefix', svc('api', { number: 8080 }))], 'shop.example'),
        rule([path('/', 'Prefix', { resource: { kind: 'Bucket', name: 'assets' } })]),
      ],
    },
    { loadBalancer: { ingress: [{ ip: '127.0.0.2' }] } },
  );
  o.metadata.labels = { app: 'shop' };
  const related = [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'default' },
      spec: { ports: [{ name: 'http', port: 80 }] },
    },
    {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name: 'web', namespace: 'default' },
      subsets: [
        { addresses: [{ ip: '127.0.0.2' }, { ip: '127.0.0.3' }], ports: [{ name: 'http', port: 31000 }] },
      ],
    },
  ] as unknown as ApiObject[];
  t.is(
    describeObject(ING, o, { events: [], related, now: NOW }),
    [
      'Name:             shop',
      'Labels:           app=shop',
      'Namespace:        default',
      'Address:          127.0.0.2',
      'Ingress Class:    nginx',
      'Default backend:  web:http (127.0.0.2:31000,127.0.0.3:31000)',
      'TLS:',
      '  shop-tls terminates shop.example',
      '  SNI routes a.example,b.example',
      'Rules:',
      '  Host          Path  Backends',
      '  ----          ----  --------',
      '  shop.example  ',
      '                /      web:80 (127.0.0.2:31000,127.0.0.3:31000)',
      '                /api   api:8080 (<error: endpoints "api" not found>)',
      '  *             ',
      '                /   APIGroup: <none>, Kind: Bucket, Name: assets',
      // One tabwriter block since "Rules:": aligned with the Host column, as in kubectl.
      'Annotations:    <none>',
      'Events:         <none>',
    ].join('\n'),
  );
});
