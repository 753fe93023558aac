// The store's conformance suite: etcd v3 semantics checked through the KV interface only, so
// the same tests run against real etcd (etcd.test.ts, the reference) and against Berth's own
// store. Where an implementation differs from etcd, an assertion fails with a message naming
// the behaviour.
//
// Rules the tests keep so they can share one store and run concurrently:
// - every test writes only under its own key prefix, and never assumes that revisions are
//   consecutive (other tests write at the same time) — except the serial tests below;
// - tests that compact the store, or that need to see revisions no other test makes, are
//   serial (ava runs serial tests before the concurrent ones), and compact only up to their
//   own latest revision;
// - leases a test grants are revoked when it ends.
// The whole suite takes a few seconds (the lease expiry and keep-alive tests set the pace).

import { randomBytes } from 'node:crypto';
import type { ExecutionContext, TestFn } from 'ava';
import {
  CompactedError,
  duplicateKey,
  emptyKey,
  futureRevision,
  keyNotFound,
  leaseExists,
  leaseNotFound,
  leaseProvided,
  leaseTtlTooLarge,
  StoreError,
  tooManyOps,
  valueProvided,
} from '../../pkg/store/errors.js';
import {
  type Compare,
  compareBytes,
  type KeyValue,
  type KV,
  prefixEnd,
  type RangeRequest,
  type RequestOp,
  StoreLimits,
  type TxnResponse,
  type WatchEvent,
  type WatchRequest,
  type WatchResponse,
} from '../../pkg/store/types.js';

export interface ConformanceKv {
  kv: KV;
  cleanup(): Promise<void>;
}

type T = ExecutionContext<unknown>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const enc = (s: string): Uint8Array => encoder.encode(s);
const str = (b: Uint8Array | undefined): string => (b === undefined ? '<undefined>' : decoder.decode(b));
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
};

/** A KeyValue with its key relative to the test's prefix and its value as text, for deepEqual. */
interface PlainKv {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
}

/** Everything one test needs: its KV, its key prefix, and clean-up of what it started. */
class Fixture {
  readonly prefixBytes: Uint8Array;
  private readonly leases: number[] = [];
  private readonly watches: { cancel(): Promise<void> }[] = [];

  constructor(
    readonly t: T,
    readonly kv: KV,
    readonly prefix: string,
  ) {
    this.prefixBytes = enc(prefix);
  }

  key(name: string): Uint8Array {
    return enc(this.prefix + name);
  }

  /** The key's name under this test's prefix (or the whole key, marked, if it is not under it). */
  name(key: Uint8Array): string {
    const s = str(key);
    return s.startsWith(this.prefix) ? s.slice(this.prefix.length) : `<outside prefix: ${s}>`;
  }

  plain(kv: KeyValue): PlainKv {
    return {
      key: this.name(kv.key),
      value: str(kv.value),
      createRevision: kv.createRevision,
      modRevision: kv.modRevision,
      version: kv.version,
      lease: kv.lease,
    };
  }

  /** [prefix + from, prefix + to) or the whole prefix. */
  span(from?: string, to?: string): { key: Uint8Array; rangeEnd: Uint8Array } {
    if (from === undefined) return { key: this.prefixBytes, rangeEnd: prefixEnd(this.prefixBytes) };
    return { key: this.key(from), rangeEnd: to === undefined ? prefixEnd(this.key(from)) : this.key(to) };
  }

  async put(name: string, value: string, lease?: number): Promise<number> {
    const req =
      lease === undefined
        ? { key: this.key(name), value: enc(value) }
        : { key: this.key(name), value: enc(value), lease };
    return (await this.kv.put(req)).header.revision;
  }

  async get(name: string, extra: Partial<RangeRequest> = {}): Promise<PlainKv | undefined> {
    const res = await this.kv.range({ key: this.key(name), ...extra });
    const kv = res.kvs[0];
    return kv === undefined ? undefined : this.plain(kv);
  }

  /** Names of the keys under the prefix (at a revision), in the store's order. */
  async names(revision?: number): Promise<string[]> {
    const res = await this.kv.range({ ...this.span(), ...(revision === undefined ? {} : { revision }) });
    return res.kvs.map((kv) => this.name(kv.key));
  }

  async grant(ttl: number, id?: number): Promise<number> {
    const res = await this.kv.leaseGrant(id === undefined ? { ttl } : { ttl, id });
    this.leases.push(res.id);
    return res.id;
  }

  async watch(req: WatchRequest): Promise<WatchLog> {
    const log = new WatchLog(this);
    const w = await this.kv.watch(req, (r) => log.add(r));
    log.watcherId = w.id;
    this.watches.push(w);
    return log;
  }

  async dispose(): Promise<void> {
    await Promise.allSettled(this.watches.map((w) => w.cancel()));
    await Promise.allSettled(this.leases.map((id) => this.kv.leaseRevoke(id)));
  }
}

/** What a watch delivered, with waits that fail the test with what did arrive. */
class WatchLog {
  readonly responses: WatchResponse[] = [];
  readonly events: WatchEvent[] = [];
  watcherId = -1;

  constructor(private readonly fx: Fixture) {}

  add(r: WatchResponse): void {
    this.responses.push(r);
    this.events.push(...r.events);
  }

  describe(): string {
    const events = this.events.map((e) => `${e.type} ${this.fx.name(e.kv.key)}@${e.kv.modRevision}`);
    return `[${events.join(', ')}]`;
  }

  async waitForEvents(n: number, what: string, timeoutMs = 5_000): Promise<WatchEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length < n && Date.now() < deadline) await sleep(10);
    if (this.events.length < n) {
      throw new Error(`${what}: expected ${n} watch events within ${timeoutMs} ms, got ${this.describe()}`);
    }
    return this.events.slice(0, n);
  }

  async waitForResponse(pred: (r: WatchResponse) => boolean, what: string, timeoutMs = 5_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.responses.find(pred);
      if (r) return r;
      if (Date.now() > deadline) {
        throw new Error(
          `${what}: no such watch response within ${timeoutMs} ms; got ${JSON.stringify(this.responses)}`,
        );
      }
      await sleep(10);
    }
  }
}

/** The call must reject with this StoreError: same code, gRPC status and (etcd's) message. */
async function expectStoreError(t: T, call: Promise<unknown>, expected: StoreError, what: string) {
  let err: unknown;
  try {
    await call;
  } catch (e) {
    err = e;
  }
  if (err === undefined) {
    t.fail(`${what}: expected ${expected.code} ("${expected.message}"), but the call succeeded`);
    return undefined;
  }
  if (!(err instanceof StoreError)) {
    t.fail(
      `${what}: expected StoreError ${expected.code}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`,
    );
    return undefined;
  }
  t.is(err.code, expected.code, `${what}: StoreError code (message was "${err.message}")`);
  t.is(err.grpc, expected.grpc, `${what}: gRPC status code`);
  t.is(err.message, expected.message, `${what}: message (etcd's text, which clients match on)`);
  return err;
}

function describeCompare(c: Compare, fx: Fixture): string {
  const operand =
    c.target === 'value'
      ? JSON.stringify(str(c.value))
      : c.target === 'version'
        ? c.version
        : c.target === 'create'
          ? c.createRevision
          : c.target === 'mod'
            ? c.modRevision
            : c.lease;
  const where = c.rangeEnd ? `[${fx.name(c.key)}, ${str(c.rangeEnd)})` : fx.name(c.key);
  return `${c.target}(${where}) ${c.result} ${operand}`;
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * Register the conformance tests on `test`, titled `${name}: ...`. `makeKv` is called once per
 * test; every test uses its own key prefix, so the KVs may all share one store.
 */
export function kvConformance<Context = unknown>(
  test: TestFn<Context>,
  name: string,
  makeKv: () => Promise<ConformanceKv>,
): void {
  const root = `/berth-conformance/${randomBytes(4).toString('hex')}`;
  let counter = 0;

  const define = (serial: boolean, title: string, body: (fx: Fixture) => Promise<void>) => {
    const slug = `${String(++counter).padStart(2, '0')}-${title.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}`;
    const run = async (t: ExecutionContext<Context>) => {
      const { kv, cleanup } = await makeKv();
      const fx = new Fixture(t as T, kv, `${root}/${slug}/`);
      t.teardown(async () => {
        await fx.dispose();
        await cleanup();
      });
      await body(fx);
    };
    if (serial) test.serial(`${name}: ${title}`, run);
    else test(`${name}: ${title}`, run);
  };
  const it = (title: string, body: (fx: Fixture) => Promise<void>) => define(false, title, body);
  const serial = (title: string, body: (fx: Fixture) => Promise<void>) => define(true, title, body);

  // --- serial: exact revisions and compaction -----------------------------------------------

  serial('revisions: one per write, none for a write that changes nothing', async (fx) => {
    const { t, kv } = fx;
    const r1 = await fx.put('a', '1');
    const r2 = await fx.put('a', '2');
    t.is(r2, r1 + 1, 'two puts in a row take consecutive revisions');
    const del = await kv.deleteRange({ key: fx.key('missing') });
    t.is(del.deleted, 0);
    t.is(del.header.revision, r2, 'deleting a missing key creates no revision');
    const failed = await kv.txn({
      compare: [{ target: 'version', result: 'equal', key: fx.key('a'), version: 99 }],
      success: [{ put: { key: fx.key('b'), value: enc('x') } }],
      failure: [],
    });
    t.false(failed.succeeded);
    t.is(failed.header.revision, r2, 'a txn whose branch writes nothing creates no revision');
    const readOnly = await kv.txn({ compare: [], success: [{ range: { key: fx.key('a') } }], failure: [] });
    t.is(readOnly.header.revision, r2, 'a read-only txn creates no revision');
    const range = await kv.range({ key: fx.key('a') });
    t.is(range.header.revision, r2, 'a range answers with the current revision');
    const txn = await kv.txn({
      compare: [],
      success: [
        { put: { key: fx.key('b'), value: enc('1') } },
        { put: { key: fx.key('c'), value: enc('1') } },
      ],
      failure: [],
    });
    t.is(txn.header.revision, r2 + 1, 'a txn with two puts takes exactly one revision');
    const delBoth = await kv.deleteRange({ ...fx.span('b', 'd') });
    t.is(delBoth.deleted, 2);
    t.is(delBoth.header.revision, r2 + 2, 'deleting two keys takes exactly one revision');
  });

  serial('compact: older revisions answer "compacted", newer ones still read', async (fx) => {
    const { t, kv } = fx;
    const r1 = await fx.put('k', 'v1');
    const r2 = await fx.put('k', 'v2');
    const r3 = await fx.put('k', 'v3');
    const res = await kv.compact({ revision: r2 });
    t.true(res.header.revision >= r3, 'compact answers with the current revision');

    const err = await expectStoreError(
      t,
      kv.range({ key: fx.key('k'), revision: r1 }),
      new CompactedError(r2),
      'range at a compacted revision',
    );
    if (err) {
      t.true(err instanceof CompactedError, 'a compacted range rejects with a CompactedError');
      t.is(
        (err as CompactedError).compactRevision,
        r2,
        'CompactedError.compactRevision is the compaction point',
      );
    }
    t.is(
      (await fx.get('k', { revision: r2 }))?.value,
      'v2',
      'the compaction revision itself is still readable',
    );
    t.is((await fx.get('k', { revision: r3 }))?.value, 'v3');
    t.is((await fx.get('k'))?.value, 'v3');

    await expectStoreError(
      t,
      kv.compact({ revision: r1 }),
      new CompactedError(r2),
      'compact below the compaction point',
    );
    await expectStoreError(
      t,
      kv.compact({ revision: r2 }),
      new CompactedError(r2),
      'compact at the compaction point again',
    );
    await expectStoreError(
      t,
      kv.compact({ revision: r3 + 1_000_000 }),
      futureRevision(),
      'compact at a future revision',
    );
  });

  serial('watch: a compacted start revision answers compactRevision and ends', async (fx) => {
    const { t, kv } = fx;
    const r1 = await fx.put('k', 'v1');
    const r2 = await fx.put('k', 'v2');
    await kv.compact({ revision: r2 });

    const compacted = await fx.watch({ ...fx.span(), startRevision: r1 });
    const answer = await compacted.waitForResponse(
      (r) => r.compactRevision !== undefined && r.compactRevision > 0,
      'watch from a compacted revision',
    );
    t.is(answer.compactRevision, r2, 'compactRevision is the oldest revision still available');
    t.true(answer.canceled, 'the compacted watch is canceled');
    t.deepEqual(answer.events, [], 'the compacted answer carries no events');
    t.is(answer.watchId, compacted.watcherId, 'the answer carries the watch id');

    // A watch from the compaction point itself still replays it.
    const fromCompaction = await fx.watch({ ...fx.span(), startRevision: r2 });
    const [ev] = await fromCompaction.waitForEvents(1, 'watch from the compaction revision');
    t.is(ev?.kv.modRevision, r2);
    t.is(str(ev?.kv.value), 'v2');

    await fx.put('k', 'v3');
    await fromCompaction.waitForEvents(2, 'watch from the compaction revision, live event');
    await sleep(200);
    t.is(
      compacted.events.length,
      0,
      `a compacted watch delivers no events later; got ${compacted.describe()}`,
    );
  });

  // --- put, range, delete --------------------------------------------------------------------

  it('put/put/delete/put: create and mod revisions, version', async (fx) => {
    const { t, kv } = fx;
    const r1 = await fx.put('k', 'v1');
    t.deepEqual(await fx.get('k'), {
      key: 'k',
      value: 'v1',
      createRevision: r1,
      modRevision: r1,
      version: 1,
      lease: 0,
    });
    const r2 = await fx.put('k', 'v2');
    t.true(r2 > r1, 'every write takes a newer revision');
    t.deepEqual(await fx.get('k'), {
      key: 'k',
      value: 'v2',
      createRevision: r1,
      modRevision: r2,
      version: 2,
      lease: 0,
    });
    const del = await kv.deleteRange({ key: fx.key('k') });
    t.is(del.deleted, 1);
    const r3 = del.header.revision;
    t.true(r3 > r2);
    const gone = await kv.range({ key: fx.key('k') });
    t.deepEqual(gone.kvs, [], 'a deleted key is gone');
    t.is(gone.count, 0);
    t.true(gone.header.revision >= r3, 'a range after a write answers a revision at least that new');
    const r4 = await fx.put('k', 'v3');
    t.true(r4 > r3);
    t.deepEqual(
      await fx.get('k'),
      { key: 'k', value: 'v3', createRevision: r4, modRevision: r4, version: 1, lease: 0 },
      'a put after a delete creates the key anew: new createRevision, version 1',
    );
  });

  it('range: single key, missing key, [key, rangeEnd), prefix, from key on, every key', async (fx) => {
    const { t, kv } = fx;
    for (const k of ['a', 'b', 'c', 'd']) await fx.put(k, `v-${k}`);
    // Beyond the prefix but sorting right after it: '~' > '/'.
    const outside = enc(`${fx.prefix.slice(0, -1)}~`);
    const last = (await kv.put({ key: outside, value: enc('outside') })).header.revision;

    const one = await kv.range({ key: fx.key('b') });
    t.deepEqual(
      one.kvs.map((kv) => fx.plain(kv).value),
      ['v-b'],
      'single key',
    );
    t.is(one.count, 1);
    t.false(one.more);
    t.true(one.header.revision >= last);

    const missing = await kv.range({ key: fx.key('zz') });
    t.deepEqual(missing.kvs, [], 'missing key: no kvs');
    t.is(missing.count, 0, 'missing key: count 0');
    t.false(missing.more);

    const half = await kv.range(fx.span('b', 'd'));
    t.deepEqual(
      half.kvs.map((kv) => fx.name(kv.key)),
      ['b', 'c'],
      '[b, d) holds b and c, in key order',
    );
    t.is(half.count, 2);

    const prefix = await kv.range(fx.span());
    t.deepEqual(
      prefix.kvs.map((kv) => fx.name(kv.key)),
      ['a', 'b', 'c', 'd'],
      'prefix range, in key order',
    );
    t.deepEqual(
      prefix.kvs.map((kv) => str(kv.value)),
      ['v-a', 'v-b', 'v-c', 'v-d'],
    );
    t.is(prefix.count, 4);

    const fromC = await kv.range({ key: fx.key('c'), rangeEnd: new Uint8Array([0]), limit: 3 });
    t.deepEqual(
      fromC.kvs.slice(0, 2).map((kv) => fx.name(kv.key)),
      ['c', 'd'],
      'rangeEnd [0]: every key >= key, starting at key',
    );
    t.true(fromC.count >= 3, `rangeEnd [0] counts the key beyond the prefix too (count ${fromC.count})`);
    for (let i = 1; i < fromC.kvs.length; i++) {
      t.true(
        compareBytes(fromC.kvs[i - 1]?.key as Uint8Array, fromC.kvs[i]?.key as Uint8Array) < 0,
        'keys ascend',
      );
    }

    const all = await kv.range({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]), countOnly: true });
    t.true(all.count >= 5, `key [0] and rangeEnd [0] select every key (count ${all.count})`);
    const firstOfAll = await kv.range({
      key: new Uint8Array([0]),
      rangeEnd: new Uint8Array([0]),
      limit: 1,
      keysOnly: true,
    });
    t.is(firstOfAll.kvs.length, 1);
    t.true(firstOfAll.more, 'more: keys left beyond the limit');
  });

  it('range: limit, more and count', async (fx) => {
    const { t, kv } = fx;
    for (const k of ['a', 'b', 'c', 'd']) await fx.put(k, k);
    const cases: [number, string[], boolean][] = [
      [0, ['a', 'b', 'c', 'd'], false],
      [1, ['a'], true],
      [2, ['a', 'b'], true],
      [4, ['a', 'b', 'c', 'd'], false],
      [10, ['a', 'b', 'c', 'd'], false],
    ];
    for (const [limit, names, more] of cases) {
      const res = await kv.range({ ...fx.span(), limit });
      t.deepEqual(
        res.kvs.map((kv) => fx.name(kv.key)),
        names,
        `limit ${limit}: keys`,
      );
      t.is(res.more, more, `limit ${limit}: more`);
      t.is(res.count, 4, `limit ${limit}: count is every key in the range, regardless of limit`);
    }
  });

  it('range: keysOnly and countOnly', async (fx) => {
    const { t, kv } = fx;
    const revs: number[] = [];
    for (const k of ['a', 'b', 'c']) revs.push(await fx.put(k, `value-${k}`));
    const keys = await kv.range({ ...fx.span(), keysOnly: true });
    t.deepEqual(
      keys.kvs.map((kv) => fx.plain(kv)),
      ['a', 'b', 'c'].map((k, i) => ({
        key: k,
        value: '',
        createRevision: revs[i] as number,
        modRevision: revs[i] as number,
        version: 1,
        lease: 0,
      })),
      'keysOnly: keys and revisions without values',
    );
    t.is(keys.count, 3);
    const count = await kv.range({ ...fx.span(), countOnly: true });
    t.deepEqual(count.kvs, [], 'countOnly: no kvs');
    t.is(count.count, 3, 'countOnly: the count');
    const countLimited = await kv.range({ ...fx.span(), countOnly: true, limit: 1 });
    t.is(countLimited.count, 3, 'countOnly with a limit still counts everything');
    t.deepEqual(countLimited.kvs, []);
    t.false(countLimited.more, 'countOnly returns no kvs, so none are held back: more is false');
  });

  it('range: at a past revision sees the store as it was', async (fx) => {
    const { t, kv } = fx;
    const r1 = await fx.put('a', 'a1');
    const r2 = await fx.put('b', 'b1');
    const r3 = await fx.put('a', 'a2');
    const r4 = (await kv.deleteRange({ key: fx.key('b') })).header.revision;
    const r5 = await fx.put('c', 'c1');
    t.deepEqual(await fx.names(r1 - 1), [], 'before the first write');
    t.deepEqual(await fx.names(r1), ['a']);
    t.deepEqual(await fx.names(r2), ['a', 'b']);
    t.deepEqual(await fx.names(r3), ['a', 'b']);
    t.deepEqual(await fx.names(r4), ['a'], 'the delete is visible from its revision on');
    t.deepEqual(await fx.names(r5), ['a', 'c']);
    t.deepEqual(
      await fx.get('a', { revision: r2 }),
      { key: 'a', value: 'a1', createRevision: r1, modRevision: r1, version: 1, lease: 0 },
      'a key read at a past revision has the fields it had then',
    );
    t.deepEqual(await fx.get('a', { revision: r3 }), {
      key: 'a',
      value: 'a2',
      createRevision: r1,
      modRevision: r3,
      version: 2,
      lease: 0,
    });
    const old = await kv.range({ ...fx.span(), revision: r2 });
    t.is(old.count, 2, 'count at a past revision');
    t.true(old.header.revision >= r5, 'the header carries the current revision, not the one read');
  });

  it('range: a future revision is an error', async (fx) => {
    const { t, kv } = fx;
    const r = await fx.put('k', 'v');
    await expectStoreError(
      t,
      kv.range({ key: fx.key('k'), revision: r + 1_000_000 }),
      futureRevision(),
      'range at a future revision',
    );
  });

  it('range: serializable reads see a write soon', async (fx) => {
    const { t, kv } = fx;
    const r = await fx.put('k', 'v');
    await until('a serializable read sees the write', 3_000, async () => {
      const res = await kv.range({ key: fx.key('k'), serializable: true });
      return res.kvs.length === 1 && res.kvs[0]?.modRevision === r;
    });
    t.pass();
  });

  it('put: prevKv', async (fx) => {
    const { t, kv } = fx;
    const first = await kv.put({ key: fx.key('k'), value: enc('v1'), prevKv: true });
    t.is(first.prevKv, undefined, 'no prevKv when the key did not exist');
    const r1 = first.header.revision;
    const second = await kv.put({ key: fx.key('k'), value: enc('v2'), prevKv: true });
    t.truthy(second.prevKv, 'prevKv when the key existed');
    if (second.prevKv) {
      t.deepEqual(fx.plain(second.prevKv), {
        key: 'k',
        value: 'v1',
        createRevision: r1,
        modRevision: r1,
        version: 1,
        lease: 0,
      });
    }
    const third = await kv.put({ key: fx.key('k'), value: enc('v3') });
    t.is(third.prevKv, undefined, 'no prevKv unless asked for');
    await kv.deleteRange({ key: fx.key('k') });
    const again = await kv.put({ key: fx.key('k'), value: enc('v4'), prevKv: true });
    t.is(again.prevKv, undefined, 'no prevKv after a delete');
  });

  it('put: ignoreValue and ignoreLease', async (fx) => {
    const { t, kv } = fx;
    await expectStoreError(
      t,
      kv.put({ key: fx.key('missing'), value: new Uint8Array(0), ignoreValue: true }),
      keyNotFound(),
      'ignoreValue on a missing key',
    );
    await expectStoreError(
      t,
      kv.put({ key: fx.key('missing'), value: enc('x'), ignoreLease: true }),
      keyNotFound(),
      'ignoreLease on a missing key',
    );
    t.is(await fx.get('missing'), undefined, 'a failed put writes nothing');

    const lease = await fx.grant(60);
    const r1 = await fx.put('k', 'v1', lease);
    const keepValue = await kv.put({ key: fx.key('k'), value: new Uint8Array(0), ignoreValue: true });
    t.deepEqual(
      await fx.get('k'),
      {
        key: 'k',
        value: 'v1',
        createRevision: r1,
        modRevision: keepValue.header.revision,
        version: 2,
        lease: 0,
      },
      'ignoreValue keeps the value; the put still counts as a modification; without ignoreLease the lease is dropped',
    );
    await kv.put({ key: fx.key('k'), value: new Uint8Array(0), ignoreValue: true, lease });
    t.is((await fx.get('k'))?.lease, lease, 'ignoreValue with a lease attaches the lease');
    const keepLease = await kv.put({ key: fx.key('k'), value: enc('v2'), ignoreLease: true });
    t.deepEqual(
      await fx.get('k'),
      {
        key: 'k',
        value: 'v2',
        createRevision: r1,
        modRevision: keepLease.header.revision,
        version: 4,
        lease,
      },
      'ignoreLease keeps the lease and sets the value',
    );
    await expectStoreError(
      t,
      kv.put({ key: fx.key('k'), value: enc('x'), ignoreValue: true }),
      valueProvided(),
      'ignoreValue with a value',
    );
    await expectStoreError(
      t,
      kv.put({ key: fx.key('k'), value: enc('x'), ignoreLease: true, lease }),
      leaseProvided(),
      'ignoreLease with a lease',
    );
  });

  it('binary keys and values round-trip and sort as unsigned bytes', async (fx) => {
    const { t, kv } = fx;
    const value = new Uint8Array([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 0]);
    const keys = [0xff, 0x00, 0x80, 0x7f, 0xc3].map((b) =>
      concat(fx.prefixBytes, new Uint8Array([b, 0xff, 0])),
    );
    for (const key of keys) await kv.put({ key, value });
    const res = await kv.range(fx.span());
    t.deepEqual(
      res.kvs.map((kv) => hex(kv.key.subarray(fx.prefixBytes.length))),
      ['00ff00', '7fff00', '80ff00', 'c3ff00', 'ffff00'],
      'keys sort as unsigned bytes (not as decoded text)',
    );
    for (const kv of res.kvs) t.is(hex(kv.value), hex(value), 'binary values round-trip exactly');
  });

  it('empty key is an error for put, range, deleteRange and inside txn', async (fx) => {
    const { t, kv } = fx;
    const empty = new Uint8Array(0);
    await expectStoreError(t, kv.put({ key: empty, value: enc('v') }), emptyKey(), 'put with an empty key');
    await expectStoreError(t, kv.range({ key: empty }), emptyKey(), 'range with an empty key');
    await expectStoreError(t, kv.deleteRange({ key: empty }), emptyKey(), 'deleteRange with an empty key');
    await expectStoreError(
      t,
      kv.txn({ compare: [], success: [{ put: { key: empty, value: enc('v') } }], failure: [] }),
      emptyKey(),
      'txn put with an empty key',
    );
  });

  it('deleteRange: counts, prevKvs, one revision for every key deleted', async (fx) => {
    const { t, kv } = fx;
    const revs = new Map<string, number>();
    for (const k of ['a', 'b', 'c', 'd']) revs.set(k, await fx.put(k, `v-${k}`));
    const del = await kv.deleteRange({ ...fx.span('b', 'd'), prevKv: true });
    t.is(del.deleted, 2, 'deleted counts the keys removed');
    t.deepEqual(
      del.prevKvs.map((kv) => fx.plain(kv)),
      ['b', 'c'].map((k) => ({
        key: k,
        value: `v-${k}`,
        createRevision: revs.get(k) as number,
        modRevision: revs.get(k) as number,
        version: 1,
        lease: 0,
      })),
      'prevKvs: the deleted keys as they were, in key order',
    );
    const rev = del.header.revision;
    t.deepEqual(
      await fx.names(rev - 1),
      ['a', 'b', 'c', 'd'],
      'the revision before the delete has every key',
    );
    t.deepEqual(await fx.names(rev), ['a', 'd'], 'both keys went at the one revision of the delete');
    const rest = await kv.deleteRange(fx.span());
    t.is(rest.deleted, 2);
    t.deepEqual(rest.prevKvs, [], 'no prevKvs unless asked for');
    const none = await kv.deleteRange({ key: fx.key('a'), prevKv: true });
    t.is(none.deleted, 0, 'deleting a missing key deletes 0');
    t.deepEqual(none.prevKvs, []);
    t.deepEqual(await fx.names(), []);
  });

  // --- txn -----------------------------------------------------------------------------------

  it('txn: compares on value, version, create and mod choose the branch', async (fx) => {
    const { t, kv } = fx;
    const r1 = await fx.put('k', 'v1');
    const r2 = await fx.put('k', 'v2');
    const k = fx.key('k');
    const cases: [Compare, boolean][] = [
      [{ target: 'value', result: 'equal', key: k, value: enc('v2') }, true],
      [{ target: 'value', result: 'equal', key: k, value: enc('v1') }, false],
      [{ target: 'value', result: 'not_equal', key: k, value: enc('v1') }, true],
      [{ target: 'value', result: 'greater', key: k, value: enc('v1') }, true],
      [{ target: 'value', result: 'less', key: k, value: enc('v3') }, true],
      [{ target: 'value', result: 'less', key: k, value: enc('v') }, false],
      [{ target: 'version', result: 'equal', key: k, version: 2 }, true],
      [{ target: 'version', result: 'greater', key: k, version: 1 }, true],
      [{ target: 'version', result: 'less', key: k, version: 2 }, false],
      [{ target: 'version', result: 'not_equal', key: k, version: 2 }, false],
      [{ target: 'create', result: 'equal', key: k, createRevision: r1 }, true],
      [{ target: 'create', result: 'less', key: k, createRevision: r2 }, true],
      [{ target: 'mod', result: 'equal', key: k, modRevision: r2 }, true],
      [{ target: 'mod', result: 'equal', key: k, modRevision: r1 }, false],
      [{ target: 'mod', result: 'greater', key: k, modRevision: r1 }, true],
      [{ target: 'mod', result: 'less', key: k, modRevision: r2 }, false],
    ];
    for (const [c, expected] of cases) {
      const res = await kv.txn({ compare: [c], success: [], failure: [] });
      t.is(
        res.succeeded,
        expected,
        `compare ${describeCompare(c, fx)} (value v2, version 2, create ${r1}, mod ${r2})`,
      );
    }
    const both = await kv.txn({
      compare: [
        { target: 'version', result: 'equal', key: k, version: 2 },
        { target: 'value', result: 'equal', key: k, value: enc('v1') },
      ],
      success: [],
      failure: [],
    });
    t.false(both.succeeded, 'every compare must hold');

    const run = async (ok: boolean): Promise<TxnResponse> =>
      kv.txn({
        compare: [{ target: 'value', result: 'equal', key: k, value: enc(ok ? 'v2' : 'nope') }],
        success: [{ put: { key: fx.key('branch'), value: enc('success') } }, { range: { key: k } }],
        failure: [{ put: { key: fx.key('branch'), value: enc('failure') } }],
      });
    const s = await run(true);
    t.true(s.succeeded);
    t.is(s.responses.length, 2, 'one response per op of the branch taken');
    t.true(s.responses[0] !== undefined && 'put' in s.responses[0], 'first response answers the put');
    const rangeResp = s.responses[1];
    t.true(rangeResp !== undefined && 'range' in rangeResp, 'second response answers the range');
    if (rangeResp && 'range' in rangeResp) t.is(str(rangeResp.range.kvs[0]?.value), 'v2');
    t.is((await fx.get('branch'))?.value, 'success');
    const f = await run(false);
    t.false(f.succeeded);
    t.is(f.responses.length, 1);
    t.is((await fx.get('branch'))?.value, 'failure', 'the failure branch ran');
  });

  it('txn: compares on a missing key', async (fx) => {
    const { t, kv } = fx;
    const k = fx.key('missing');
    const cases: [Compare, boolean, string][] = [
      [{ target: 'version', result: 'equal', key: k, version: 0 }, true, 'a missing key has version 0'],
      [{ target: 'create', result: 'equal', key: k, createRevision: 0 }, true, 'and create revision 0'],
      [{ target: 'mod', result: 'equal', key: k, modRevision: 0 }, true, 'and mod revision 0'],
      [{ target: 'lease', result: 'equal', key: k, lease: 0 }, true, 'and lease 0'],
      [{ target: 'version', result: 'greater', key: k, version: 0 }, false, 'version > 0 fails'],
      [
        { target: 'value', result: 'equal', key: k, value: new Uint8Array(0) },
        false,
        'a value compare on a missing key always fails',
      ],
      [{ target: 'value', result: 'not_equal', key: k, value: enc('x') }, false, 'even not_equal'],
    ];
    for (const [c, expected, why] of cases) {
      const res = await kv.txn({ compare: [c], success: [], failure: [] });
      t.is(res.succeeded, expected, `compare ${describeCompare(c, fx)}: ${why}`);
    }
    const create = () =>
      kv.txn({
        compare: [{ target: 'create', result: 'equal', key: k, createRevision: 0 }],
        success: [{ put: { key: k, value: enc('created') } }],
        failure: [{ range: { key: k } }],
      });
    const first = await create();
    t.true(first.succeeded, 'create-if-absent succeeds the first time');
    const second = await create();
    t.false(second.succeeded, 'and fails the second time');
    const r = second.responses[0];
    t.true(
      r !== undefined && 'range' in r && str(r.range.kvs[0]?.value) === 'created',
      'failure branch read the key',
    );
  });

  it('txn: a compare over a range holds only if it holds for every key', async (fx) => {
    const { t, kv } = fx;
    await fx.put('r/a', '1');
    const rev = await fx.put('r/a', '2');
    await fx.put('r/b', '1');
    const r = fx.span('r/');
    const none = fx.span('none/');
    const cases: [Compare, boolean, string][] = [
      [{ target: 'version', result: 'greater', ...r, version: 0 }, true, 'both keys exist'],
      [{ target: 'version', result: 'greater', ...r, version: 1 }, false, 'b has version 1'],
      [{ target: 'version', result: 'equal', ...r, version: 1 }, false, 'a has version 2'],
      [
        { target: 'mod', result: 'less', ...r, modRevision: rev + 1_000_000 },
        true,
        'every mod revision is lower',
      ],
      [{ target: 'mod', result: 'greater', ...r, modRevision: rev - 1 }, true, 'a at rev, b after it'],
      [{ target: 'mod', result: 'greater', ...r, modRevision: rev }, false, 'a was last written at rev'],
      [{ target: 'value', result: 'not_equal', ...r, value: enc('3') }, true, 'no value is "3"'],
      [{ target: 'value', result: 'equal', ...r, value: enc('1') }, false, 'a is "2"'],
      [
        { target: 'version', result: 'equal', ...none, version: 0 },
        true,
        'an empty range compares as a missing key',
      ],
      [{ target: 'version', result: 'greater', ...none, version: 0 }, false, 'an empty range has no version'],
      [
        { target: 'value', result: 'not_equal', ...none, value: enc('x') },
        false,
        'a value compare on an empty range fails',
      ],
    ];
    for (const [c, expected, why] of cases) {
      const res = await kv.txn({ compare: [c], success: [], failure: [] });
      t.is(res.succeeded, expected, `compare ${describeCompare(c, fx)}: ${why}`);
    }
  });

  it('txn: compares on lease', async (fx) => {
    const { t, kv } = fx;
    const lease = await fx.grant(60);
    await fx.put('leased', 'v', lease);
    await fx.put('plain', 'v');
    const cases: [Compare, boolean][] = [
      [{ target: 'lease', result: 'equal', key: fx.key('leased'), lease }, true],
      [{ target: 'lease', result: 'not_equal', key: fx.key('leased'), lease }, false],
      [{ target: 'lease', result: 'greater', key: fx.key('leased'), lease: 0 }, true],
      [{ target: 'lease', result: 'equal', key: fx.key('plain'), lease: 0 }, true],
      [{ target: 'lease', result: 'equal', key: fx.key('plain'), lease }, false],
    ];
    for (const [c, expected] of cases) {
      const res = await kv.txn({ compare: [c], success: [], failure: [] });
      t.is(
        res.succeeded,
        expected,
        `compare ${describeCompare(c, fx)} (lease ${lease} on "leased", none on "plain")`,
      );
    }
  });

  it('txn: all writes at one revision; reads see earlier writes of the same txn', async (fx) => {
    const { t, kv } = fx;
    await fx.put('old', 'o');
    const res = await kv.txn({
      compare: [],
      success: [
        { put: { key: fx.key('a'), value: enc('A') } },
        { put: { key: fx.key('b'), value: enc('B') } },
        { deleteRange: { key: fx.key('old') } },
        { range: fx.span() },
      ],
      failure: [],
    });
    t.true(res.succeeded);
    const rev = res.header.revision;
    t.is((await fx.get('a'))?.modRevision, rev, 'put a at the txn revision');
    t.is((await fx.get('b'))?.modRevision, rev, 'put b at the txn revision');
    t.is((await fx.get('a'))?.createRevision, rev);
    t.deepEqual(await fx.names(rev - 1), ['old'], 'nothing of the txn is visible before its revision');
    t.deepEqual(await fx.names(rev), ['a', 'b'], 'everything of the txn is visible at its revision');
    const read = res.responses[3];
    t.true(read !== undefined && 'range' in read, 'fourth response answers the range');
    if (read && 'range' in read) {
      t.deepEqual(
        read.range.kvs.map((kv) => fx.plain(kv)),
        [
          { key: 'a', value: 'A', createRevision: rev, modRevision: rev, version: 1, lease: 0 },
          { key: 'b', value: 'B', createRevision: rev, modRevision: rev, version: 1, lease: 0 },
        ],
        'a range in a txn sees the puts and the delete before it',
      );
    }
    const del = res.responses[2];
    t.true(
      del !== undefined && 'deleteRange' in del && del.deleteRange.deleted === 1,
      'the delete answers deleted 1',
    );
  });

  it('txn: nested txns run in the branch, at the same revision', async (fx) => {
    const { t, kv } = fx;
    await fx.put('flag', 'on');
    const res = await kv.txn({
      compare: [{ target: 'value', result: 'equal', key: fx.key('flag'), value: enc('on') }],
      success: [
        { put: { key: fx.key('a'), value: enc('outer') } },
        {
          txn: {
            // Every compare of the whole tree is evaluated against the store before the txn.
            compare: [{ target: 'version', result: 'equal', key: fx.key('a'), version: 0 }],
            success: [{ put: { key: fx.key('b'), value: enc('nested-success') } }],
            failure: [{ put: { key: fx.key('b'), value: enc('nested-failure') } }],
          },
        },
      ],
      failure: [{ put: { key: fx.key('a'), value: enc('outer-failure') } }],
    });
    t.true(res.succeeded);
    const nested = res.responses[1];
    t.true(nested !== undefined && 'txn' in nested, 'the second response answers the nested txn');
    if (nested && 'txn' in nested) {
      t.true(nested.txn.succeeded, 'nested compares see the store as it was before the outer txn');
      t.is(nested.txn.responses.length, 1);
      t.true(nested.txn.responses[0] !== undefined && 'put' in nested.txn.responses[0]);
    }
    t.is((await fx.get('b'))?.value, 'nested-success');
    t.is((await fx.get('a'))?.modRevision, res.header.revision);
    t.is((await fx.get('b'))?.modRevision, res.header.revision, 'nested writes take the outer txn revision');

    const failing = await kv.txn({
      compare: [{ target: 'value', result: 'equal', key: fx.key('flag'), value: enc('off') }],
      success: [],
      failure: [
        {
          txn: {
            compare: [],
            success: [{ put: { key: fx.key('c'), value: enc('from-failure') } }],
            failure: [],
          },
        },
      ],
    });
    t.false(failing.succeeded);
    t.is((await fx.get('c'))?.value, 'from-failure', 'a nested txn in the failure branch runs');
  });

  it('txn: the same key written twice is an error, and nothing is applied', async (fx) => {
    const { t, kv } = fx;
    const put = (name: string, value = 'v'): RequestOp => ({ put: { key: fx.key(name), value: enc(value) } });
    await expectStoreError(
      t,
      kv.txn({ compare: [], success: [put('k', '1'), put('k', '2')], failure: [] }),
      duplicateKey(),
      'two puts of one key',
    );
    await expectStoreError(
      t,
      kv.txn({ compare: [], success: [put('k'), { deleteRange: { key: fx.key('k') } }], failure: [] }),
      duplicateKey(),
      'a put and a delete of one key',
    );
    await expectStoreError(
      t,
      kv.txn({ compare: [], success: [put('x/1'), { deleteRange: fx.span('x/') }], failure: [] }),
      duplicateKey(),
      'a put inside a deleted range',
    );
    await expectStoreError(
      t,
      kv.txn({ compare: [], success: [], failure: [put('k', '1'), put('k', '2')] }),
      duplicateKey(),
      'two puts of one key in the failure branch (checked even when not taken)',
    );
    t.deepEqual(await fx.names(), [], 'a rejected txn applies nothing');
    const ok = await kv.txn({ compare: [], success: [put('k', 'success')], failure: [put('k', 'failure')] });
    t.true(ok.succeeded, 'the same key in the success and the failure branch is fine');
    t.is((await fx.get('k'))?.value, 'success');
  });

  it('txn: more than the maximum number of ops is an error', async (fx) => {
    const { t, kv } = fx;
    const puts = (n: number): RequestOp[] =>
      Array.from({ length: n }, (_, i) => ({ put: { key: fx.key(`k${i}`), value: enc('v') } }));
    const max = StoreLimits.maxTxnOps;
    const ok = await kv.txn({ compare: [], success: puts(max), failure: [] });
    t.true(ok.succeeded, `${max} ops are allowed`);
    await expectStoreError(
      t,
      kv.txn({ compare: [], success: puts(max + 1), failure: [] }),
      tooManyOps(),
      `${max + 1} ops in a branch`,
    );
  });

  // --- watch ---------------------------------------------------------------------------------

  it('watch: from a past revision replays in order, then live events', async (fx) => {
    const { t, kv } = fx;
    const r1 = await fx.put('a', 'a1');
    const r2 = await fx.put('b', 'b1');
    const r3 = await fx.put('a', 'a2');
    const r4 = (await kv.deleteRange({ key: fx.key('b') })).header.revision;
    const past = await fx.watch({ ...fx.span(), startRevision: r1 });
    const fromNow = await fx.watch(fx.span());
    const r5 = await fx.put('c', 'c1');
    const events = await past.waitForEvents(5, 'watch from a past revision');
    t.deepEqual(
      events.map((e) => ({ type: e.type, ...fx.plain(e.kv) })),
      [
        { type: 'put', key: 'a', value: 'a1', createRevision: r1, modRevision: r1, version: 1, lease: 0 },
        { type: 'put', key: 'b', value: 'b1', createRevision: r2, modRevision: r2, version: 1, lease: 0 },
        { type: 'put', key: 'a', value: 'a2', createRevision: r1, modRevision: r3, version: 2, lease: 0 },
        // A delete event: the key, modRevision = the delete's revision, everything else zero.
        { type: 'delete', key: 'b', value: '', createRevision: 0, modRevision: r4, version: 0, lease: 0 },
        { type: 'put', key: 'c', value: 'c1', createRevision: r5, modRevision: r5, version: 1, lease: 0 },
      ],
      'history from the start revision, then the live event, in revision order',
    );
    for (const e of events) t.is(e.prevKv, undefined, 'no prevKv unless asked for');
    for (const r of past.responses) {
      t.is(r.watchId, past.watcherId, 'responses carry the watch id');
      for (const e of r.events)
        t.true(r.header.revision >= e.kv.modRevision, 'header revision >= its events');
    }
    const live = await fromNow.waitForEvents(1, 'watch from now on');
    t.deepEqual(
      live.map((e) => `${e.type} ${fx.name(e.kv.key)}@${e.kv.modRevision}`),
      [`put c@${r5}`],
      'a watch without startRevision starts after its creation',
    );
    await sleep(100);
    t.is(past.events.length, 5, `no extra events: ${past.describe()}`);
    t.is(fromNow.events.length, 1, `no extra events: ${fromNow.describe()}`);
  });

  it('watch: prevKv on puts and deletes', async (fx) => {
    const { t, kv } = fx;
    const w = await fx.watch({ key: fx.key('k'), prevKv: true });
    const r1 = await fx.put('k', 'v1');
    const r2 = await fx.put('k', 'v2');
    const r3 = (await kv.deleteRange({ key: fx.key('k') })).header.revision;
    const events = await w.waitForEvents(3, 'watch with prevKv');
    t.is(events[0]?.prevKv, undefined, 'creating put: no prevKv');
    t.deepEqual(events[1]?.prevKv && fx.plain(events[1].prevKv), {
      key: 'k',
      value: 'v1',
      createRevision: r1,
      modRevision: r1,
      version: 1,
      lease: 0,
    });
    t.is(events[2]?.type, 'delete');
    t.is(events[2]?.kv.modRevision, r3);
    t.deepEqual(
      events[2]?.prevKv && fx.plain(events[2].prevKv),
      { key: 'k', value: 'v2', createRevision: r1, modRevision: r2, version: 2, lease: 0 },
      'delete: prevKv is the deleted key',
    );
  });

  it('watch: single key, prefix, noPut and noDelete', async (fx) => {
    const { t, kv } = fx;
    const single = await fx.watch({ key: fx.key('a') });
    const prefix = await fx.watch(fx.span());
    const noPut = await fx.watch({ ...fx.span(), noPut: true });
    const noDelete = await fx.watch({ ...fx.span(), noDelete: true });
    await fx.put('a', '1');
    await fx.put('b', '1');
    await kv.deleteRange({ key: fx.key('a') });
    await fx.put('c', '1');
    await fx.put('a', '2');
    await kv.deleteRange({ key: fx.key('b') });
    const show = (es: WatchEvent[]) => es.map((e) => `${e.type} ${fx.name(e.kv.key)}`);
    t.deepEqual(show(await prefix.waitForEvents(6, 'prefix watch')), [
      'put a',
      'put b',
      'delete a',
      'put c',
      'put a',
      'delete b',
    ]);
    t.deepEqual(show(await single.waitForEvents(3, 'single-key watch')), ['put a', 'delete a', 'put a']);
    t.deepEqual(show(await noPut.waitForEvents(2, 'noPut watch')), ['delete a', 'delete b']);
    t.deepEqual(show(await noDelete.waitForEvents(4, 'noDelete watch')), [
      'put a',
      'put b',
      'put c',
      'put a',
    ]);
    await sleep(150);
    t.is(single.events.length, 3, `single-key watch: no other keys: ${single.describe()}`);
    t.is(noPut.events.length, 2, `noPut: no puts: ${noPut.describe()}`);
  });

  it('watch: cancel stops responses', async (fx) => {
    const { t, kv } = fx;
    const log: WatchResponse[] = [];
    const w = await kv.watch(fx.span(), (r) => log.push(r));
    await fx.put('a', '1');
    await until('the watch sees the first put', 5_000, async () => log.some((r) => r.events.length > 0));
    await w.cancel();
    const seen = log.flatMap((r) => r.events).length;
    await fx.put('b', '1');
    await sleep(300);
    t.is(log.flatMap((r) => r.events).length, seen, 'no events after cancel() resolved');
    await w.cancel();
    t.pass('cancel twice is harmless');
  });

  // --- leases --------------------------------------------------------------------------------

  it('lease: grant, attach keys, timeToLive with keys, leases list', async (fx) => {
    const { t, kv } = fx;
    const res = await kv.leaseGrant({ ttl: 30 });
    t.teardown(() =>
      kv.leaseRevoke(res.id).then(
        () => undefined,
        () => undefined,
      ),
    );
    t.true(res.id > 0, 'the store picks a non-zero id');
    t.true(Number.isSafeInteger(res.id), 'the id fits a number exactly');
    t.is(res.ttl, 30, 'the granted ttl');
    await fx.put('k1', 'v', res.id);
    await fx.put('k2', 'v', res.id);
    await fx.put('plain', 'v');
    t.is((await fx.get('k1'))?.lease, res.id, 'a key carries its lease');
    t.is((await fx.get('plain'))?.lease, 0);

    const ttl = await kv.leaseTimeToLive(res.id, true);
    t.is(ttl.id, res.id);
    t.is(ttl.grantedTtl, 30, 'grantedTtl');
    t.true(ttl.ttl > 0 && ttl.ttl <= 30, `remaining ttl in (0, 30]: ${ttl.ttl}`);
    t.deepEqual(ttl.keys.map((k) => fx.name(k)).sort(), ['k1', 'k2'], 'timeToLive lists the attached keys');
    const noKeys = await kv.leaseTimeToLive(res.id);
    t.deepEqual(noKeys.keys, [], 'no keys unless asked for');

    const list = await kv.leaseLeases();
    t.true(
      list.leases.some((l) => l.id === res.id),
      'leaseLeases lists the lease',
    );

    const id = 1 + Math.floor(Math.random() * 2 ** 40);
    const chosen = await kv.leaseGrant({ ttl: 30, id });
    t.teardown(() =>
      kv.leaseRevoke(id).then(
        () => undefined,
        () => undefined,
      ),
    );
    t.is(chosen.id, id, 'a requested id is used');
    await expectStoreError(t, kv.leaseGrant({ ttl: 30, id }), leaseExists(), 'granting an existing id');
  });

  it('lease: revoke deletes its keys at one revision', async (fx) => {
    const { t, kv } = fx;
    const lease = await fx.grant(60);
    for (const k of ['a', 'b', 'c']) await fx.put(k, 'v', lease);
    await fx.put('keep', 'v');
    const w = await fx.watch(fx.span());
    await kv.leaseRevoke(lease);
    const events = await w.waitForEvents(3, 'deletes after revoke');
    t.deepEqual(events.map((e) => `${e.type} ${fx.name(e.kv.key)}`).sort(), [
      'delete a',
      'delete b',
      'delete c',
    ]);
    const revs = new Set(events.map((e) => e.kv.modRevision));
    t.is(revs.size, 1, `every key of a revoked lease goes at one revision: ${w.describe()}`);
    t.deepEqual(await fx.names(), ['keep'], 'the keys of the lease are gone, others stay');

    const ttl = await kv.leaseTimeToLive(lease, true);
    t.is(ttl.ttl, -1, 'timeToLive of a revoked lease: ttl -1');
    const ka = await kv.leaseKeepAlive(lease);
    t.is(ka.ttl, 0, 'keepAlive of a revoked lease: ttl 0');
    t.false(
      (await kv.leaseLeases()).leases.some((l) => l.id === lease),
      'leaseLeases no longer lists it',
    );
    await expectStoreError(t, kv.leaseRevoke(lease), leaseNotFound(), 'revoking a revoked lease');
  });

  it('lease: expires without keep-alive, and its keys go', async (fx) => {
    const { t, kv } = fx;
    const started = Date.now();
    const lease = await fx.grant(StoreLimits.minLeaseTtl);
    await fx.put('k', 'v', lease);
    const w = await fx.watch({ key: fx.key('k') });
    await until(
      'the key of an expired lease is deleted',
      6_000,
      async () => (await fx.get('k')) === undefined,
    );
    const elapsed = Date.now() - started;
    t.true(elapsed >= (StoreLimits.minLeaseTtl - 1) * 1000, `not before the ttl (${elapsed} ms)`);
    const [ev] = await w.waitForEvents(1, 'watch sees the expiry');
    t.is(ev?.type, 'delete');
    t.is((await kv.leaseTimeToLive(lease)).ttl, -1, 'an expired lease is gone');
  });

  it('lease: keep-alive keeps it', async (fx) => {
    const { t, kv } = fx;
    const ttl = StoreLimits.minLeaseTtl;
    const lease = await fx.grant(ttl);
    await fx.put('k', 'v', lease);
    const keepUntil = Date.now() + (ttl * 1000 * 3) / 2 + 1000;
    while (Date.now() < keepUntil) {
      const ka = await kv.leaseKeepAlive(lease);
      t.is(ka.id, lease);
      t.is(ka.ttl, ttl, 'keepAlive answers the full ttl');
      await sleep(400);
    }
    t.truthy(await fx.get('k'), 'the key of a kept-alive lease outlives its ttl');
    const left = await kv.leaseTimeToLive(lease);
    t.true(left.ttl > 0, `the lease is alive (ttl ${left.ttl})`);
  });

  it('lease: minimum ttl and errors', async (fx) => {
    const { t, kv } = fx;
    const short = await kv.leaseGrant({ ttl: 1 });
    t.teardown(() =>
      kv.leaseRevoke(short.id).then(
        () => undefined,
        () => undefined,
      ),
    );
    t.is(short.ttl, StoreLimits.minLeaseTtl, 'a ttl below the minimum is raised to it');
    await expectStoreError(
      t,
      kv.leaseGrant({ ttl: 9_000_000_001 }),
      leaseTtlTooLarge(),
      "a ttl above etcd's maximum",
    );
    const missing = 1 + Math.floor(Math.random() * 2 ** 40);
    await expectStoreError(t, kv.leaseRevoke(missing), leaseNotFound(), 'revoking a missing lease');
    await expectStoreError(
      t,
      kv.put({ key: fx.key('k'), value: enc('v'), lease: missing }),
      leaseNotFound(),
      'put with a missing lease',
    );
    await expectStoreError(
      t,
      kv.txn({
        compare: [],
        success: [{ put: { key: fx.key('k'), value: enc('v'), lease: missing } }],
        failure: [],
      }),
      leaseNotFound(),
      'txn put with a missing lease',
    );
    t.is(await fx.get('k'), undefined, 'nothing written');
    const ttl = await kv.leaseTimeToLive(missing);
    t.is(ttl.ttl, -1, 'timeToLive of a missing lease: ttl -1, not an error');
    const ka = await kv.leaseKeepAlive(missing);
    t.is(ka.ttl, 0, 'keepAlive of a missing lease: ttl 0, not an error');
  });
}
