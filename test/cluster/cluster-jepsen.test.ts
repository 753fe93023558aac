// Jepsen-style: concurrent clients get, put and compare-and-set three keys on a five-node
// cluster while a nemesis keeps breaking it (SIGKILL and restart, SIGSTOP/SIGCONT, partitions
// of a random minority or of the leader alone). Every call and return is recorded; the whole
// history must be linearizable (test/sim/linearizability.ts), which also means no
// acknowledged write was lost. Writes that failed without a definite answer may or may not
// have happened (ret = Infinity); reads that failed tell nothing and are dropped.
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import test from 'ava';
import type { Client } from '../../pkg/client/client.js';
import { checkLinearizable, type Operation } from '../sim/linearizability.js';
import { dec, enc, errorText, sleep, TestCluster } from './support-cluster.js';

const NODES = 5;
const CLIENTS = 5;
const KEYS = ['jepsen/a', 'jepsen/b', 'jepsen/c'];
// A longer or harsher run by hand: BERTH_JEPSEN_MS=300000 BERTH_JEPSEN_NEMESIS_MS=1000
// (past ava's 5 m timeout, add --timeout).
const RUN_MS = Number(process.env.BERTH_JEPSEN_MS ?? 35_000);
const NEMESIS_EVERY_MS = Number(process.env.BERTH_JEPSEN_NEMESIS_MS ?? 3_000);
/** Fewer ok operations than this and the run proved nothing. */
const MIN_OK_OPS = 300;
const MIN_OK_WRITES = 100;

/** A failed write that certainly was not applied: refused before being proposed, or never sent. */
function definitelyNotApplied(err: unknown): boolean {
  const m = (err as Error).message ?? '';
  return m === 'etcdserver: no leader' || /berth client: no connection|No connection established/.test(m);
}

interface Tally {
  [what: string]: number;
}

test('concurrent get/put/cas under a nemesis is linearizable and loses no acknowledged write', async (t) => {
  const tc = await TestCluster.start(t, { size: NODES });
  await tc.waitForLeader(undefined, 30_000);
  for (const i of tc.all()) await tc.memberId(i);

  const history: Operation[] = [];
  const tally: Tally = {};
  const count = (what: string) => {
    tally[what] = (tally[what] ?? 0) + 1;
  };
  const errors = new Map<string, number>();
  let nextId = 0;
  const t0 = performance.now();
  const now = () => performance.now() - t0;

  // ---- clients ----
  const get = async (c: Client, client: number, key: string): Promise<string | undefined> => {
    const call = now();
    try {
      const r = await c.range({ key: enc(key) });
      const output = r.kvs[0] ? dec(r.kvs[0].value) : undefined;
      history.push({ id: nextId++, client, kind: 'get', key, call, ret: now(), output });
      count('get ok');
      return output;
    } catch (err) {
      count('get failed (dropped)');
      errors.set(`get: ${errorText(err)}`, (errors.get(`get: ${errorText(err)}`) ?? 0) + 1);
      return undefined;
    }
  };

  const write = async (
    client: number,
    kind: 'put' | 'cas',
    key: string,
    value: string,
    expect: string | undefined,
    run: () => Promise<boolean | undefined>,
  ): Promise<void> => {
    const id = nextId++;
    const call = now();
    try {
      const output = await run();
      history.push({ id, client, kind, key, value, expect, call, ret: now(), output });
      count(kind === 'put' ? 'put ok' : output ? 'cas ok (succeeded)' : 'cas ok (failed compare)');
    } catch (err) {
      errors.set(`${kind}: ${errorText(err)}`, (errors.get(`${kind}: ${errorText(err)}`) ?? 0) + 1);
      if (definitelyNotApplied(err)) {
        count(`${kind} refused (dropped)`);
        return;
      }
      history.push({ id, client, kind, key, value, expect, call, ret: Number.POSITIVE_INFINITY });
      count(`${kind} unknown`);
    }
  };

  const clients = Array.from({ length: CLIENTS }, (_, c) =>
    // Each client starts on a different node, as users behind different load balancers would.
    tc.client({
      nodes: tc.all().map((i) => (i + c) % NODES),
      requestTimeoutMs: 2000,
      retries: 3,
    }),
  );

  // Every key starts with a known value, written (and recorded) like any other.
  for (const key of KEYS) {
    const c = clients[0] as Client;
    await write(0, 'put', key, 'init', undefined, async () => {
      await c.put({ key: enc(key), value: enc('init') });
      return undefined;
    });
  }

  const endAt = Date.now() + RUN_MS;
  let seq = 0;
  const runClient = async (n: number) => {
    const c = clients[n] as Client;
    const seen = new Map<string, string>(KEYS.map((k) => [k, 'init']));
    while (Date.now() < endAt) {
      const key = KEYS[Math.floor(Math.random() * KEYS.length)] as string;
      const r = Math.random();
      const value = `c${n}-${seq++}`;
      if (r < 0.4) {
        const v = await get(c, n, key);
        if (v !== undefined) seen.set(key, v);
      } else if (r < 0.7) {
        await write(n, 'put', key, value, undefined, async () => {
          await c.put({ key: enc(key), value: enc(value) });
          seen.set(key, value);
          return undefined;
        });
      } else {
        const expect = seen.get(key) as string;
        await write(n, 'cas', key, value, expect, async () => {
          const res = await c.txn({
            compare: [{ target: 'value', result: 'equal', key: enc(key), value: enc(expect) }],
            success: [{ put: { key: enc(key), value: enc(value) } }],
            failure: [],
          });
          if (res.succeeded) seen.set(key, value);
          return res.succeeded;
        });
      }
      await sleep(Math.random() * 20);
    }
  };

  // ---- nemesis ----
  const faults: string[] = [];
  let undo: (() => Promise<void>) | undefined;
  const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;
  const someNode = () => Math.floor(Math.random() * NODES);
  const leaderNow = async (): Promise<number> => {
    const st = await Promise.all(
      tc.all().map((i) => Promise.race([tc.status(i), sleep(1000).then(() => undefined)])),
    );
    const votes = new Map<string, number>();
    for (const s of st) if (s && s.leader !== '0') votes.set(s.leader, (votes.get(s.leader) ?? 0) + 1);
    const best = [...votes].sort((a, b) => b[1] - a[1])[0];
    return (best && tc.indexOf(best[0])) ?? someNode();
  };
  const minority = (): number[] => {
    const size = 1 + Math.floor(Math.random() * Math.floor((NODES - 1) / 2));
    return [...tc.all()].sort(() => Math.random() - 0.5).slice(0, size);
  };
  const kinds: (() => Promise<void>)[] = [
    async () => {
      const i = pick([someNode(), await leaderNow()]);
      faults.push(`kill n${i + 1}`);
      await tc.cluster.kill(i);
      undo = () => tc.cluster.start(i);
    },
    async () => {
      const i = pick([someNode(), await leaderNow()]);
      faults.push(`pause n${i + 1}`);
      tc.cluster.pause(i);
      undo = async () => tc.cluster.resume(i);
    },
    async () => {
      const group = minority();
      faults.push(`partition ${group.map((i) => `n${i + 1}`).join(',')} from the rest`);
      await tc.cluster.partition([group, tc.all().filter((i) => !group.includes(i))]);
      undo = () => tc.cluster.heal();
    },
    async () => {
      const l = await leaderNow();
      faults.push(`partition the leader n${l + 1} alone`);
      await tc.cluster.partition([[l], tc.all().filter((i) => i !== l)]);
      undo = () => tc.cluster.heal();
    },
    async () => {
      faults.push('none');
    },
  ];
  const recover = async () => {
    const u = undo;
    undo = undefined;
    if (u) await u();
  };
  // Every kind of fault twice in a random order, one at a time, each healed before the next.
  const schedule = [0, 1, 2, 3, 0, 1, 2, 3, 4].sort(() => Math.random() - 0.5);
  const nemesis = async () => {
    await sleep(NEMESIS_EVERY_MS / 2);
    for (let k = 0; Date.now() + NEMESIS_EVERY_MS < endAt; k++) {
      await recover();
      await (kinds[schedule[k % schedule.length] as number] as () => Promise<void>)();
      await sleep(NEMESIS_EVERY_MS);
    }
    await recover();
  };

  await Promise.all([nemesis(), ...clients.map((_, n) => runClient(n))]);

  // ---- the end: everything healed, every node up, a final read of each key ----
  await tc.cluster.heal();
  for (const i of tc.all()) {
    tc.cluster.resume(i);
    if (!tc.running(i)) await tc.cluster.start(i);
  }
  await tc.waitForLeader(undefined, 30_000);
  for (const key of KEYS) {
    const v = await get(clients[0] as Client, 0, key);
    t.not(v, undefined, `final read of ${key}`);
  }
  const converged = await tc.waitConverged(tc.all(), 30_000, 'jepsen/');

  const started = performance.now();
  const result = checkLinearizable(history);
  const checkMs = Math.round(performance.now() - started);

  const okOps = history.filter((op) => op.ret !== Number.POSITIVE_INFINITY).length;
  const okWrites = history.filter((op) => op.kind !== 'get' && op.ret !== Number.POSITIVE_INFINITY).length;
  t.log(`faults: ${faults.join('; ')}`);
  t.log(`${history.length} ops recorded, ${okOps} with an answer, ${okWrites} of them writes`);
  t.log(`tally: ${JSON.stringify(tally)}`);
  t.log(`errors: ${JSON.stringify([...errors].sort((a, b) => b[1] - a[1]).slice(0, 8))}`);
  t.log(`final: ${converged.kvs.map((kv) => `${kv.key}=${kv.value}@${kv.modRevision}`).join(' ')}`);
  t.log(`checker: ${JSON.stringify(result)} in ${checkMs} ms`);

  if (!result.ok || result.timedOut) {
    const dir = join(tmpdir(), 'berth-test-logs');
    await mkdir(dir, { recursive: true });
    const file = join(dir, `jepsen-history-${Date.now()}.json`);
    await writeFile(
      file,
      JSON.stringify(
        history.map((op) => ({ ...op, ret: op.ret === Number.POSITIVE_INFINITY ? null : op.ret })),
      ),
    );
    t.log(`history written to ${file} (ret null = unknown outcome)`);
  }
  t.true(result.ok, result.explanation);
  t.falsy(result.timedOut, 'the checker gave up: the verdict is unknown');
  t.true(okOps >= MIN_OK_OPS, `only ${okOps} operations got an answer`);
  t.true(okWrites >= MIN_OK_WRITES, `only ${okWrites} writes got an answer`);
  for (const kind of ['kill', 'pause', 'partition n', 'partition the leader']) {
    t.true(
      faults.some((f) => f.startsWith(kind)),
      `the nemesis never did "${kind}"`,
    );
  }
});
