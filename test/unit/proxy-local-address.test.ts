// Making cluster IPs local, with a fake adapter (the machine is never changed): loopback
// and interface addresses are left alone, others are added once while used and removed
// when the last user goes or on releaseAll; only what was added is removed; a refused add
// is retried after a while; the real adapter's command line.
import test from 'ava';
import {
  createIpCommandAdapter,
  isLocalAddress,
  type LocalAddressAdapter,
  LocalAddresses,
} from '../../pkg/proxy/local-address.js';
import { silentLogger } from './proxy-support.js';

function fakeAdapter(local: string[] = []) {
  const calls: string[] = [];
  const present = new Set(local);
  let refuse = false;
  const adapter: LocalAddressAdapter = {
    isLocal: (ip) => ip.startsWith('127.') || present.has(ip),
    add: async (ip) => {
      calls.push(`add ${ip}`);
      if (refuse) throw new Error('RTNETLINK answers: Operation not permitted');
      present.add(ip);
    },
    remove: async (ip) => {
      calls.push(`remove ${ip}`);
      present.delete(ip);
    },
  };
  return {
    adapter,
    calls,
    present,
    refuse: (v: boolean) => {
      refuse = v;
    },
  };
}

test('isLocalAddress: all of 127/8 and ::1 are local; a documentation address is not', (t) => {
  t.true(isLocalAddress('127.0.0.1'));
  t.true(isLocalAddress('127.96.3.4'));
  t.true(isLocalAddress('::1'));
  t.false(isLocalAddress('192.0.2.77'));
});

test('loopback and already-present addresses are never added nor removed', async (t) => {
  const f = fakeAdapter(['10.9.9.9']);
  const local = new LocalAddresses({ adapter: f.adapter, logger: silentLogger });
  await local.acquire('127.96.0.5');
  await local.acquire('10.9.9.9');
  await local.release('127.96.0.5');
  await local.release('10.9.9.9');
  await local.releaseAll();
  t.deepEqual(f.calls, []);
  t.true(f.present.has('10.9.9.9'), 'an address someone else put there stays');
});

test('a non-local cluster IP is added once, kept while used, removed with its last user', async (t) => {
  const f = fakeAdapter();
  const local = new LocalAddresses({ adapter: f.adapter, logger: silentLogger });
  await Promise.all([local.acquire('10.96.0.1'), local.acquire('10.96.0.1')]);
  t.deepEqual(f.calls, ['add 10.96.0.1']);
  t.deepEqual(local.owned(), ['10.96.0.1']);
  await local.ensure('10.96.0.1');
  t.deepEqual(f.calls, ['add 10.96.0.1'], 'ensure on an owned address does nothing');
  await local.release('10.96.0.1');
  t.deepEqual(f.calls, ['add 10.96.0.1'], 'still one user');
  await local.release('10.96.0.1');
  t.deepEqual(f.calls, ['add 10.96.0.1', 'remove 10.96.0.1']);
  t.deepEqual(local.owned(), []);
});

test('releaseAll removes every added address, and only those', async (t) => {
  const f = fakeAdapter(['10.1.1.1']);
  const local = new LocalAddresses({ adapter: f.adapter, logger: silentLogger });
  await local.acquire('10.96.0.1');
  await local.acquire('10.96.0.2');
  await local.acquire('10.1.1.1');
  await local.releaseAll();
  t.deepEqual(f.calls.sort(), ['add 10.96.0.1', 'add 10.96.0.2', 'remove 10.96.0.1', 'remove 10.96.0.2']);
  t.deepEqual([...f.present], ['10.1.1.1']);
});

test('a refused add is not retried at once, but after 30 s', async (t) => {
  const f = fakeAdapter();
  let now = 0;
  const local = new LocalAddresses({ adapter: f.adapter, logger: silentLogger, now: () => now });
  f.refuse(true);
  await local.acquire('10.96.0.3');
  await local.ensure('10.96.0.3');
  t.deepEqual(f.calls, ['add 10.96.0.3']);
  f.refuse(false);
  now += 30_000;
  await local.ensure('10.96.0.3');
  t.deepEqual(f.calls, ['add 10.96.0.3', 'add 10.96.0.3']);
  t.deepEqual(local.owned(), ['10.96.0.3']);
});

test('an address released while its add was in flight is removed again', async (t) => {
  const f = fakeAdapter();
  const local = new LocalAddresses({ adapter: f.adapter, logger: silentLogger });
  const acquiring = local.acquire('10.96.0.4');
  await local.release('10.96.0.4');
  await acquiring;
  t.deepEqual(f.calls, ['add 10.96.0.4', 'remove 10.96.0.4']);
  t.deepEqual(local.owned(), []);
});

test('the ip command adapter runs `ip addr add|del IP/32 dev lo` (fake runner)', async (t) => {
  const ran: string[] = [];
  const adapter = createIpCommandAdapter({
    run: async (file, args) => {
      ran.push([file, ...args].join(' '));
    },
  });
  await adapter.add('10.96.0.9');
  await adapter.remove('10.96.0.9');
  await createIpCommandAdapter({
    device: 'dummy0',
    run: async (f, a) => void ran.push([f, ...a].join(' ')),
  }).add('fd00::9');
  t.deepEqual(ran, [
    'ip addr add 10.96.0.9/32 dev lo',
    'ip addr del 10.96.0.9/32 dev lo',
    'ip addr add fd00::9/128 dev dummy0',
  ]);
  t.true(adapter.isLocal('127.0.0.1'));
});
