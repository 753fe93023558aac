import test from 'ava';
import { checkLinearizable, type Operation } from '../sim/linearizability.js';

const UNKNOWN = Number.POSITIVE_INFINITY;

// Compact builders; `key` defaults to 'x' so single-register tests stay readable.
function put(id: number, client: number, value: string, call: number, ret: number, key = 'x'): Operation {
  return { id, client, kind: 'put', key, value, call, ret };
}
function get(id: number, client: number, output: string | undefined, call: number, ret: number, key = 'x') {
  return { id, client, kind: 'get', key, output, call, ret } satisfies Operation;
}
function cas(
  id: number,
  client: number,
  expect: string | undefined,
  value: string,
  output: boolean,
  call: number,
  ret: number,
  key = 'x',
): Operation {
  return { id, client, kind: 'cas', key, expect, value, output, call, ret };
}

test('sequential histories are linearizable', (t) => {
  const h = [
    get(1, 1, undefined, 0, 1),
    put(2, 1, 'a', 2, 3),
    get(3, 2, 'a', 4, 5),
    put(4, 2, 'b', 6, 7),
    get(5, 1, 'b', 8, 9),
  ];
  t.deepEqual(checkLinearizable(h), { ok: true });
  t.deepEqual(checkLinearizable([]), { ok: true });
});

test('a read concurrent with a write may see either value', (t) => {
  for (const seen of ['a', 'b']) {
    const h = [put(1, 1, 'a', 0, 1), put(2, 1, 'b', 2, 10), get(3, 2, seen, 3, 5), get(4, 3, 'b', 11, 12)];
    t.true(checkLinearizable(h).ok, `read saw ${seen}`);
  }
});

test('a write concurrent with two reads: order must be consistent but may go either way', (t) => {
  // Both reads overlap the write and each other, so "new then old" is fine here...
  t.true(
    checkLinearizable([
      put(1, 1, 'a', 0, 1),
      put(2, 1, 'b', 2, 20),
      get(3, 2, 'b', 3, 8),
      get(4, 3, 'a', 4, 9),
    ]).ok,
  );
  // ...which requires backtracking: the checker must not commit to linearizing the write first.
  t.true(checkLinearizable([put(2, 1, 'b', 0, 20), get(3, 2, 'b', 3, 8), get(4, 3, undefined, 4, 9)]).ok);
});

test('a stale read after a completed write is not linearizable', (t) => {
  const h = [put(1, 1, 'a', 0, 1), put(2, 1, 'b', 2, 3), get(3, 2, 'a', 4, 5)];
  const res = checkLinearizable(h);
  t.false(res.ok);
  t.is(res.key, 'x');
  t.regex(res.explanation ?? '', /#3\b/);
});

test('a read of a value never written is not linearizable', (t) => {
  const res = checkLinearizable([put(1, 1, 'a', 0, 5), get(2, 2, 'zzz', 1, 4)]);
  t.false(res.ok);
  t.regex(res.explanation ?? '', /#2\b/);
  t.false(checkLinearizable([get(1, 1, 'a', 0, 1)]).ok);
});

test('reads that observe values in contradicting orders are not linearizable', (t) => {
  // r1 (#3) sees the new value, then the later, non-overlapping r2 (#4) sees the old one.
  const h = [put(1, 1, 'old', 0, 1), put(2, 1, 'new', 2, 20), get(3, 2, 'new', 3, 4), get(4, 3, 'old', 5, 6)];
  const res = checkLinearizable(h);
  t.false(res.ok);
  t.regex(res.explanation ?? '', /#4\b/);
});

test('a return at the same time as a call happens first', (t) => {
  // put returns at 5 and the get is called at 5: they are not concurrent, so the get must see 'a'.
  t.true(checkLinearizable([put(1, 1, 'a', 0, 5), get(2, 2, 'a', 5, 6)]).ok);
  t.false(checkLinearizable([put(1, 1, 'a', 0, 5), get(2, 2, undefined, 5, 6)]).ok);
});

test('cas succeeds exactly when the current value matches', (t) => {
  // Sequential successes and failures, including cas on an absent key.
  t.true(
    checkLinearizable([
      cas(1, 1, undefined, 'a', true, 0, 1),
      cas(2, 1, undefined, 'b', false, 2, 3),
      cas(3, 2, 'a', 'c', true, 4, 5),
      cas(4, 2, 'a', 'd', false, 6, 7),
      get(5, 1, 'c', 8, 9),
    ]).ok,
  );
  // Reported success with the wrong expected value.
  t.false(checkLinearizable([put(1, 1, 'a', 0, 1), cas(2, 1, 'b', 'c', true, 2, 3)]).ok);
  // Reported failure although the value matched and nothing else ran.
  t.false(checkLinearizable([put(1, 1, 'a', 0, 1), cas(2, 1, 'a', 'c', false, 2, 3)]).ok);
  // A failed cas must not change the value.
  t.false(
    checkLinearizable([put(1, 1, 'a', 0, 1), cas(2, 1, 'b', 'c', false, 2, 3), get(3, 1, 'c', 4, 5)]).ok,
  );
});

test('concurrent cas: only one of two racing cas from the same value can win', (t) => {
  const base = put(1, 1, 'a', 0, 1);
  t.true(checkLinearizable([base, cas(2, 1, 'a', 'b', true, 2, 5), cas(3, 2, 'a', 'c', false, 3, 6)]).ok);
  t.true(checkLinearizable([base, cas(2, 1, 'a', 'b', false, 2, 5), cas(3, 2, 'a', 'c', true, 3, 6)]).ok);
  const res = checkLinearizable([base, cas(2, 1, 'a', 'b', true, 2, 5), cas(3, 2, 'a', 'c', true, 3, 6)]);
  t.false(res.ok);
  t.is(res.key, 'x');
});

test('an unknown-outcome put may or may not take effect', (t) => {
  // Observed later: fine.
  t.true(checkLinearizable([put(1, 1, 'a', 0, 1), put(2, 2, 'b', 2, UNKNOWN), get(3, 3, 'b', 10, 11)]).ok);
  // Never observed: also fine.
  t.true(checkLinearizable([put(1, 1, 'a', 0, 1), put(2, 2, 'b', 2, UNKNOWN), get(3, 3, 'a', 10, 11)]).ok);
  // Observed, then a later read sees the old value again: it took effect, so that is a stale read.
  t.false(
    checkLinearizable([
      put(1, 1, 'a', 0, 1),
      put(2, 2, 'b', 2, UNKNOWN),
      get(3, 3, 'b', 10, 11),
      get(4, 3, 'a', 12, 13),
    ]).ok,
  );
});

test("an unknown-outcome put's value cannot appear before its call", (t) => {
  const res = checkLinearizable([put(1, 1, 'a', 0, 1), get(2, 3, 'b', 2, 3), put(3, 2, 'b', 4, UNKNOWN)]);
  t.false(res.ok);
  t.regex(res.explanation ?? '', /#2\b/);
});

test('unknown-outcome cas takes effect only if its expectation held; unknown gets are ignored', (t) => {
  t.true(
    checkLinearizable([put(1, 1, 'a', 0, 1), cas(2, 2, 'a', 'b', false, 2, UNKNOWN), get(3, 1, 'b', 5, 6)])
      .ok,
  );
  t.false(
    checkLinearizable([put(1, 1, 'a', 0, 1), cas(2, 2, 'z', 'b', true, 2, UNKNOWN), get(3, 1, 'b', 5, 6)]).ok,
  );
  // A get that never returned constrains nothing, whatever its (ignored) output says.
  t.true(checkLinearizable([put(1, 1, 'a', 0, 1), get(2, 2, 'nonsense', 2, UNKNOWN)]).ok);
});

test('keys are checked independently and the bad key is reported', (t) => {
  const h = [
    put(1, 1, 'a', 0, 1, 'k1'),
    put(2, 2, 'a', 0, 1, 'k2'),
    put(3, 3, 'a', 0, 1, 'k3'),
    // The same value on several keys is fine: registers do not interfere.
    get(4, 1, 'a', 2, 3, 'k1'),
    put(5, 2, 'b', 2, 3, 'k2'),
    get(6, 3, 'a', 2, 3, 'k3'),
    get(7, 1, 'a', 4, 5, 'k2'), // stale: k2 is 'b' by now
    get(8, 2, 'a', 4, 5, 'k3'),
  ];
  const res = checkLinearizable(h);
  t.false(res.ok);
  t.is(res.key, 'k2');
  t.regex(res.explanation ?? '', /^key "k2": .*#7\b/);
  t.true(checkLinearizable(h.filter((op) => op.key !== 'k2')).ok);
});

test('malformed histories are rejected', (t) => {
  t.throws(() => checkLinearizable([put(1, 1, 'a', 0, 1), put(1, 1, 'b', 2, 3)]), { message: /duplicate/ });
  t.throws(() => checkLinearizable([put(1, 1, 'a', 3, 3)]), { instanceOf: RangeError });
  t.throws(
    () => checkLinearizable([{ id: 1, client: 1, kind: 'cas', key: 'x', call: 0, ret: 1, output: 'a' }]),
    {
      instanceOf: TypeError,
    },
  );
});

test('the step budget reports a timeout instead of a verdict', (t) => {
  // Many concurrent writes and a read that matches none of them: exhaustive search is needed.
  const h: Operation[] = [];
  for (let i = 0; i < 12; i++) h.push(put(i, i, `v${i}`, 0, 100));
  h.push(get(99, 99, 'never', 1, 99));
  const res = checkLinearizable(h, { maxSteps: 50 });
  t.true(res.ok);
  t.true(res.timedOut);
  t.is(res.key, 'x');
  // With the default budget the memoized search finishes and finds the violation.
  t.false(checkLinearizable(h).ok);
});

// ---- Randomized histories from a real sequential register ----

/** mulberry32: small seeded PRNG so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

interface GenOptions {
  ops: number;
  clients: number;
  keys: number;
  /** probability that an op's client gives up (ret = Infinity); it then takes effect with p=0.5 */
  unknownRate: number;
}

/**
 * Simulates concurrent clients against one atomic register per key: every op takes effect at a
 * random instant strictly inside [call, ret], so the history is linearizable by construction.
 * Values written are unique (`v<id>`), which the mutation tests rely on.
 */
function generate(seed: number, o: GenOptions): Operation[] {
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const free = new Array<number>(o.clients).fill(0);
  const written = new Map<string, string[]>(); // per key, in generation order: candidates for cas expect
  const ops: { op: Operation; at: number; applies: boolean; unknown: boolean }[] = [];
  for (let id = 0; id < o.ops; id++) {
    const client = int(o.clients);
    const key = `k${int(o.keys)}`;
    const call = (free[client] as number) + int(3);
    const ret = call + 1 + int(8);
    // A client issues its next op no earlier than this one's response (or timeout).
    free[client] = ret;
    const at = call + (0.01 + 0.98 * r()) * (ret - call);
    const unknown = r() < o.unknownRate;
    const applies = !unknown || r() < 0.5;
    const roll = r();
    let op: Operation;
    if (roll < 0.45) op = { id, client, kind: 'get', key, call, ret };
    else if (roll < 0.8) op = { id, client, kind: 'put', key, value: `v${id}`, call, ret };
    else {
      const prior = written.get(key) ?? [];
      // Recent values (or absent) so that both successes and failures occur.
      const pick = int(3);
      const expect = pick < prior.length ? prior[prior.length - 1 - pick] : undefined;
      op = { id, client, kind: 'cas', key, expect, value: `v${id}`, call, ret };
    }
    if (op.value !== undefined) {
      const list = written.get(key) ?? [];
      list.push(op.value);
      written.set(key, list);
    }
    ops.push({ op, at, applies, unknown });
  }
  // Apply effects in linearization-point order to compute outputs.
  const state = new Map<string, string>();
  for (const { op, applies } of [...ops].sort((a, b) => a.at - b.at)) {
    if (!applies) continue;
    const cur = state.get(op.key);
    if (op.kind === 'get') op.output = cur;
    else if (op.kind === 'put') state.set(op.key, op.value as string);
    else {
      op.output = cur === op.expect;
      if (op.output) state.set(op.key, op.value as string);
    }
  }
  // Only now hide the outcome of the ops whose client gave up: their effect (if any) is already baked
  // into the other ops' outputs.
  for (const { op, unknown } of ops) {
    if (!unknown) continue;
    op.ret = UNKNOWN;
    delete op.output;
  }
  return ops.map((x) => x.op);
}

test('randomized histories from a real register are linearizable; a corrupted read is not', (t) => {
  let failuresChecked = 0;
  let futureChecked = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const h = generate(seed, {
      ops: 40 + (seed % 40),
      clients: 2 + (seed % 5),
      keys: 1 + (seed % 3),
      unknownRate: 0.05,
    });
    const res = checkLinearizable(h);
    if (!res.ok || res.timedOut) return t.fail(`seed ${seed}: ${JSON.stringify(res)}`);

    const reads = h.filter((op) => op.kind === 'get' && op.ret !== UNKNOWN);
    if (reads.length === 0) continue;
    const victim = reads[seed % reads.length] as Operation;

    // Mutation 1: a value nobody ever wrote can never be current.
    const bad1 = h.map((op) => (op === victim ? { ...op, output: 'never-written' } : op));
    const r1 = checkLinearizable(bad1);
    if (r1.ok || r1.key !== victim.key)
      return t.fail(`seed ${seed}: corrupted read #${victim.id} not caught`);
    failuresChecked++;

    // Mutation 2: a value whose only writer is invoked after the read returned (values are unique,
    // so nothing else could have produced it in the read's window).
    const future = h.find((op) => op.key === victim.key && op.value !== undefined && op.call >= victim.ret);
    if (future !== undefined) {
      const bad2 = h.map((op) => (op === victim ? { ...op, output: future.value } : op));
      if (checkLinearizable(bad2).ok)
        return t.fail(`seed ${seed}: read #${victim.id} of a future value not caught`);
      futureChecked++;
    }
  }
  // Guard against the generator degenerating into histories that test nothing.
  t.true(failuresChecked > 250, `only ${failuresChecked} corrupted histories checked`);
  t.true(futureChecked > 100, `only ${futureChecked} future-value histories checked`);
});

test('randomized histories exercise concurrency, cas outcomes and unknown results', (t) => {
  // Sanity-check the generator itself, so the randomized test above is not vacuous.
  const h = generate(7, { ops: 500, clients: 5, keys: 2, unknownRate: 0.05 });
  const done = h.filter((op) => op.ret !== UNKNOWN);
  const overlapping = done.filter((a) =>
    done.some((b) => a !== b && a.key === b.key && a.call < b.ret && b.call < a.ret),
  );
  t.true(overlapping.length > 100);
  t.true(h.some((op) => op.kind === 'cas' && op.output === true));
  t.true(h.some((op) => op.kind === 'cas' && op.output === false));
  t.true(h.some((op) => op.ret === UNKNOWN));
  t.true(h.some((op) => op.kind === 'get' && typeof op.output === 'string'));
});

test('performance: 1,000 ops over 5 clients on 3 keys checks quickly', (t) => {
  const h = generate(42, { ops: 1000, clients: 5, keys: 3, unknownRate: 0.02 });
  const start = performance.now();
  const res = checkLinearizable(h);
  const ok = performance.now() - start;
  t.deepEqual(res, { ok: true });

  // A failing history forces the search to exhaust its options, the expensive case.
  const victim = h.filter((op) => op.kind === 'get' && op.ret !== UNKNOWN)[300] as Operation;
  const bad = h.map((op) => (op === victim ? { ...op, output: 'never-written' } : op));
  const start2 = performance.now();
  const res2 = checkLinearizable(bad);
  const failing = performance.now() - start2;
  t.false(res2.ok);
  t.is(res2.key, victim.key);
  t.log(`linearizable: ${ok.toFixed(1)} ms, violation: ${failing.toFixed(1)} ms`);
  t.true(ok < 2000, `took ${ok} ms`);
  t.true(failing < 2000, `took ${failing} ms`);
});
