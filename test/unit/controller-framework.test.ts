// The controllers' plumbing: the work queue's rules, the informer's cache over a real
// (in-process) API server, and the leader gate's fence.
import test from 'ava';
import pino from 'pino';
import { ApiError, ApiErrorCode } from '../../pkg/api/errors.js';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import type { ApiObject } from '../../pkg/api/types.js';
import { Informer } from '../../pkg/controller/informer.js';
import { FENCE_KEY, type LeaderComponent, LeaderGate } from '../../pkg/controller/leader.js';
import { WorkQueue } from '../../pkg/controller/queue.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const logger = pino({ level: 'silent' });
const cm = (name: string, data: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name },
  data,
});

async function until(probe: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('work queue: a key waits once, is never processed twice at a time, and backs off on failure', async (t) => {
  const q = new WorkQueue({ baseDelayMs: 20 });
  q.add('a');
  q.add('a');
  q.add('b');
  t.is(q.length, 2);
  const first = await q.get();
  t.is(first, 'a');
  q.add('a'); // changed while processing: comes back after done()
  t.is(q.length, 1);
  q.done('a');
  t.is(q.length, 2);
  t.is(await q.get(), 'b');
  t.is(await q.get(), 'a');
  const d1 = q.retry('a');
  q.done('a');
  const d2 = q.retry('a');
  t.is(d1, 20);
  t.is(d2, 40);
  q.forget('a');
  t.is(q.retry('a'), 20);
  const started = Date.now();
  t.is(await q.get(), 'a');
  t.true(Date.now() - started >= 15);
  q.shutdown();
  t.is(await q.get(), undefined);
});

test('informer: lists, follows changes, indexes, and reports deletions', async (t) => {
  const api = new ApiServer({ kv: createLocalStore(), logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  await api.create(cm('one', { k: 'v' }));
  const inf = new Informer(api, 'configmaps', logger);
  const seen: string[] = [];
  inf.on({
    add: (o) => seen.push(`add ${o.metadata.name}`),
    update: (_old, o) => seen.push(`update ${o.metadata.name}`),
    delete: (o) => seen.push(`delete ${o.metadata.name}`),
  });
  inf.addIndex('byKey', (o: ApiObject) => Object.keys((o.data as Record<string, string>) ?? {}));
  await inf.start();
  t.true(inf.hasSynced);
  t.truthy(inf.get('default/one'));
  const two = await api.create(cm('two', { k: 'w', x: 'y' }));
  await api.update({ ...two, data: { x: 'z' } });
  await api.delete('cm', 'default', 'one');
  await until(() => seen.length >= 4);
  t.deepEqual(seen, ['add one', 'add two', 'update two', 'delete one']);
  t.deepEqual(
    inf.byIndex('byKey', 'x').map((o) => o.metadata.name),
    ['two'],
  );
  t.deepEqual(inf.byIndex('byKey', 'k'), []);
  await inf.stop();
});

test('leader gate: components start on leadership with a fenced API and stop when it ends', async (t) => {
  const kv = createLocalStore();
  const api = new ApiServer({ kv, logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  const listeners: ((leader: number) => void)[] = [];
  let term = 1;
  const raft = {
    id: 7,
    term: () => term,
    onLeaderChange: (l: (leader: number) => void) => {
      listeners.push(l);
      return () => {};
    },
  };
  let fenced: ApiServer | undefined;
  let running = false;
  const component: LeaderComponent = {
    name: 'probe',
    start: async (a) => {
      fenced = a;
      running = true;
    },
    stop: async () => {
      running = false;
    },
  };
  const gate = new LeaderGate(kv, raft, [component], logger);
  gate.start();
  for (const l of listeners) l(7);
  await until(() => running);
  const r = await kv.range({ key: new TextEncoder().encode(FENCE_KEY) });
  t.is(new TextDecoder().decode(r.kvs[0]?.value), '7:1');
  await (fenced as ApiServer).create(cm('by-leader'));

  // Another node leads now (a newer term wrote its fence): the old component's writes fail.
  for (const l of listeners) l(9);
  await until(() => !running);
  term = 2;
  await kv.put({ key: new TextEncoder().encode(FENCE_KEY), value: new TextEncoder().encode('9:2') });
  const err = await t.throwsAsync((fenced as ApiServer).create(cm('late')));
  t.true(err instanceof ApiError && err.code === ApiErrorCode.Forbidden, String(err));
  await t.throwsAsync(api.get('cm', 'default', 'late'));
  await gate.stop();
});
