// Linearizability checker for client histories of a key-value register store, used by the Raft
// simulation. Nothing on npm does this well, so it lives here in test code.
//
// Algorithm: Wing & Gong's search, as refined by Lowe ("Testing for linearizability", 2017) and
// implemented by Knossos / Porcupine:
//   - P-compositionality: a history is linearizable iff each key's sub-history is, so every key is
//     checked on its own (a much smaller search space).
//   - The sub-history becomes a doubly-linked list of call/return events in time order. A depth-first
//     search repeatedly picks a "minimal" op (its call precedes every pending return), applies it to
//     the model and "lifts" it (unlinks its call and return). Reaching a return entry whose op has
//     not been linearized means the current prefix is a dead end, so it backtracks.
//   - Just-in-time memoization: the pair (set of linearized ops, model state) fully determines the
//     rest of the search, so a pair seen before is never explored again. The set is a bitset with an
//     incrementally maintained Zobrist hash.
//
// Time convention: times are strictly ordered. If one op returns at the same time another is called,
// the return happens first, i.e. the two ops are NOT concurrent and the first must be linearized
// before the second.

export type OpKind = 'put' | 'get' | 'cas';

export interface Operation {
  id: number; // unique
  client: number;
  kind: OpKind;
  key: string;
  /** put: value written; cas: new value */
  value?: string;
  /** cas: expected old value (undefined = key absent) */
  expect?: string;
  call: number; // virtual time of invocation (integer), call < ret
  /** virtual time of response; Infinity when the outcome is unknown (client timed out / crashed): such an op may or may not have taken effect, at any time after call */
  ret: number;
  /** get: value read (undefined = absent); cas: whether it succeeded; put: ignored. Ignored when ret is Infinity. */
  output?: string | boolean;
}

export interface CheckResult {
  ok: boolean;
  key?: string;
  /** for a failure: a short human explanation incl. the op ids involved */
  explanation?: string;
  /** true if the search hit the budget and gave up (treated as ok but reported) */
  timedOut?: boolean;
}

const DEFAULT_MAX_STEPS = 5_000_000;

/** Register value; undefined means the key is absent. */
type State = string | undefined;

export function checkLinearizable(history: Operation[], opts?: { maxSteps?: number }): CheckResult {
  const maxSteps = opts?.maxSteps ?? DEFAULT_MAX_STEPS;
  validate(history);

  const byKey = new Map<string, Operation[]>();
  for (const op of history) {
    // A get whose outcome is unknown constrains nothing (it has no effect and no observed output).
    if (op.kind === 'get' && op.ret === Number.POSITIVE_INFINITY) continue;
    let ops = byKey.get(op.key);
    if (ops === undefined) {
      ops = [];
      byKey.set(op.key, ops);
    }
    ops.push(op);
  }

  // Keep checking after a timeout: a later key may still have a definite violation, which matters more.
  let timedOutKey: string | undefined;
  for (const [key, ops] of byKey) {
    const res = checkKey(ops, maxSteps);
    if (res.kind === 'fail') {
      return { ok: false, key, explanation: `key ${JSON.stringify(key)}: ${res.explanation}` };
    }
    if (res.kind === 'timeout' && timedOutKey === undefined) timedOutKey = key;
  }
  if (timedOutKey !== undefined) {
    return {
      ok: true,
      timedOut: true,
      key: timedOutKey,
      explanation: `key ${JSON.stringify(timedOutKey)}: gave up after ${maxSteps} search steps (result unknown)`,
    };
  }
  return { ok: true };
}

// Malformed input would otherwise produce confusing verdicts, so reject it loudly.
function validate(history: Operation[]): void {
  const ids = new Set<number>();
  for (const op of history) {
    if (ids.has(op.id)) throw new Error(`linearizability: duplicate op id ${op.id}`);
    ids.add(op.id);
    if (!Number.isFinite(op.call) || Number.isNaN(op.ret) || !(op.call < op.ret)) {
      throw new RangeError(
        `linearizability: op #${op.id} needs finite call < ret (got ${op.call}, ${op.ret})`,
      );
    }
    if (op.ret === Number.POSITIVE_INFINITY) continue;
    if (op.kind === 'get' && typeof op.output === 'boolean') {
      throw new TypeError(`linearizability: get #${op.id} has a boolean output`);
    }
    if (op.kind === 'cas' && typeof op.output !== 'boolean') {
      throw new TypeError(`linearizability: cas #${op.id} needs a boolean output`);
    }
  }
}

/**
 * The sequential register model. Returns the next state, or null if `op` cannot produce its recorded
 * output from `state`. Unknown-outcome ops always apply: a put just writes, a cas does whatever the
 * current value dictates. Linearizing one at the very end is indistinguishable from "never took
 * effect", so "never" needs no special case.
 */
function step(state: State, op: Operation): { next: State } | null {
  const unknown = op.ret === Number.POSITIVE_INFINITY;
  switch (op.kind) {
    case 'get':
      return op.output === state ? { next: state } : null;
    case 'put':
      return { next: op.value };
    case 'cas': {
      const matches = state === op.expect;
      if (unknown) return { next: matches ? op.value : state };
      return matches === op.output ? { next: matches ? op.value : state } : null;
    }
  }
}

/** A node of the event list: a call (with `match` pointing at its return) or a return. */
interface Entry {
  op: number; // index into the key's ops
  match: Entry | null; // set on call entries only
  prev: Entry | null;
  next: Entry | null;
}

type KeyResult = { kind: 'ok' } | { kind: 'timeout' } | { kind: 'fail'; explanation: string };

function checkKey(ops: Operation[], maxSteps: number): KeyResult {
  const n = ops.length;
  const head = buildEventList(ops);

  const words = Math.ceil(n / 32);
  const bits = new Uint32Array(words);
  const zobrist = zobristTable(n);
  let hash = 0;
  const cache = new MemoCache();

  let state: State;
  const stack: { entry: Entry; prev: State }[] = [];

  // Deepest dead end seen so far, for the failure explanation.
  let best: { prefix: number[]; state: State; stuck: number; pending: number[] } | null = null;

  let steps = 0;
  let entry = head.next;
  while (head.next !== null) {
    if (++steps > maxSteps) return { kind: 'timeout' };
    // The list always ends with a return entry, so the walk meets one before running off the end.
    const e = entry as Entry;
    if (e.match !== null) {
      // Call entry: its op is minimal (no pending return precedes it), so try linearizing it now.
      const res = step(state, ops[e.op] as Operation);
      if (res !== null) {
        toggle(bits, e.op);
        hash ^= zobrist[e.op] as number;
        if (cache.add(bits, hash, res.next)) {
          stack.push({ entry: e, prev: state });
          state = res.next;
          lift(e);
          entry = head.next;
          continue;
        }
        // Already explored from this exact configuration: undo and try the next candidate.
        toggle(bits, e.op);
        hash ^= zobrist[e.op] as number;
      }
      entry = e.next;
    } else {
      // Return entry of an op not yet linearized: every choice at this depth failed, so backtrack.
      if (best === null || stack.length > best.prefix.length) {
        best = { prefix: stack.map((s) => s.entry.op), state, stuck: e.op, pending: pendingCalls(head, e) };
      }
      const top = stack.pop();
      if (top === undefined) break;
      state = top.prev;
      toggle(bits, top.entry.op);
      hash ^= zobrist[top.entry.op] as number;
      unlift(top.entry);
      entry = top.entry.next;
    }
  }
  if (head.next === null) return { kind: 'ok' };
  return { kind: 'fail', explanation: explain(ops, best) };
}

/**
 * Builds the call/return list behind a sentinel head. Sort order: time, then returns before calls at
 * equal times (see the time convention above), then op index for determinism. Unknown-outcome ops
 * return at Infinity, after every real event.
 */
function buildEventList(ops: Operation[]): Entry {
  const events: { time: number; isCall: boolean; op: number }[] = [];
  ops.forEach((op, i) => {
    events.push({ time: op.call, isCall: true, op: i });
    events.push({ time: op.ret, isCall: false, op: i });
  });
  events.sort((a, b) => {
    if (a.time !== b.time) return a.time < b.time ? -1 : 1;
    if (a.isCall !== b.isCall) return a.isCall ? 1 : -1;
    return a.op - b.op;
  });

  const head: Entry = { op: -1, match: null, prev: null, next: null };
  const calls: Entry[] = new Array(ops.length);
  let last = head;
  for (const ev of events) {
    const node: Entry = { op: ev.op, match: null, prev: last, next: null };
    if (ev.isCall) calls[ev.op] = node;
    else (calls[ev.op] as Entry).match = node; // calls sort before their own returns since call < ret
    last.next = node;
    last = node;
  }
  return head;
}

/** Unlinks a call entry and its return entry. */
function lift(call: Entry): void {
  const ret = call.match as Entry;
  (call.prev as Entry).next = call.next;
  (call.next as Entry).prev = call.prev; // a call is always followed by at least its own return
  (ret.prev as Entry).next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Exact inverse of lift; must be applied in reverse lift order (the DFS stack guarantees it). */
function unlift(call: Entry): void {
  const ret = call.match as Entry;
  (ret.prev as Entry).next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  (call.prev as Entry).next = call;
  (call.next as Entry).prev = call;
}

function toggle(bits: Uint32Array, i: number): void {
  bits[i >>> 5] = (bits[i >>> 5] as number) ^ (1 << (i & 31));
}

/** Deterministic per-op random words (splitmix32-style) so runs are reproducible. */
function zobristTable(n: number): Uint32Array {
  const table = new Uint32Array(n);
  let s = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    table[i] = z ^ (z >>> 16);
  }
  return table;
}

/** Set of (linearized bitset, state) pairs, bucketed by the bitset's Zobrist hash. */
class MemoCache {
  private readonly buckets = new Map<number, { bits: Uint32Array; state: State }[]>();

  /** Adds the pair; returns false if it was already present. */
  add(bits: Uint32Array, hash: number, state: State): boolean {
    let bucket = this.buckets.get(hash);
    if (bucket === undefined) {
      bucket = [];
      this.buckets.set(hash, bucket);
    }
    for (const entry of bucket) {
      if (entry.state === state && sameBits(entry.bits, bits)) return false;
    }
    bucket.push({ bits: bits.slice(), state });
    return true;
  }
}

function sameBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Ops whose calls precede `until` in the current list: the candidates at a dead end. */
function pendingCalls(head: Entry, until: Entry): number[] {
  const out: number[] = [];
  for (let e = head.next; e !== null && e !== until; e = e.next) if (e.match !== null) out.push(e.op);
  return out;
}

const MAX_LISTED = 8;

function explain(
  ops: Operation[],
  best: { prefix: number[]; state: State; stuck: number; pending: number[] } | null,
): string {
  if (best === null) return 'not linearizable';
  const ids = (xs: number[]) => {
    const shown = xs.slice(-MAX_LISTED).map((i) => `#${(ops[i] as Operation).id}`);
    return (xs.length > MAX_LISTED ? ['...'] : []).concat(shown).join(', ');
  };
  const stuck = ops[best.stuck] as Operation;
  const others = best.pending.filter((i) => i !== best.stuck).map((i) => describe(ops[i] as Operation));
  return (
    `not linearizable: ${describe(stuck)} must take effect by its return, but no order of the ops ` +
    'pending by then allows it. ' +
    `Longest linearizable prefix: ${best.prefix.length} op(s) [${ids(best.prefix)}], leaving value ${show(best.state)}` +
    (others.length > 0 ? `; other candidates: ${others.slice(0, MAX_LISTED).join(', ')}` : '')
  );
}

function describe(op: Operation): string {
  const unknown = op.ret === Number.POSITIVE_INFINITY;
  const window = `[${op.call}, ${unknown ? '?' : op.ret}]`;
  const out = unknown ? '?' : op.kind === 'get' ? show(op.output as State) : String(op.output);
  let what: string;
  if (op.kind === 'get') what = `get -> ${out}`;
  else if (op.kind === 'put') what = `put ${show(op.value)}`;
  else what = `cas ${show(op.expect)} => ${show(op.value)} -> ${out}`;
  return `#${op.id} (client ${op.client} ${what} ${window})`;
}

function show(v: State): string {
  return v === undefined ? 'absent' : JSON.stringify(v);
}
