import test from 'ava';
import { Lessor } from '../../pkg/store/lessor.js';

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('a lease expires one TTL after its grant, unless renewed', (t) => {
  const c = clock();
  const l = new Lessor(c.now);
  l.track(7, 5);
  c.advance(4999);
  t.deepEqual(l.expired(), []);
  t.is(l.remaining(7), 1);
  t.is(l.renew(7), 5);
  c.advance(4999);
  t.deepEqual(l.expired(), [], 'the renewal moved the deadline');
  c.advance(1);
  t.deepEqual(l.expired(), [7]);
  t.is(l.remaining(7), 0);
});

test('a new leader restarts every deadline from the full TTL', (t) => {
  const c = clock();
  const l = new Lessor(c.now);
  l.track(1, 2);
  l.track(2, 10);
  c.advance(1900);
  l.promote();
  c.advance(1900);
  t.deepEqual(l.expired(), [], 'lease 1 did not expire early across the failover');
  c.advance(100);
  t.deepEqual(l.expired(), [1]);
});

test('unknown and forgotten leases', (t) => {
  const c = clock();
  const l = new Lessor(c.now);
  t.is(l.renew(3), 0);
  t.is(l.remaining(3), -1);
  l.track(3, 1);
  l.forget(3);
  c.advance(5000);
  t.deepEqual(l.expired(), []);
  t.deepEqual(l.ids(), []);
});

test('expired leases come oldest first', (t) => {
  const c = clock();
  const l = new Lessor(c.now);
  l.track(1, 3);
  l.track(2, 1);
  l.track(3, 2);
  c.advance(3000);
  t.deepEqual(l.expired(), [2, 3, 1]);
});
