// The leader's machine dies in the middle of a stream of writes (SIGKILL): every write the
// cluster acknowledged before, during and after is still there, the survivors elect a new
// leader within seconds, the client fails over by itself, and the dead node, restarted,
// catches up to exactly the same state.
import test from 'ava';
import { enc, errorText, lostWrites, readDump, TestCluster, waitFor } from './support-cluster.js';

const PREFIX = 'failover/';
const TOTAL = 300;

test('writes acknowledged before a leader SIGKILL survive it, and a new leader takes over', async (t) => {
  const tc = await TestCluster.start(t, { size: 3 });
  const leader = await tc.waitForLeader();
  const survivors = tc.all().filter((i) => i !== leader);
  t.log(`leader is n${leader + 1}`);

  const client = tc.client({ requestTimeoutMs: 3000, retries: 6 });
  const writer = tc.writer(client, { prefix: PREFIX, concurrency: 4, max: TOTAL });
  await writer.waitAcked(TOTAL / 3, 30_000);

  const killedAt = Date.now();
  await tc.cluster.kill(leader);
  const newLeader = await tc.waitForLeader(survivors, 15_000);
  const electionMs = Date.now() - killedAt;
  t.log(`n${newLeader + 1} leads ${electionMs} ms after the kill`);
  t.true(survivors.includes(newLeader));
  // Election timeout is 10 ticks of 50 ms (randomized up to twice that); allow for a busy machine.
  t.true(electionMs < 10_000, `new leader after ${electionMs} ms`);

  await writer.finished(60_000);
  t.log(
    `${writer.acked.size} of ${TOTAL} writes acknowledged; failures: ${JSON.stringify([...writer.errors])}`,
  );
  // Only the writes in flight around the kill may fail.
  t.true(writer.acked.size >= TOTAL - 20, `only ${writer.acked.size} writes acknowledged`);

  // Read back through the (failed-over) client: linearizable, so from the new leader's state.
  const dump = await readDump(client, PREFIX);
  t.deepEqual(lostWrites(writer, dump, PREFIX), []);

  // The survivors hold the same; so does the old leader once restarted.
  const survivorsDump = await tc.waitConverged(survivors, 20_000);
  t.deepEqual(lostWrites(writer, survivorsDump, PREFIX), []);
  await tc.cluster.start(leader);
  const everyone = await tc.waitConverged(tc.all(), 30_000);
  t.is(everyone.revision, survivorsDump.revision);
  t.deepEqual(lostWrites(writer, everyone, PREFIX), []);
});

// The node a client talks to freezes (SIGSTOP: a hung machine, a long GC pause) while the
// client only writes. Writes that were in flight may time out, but the client must move on
// to the other members within a few seconds, not keep sending every write to the frozen one.
test('a client that only writes moves off a frozen node within seconds', async (t) => {
  const tc = await TestCluster.start(t, { size: 3 });
  await tc.waitForLeader();
  const client = tc.client({ requestTimeoutMs: 2000, retries: 3 });
  await client.put({ key: enc('warm'), value: enc('up') });
  const frozen = tc.cluster.endpoints(true).indexOf(client.currentEndpoint());
  t.log(`freezing n${frozen + 1}, the client's current endpoint`);
  tc.cluster.pause(frozen);
  t.teardown(() => tc.cluster.resume(frozen));
  const frozenAt = Date.now();
  const errors: string[] = [];
  let n = 0;
  await waitFor(
    'a write acknowledged after the freeze',
    40_000,
    async () => {
      try {
        await client.put({ key: enc(`frozen/${n++}`), value: enc('x') });
        return true;
      } catch (err) {
        errors.push(errorText(err));
        return false;
      }
    },
    0,
  );
  const afterMs = Date.now() - frozenAt;
  t.log(
    `first write acknowledged ${afterMs} ms after the freeze; failures before: ${JSON.stringify(errors)}`,
  );
  // An election (if the frozen node led) takes 0.5-1 s here, plus one attempt that times out.
  t.true(afterMs < 8000, `writes resumed only ${afterMs} ms after the freeze (${errors.length} timed out)`);
});
