// explain: kubectl explain's layout, from the same schema validation uses.

import test from 'ava';
import { explain } from '../../pkg/api/explain.js';
import { KINDS, kindByName } from '../../pkg/api/kinds.js';

const kind = (name: string) => {
  const k = kindByName(name);
  if (!k) throw new Error(name);
  return k;
};

test('explain deployment', (t) => {
  const out = explain(kind('deployment'), []);
  t.true(out.startsWith('GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n\nDESCRIPTION:\n'));
  t.true(out.includes('    Deployment enables declarative updates for Pods and ReplicaSets.\n'));
  t.true(out.includes('FIELDS:\n  apiVersion\t<string>\n'));
  t.true(out.includes('  metadata\t<ObjectMeta>\n'));
  t.true(out.includes('  spec\t<DeploymentSpec>\n'));
  t.true(out.includes('  status\t<DeploymentStatus>\n'));
  t.true(out.indexOf('  kind\t') < out.indexOf('  metadata\t'), 'fields sorted');
});

test('explain deployment.spec.strategy', (t) => {
  const out = explain(kind('deployment'), ['spec', 'strategy']);
  t.true(out.includes('FIELD: strategy <DeploymentStrategy>\n'));
  t.true(
    out.includes(
      'DESCRIPTION:\n    The deployment strategy to use to replace existing pods with new ones.\n',
    ),
  );
  t.true(out.includes('  rollingUpdate\t<RollingUpdateDeployment>\n'));
  t.true(out.includes('  type\t<string>\n  enum: Recreate, RollingUpdate\n'));
  t.regex(out, /Defaults to "RollingUpdate"\./);
  // kubectl's own form, with the kind as the first segment, means the same.
  t.is(explain(kind('deployment'), ['deployment', 'spec', 'strategy']), out);
  const rolling = explain(kind('deploy'), ['spec', 'strategy', 'rollingUpdate', 'maxSurge']);
  t.true(rolling.includes('FIELD: maxSurge <IntOrString>'));
  t.regex(rolling, /Defaults to "25%"/);
});

test('explain pod.spec.containers lists Container fields with required marks', (t) => {
  const out = explain(kind('pod'), ['spec', 'containers']);
  t.true(out.startsWith('KIND:       Pod\nVERSION:    v1\n\nFIELD: containers <[]Container> <required>\n'));
  t.true(out.includes('  name\t<string> <required>\n'));
  t.true(out.includes('  image\t<string> <required>\n'));
  t.true(out.includes('  ports\t<[]ContainerPort>\n'));
  t.true(out.includes('  resources\t<ResourceRequirements>\n'));
  t.true(out.includes('  env\t<[]EnvVar>\n'));
  t.true(out.includes('  imagePullPolicy\t<string>\n  enum: Always, IfNotPresent, Never\n'));
  t.true(
    explain(kind('pod'), ['spec', 'containers', 'resources', 'limits']).includes(
      'FIELD: limits <map[string]Quantity>',
    ),
  );
  t.true(explain(kind('svc'), ['spec', 'ports', 'targetPort']).includes('<IntOrString>'));
});

test('a bad path names the bad segment', (t) => {
  t.throws(() => explain(kind('deployment'), ['spec', 'strategee']), {
    message: 'field "strategee" does not exist in deployment.spec',
  });
  t.throws(() => explain(kind('pod'), ['spec', 'containers', 'name', 'x']), {
    message: /field "x" does not exist/,
  });
  t.throws(() => explain(kind('pod'), ['spec', 'nodeSelector', 'x']), { message: /field "x"/ });
  t.throws(() => explain(kind('pod'), ['__proto__']), { message: /field "__proto__"/ });
});

test('every kind explains, with a description on every field', (t) => {
  for (const k of KINDS) {
    const out = explain(k, []);
    t.true(out.includes(`KIND:       ${k.kind}\n`));
    t.notRegex(out, /\t<[^>]+>\n\n/, `${k.kind}: a field without description`);
  }
});
