// Fuzzing the object API over gRPC against a real 3-node cluster: hostile manifests through
// the API client (each to the next node in turn, so followers and the leader both see them),
// text that is not JSON in the request's `object` field, requests over the size limits, and
// bytes that are not a protobuf message at all. Every request must get a status a client can
// act on (never INTERNAL or UNKNOWN), the stored objects must not change, and at the end
// every node must still run, answer, and have logged no internal error.
//
// Fewer runs than the in-process fuzz (api-fuzz.test.ts): about a hundred inputs, well under
// two minutes. fast-check prints the seed on failure; FUZZ_SEED=<seed> reruns one.

import * as grpc from '@grpc/grpc-js';
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { ApiError } from '../../pkg/api/errors.js';
import { ERROR_CODE_TRAILER, objectsService } from '../../pkg/api/server/grpc-api.js';
import { type ApiClient, createApiClient } from '../../pkg/client/api-client.js';
import { type Client, createClient } from '../../pkg/client/client.js';
import { prefixEnd } from '../../pkg/store/types.js';
import { validateObject } from '../../pkg/api/validation.js';
import { BerthCluster } from '../support/berth-cluster.js';
import {
  BASE_KINDS,
  baseManifest,
  build,
  describeCase,
  type HostileCase,
  hostileCase,
  nonJsonText,
  rejectionProblems,
} from '../support/hostile-manifests.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const WRITE_METHODS = ['Create', 'Update', 'UpdateStatus', 'Apply'] as const;
const UNARY_METHODS = [...WRITE_METHODS, 'Get', 'List', 'Delete', 'Version'] as const;
/** Statuses a malformed request may get; anything else (INTERNAL, UNKNOWN, OK...) is a finding. */
const REFUSALS = new Set([grpc.status.INVALID_ARGUMENT, grpc.status.RESOURCE_EXHAUSTED]);

let cluster: BerthCluster;
let store: Client;
/** One API client per node, to send each input to a node of its own. */
let perNode: ApiClient[];
let raw: grpc.Client[];
let nextNode = 0;
const started = Date.now();

test.before(async () => {
  // No controllers: they would act on the valid objects (create pods, record events), and
  // this test must tell the API's own writes from none at all.
  cluster = await BerthCluster.start({ size: 3, extraArgs: ['--no-controllers'] });
  const endpoints = cluster.endpoints();
  store = createClient({ endpoints });
  perNode = endpoints.map((ep) => createApiClient({ endpoints: [ep], requestTimeoutMs: 10_000 }));
  raw = endpoints.map((ep) => new grpc.Client(ep, grpc.credentials.createInsecure()));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ready = await Promise.all(
      perNode.map((c) =>
        c.get('namespaces', undefined, 'default').then(
          () => true,
          () => false,
        ),
      ),
    );
    if (ready.every(Boolean)) break;
    if (Date.now() > deadline) throw new Error('the cluster did not serve the API within 20 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const kind of BASE_KINDS) await perNode[0]?.apply(baseManifest(kind));
});

test.after.always(async () => {
  for (const c of perNode ?? []) c.close();
  for (const c of raw ?? []) c.close();
  store?.close();
  await cluster?.destroy();
});

type Snapshot = { revision: number; entries: Map<string, string> };

/** Everything under /registry/ (keys, mod revisions, values) and the store revision. */
async function snapshot(): Promise<Snapshot> {
  const key = enc.encode('/registry/');
  const r = await store.range({ key, rangeEnd: prefixEnd(key) });
  const entries = new Map<string, string>();
  for (const e of r.kvs) entries.set(dec.decode(e.key), `${e.modRevision} ${dec.decode(e.value)}`);
  return { revision: r.header.revision, entries };
}

function diff(a: Snapshot, b: Snapshot): string | undefined {
  // Not the store revision: the nodes write their own records (members) outside /registry/.
  const out: string[] = [];
  for (const [k, v] of b.entries) {
    const before = a.entries.get(k);
    if (before === undefined) out.push(`added ${k}`);
    else if (before !== v) out.push(`changed ${k}: ${before.slice(0, 160)} -> ${v.slice(0, 160)}`);
  }
  for (const k of a.entries.keys()) if (!b.entries.has(k)) out.push(`removed ${k}`);
  return out.length ? out.join('; ') : undefined;
}

/** Deeper than this, the client's own JSON.stringify overflows its stack: sent as raw text instead. */
const tooDeepForJson = (c: HostileCase) =>
  c.type === 'mutated' && c.mutations.some((m) => m.op === 'deep' && m.depth > 1000);

function send(client: ApiClient, method: (typeof WRITE_METHODS)[number], obj: unknown, dryRun: boolean) {
  switch (method) {
    case 'Create':
      return client.create(obj, { dryRun });
    case 'Update':
      return client.update(obj, { dryRun });
    case 'UpdateStatus':
      return client.updateStatus(obj, { dryRun });
    case 'Apply':
      return client.apply(obj, { dryRun });
  }
}

interface RawResult {
  code: number;
  details: string;
  errorCode?: string;
}

/** One unary call with the request bytes as given (no serializer of ours in the way). */
function rawCall(node: number, method: string, bytes: Buffer): Promise<RawResult> {
  const client = raw[node] as grpc.Client;
  return new Promise((resolve) => {
    client.makeUnaryRequest<Buffer, Buffer>(
      `/berth.api.v1.Objects/${method}`,
      (b) => b,
      (b) => b,
      bytes,
      new grpc.Metadata(),
      { deadline: Date.now() + 15_000 },
      (err) => {
        if (!err) return resolve({ code: grpc.status.OK, details: '' });
        const code = err.metadata?.get(ERROR_CODE_TRAILER)[0];
        resolve({
          code: err.code,
          details: err.details,
          errorCode: typeof code === 'string' ? code : undefined,
        });
      },
    );
  });
}

/** A WriteRequest with `object` as given, encoded by the proto's own serializer. */
function writeRequest(method: string, object: string, dryRun = false): Buffer {
  const m = objectsService()[method];
  if (!m) throw new Error(`no method ${method}`);
  return m.requestSerialize({ object, namespace: '', dry_run: dryRun, uid: '' });
}

/** What is wrong with a raw call's answer (empty: nothing). */
function rawProblems(r: RawResult, allowed: Set<number>): string[] {
  const problems: string[] = [];
  if (!allowed.has(r.code))
    problems.push(`status ${grpc.status[r.code] ?? r.code}: ${r.details.slice(0, 300)}`);
  if (r.code !== grpc.status.OK && r.details.trim() === '') problems.push('a status without a message');
  if (/internal error/i.test(r.details)) problems.push(`the message reports an internal error: ${r.details}`);
  if (r.code === grpc.status.INVALID_ARGUMENT && !r.errorCode)
    problems.push(`INVALID_ARGUMENT without the ${ERROR_CODE_TRAILER} trailer: ${r.details}`);
  return problems;
}

async function assertFuzz(t: ExecutionContext, property: fc.IAsyncProperty<[unknown]>, numRuns: number) {
  const at = Date.now();
  await fc.assert(property, { numRuns, seed, includeErrorInReport: true, endOnFailure: true });
  t.log(`${numRuns} inputs in ${Date.now() - at} ms`);
  t.pass();
}

test.serial(
  'hostile manifests through the API client: a clear error from every node, nothing stored changes',
  async (t) => {
    const arb = fc.tuple(
      hostileCase.filter((c) => !tooDeepForJson(c)),
      fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    );
    await assertFuzz(
      t,
      fc.asyncProperty(arb, async ([c, dry]) => {
        const node = nextNode++ % perNode.length;
        const client = perNode[node] as ApiClient;
        const valid = validateObject(build(c)).length === 0;
        for (const [i, method] of WRITE_METHODS.entries()) {
          const dryRun = dry[i] === true;
          const where = `${method}${dryRun ? ' (dry run)' : ''} on n${node + 1} of ${describeCase(c)}`;
          const before = await snapshot();
          const outcome = await send(client, method, build(c), dryRun).then(
            () => ({ ok: true as const }),
            (err: unknown) => ({ ok: false as const, err }),
          );
          const changed = diff(before, await snapshot());
          if (outcome.ok) {
            if (!valid) throw new Error(`${where}: accepted although validateObject finds it invalid`);
            if (dryRun && changed) throw new Error(`${where}: a dry run changed the store: ${changed}`);
            continue;
          }
          const problems = rejectionProblems(
            outcome.err,
            outcome.err instanceof ApiError,
            valid,
            Number.POSITIVE_INFINITY,
          );
          if (problems.length) throw new Error(`${where}: ${problems.join(' | ')}`);
          if (changed) throw new Error(`${where}: refused, yet the store changed: ${changed}`);
        }
      }) as fc.IAsyncProperty<[unknown]>,
      60,
    );
  },
);

test.serial(
  'text that is not JSON, and JSON too deep to build, in the object field: INVALID_ARGUMENT',
  async (t) => {
    // Valid JSON nested deeper than a client's JSON.stringify can go, where a number belongs.
    const deep = (depth: number) =>
      `{"apiVersion":"v1","kind":"Service","metadata":{"name":"fuzz-deep"},"spec":{"ports":[{"port":${'['.repeat(depth)}1${']'.repeat(depth)}}]}}`;
    const arb = fc.tuple(
      fc.oneof(
        { weight: 4, arbitrary: nonJsonText.map((text) => ({ text })) },
        { weight: 1, arbitrary: fc.constantFrom(5000, 100_000).map((depth) => ({ depth })) },
      ),
      fc.constantFrom(...WRITE_METHODS),
      fc.boolean(),
    );
    await assertFuzz(
      t,
      fc.asyncProperty(arb, async ([input, method, dryRun]) => {
        const text = 'text' in input ? input.text : deep(input.depth);
        const node = nextNode++ % raw.length;
        const before = await snapshot();
        const r = await rawCall(node, method, writeRequest(method, text, dryRun));
        const where = `${method} on n${node + 1} of ${JSON.stringify(text.slice(0, 120))} (${text.length} chars)`;
        const problems = rawProblems(r, new Set([grpc.status.INVALID_ARGUMENT]));
        if (problems.length) throw new Error(`${where}: ${problems.join(' | ')}`);
        const changed = diff(before, await snapshot());
        if (changed) throw new Error(`${where}: refused, yet the store changed: ${changed}`);
      }) as fc.IAsyncProperty<[unknown]>,
      20,
    );
  },
);

test.serial('bytes that are not a request message: a status, never INTERNAL, and no node dies', async (t) => {
  const arb = fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 512 }), fc.constantFrom(...UNARY_METHODS));
  await assertFuzz(
    t,
    fc.asyncProperty(arb, async ([bytes, method]) => {
      const node = nextNode++ % raw.length;
      const before = await snapshot();
      const r = await rawCall(node, method, Buffer.from(bytes));
      const where = `${method} on n${node + 1} of bytes ${Buffer.from(bytes).toString('hex').slice(0, 200)}`;
      // Random bytes often decode (unknown fields are skipped): then the request is one of
      // empty or odd strings, refused as such; Version needs nothing, Get and Delete may
      // name nothing that exists.
      const allowed = new Set(REFUSALS);
      if (method === 'Version') allowed.add(grpc.status.OK);
      if (method === 'Get' || method === 'Delete') allowed.add(grpc.status.NOT_FOUND);
      if (method === 'List') allowed.add(grpc.status.OK);
      const problems = rawProblems(r, allowed);
      if (problems.length) throw new Error(`${where}: ${problems.join(' | ')}`);
      const changed = diff(before, await snapshot());
      if (changed) throw new Error(`${where}: the store changed: ${changed}`);
    }) as fc.IAsyncProperty<[unknown]>,
    20,
  );
});

test.serial(
  'oversized requests (over 1.5 MiB, over 4 MiB): RESOURCE_EXHAUSTED, nothing stored',
  async (t) => {
    const configMap = (bytes: number) =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'fuzz-huge' },
        data: { big: 'x'.repeat(bytes) },
      });
    const cases = [
      { size: 1.6 * 1024 * 1024, method: 'Create' },
      { size: 1.6 * 1024 * 1024, method: 'Apply' },
      { size: 4.5 * 1024 * 1024, method: 'Create' },
      { size: 4.5 * 1024 * 1024, method: 'Update' },
    ];
    for (const [i, c] of cases.entries()) {
      const before = await snapshot();
      const r = await rawCall(i % raw.length, c.method, writeRequest(c.method, configMap(c.size)));
      const where = `${c.method} of a ${c.size}-byte ConfigMap on n${(i % raw.length) + 1}`;
      t.deepEqual(rawProblems(r, new Set([grpc.status.RESOURCE_EXHAUSTED])), [], where);
      t.is(diff(before, await snapshot()), undefined, where);
    }
    // The same through the API client: an ApiError, API_TOO_LARGE.
    const err = await t.throwsAsync(
      perNode[0]?.create(JSON.parse(configMap(1.6 * 1024 * 1024))) ?? Promise.resolve(),
    );
    t.true(err instanceof ApiError, String(err));
    t.is((err as ApiError).code, 'API_TOO_LARGE', err?.message);
  },
);

test.serial('afterwards every node runs, answers, and logged no internal error', async (t) => {
  for (const [i, n] of cluster.nodes.entries()) {
    t.truthy(n.proc && n.proc.exitCode === null && n.proc.signalCode === null, `${n.name} is not running`);
    const v = await perNode[i]?.version();
    t.is(v?.nodeName, n.name);
    const list = await perNode[i]?.list('namespaces');
    t.true((list?.items.length ?? 0) >= 2, `${n.name} lists namespaces`);
  }
  for (const s of await store.cluster.statusAll())
    t.truthy(s.status && !s.error, `${s.endpoint} has no store status: ${s.error?.message}`);
  for (const n of cluster.nodes) {
    const log = await cluster.tail(n, 1_000_000);
    const bad = log.split('\n').filter((l) => /internal error|uncaught|"level":60/i.test(l));
    t.deepEqual(bad.slice(0, 5), [], `${n.name} logged: ${bad.slice(0, 5).join('\n')}`);
  }
  t.log(`whole file: ${Date.now() - started} ms`);
});
