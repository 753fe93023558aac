import { createServer, type Server } from 'node:net';
import test from 'ava';
import { canBind, createHostPortAllocator, HostPortError } from '../../pkg/agent/host-ports.js';

const IP = '127.0.0.1';
const always = async () => true;

test('allocates in order from the range, per address and protocol', async (t) => {
  const a = createHostPortAllocator({ range: [41000, 41009], isFree: always });
  t.is((await a.allocate('p1', 80, 'TCP', IP)).hostPort, 41000);
  t.is((await a.allocate('p1', 443, 'TCP', IP)).hostPort, 41001);
  t.is((await a.allocate('p2', 80, 'TCP', IP)).hostPort, 41002);
  t.is((await a.allocate('p2', 53, 'UDP', IP)).hostPort, 41000, 'UDP is a separate space');
  t.is(
    (await a.allocate('p3', 80, 'TCP', '127.0.0.2')).hostPort,
    41000,
    'another address is a separate space',
  );
  t.deepEqual(await a.allocate('p1', 80, 'TCP', IP), {
    containerPort: 80,
    protocol: 'TCP',
    hostIp: IP,
    hostPort: 41000,
  });
  t.deepEqual(
    a.bindings('p1').map((b) => b.hostPort),
    [41000, 41001],
  );
});

test('a released port is not handed straight out again; the cursor wraps', async (t) => {
  const a = createHostPortAllocator({ range: [41000, 41002], isFree: always });
  await a.allocate('p1', 80, 'TCP', IP);
  await a.allocate('p2', 80, 'TCP', IP);
  a.release('p1');
  t.deepEqual(a.bindings('p1'), []);
  t.is((await a.allocate('p3', 80, 'TCP', IP)).hostPort, 41002);
  t.is((await a.allocate('p4', 80, 'TCP', IP)).hostPort, 41000, 'wrapped to the freed port');
  await t.throwsAsync(a.allocate('p5', 80, 'TCP', IP), {
    instanceOf: HostPortError,
    message: /no free host port/,
  });
});

test('a wanted hostPort is used, and refused when another pod holds it', async (t) => {
  const a = createHostPortAllocator({ range: [41000, 41009], isFree: always });
  t.is((await a.allocate('p1', 80, 'TCP', IP, 8080)).hostPort, 8080);
  t.is((await a.allocate('p1', 80, 'TCP', IP, 8080)).hostPort, 8080, 'idempotent');
  await t.throwsAsync(a.allocate('p2', 80, 'TCP', IP, 8080), { message: /taken by pod p1/ });
  await t.throwsAsync(a.allocate('p1', 81, 'TCP', IP, 8080), { message: /same pod/ });
  t.is((await a.allocate('p2', 80, 'UDP', IP, 8080)).hostPort, 8080, 'UDP 8080 is another port');
  a.release('p1');
  t.is((await a.allocate('p2', 80, 'TCP', IP, 8080)).hostPort, 8080);
});

test('adopted bindings are taken after a restart', async (t) => {
  const a = createHostPortAllocator({ range: [41000, 41002], isFree: always });
  a.adopt('old', [
    { containerPort: 80, protocol: 'TCP', hostIp: IP, hostPort: 41000 },
    { containerPort: 81, protocol: 'TCP', hostIp: IP, hostPort: 41002 },
  ]);
  t.is((await a.allocate('new', 80, 'TCP', IP)).hostPort, 41001);
  t.is((await a.allocate('old', 80, 'TCP', IP)).hostPort, 41000, 'the adopted pod keeps its port');
  await t.throwsAsync(a.allocate('new', 9, 'TCP', IP, 41002), { message: /taken by pod old/ });
});

test('overlapping allocations never share a port', async (t) => {
  const a = createHostPortAllocator({
    range: [41000, 41099],
    isFree: () => new Promise((r) => setTimeout(() => r(true), 5)),
  });
  const got = await Promise.all(Array.from({ length: 20 }, (_, i) => a.allocate(`p${i}`, 80, 'TCP', IP)));
  t.is(new Set(got.map((b) => b.hostPort)).size, 20);
});

function listen(port = 0): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host: IP, port }, () => resolve(s));
  });
}

test('the default isFree skips ports something else on 127.0.0.1 holds', async (t) => {
  const busy = await listen();
  const port = (busy.address() as { port: number }).port;
  try {
    t.false(await canBind(IP, port));
    t.true(await canBind(IP, port, 'UDP'));
    const a = createHostPortAllocator({ range: [port, port] });
    await t.throwsAsync(a.allocate('p', 80, 'TCP', IP), { message: /no free host port/ });
    t.deepEqual(a.bindings('p'), [], 'the candidate was not kept');
    await t.throwsAsync(a.allocate('q', 80, 'TCP', IP, port), { message: /in use on this machine/ });
  } finally {
    await new Promise((r) => busy.close(r));
  }
  t.true(await canBind(IP, port), 'free once closed');
});

test('an invalid range is refused', (t) => {
  t.throws(() => createHostPortAllocator({ range: [5, 1] }), { instanceOf: HostPortError });
  t.throws(() => createHostPortAllocator({ range: [0, 10] }), { instanceOf: HostPortError });
});
