// The balancer alone, on a fake clock: round-robin order, every backend offered once per
// connection, ClientIP affinity that sticks, is refreshed on use, expires, and is dropped
// when its backend leaves the endpoints.
import test from 'ava';
import { Balancer, backendKey } from '../../pkg/proxy/balancer.js';
import type { Backend } from '../../pkg/proxy/types.js';

const b = (n: number): Backend => ({ ip: `127.0.0.${n}`, port: 8000 + n });
const keys = (list: Backend[]) => list.map(backendKey);

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('round-robin: each pick starts one further and lists every backend once', (t) => {
  const bal = new Balancer();
  bal.setBackends([b(1), b(2), b(3)]);
  t.deepEqual(keys(bal.pick('c')), ['127.0.0.1:8001', '127.0.0.2:8002', '127.0.0.3:8003']);
  t.deepEqual(keys(bal.pick('c')), ['127.0.0.2:8002', '127.0.0.3:8003', '127.0.0.1:8001']);
  t.deepEqual(keys(bal.pick('d')), ['127.0.0.3:8003', '127.0.0.1:8001', '127.0.0.2:8002']);
  t.deepEqual(keys(bal.pick('d')), ['127.0.0.1:8001', '127.0.0.2:8002', '127.0.0.3:8003']);
});

test('no backends: nothing to try', (t) => {
  const bal = new Balancer();
  t.deepEqual(bal.pick('c'), []);
  bal.setBackends([b(1)]);
  bal.setBackends([]);
  t.deepEqual(bal.pick('c'), []);
});

test('duplicates are tried once; the cursor survives a shrinking list', (t) => {
  const bal = new Balancer();
  bal.setBackends([b(1), b(2), b(1), b(3)]);
  t.is(bal.size, 3);
  bal.pick('c');
  bal.pick('c');
  bal.setBackends([b(1), b(2)]);
  t.deepEqual(keys(bal.pick('c')), ['127.0.0.1:8001', '127.0.0.2:8002']);
  t.deepEqual(keys(bal.pick('c')), ['127.0.0.2:8002', '127.0.0.1:8001']);
});

test('ClientIP affinity: a client sticks to the backend it reached, others keep rotating', (t) => {
  const c = clock();
  const bal = new Balancer({ affinity: { timeoutSeconds: 10 }, now: c.now });
  bal.setBackends([b(1), b(2), b(3)]);
  const first = bal.pick('10.1.1.1');
  t.is(backendKey(first[0] as Backend), '127.0.0.1:8001');
  // The first choice refused; the client reached the second one.
  bal.connected('10.1.1.1', first[1] as Backend);
  for (let i = 0; i < 5; i++) {
    const order = bal.pick('10.1.1.1');
    t.is(backendKey(order[0] as Backend), '127.0.0.2:8002');
    t.is(order.length, 3, 'the others remain as fallbacks');
    t.is(new Set(keys(order)).size, 3);
  }
  // Another client is not affected by the first one's entry.
  t.not(bal.stickyOf('10.2.2.2'), '127.0.0.2:8002');
  t.is(bal.stickyOf('10.1.1.1'), '127.0.0.2:8002');
});

test('ClientIP affinity expires after timeoutSeconds without use, and use refreshes it', (t) => {
  const c = clock();
  const bal = new Balancer({ affinity: { timeoutSeconds: 10 }, now: c.now });
  bal.setBackends([b(1), b(2), b(3)]);
  bal.connected('ip', b(3));
  c.advance(9_000);
  t.is(backendKey(bal.pick('ip')[0] as Backend), '127.0.0.3:8003');
  bal.connected('ip', b(3)); // used again: another 10 s from now
  c.advance(9_000);
  t.is(bal.stickyOf('ip'), '127.0.0.3:8003');
  c.advance(1_000);
  t.is(bal.stickyOf('ip'), undefined, 'expired exactly at timeout');
  t.is(bal.stickyCount, 0, 'expired entry dropped');
});

test('ClientIP affinity: an entry is dropped when its backend leaves the endpoints', (t) => {
  const c = clock();
  const bal = new Balancer({ affinity: { timeoutSeconds: 100 }, now: c.now });
  bal.setBackends([b(1), b(2)]);
  bal.connected('ip', b(2));
  t.is(bal.stickyOf('ip'), '127.0.0.2:8002');
  bal.setBackends([b(1), b(3)]);
  t.is(bal.stickyCount, 0);
  bal.setBackends([b(1), b(2), b(3)]);
  t.is(bal.stickyOf('ip'), undefined, 'coming back does not restore it');
});

test('affinity can be turned off and on; connected() without affinity remembers nothing', (t) => {
  const c = clock();
  const bal = new Balancer({ now: c.now });
  bal.setBackends([b(1), b(2)]);
  bal.connected('ip', b(2));
  t.is(bal.stickyCount, 0);
  bal.setAffinity({ timeoutSeconds: 5 });
  bal.connected('ip', b(2));
  t.is(bal.stickyOf('ip'), '127.0.0.2:8002');
  bal.setAffinity(undefined);
  t.is(bal.stickyCount, 0);
  t.deepEqual(keys(bal.pick('ip')).length, 2);
});

test('a shorter timeout applies to existing entries', (t) => {
  const c = clock();
  const bal = new Balancer({ affinity: { timeoutSeconds: 1000 }, now: c.now });
  bal.setBackends([b(1), b(2)]);
  bal.connected('ip', b(2));
  bal.setAffinity({ timeoutSeconds: 5 });
  c.advance(5_000);
  t.is(bal.stickyOf('ip'), undefined);
});

test('expired entries of clients that never come back are swept', (t) => {
  const c = clock();
  const bal = new Balancer({ affinity: { timeoutSeconds: 1 }, now: c.now });
  bal.setBackends([b(1)]);
  for (let i = 0; i < 100; i++) bal.connected(`10.0.0.${i}`, b(1));
  t.is(bal.stickyCount, 100);
  c.advance(61_000);
  bal.pick('someone-else');
  t.is(bal.stickyCount, 0);
});
