// The authorization interceptor's log of refusals: one line per (caller, method) and window.
import test from 'ava';
import { createRefusalLimiter } from '../../pkg/auth/refusal-log.js';

test('refusals are logged once per window, with the count held back', (t) => {
  const limiter = createRefusalLimiter({ intervalMs: 1000 });
  t.deepEqual(limiter.record('a', 0), { log: true, suppressed: 0 });
  t.deepEqual(limiter.record('a', 10), { log: false, suppressed: 1 });
  t.deepEqual(limiter.record('a', 20), { log: false, suppressed: 2 });
  t.deepEqual(limiter.record('b', 30), { log: true, suppressed: 0 });
  t.deepEqual(limiter.record('a', 1500), { log: true, suppressed: 2 });
  t.deepEqual(limiter.record('a', 1600), { log: false, suppressed: 1 });
});
