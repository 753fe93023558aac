// The Ingress route table (pkg/proxy/ingress-routes.ts), pure: hosts (precise, wildcard,
// any), paths (Exact, Prefix by elements, ImplementationSpecific), precedence, default
// backends, and conflicts between Ingresses, after the tables in Kubernetes' Ingress docs
// ("Examples" under "Path types").
import test from 'ava';
import type { ApiObject } from '../../pkg/api/types.js';
import {
  buildIngressRoutes,
  type IngressRoutes,
  normalizeHost,
  requestPath,
} from '../../pkg/proxy/ingress-routes.js';

type Path = [path: string, pathType: string, service: string];

interface Rule {
  host?: string;
  paths: Path[];
}

function ingress(
  name: string,
  o: { rules?: Rule[]; defaultService?: string; namespace?: string; created?: string } = {},
): ApiObject {
  const backend = (service: string) => {
    const [svc, port] = service.split(':');
    return {
      service: {
        name: svc,
        port: /^\d+$/.test(port ?? '80') ? { number: Number(port ?? 80) } : { name: port },
      },
    };
  };
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      name,
      namespace: o.namespace ?? 'default',
      creationTimestamp: o.created ?? '2026-01-01T00:00:00Z',
    },
    spec: {
      ...(o.defaultService ? { defaultBackend: backend(o.defaultService) } : {}),
      rules: (o.rules ?? []).map((r) => ({
        ...(r.host !== undefined ? { host: r.host } : {}),
        http: {
          paths: r.paths.map(([path, pathType, svc]) => ({ path, pathType, backend: backend(svc) })),
        },
      })),
    },
  } as unknown as ApiObject;
}

/** Which service answers: `ns/name:port`, `-` when nothing matches. */
function route(table: IngressRoutes, host: string | undefined, url: string): string {
  const m = table.match(host, url);
  if (!m) return '-';
  if (m.backend.kind !== 'service') return `resource:${m.backend.name}`;
  return `${m.backend.namespace}/${m.backend.name}:${m.backend.port.number ?? m.backend.port.name}`;
}

test('Host: port stripped, case-insensitive, trailing dot; path: query and absolute form removed', (t) => {
  t.is(normalizeHost('Foo.Example.COM:8080'), 'foo.example.com');
  t.is(normalizeHost('foo.example.com.'), 'foo.example.com');
  t.is(normalizeHost('[::1]:80'), '[::1]');
  t.is(normalizeHost(undefined), '');
  t.is(requestPath('/a/b?x=1#f'), '/a/b');
  t.is(requestPath('http://h.example/a?q'), '/a');
  t.is(requestPath('/'), '/');
});

// Kubernetes' path type examples, one Ingress each.
const PATH_EXAMPLES: [Path[], string, boolean][] = [
  [[['/', 'Prefix', 'a']], '/', true],
  [[['/', 'Prefix', 'a']], '/anything/at/all', true],
  [[['/foo', 'Exact', 'a']], '/foo', true],
  [[['/foo', 'Exact', 'a']], '/bar', false],
  [[['/foo', 'Exact', 'a']], '/foo/', false],
  [[['/foo/', 'Exact', 'a']], '/foo', false],
  [[['/foo', 'Prefix', 'a']], '/foo', true],
  [[['/foo', 'Prefix', 'a']], '/foo/', true],
  [[['/foo/', 'Prefix', 'a']], '/foo', true],
  [[['/foo/', 'Prefix', 'a']], '/foo/', true],
  [[['/aaa/bb', 'Prefix', 'a']], '/aaa/bbb', false],
  [[['/aaa/bbb', 'Prefix', 'a']], '/aaa/bbb', true],
  [[['/aaa/bbb/', 'Prefix', 'a']], '/aaa/bbb', true],
  [[['/aaa/bbb', 'Prefix', 'a']], '/aaa/bbb/', true],
  [[['/aaa/bbb', 'Prefix', 'a']], '/aaa/bbb/ccc', true],
  [[['/aaa/bbb', 'Prefix', 'a']], '/aaa/bbbxyz', false],
  [[['/foo', 'Prefix', 'a']], '/foobar', false],
  [[['/foo', 'Prefix', 'a']], '/foo/bar?x=/', true],
  [[['/foo', 'ImplementationSpecific', 'a']], '/foo/bar', true],
  [[['/foo', 'ImplementationSpecific', 'a']], '/foobar', false],
  [[['', 'ImplementationSpecific', 'a']], '/anything', true],
];

test('path types: the examples of the Kubernetes documentation', (t) => {
  for (const [paths, url, want] of PATH_EXAMPLES) {
    const table = buildIngressRoutes([ingress('x', { rules: [{ paths }] })]);
    t.is(route(table, 'h.example', url) !== '-', want, `${JSON.stringify(paths)} ${url}`);
  }
});

test('the longest path wins; Exact beats Prefix on equal length; trailing "/" does not count', (t) => {
  const table = buildIngressRoutes([
    ingress('x', {
      rules: [
        {
          paths: [
            ['/', 'Prefix', 'root'],
            ['/aaa', 'Prefix', 'aaa'],
            ['/aaa/bbb/', 'Prefix', 'bbb'],
            ['/aaa/bbb', 'Exact', 'exact'],
            ['/aaa/ccc', 'ImplementationSpecific', 'ccc'],
          ],
        },
      ],
    }),
  ]);
  t.is(route(table, 'h', '/aaa/ccc'), 'default/ccc:80');
  t.is(route(table, 'h', '/aaa/bbb'), 'default/exact:80');
  t.is(route(table, 'h', '/aaa/bbb/'), 'default/bbb:80');
  t.is(route(table, 'h', '/aaa/bbb/x'), 'default/bbb:80');
  t.is(route(table, 'h', '/aaa/x'), 'default/aaa:80');
  t.is(route(table, 'h', '/aaax'), 'default/root:80');
  t.is(route(table, 'h', '/'), 'default/root:80');
});

test('hosts: precise before wildcard before any; a wildcard matches one label; falls through by path', (t) => {
  const table = buildIngressRoutes([
    ingress('x', {
      rules: [
        { paths: [['/', 'Prefix', 'any']] },
        { host: '*.foo.com', paths: [['/', 'Prefix', 'wild']] },
        { host: 'bar.foo.com', paths: [['/api', 'Prefix', 'bar-api']] },
        { host: 'foo.com', paths: [['/', 'Prefix', 'apex']] },
      ],
    }),
  ]);
  t.is(route(table, 'bar.foo.com', '/api/v1'), 'default/bar-api:80');
  t.is(route(table, 'BAR.foo.com:8080', '/api'), 'default/bar-api:80');
  // bar.foo.com routes only /api: other paths go on to the wildcard, then to any host.
  t.is(route(table, 'bar.foo.com', '/'), 'default/wild:80');
  t.is(route(table, 'baz.foo.com', '/x'), 'default/wild:80');
  t.is(route(table, 'foo.com', '/x'), 'default/apex:80');
  // *.foo.com matches exactly one label more.
  t.is(route(table, 'a.b.foo.com', '/x'), 'default/any:80');
  t.is(route(table, 'other.org', '/x'), 'default/any:80');
  t.is(route(table, undefined, '/x'), 'default/any:80');
  t.is(route(table, '127.0.0.1:80', '/x'), 'default/any:80');
});

test('no rule matches: nothing, or a default backend (one naming the host first, then the oldest)', (t) => {
  const rules = [{ host: 'a.example', paths: [['/app', 'Prefix', 'app'] as Path] }];
  t.is(route(buildIngressRoutes([ingress('x', { rules })]), 'a.example', '/other'), '-');
  t.is(route(buildIngressRoutes([]), 'a.example', '/'), '-');

  const table = buildIngressRoutes([
    ingress('newer', { defaultService: 'newer-default', created: '2026-01-03T00:00:00Z' }),
    ingress('older', { defaultService: 'older-default', created: '2026-01-02T00:00:00Z' }),
    ingress('a', {
      rules,
      defaultService: 'a-default',
      created: '2026-01-04T00:00:00Z',
    }),
    ingress('wild', {
      rules: [{ host: '*.w.example', paths: [['/app', 'Prefix', 'w-app']] }],
      defaultService: 'w-default:http',
      created: '2026-01-05T00:00:00Z',
    }),
  ]);
  t.is(route(table, 'a.example', '/app/x'), 'default/app:80');
  t.is(route(table, 'a.example', '/other'), 'default/a-default:80');
  t.is(route(table, 'x.w.example', '/other'), 'default/w-default:http');
  t.is(route(table, 'elsewhere.example', '/'), 'default/older-default:80');
  t.like(table.match('elsewhere.example', '/'), { ingress: 'default/older', route: undefined });
});

test('the same host and path in two Ingresses: the older one wins, whatever the list order', (t) => {
  const older = ingress('b-older', {
    rules: [{ host: 'h.example', paths: [['/api', 'Prefix', 'old']] }],
    created: '2026-01-01T00:00:00Z',
  });
  const newer = ingress('a-newer', {
    rules: [{ host: 'h.example', paths: [['/api/', 'Prefix', 'new']] }],
    created: '2026-01-02T00:00:00Z',
  });
  for (const list of [
    [older, newer],
    [newer, older],
  ]) {
    const table = buildIngressRoutes(list);
    t.is(route(table, 'h.example', '/api/x'), 'default/old:80');
    t.deepEqual(
      table.shadowed.map((r) => `${r.ingress} ${r.path}`),
      ['default/a-newer /api/'],
    );
  }
  // Same time: namespace/name decides.
  const tie = (ns: string, svc: string) =>
    ingress('x', { namespace: ns, rules: [{ paths: [['/', 'Prefix', svc]] }] });
  t.is(route(buildIngressRoutes([tie('zz', 'z'), tie('aa', 'a')]), 'h', '/'), 'aa/a:80');
  // Exact and Prefix of the same path are different routes.
  const both = buildIngressRoutes([
    older,
    ingress('c', { rules: [{ host: 'h.example', paths: [['/api', 'Exact', 'exact']] }] }),
  ]);
  t.is(route(both, 'h.example', '/api'), 'default/exact:80');
  t.is(both.shadowed.length, 0);
});

test('backends: in the Ingress namespace, by port number or name; resources kept; the services listed once', (t) => {
  const table = buildIngressRoutes([
    ingress('x', {
      namespace: 'shop',
      rules: [
        {
          paths: [
            ['/a', 'Prefix', 'web:http'],
            ['/b', 'Prefix', 'web:http'],
            ['/c', 'Prefix', 'api:8080'],
          ],
        },
      ],
      defaultService: 'web:http',
    }),
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'r', namespace: 'shop', creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: {
        rules: [
          {
            host: 'static.example',
            http: {
              paths: [
                {
                  path: '/',
                  pathType: 'Prefix',
                  backend: { resource: { apiGroup: 'k8s.example.com', kind: 'Bucket', name: 'assets' } },
                },
              ],
            },
          },
        ],
      },
    } as unknown as ApiObject,
  ]);
  t.is(route(table, 'h', '/a'), 'shop/web:http');
  t.is(route(table, 'h', '/c/d'), 'shop/api:8080');
  t.is(route(table, 'static.example', '/x'), 'resource:assets');
  t.deepEqual(
    table
      .serviceBackends()
      .map((b) => `${b.namespace}/${b.name}:${b.port.number ?? b.port.name}`)
      .sort(),
    ['shop/api:8080', 'shop/web:http'],
  );
});

test('malformed objects in the cache are skipped, never thrown on', (t) => {
  const junk = [
    { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'a' } },
    { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'b' }, spec: { rules: 'x' } },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'c' },
      spec: { rules: [null, { http: { paths: [{ path: '/', pathType: 'Bogus', backend: {} }, 7] } }] },
    },
  ] as unknown as ApiObject[];
  const table = buildIngressRoutes(junk);
  t.is(route(table, 'h', '/'), '-');
  t.deepEqual(table.serviceBackends(), []);
});
