// A follower is down (SIGKILL) while the cluster takes thousands of writes and compacts its
// log past the follower's last entry. Restarted, the follower can only catch up by installing
// a snapshot from the leader; once it has, it serves exactly the leader's state (same store
// revision, same per-key revisions) to serializable reads.
import test from 'ava';
import { enc, errorText, TestCluster, waitFor } from './support-cluster.js';

const PREFIX = 'snap/';
// The node keeps 5000 entries behind each snapshot for slow followers (catchUpEntries, not a
// flag): the leader must get well past that before the follower's next entry is gone.
const WRITES = 6500;
const KEYS = 4000;
const CONCURRENCY = 64;

test('a follower that missed thousands of writes catches up by snapshot, to the same revisions', async (t) => {
  const tc = await TestCluster.start(t, { size: 3, snapshotEntries: 500 });
  const leader = await tc.waitForLeader();
  const follower = tc.all().find((i) => i !== leader) as number;
  const others = tc.all().filter((i) => i !== follower);
  await tc.cluster.kill(follower);
  const downAt = Date.now();

  // Keys are overwritten (WRITES > KEYS), so mod revisions differ from create revisions.
  const client = tc.client({ nodes: others, requestTimeoutMs: 10_000 });
  let next = 0;
  const failures: string[] = [];
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < WRITES) {
        const n = next++;
        try {
          await client.put({ key: enc(`${PREFIX}${n % KEYS}`), value: enc(`v${n}`) });
        } catch (err) {
          failures.push(errorText(err));
        }
      }
    }),
  );
  t.log(`${WRITES} writes in ${Date.now() - downAt} ms with n${follower + 1} down`);
  t.deepEqual(failures, [], 'no write fails while a majority is up');
  const compacted = await tc.logOf(leader);
  t.regex(compacted, /"msg":"took a snapshot"/, 'the leader took a snapshot');

  await tc.cluster.start(follower);
  const caughtUpAt = Date.now();
  const state = await tc.waitConverged(tc.all(), 60_000);
  t.log(`n${follower + 1} caught up in ${Date.now() - caughtUpAt} ms: revision ${state.revision}`);
  t.is(state.kvs.filter((kv) => kv.key.startsWith(PREFIX)).length, KEYS);

  // Compare the follower's serializable view with the leader's key by key (waitConverged
  // compared them already; this says what differs should it ever not).
  // The node itself may write (its member record) between two dumps: compare a pair taken at
  // one revision.
  const [mine, theirs] = await waitFor('dumps at one revision', 10_000, async () => {
    const pair = await Promise.all([tc.dump(follower), tc.dump(await tc.waitForLeader())]);
    return pair[0].revision === pair[1].revision ? pair : undefined;
  });
  t.deepEqual(mine.kvs, theirs.kvs);

  const log = await tc.logOf(follower);
  t.regex(log, /restored a snapshot from the leader/, `n${follower + 1} installed a snapshot`);

  // Raft agrees too: the follower has applied as far as the leader.
  const [f, l] = await waitFor('equal applied indexes', 10_000, async () => {
    const s = await Promise.all([tc.status(follower), tc.status(leader)]);
    return s[0] && s[1] && s[0].raftAppliedIndex === s[1].raftAppliedIndex ? s : undefined;
  });
  t.is(f?.raftAppliedIndex, l?.raftAppliedIndex);
});
