import test from 'ava';
import { ApiError, ApiErrorCode } from '../../pkg/api/errors.js';
import {
  EVERYTHING,
  formatSelector,
  labelKeyErrors,
  labelValueErrors,
  matches,
  NOTHING,
  parseSelector,
  type Selector,
  selectorFromLabelSelector,
  selectorFromSet,
} from '../../pkg/api/labels.js';

const badRequest = (t: import('ava').ExecutionContext, fn: () => unknown, includes: string) => {
  const e = t.throws(fn, { instanceOf: ApiError });
  t.is(e?.code, ApiErrorCode.BadRequest);
  t.true(e?.message.includes(includes), `${e?.message} should include ${includes}`);
};

test('parseSelector: every operator of kubectl -l', (t) => {
  t.deepEqual(parseSelector('app=web'), [{ key: 'app', operator: 'In', values: ['web'] }]);
  t.deepEqual(parseSelector('app==web'), [{ key: 'app', operator: 'In', values: ['web'] }]);
  t.deepEqual(parseSelector('tier!=db'), [{ key: 'tier', operator: 'NotIn', values: ['db'] }]);
  t.deepEqual(parseSelector('env in (prod, staging)'), [
    { key: 'env', operator: 'In', values: ['prod', 'staging'] },
  ]);
  t.deepEqual(parseSelector('env notin (dev)'), [{ key: 'env', operator: 'NotIn', values: ['dev'] }]);
  t.deepEqual(parseSelector('release'), [{ key: 'release', operator: 'Exists', values: [] }]);
  t.deepEqual(parseSelector('!release'), [{ key: 'release', operator: 'DoesNotExist', values: [] }]);
  t.deepEqual(parseSelector('x>3'), [{ key: 'x', operator: 'Gt', values: ['3'] }]);
  t.deepEqual(parseSelector('x<-5'), [{ key: 'x', operator: 'Lt', values: ['-5'] }]);
});

test('parseSelector: several requirements, whitespace, prefixed keys', (t) => {
  t.deepEqual(parseSelector('  app = web ,  example.com/tier!=db,env in(a,b) , !canary, x > 3 '), [
    { key: 'app', operator: 'In', values: ['web'] },
    { key: 'example.com/tier', operator: 'NotIn', values: ['db'] },
    { key: 'env', operator: 'In', values: ['a', 'b'] },
    { key: 'canary', operator: 'DoesNotExist', values: [] },
    { key: 'x', operator: 'Gt', values: ['3'] },
  ]);
  t.deepEqual(parseSelector('version=v1.2-rc_3'), [
    { key: 'version', operator: 'In', values: ['v1.2-rc_3'] },
  ]);
});

test('parseSelector: empty text selects everything', (t) => {
  t.deepEqual(parseSelector(''), []);
  t.deepEqual(parseSelector('   '), []);
  t.true(matches(parseSelector(''), undefined));
});

test('parseSelector: an empty value is allowed, as in Kubernetes', (t) => {
  const s = parseSelector('app=');
  t.deepEqual(s, [{ key: 'app', operator: 'In', values: [''] }]);
  t.true(matches(s, { app: '' }));
  t.false(matches(s, { app: 'web' }));
  t.false(matches(s, {}));
});

test('parseSelector: errors name the offending part', (t) => {
  badRequest(t, () => parseSelector('app=web,'), 'invalid label selector "app=web,"');
  badRequest(t, () => parseSelector('app=web,'), 'expected a label key after ","');
  badRequest(t, () => parseSelector('=web'), 'expected a label key at the start, found "="');
  badRequest(t, () => parseSelector('app=web=x'), 'expected "," after "app=web", found "="');
  badRequest(t, () => parseSelector('app=we b'), 'expected "," after "app=we", found "b"');
  badRequest(t, () => parseSelector('env in prod'), 'expected "(" after "env in", found "prod"');
  badRequest(
    t,
    () => parseSelector('env in (a'),
    'expected "," or ")" in "env in (...)", found end of input',
  );
  badRequest(t, () => parseSelector('env in ()'), 'expected a value in "env in (...)", found ")"');
  badRequest(t, () => parseSelector('env in (a,)'), 'found ")"');
  badRequest(t, () => parseSelector('x>abc'), 'value "abc" in "x>abc" must be an integer');
  badRequest(t, () => parseSelector('x>'), 'expected an integer after "x>"');
  badRequest(t, () => parseSelector('app(web)'), 'after "app", found "("');
  badRequest(t, () => parseSelector('!'), 'expected a label key after "!"');
  badRequest(t, () => parseSelector('!a=b'), 'expected "," after "!a", found "="');
});

test('parseSelector: keys and values follow the label rules', (t) => {
  badRequest(t, () => parseSelector('-app=web'), 'invalid label key "-app"');
  badRequest(
    t,
    () => parseSelector('Example.com/app=web'),
    'invalid label key "Example.com/app": prefix part',
  );
  badRequest(t, () => parseSelector('a/b/c=web'), 'invalid label key "a/b/c"');
  badRequest(t, () => parseSelector(`${'k'.repeat(64)}=v`), 'no more than 63 characters');
  badRequest(t, () => parseSelector('app=web-'), 'invalid label value "web-" for key "app"');
  badRequest(t, () => parseSelector(`app=${'v'.repeat(64)}`), 'invalid label value');
  badRequest(t, () => parseSelector('env in (ok, bad!)'), 'found "!"');
  badRequest(t, () => parseSelector('env in (ok, bad.)'), 'invalid label value "bad."');
});

test('label key and value rules', (t) => {
  t.deepEqual(labelKeyErrors('app'), []);
  t.deepEqual(labelKeyErrors('app.kubernetes.io/name'), []);
  t.deepEqual(labelKeyErrors('A_b.c-9'), []);
  t.true(labelKeyErrors('').length > 0);
  t.true(labelKeyErrors('/name').length > 0);
  t.true(labelKeyErrors('example.com/').length > 0);
  t.true(labelKeyErrors(`${'a'.repeat(254)}/x`).length > 0);
  t.true(labelKeyErrors('x_y.com/name').length > 0);
  t.deepEqual(labelValueErrors(''), []);
  t.deepEqual(labelValueErrors('1.0'), []);
  t.true(labelValueErrors('_x').length > 0);
});

test('matches: In, NotIn, Exists, DoesNotExist', (t) => {
  const s = parseSelector('app=web,env in (prod,staging)');
  t.true(matches(s, { app: 'web', env: 'prod', other: 'x' }));
  t.true(matches(s, { app: 'web', env: 'staging' }));
  t.false(matches(s, { app: 'web', env: 'dev' }));
  t.false(matches(s, { app: 'web' }));
  t.false(matches(s, undefined));

  t.true(matches(parseSelector('release'), { release: '' }));
  t.false(matches(parseSelector('release'), {}));
  t.true(matches(parseSelector('!release'), {}));
  t.false(matches(parseSelector('!release'), { release: 'x' }));
});

test('matches: != and notin also select objects without the key', (t) => {
  t.true(matches(parseSelector('tier!=db'), {}));
  t.true(matches(parseSelector('tier!=db'), undefined));
  t.true(matches(parseSelector('tier!=db'), { tier: 'web' }));
  t.false(matches(parseSelector('tier!=db'), { tier: 'db' }));
  t.true(matches(parseSelector('env notin (dev,test)'), { app: 'x' }));
  t.false(matches(parseSelector('env notin (dev,test)'), { env: 'test' }));
});

test('matches: Gt and Lt compare integers and need the label', (t) => {
  const s = parseSelector('x>3,x<10');
  t.true(matches(s, { x: '4' }));
  t.false(matches(s, { x: '3' }));
  t.false(matches(s, { x: '10' }));
  t.false(matches(s, { x: 'four' }));
  t.false(matches(s, {}));
  t.true(matches(parseSelector('x>-2'), { x: '-1' }));
  t.true(matches(parseSelector('big>9007199254740992'), { big: '9007199254740993' }));
});

test('matches: inherited properties are not labels', (t) => {
  t.false(matches(parseSelector('constructor'), {}));
  t.true(matches(parseSelector('!toString'), {}));
  t.false(matches([{ key: '__proto__', operator: 'Exists', values: [] }], {}));
  t.throws(() => parseSelector('__proto__'), { instanceOf: ApiError });
});

test('selectorFromLabelSelector: matchLabels and matchExpressions', (t) => {
  const s = selectorFromLabelSelector({
    matchLabels: { app: 'web' },
    matchExpressions: [
      { key: 'env', operator: 'In', values: ['prod', 'staging'] },
      { key: 'tier', operator: 'NotIn', values: ['db'] },
      { key: 'release', operator: 'Exists' },
      { key: 'canary', operator: 'DoesNotExist', values: [] },
    ],
  });
  t.deepEqual(s, [
    { key: 'app', operator: 'In', values: ['web'] },
    { key: 'env', operator: 'In', values: ['prod', 'staging'] },
    { key: 'tier', operator: 'NotIn', values: ['db'] },
    { key: 'release', operator: 'Exists', values: [] },
    { key: 'canary', operator: 'DoesNotExist', values: [] },
  ]);
  t.true(matches(s, { app: 'web', env: 'prod', release: '1' }));
  t.false(matches(s, { app: 'web', env: 'prod', release: '1', canary: 'yes' }));
});

test('selectorFromLabelSelector: empty selects everything, undefined and null select nothing', (t) => {
  t.deepEqual(selectorFromLabelSelector({}), []);
  t.true(matches(selectorFromLabelSelector({}), undefined));
  t.true(matches(selectorFromLabelSelector({ matchLabels: {}, matchExpressions: [] }), { a: 'b' }));
  t.is(selectorFromLabelSelector(undefined), NOTHING);
  t.is(selectorFromLabelSelector(null), NOTHING);
  t.false(matches(NOTHING, {}));
  t.false(matches(NOTHING, { app: 'web' }));
  t.true(matches(EVERYTHING, { app: 'web' }));
});

test('selectorFromLabelSelector: invalid selectors are bad requests', (t) => {
  badRequest(t, () => selectorFromLabelSelector({ matchLabels: { 'bad key': 'x' } }), 'matchLabels[bad key]');
  badRequest(
    t,
    () => selectorFromLabelSelector({ matchLabels: { app: 'bad value' } }),
    'invalid value "bad value"',
  );
  badRequest(
    t,
    () => selectorFromLabelSelector({ matchExpressions: [{ key: 'x', operator: 'Gt', values: ['1'] }] }),
    'matchExpressions[0].operator: "Gt" is not a valid selector operator',
  );
  badRequest(
    t,
    () => selectorFromLabelSelector({ matchExpressions: [{ key: 'x', operator: 'In', values: [] }] }),
    'matchExpressions[0].values: must be specified when operator is In',
  );
  badRequest(
    t,
    () => selectorFromLabelSelector({ matchExpressions: [{ key: 'x', operator: 'Exists', values: ['a'] }] }),
    'may not be specified when operator is Exists',
  );
  badRequest(
    t,
    () => selectorFromLabelSelector({ matchExpressions: [{ key: 'x', operator: 'In' }] }),
    'must be specified when operator is In',
  );
  badRequest(t, () => selectorFromLabelSelector('app=web' as never), 'must be an object');
  badRequest(
    t,
    () => selectorFromLabelSelector({ matchLabels: { app: 1 } } as never),
    'value must be a string',
  );
});

test('selectorFromSet: a Service selector; none or empty selects nothing', (t) => {
  const s = selectorFromSet({ app: 'web', tier: 'front' });
  t.true(matches(s, { app: 'web', tier: 'front', x: 'y' }));
  t.false(matches(s, { app: 'web' }));
  t.is(selectorFromSet(undefined), NOTHING);
  t.is(selectorFromSet(null), NOTHING);
  t.is(selectorFromSet({}), NOTHING);
});

test('formatSelector: round trips through parseSelector', (t) => {
  const text = 'app=web,tier!=db,env in (prod,staging),env notin (dev,test),release,!canary,x>3,y<5';
  const s = parseSelector(text);
  t.is(formatSelector(s), text);
  t.deepEqual(parseSelector(formatSelector(s)), s);
  t.is(formatSelector(parseSelector(' app == web , env in ( a , b ) ')), 'app=web,env in (a,b)');
  t.is(formatSelector(parseSelector('app=')), 'app=');
});

test('formatSelector: everything and nothing', (t) => {
  t.is(formatSelector(EVERYTHING), '');
  t.is(formatSelector(NOTHING), '<none>');
  const s: Selector = selectorFromLabelSelector({ matchLabels: { app: 'web' } });
  t.is(formatSelector(s), 'app=web');
});

test('selectors are not mutated by matching or formatting', (t) => {
  const s = parseSelector('env in (b,a)');
  const copy = structuredClone(s);
  matches(s, { env: 'a' });
  formatSelector(s);
  t.deepEqual(s, copy);
});
