// The `etcd3` npm client, used the ordinary way, against a 3-node Berth cluster and a 3-node
// real etcd cluster: the same scenario with the same assertions runs against both.

import test, { type ExecutionContext } from 'ava';
import { Etcd3, type IKeyValue } from 'etcd3';
import { BerthCluster } from '../support/berth-cluster.js';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd-cluster.js';

let berth: BerthCluster | undefined;
let etcd: EtcdCluster | undefined;

test.before(async () => {
  const [b, e] = await Promise.allSettled([BerthCluster.start({ size: 3 }), startEtcdCluster({ size: 3 })]);
  if (b.status === 'fulfilled') berth = b.value;
  if (e.status === 'fulfilled') etcd = e.value;
  if (b.status === 'rejected') throw b.reason;
  if (e.status === 'rejected') throw e.reason;
});

test.after.always(async () => {
  await Promise.all([berth?.destroy(), etcd?.stop()]);
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** etcd3 wants URLs with a scheme; Berth's endpoints are bare host:port. */
function hosts(endpoints: string[]): string[] {
  return endpoints.map((e) => (/^https?:\/\//.test(e) ? e : `http://${e}`));
}

/** Retry the first write until the cluster has a leader and answers. */
async function ready(client: Etcd3): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await client.put('/__ready').value('x');
      await client.delete().key('/__ready');
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

async function scenario(t: ExecutionContext, endpoints: string[]): Promise<void> {
  const client = new Etcd3({ hosts: hosts(endpoints), dialTimeout: 3000 });
  try {
    await ready(client);

    // put / get
    await client.put('/e3/a').value('1');
    await client.put('/e3/b').value('2');
    await client.put('/e3x').value('outside');
    t.is(await client.get('/e3/a').string(), '1');
    t.is(await client.get('/e3/missing').string(), null);
    t.is(await client.get('/e3/a').number(), 1);

    // getAll().prefix()
    t.deepEqual(await client.getAll().prefix('/e3/').strings(), { '/e3/a': '1', '/e3/b': '2' });
    t.deepEqual(await client.getAll().prefix('/e3/').keys(), ['/e3/a', '/e3/b']);
    t.is(await client.getAll().prefix('/e3/').count(), 2);

    // delete
    const del = await client.delete().key('/e3/a');
    t.is(del.deleted, '1');
    t.is(await client.get('/e3/a').string(), null);
    t.deepEqual(await client.getAll().prefix('/e3/').strings(), { '/e3/b': '2' });

    // watch().prefix() receiving put (and delete) events
    const watcher = await client.watch().prefix('/e3/w/').create();
    const events: string[] = [];
    watcher.on('put', (kv: IKeyValue) => events.push(`put ${kv.key.toString()}=${kv.value.toString()}`));
    watcher.on('delete', (kv: IKeyValue) => events.push(`delete ${kv.key.toString()}`));
    await client.put('/e3/w/1').value('one');
    await client.put('/e3/w/2').value('two');
    await client.put('/e3/other').value('not watched');
    await client.delete().key('/e3/w/1');
    const deadline = Date.now() + 5000;
    while (events.length < 3 && Date.now() < deadline) await sleep(50);
    await watcher.cancel();
    t.deepEqual(events, ['put /e3/w/1=one', 'put /e3/w/2=two', 'delete /e3/w/1']);

    // lease grant + put with the lease + revoke removes the key
    const lease = client.lease(60, { autoKeepAlive: false });
    const leaseId = await lease.grant();
    t.regex(leaseId, /^[0-9a-f]+$/);
    await lease.put('/e3/leased').value('tmp');
    t.is(await client.get('/e3/leased').string(), 'tmp');
    await lease.revoke();
    t.is(await client.get('/e3/leased').string(), null);

    // STM: concurrent increments retried on conflict; the counter ends exact.
    await client.put('/e3/counter').value('0');
    const incr = () =>
      client.stm({ retries: 20 }).transact(async (tx) => {
        const v = Number(await tx.get('/e3/counter'));
        await sleep(5);
        await tx.put('/e3/counter').value(String(v + 1));
        return v;
      });
    await Promise.all(Array.from({ length: 5 }, incr));
    t.is(await client.get('/e3/counter').string(), '5');

    // if(...).then(...).else(...) with compares
    const ok = await client
      .if('/e3/counter', 'Value', '==', '5')
      .and('/e3/b', 'Version', '>', 0)
      .then(client.put('/e3/txn').value('then'))
      .else(client.put('/e3/txn').value('else'))
      .commit();
    t.true(ok.succeeded);
    t.is(await client.get('/e3/txn').string(), 'then');
    const no = await client
      .if('/e3/counter', 'Value', '==', 'nope')
      .then(client.put('/e3/txn').value('then2'))
      .else(client.put('/e3/txn').value('else'), client.get('/e3/b'))
      .commit();
    t.false(no.succeeded);
    t.is(await client.get('/e3/txn').string(), 'else');
    const r = no.responses[1]?.response_range;
    t.is(r?.kvs[0]?.value.toString(), '2', 'the get in the else branch');
  } finally {
    client.close();
  }
}

test('etcd3 client scenario against Berth', async (t) => {
  await scenario(t, berth?.endpoints() ?? []);
});

test('etcd3 client scenario against etcd (reference)', async (t) => {
  await scenario(t, etcd?.endpoints ?? []);
});
