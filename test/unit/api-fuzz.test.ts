// Fuzzing the API's write verbs in process: malformed and hostile manifests (see
// test/support/hostile-manifests.ts) go to create, apply, update and updateStatus, each for
// real and as a dry run, against an ApiServer over a local store that holds one valid object
// of every kind. Each input must be refused with a clear ApiError (a code a user can act
// on, a short message, field errors with paths) and leave the store exactly as it was (keys,
// values, mod revisions and the store revision). An input that happens to be valid may
// succeed; then the server is rebuilt so the next input meets the seeded state again.
//
// fast-check prints the seed and the shrunk recipe on failure; rerun one with
// FUZZ_SEED=<seed> (and FUZZ_RUNS=<n> to change the number of runs).

import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import pino from 'pino';
import { ApiError } from '../../pkg/api/errors.js';
import { ApiServer } from '../../pkg/api/server/api-server.js';
import { ensureSystemNamespaces } from '../../pkg/api/server/bootstrap.js';
import { validateObject } from '../../pkg/api/validation.js';
import { createLocalStore, type LocalStore } from '../../pkg/store/local-store.js';
import { prefixEnd } from '../../pkg/store/types.js';
import {
  BASE_KINDS,
  baseManifest,
  build,
  describeCase,
  type HostileCase,
  hostileCase,
  MAX_MESSAGE_CHARS,
  mutatedManifest,
  randomJson,
  rejectionProblems,
} from '../support/hostile-manifests.js';

const logger = pino({ level: 'silent' });
const enc = new TextEncoder();
const dec = new TextDecoder();
const CALL_TIMEOUT_MS = 10_000;

const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const runs = (n: number) => (process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : n);

interface Server {
  kv: LocalStore;
  api: ApiServer;
}

/** A fresh server with the system namespaces and one valid object of every kind. */
async function seededServer(): Promise<Server> {
  const kv = createLocalStore();
  const api = new ApiServer({ kv, logger });
  await ensureSystemNamespaces(api, logger, new AbortController().signal);
  for (const kind of BASE_KINDS) await api.create(baseManifest(kind));
  return { kv, api };
}

/** Everything under /registry/: keys, mod revisions and values, and the store revision. */
async function snapshot(kv: LocalStore): Promise<{ revision: number; entries: Map<string, string> }> {
  const key = enc.encode('/registry/');
  const r = await kv.range({ key, rangeEnd: prefixEnd(key) });
  const entries = new Map<string, string>();
  for (const e of r.kvs) entries.set(dec.decode(e.key), `${e.modRevision} ${dec.decode(e.value)}`);
  return { revision: r.header.revision, entries };
}

function snapshotDiff(
  a: Awaited<ReturnType<typeof snapshot>>,
  b: Awaited<ReturnType<typeof snapshot>>,
): string | undefined {
  const out: string[] = [];
  if (a.revision !== b.revision) out.push(`store revision ${a.revision} -> ${b.revision}`);
  for (const [k, v] of b.entries) {
    const before = a.entries.get(k);
    if (before === undefined) out.push(`added ${k}: ${v.slice(0, 200)}`);
    else if (before !== v) out.push(`changed ${k}: ${before.slice(0, 200)} -> ${v.slice(0, 200)}`);
  }
  for (const k of a.entries.keys()) if (!b.entries.has(k)) out.push(`removed ${k}`);
  return out.length ? out.join('; ') : undefined;
}

type Verb = 'create' | 'apply' | 'update' | 'updateStatus';
const VERBS: readonly Verb[] = ['create', 'apply', 'update', 'updateStatus'];

function call(api: ApiServer, verb: Verb, input: unknown, dryRun: boolean): Promise<unknown> {
  switch (verb) {
    case 'create':
      return api.create(input, { dryRun });
    case 'apply':
      return api.apply(input, { dryRun });
    case 'update':
      return api.update(input, { dryRun });
    case 'updateStatus':
      return api.update(input, { dryRun }, true);
  }
}

type Outcome = { ok: true } | { ok: false; err: unknown } | { hang: true };

async function settle(p: Promise<unknown>): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ hang: true }), CALL_TIMEOUT_MS);
  });
  try {
    return await Promise.race([
      p.then(
        (): Outcome => ({ ok: true }),
        (err: unknown): Outcome => ({ ok: false, err }),
      ),
      hang,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Sends `c` with every verb, for real and dry, and throws (for fast-check to report) what
 * went wrong. Resolves with the server to use next (a new one when a write succeeded).
 */
async function exercise(server: Server, c: HostileCase, maxMessageChars: number): Promise<Server> {
  let current = server;
  const valid = validateObject(build(c)).length === 0;
  for (const verb of VERBS) {
    for (const dryRun of [true, false]) {
      const before = await snapshot(current.kv);
      const where = `${verb}${dryRun ? ' (dry run)' : ''} of ${describeCase(c)}`;
      let outcome: Outcome;
      try {
        outcome = await settle(call(current.api, verb, build(c), dryRun));
      } catch (err) {
        // A synchronous throw out of an async API method: a bug of its own.
        throw new Error(`${where}: threw synchronously: ${String((err as Error)?.stack ?? err)}`);
      }
      if ('hang' in outcome) throw new Error(`${where}: no answer within ${CALL_TIMEOUT_MS} ms`);
      const after = await snapshot(current.kv);
      const diff = snapshotDiff(before, after);
      if (!outcome.ok) {
        const problems = rejectionProblems(
          outcome.err,
          outcome.err instanceof ApiError,
          valid,
          maxMessageChars,
        );
        if (problems.length) throw new Error(`${where}: ${problems.join(' | ')}`);
        if (diff) throw new Error(`${where}: refused, yet the store changed: ${diff}`);
        continue;
      }
      if (!valid) throw new Error(`${where}: accepted although validateObject finds it invalid`);
      if (dryRun && diff) throw new Error(`${where}: a dry run changed the store: ${diff}`);
      if (!dryRun && diff) current = await seededServer();
    }
  }
  return current;
}

async function fuzz(
  t: ExecutionContext,
  arb: fc.Arbitrary<HostileCase>,
  numRuns: number,
  maxMessageChars = Number.POSITIVE_INFINITY,
  examples: HostileCase[] = [],
): Promise<void> {
  let server = await seededServer();
  const started = Date.now();
  await fc.assert(
    fc.asyncProperty(arb, async (c) => {
      server = await exercise(server, c, maxMessageChars);
    }),
    { numRuns, seed, includeErrorInReport: true, examples: examples.map((c): [HostileCase] => [c]) },
  );
  t.log(`${numRuns} inputs x 8 calls in ${Date.now() - started} ms`);
  t.pass();
}

/** Counterexamples fast-check found once, run first every time. */
const FOUND: HostileCase[] = [
  // A top-level field named "": reported as `{path: '', message: 'unknown field'}`.
  { type: 'mutated', base: 'ConfigMap', mutations: [{ op: 'unknown', at: 0, key: '', value: null }] },
  // A 5000-deep list where a Service port belongs: "Internal error: ... Maximum call stack size exceeded".
  { type: 'mutated', base: 'Service', mutations: [{ op: 'deep', at: 301, depth: 5000, list: true }] },
];

test('every base manifest is valid and is accepted (else the fuzzing proves little)', async (t) => {
  for (const kind of BASE_KINDS) t.deepEqual(validateObject(baseManifest(kind)), [], kind);
  const { api } = await seededServer();
  for (const kind of BASE_KINDS) {
    const m = baseManifest(kind) as { metadata: { name: string } };
    await t.notThrowsAsync(api.get(kind, 'default', m.metadata.name), kind);
  }
});

test('mutated manifests of every kind: a clear error for each verb, the store untouched', async (t) => {
  await fuzz(t, mutatedManifest, runs(600), Number.POSITIVE_INFINITY, FOUND);
});

test('random JSON values: a clear error for each verb, the store untouched', async (t) => {
  await fuzz(t, randomJson, runs(300));
});

test('a mix of both, with a server that keeps its state across inputs', async (t) => {
  await fuzz(t, hostileCase, runs(300));
});

// The properties above leave the message's length to this one, so that this finding does not
// hide the others: a manifest with many problems (a wide object of unknown keys, a 70 000-
// character label key) must still get a message a person can read, not every error joined.
test(`every message stays under ${MAX_MESSAGE_CHARS} characters, however many problems the manifest has`, async (t) => {
  await fuzz(t, hostileCase, runs(300), MAX_MESSAGE_CHARS);
});
