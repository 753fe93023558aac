import test, { type ExecutionContext } from 'ava';
import { ApiError, ApiErrorCode } from '../../pkg/api/errors.js';
import { fieldValue, matchesFields, parseFieldSelector, supportedFields } from '../../pkg/api/fields.js';
import { type KindInfo, kindByName } from '../../pkg/api/kinds.js';
import type { ApiObject } from '../../pkg/api/types.js';

const kind = (name: string): KindInfo => {
  const k = kindByName(name);
  if (k === undefined) throw new Error(`no kind ${name}`);
  return k;
};
const pods = kind('pods');

const badRequest = (t: ExecutionContext, fn: () => unknown, includes: string) => {
  const e = t.throws(fn, { instanceOf: ApiError });
  t.is(e?.code, ApiErrorCode.BadRequest);
  t.true(e?.message.includes(includes), `${e?.message} should include ${includes}`);
};

const pod = (name: string, extra: Partial<ApiObject> = {}): ApiObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default' },
  ...extra,
});

test('parseFieldSelector: =, == and !=, comma-separated', (t) => {
  t.deepEqual(parseFieldSelector('metadata.name=web', pods), [
    { field: 'metadata.name', operator: '=', value: 'web' },
  ]);
  t.deepEqual(parseFieldSelector('status.phase==Running,spec.nodeName!=n1', pods), [
    { field: 'status.phase', operator: '=', value: 'Running' },
    { field: 'spec.nodeName', operator: '!=', value: 'n1' },
  ]);
  t.deepEqual(parseFieldSelector(' metadata.namespace != kube-system , ', pods), [
    { field: 'metadata.namespace', operator: '!=', value: 'kube-system' },
  ]);
  t.deepEqual(parseFieldSelector('spec.nodeName=', pods), [
    { field: 'spec.nodeName', operator: '=', value: '' },
  ]);
  t.deepEqual(parseFieldSelector('', pods), []);
});

test('parseFieldSelector: escaped characters in values', (t) => {
  t.deepEqual(parseFieldSelector('metadata.name=a\\,b\\=c\\\\d,status.phase=x', pods), [
    { field: 'metadata.name', operator: '=', value: 'a,b=c\\d' },
    { field: 'status.phase', operator: '=', value: 'x' },
  ]);
  badRequest(t, () => parseFieldSelector('metadata.name=a\\b', pods), 'invalid escape sequence');
  badRequest(t, () => parseFieldSelector('metadata.name==a=b', pods), 'unescaped "="');
});

test('parseFieldSelector: unsupported field lists the supported ones', (t) => {
  const e = t.throws(() => parseFieldSelector('spec.foo=x', pods), { instanceOf: ApiError });
  t.is(e?.code, ApiErrorCode.BadRequest);
  t.is(
    e?.message,
    'field label not supported: spec.foo (supported for pods: metadata.name, metadata.namespace, spec.nodeName, spec.restartPolicy, status.phase, status.podIP)',
  );
  badRequest(t, () => parseFieldSelector('status.phase=Active', kind('cm')), 'supported for configmaps:');
  badRequest(t, () => parseFieldSelector('spec.nodeName=n1', kind('svc')), 'field label not supported');
});

test('parseFieldSelector: malformed terms', (t) => {
  badRequest(t, () => parseFieldSelector('metadata.name', pods), '"metadata.name" is not field=value');
  badRequest(t, () => parseFieldSelector('=web', pods), 'has no field name');
});

test('supported fields per kind', (t) => {
  t.deepEqual(supportedFields(kind('cm')), ['metadata.name', 'metadata.namespace']);
  t.true(supportedFields(kind('events')).includes('involvedObject.uid'));
  t.true(supportedFields(kind('events')).includes('source.component'));
  t.deepEqual(supportedFields(kind('ns')), ['metadata.name', 'metadata.namespace', 'status.phase']);
  t.deepEqual(supportedFields(kind('nodes')), ['metadata.name', 'metadata.namespace', 'spec.unschedulable']);
  t.deepEqual(supportedFields(kind('secrets')), ['metadata.name', 'metadata.namespace', 'type']);
  for (const f of [
    'reason',
    'type',
    'involvedObject.kind',
    'involvedObject.name',
    'involvedObject.namespace',
  ]) {
    t.notThrows(() => parseFieldSelector(`${f}=x`, kind('ev')));
  }
});

test('matchesFields: = and != on pods', (t) => {
  const running = pod('web', { spec: { nodeName: 'n1' }, status: { phase: 'Running', podIP: '10.0.0.5' } });
  const pending = pod('db', { status: { phase: 'Pending' } });
  const sel = parseFieldSelector('status.phase=Running,spec.nodeName=n1', pods);
  t.true(matchesFields(sel, running));
  t.false(matchesFields(sel, pending));
  t.true(matchesFields(parseFieldSelector('metadata.name!=web', pods), pending));
  t.false(matchesFields(parseFieldSelector('metadata.name!=web', pods), running));
  t.true(matchesFields(parseFieldSelector('status.podIP=10.0.0.5', pods), running));
  t.true(matchesFields([], pending));
});

test('matchesFields: a missing field compares as the empty string', (t) => {
  const unscheduled = pod('web');
  t.true(matchesFields(parseFieldSelector('spec.nodeName=', pods), unscheduled));
  t.false(matchesFields(parseFieldSelector('spec.nodeName!=', pods), unscheduled));
  t.true(matchesFields(parseFieldSelector('spec.nodeName!=n1', pods), unscheduled));
  const ns: ApiObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x' } };
  t.true(matchesFields(parseFieldSelector('metadata.namespace=', kind('ns')), ns));
});

test('matchesFields: booleans read as true/false; a Node without spec.unschedulable is false', (t) => {
  const node = (unschedulable?: boolean): ApiObject => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'n1' },
    spec: unschedulable === undefined ? {} : { unschedulable },
  });
  const cordoned = parseFieldSelector('spec.unschedulable=true', kind('nodes'));
  const open = parseFieldSelector('spec.unschedulable=false', kind('nodes'));
  t.true(matchesFields(cordoned, node(true)));
  t.false(matchesFields(cordoned, node(false)));
  t.true(matchesFields(open, node(false)));
  t.true(matchesFields(open, node()));
  t.is(fieldValue(node(true), 'spec.unschedulable'), 'true');
});

test('matchesFields: events and secrets', (t) => {
  const ev: ApiObject = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: 'web.1', namespace: 'default' },
    involvedObject: { kind: 'Pod', name: 'web', namespace: 'default', uid: 'u1' },
    reason: 'Scheduled',
    type: 'Normal',
    source: { component: 'scheduler' },
  };
  const evs = kind('events');
  t.true(
    matchesFields(
      parseFieldSelector('involvedObject.kind=Pod,involvedObject.name=web,involvedObject.uid=u1', evs),
      ev,
    ),
  );
  t.true(
    matchesFields(parseFieldSelector('reason=Scheduled,type=Normal,source.component=scheduler', evs), ev),
  );
  t.false(matchesFields(parseFieldSelector('type=Warning', evs), ev));
  const secret: ApiObject = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, type: 'Opaque' };
  t.true(matchesFields(parseFieldSelector('type=Opaque', kind('secrets')), secret));
});

test('fieldValue: never reads inherited properties or through non-objects', (t) => {
  const p = pod('web', { status: { phase: 'Running' } });
  t.is(fieldValue(p, 'metadata.constructor'), '');
  t.is(fieldValue(p, 'status.phase.length'), '');
  t.is(fieldValue(p, 'spec.nodeName'), '');
});
