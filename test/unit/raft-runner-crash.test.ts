import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const child = fileURLToPath(new URL('./fixtures/raft-crash-child.js', import.meta.url));

/** Run the child; with `killAfterAcks`, SIGKILL it once that many writes were acknowledged. */
function runChild(
  mode: 'write' | 'verify',
  root: string,
  killAfterAcks?: number,
  round = 'r',
): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, mode, root, round], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: string[] = [];
    let buf = '';
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`child ${mode} did not finish in time; output: ${lines.slice(-3).join(' | ')}`));
    }, 60_000);
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      lines.push(...parts);
      if (killAfterAcks !== undefined && lines.length >= killAfterAcks) p.kill('SIGKILL');
    });
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (mode === 'write' && signal === 'SIGKILL') resolve(lines);
      else if (mode === 'verify' && code === 0) resolve(lines);
      else reject(new Error(`child ${mode} exited with ${code ?? signal}`));
    });
  });
}

// A killed process keeps what it wrote to the OS, so this proves recovery from the log and
// snapshots on disk after a crash at any moment; losing unsynced writes (power loss) is the
// simulation's job (test/sim, where --bug send-before-sync is caught).
test('after SIGKILL mid-write, a restarted cluster holds every acknowledged write, in order', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'berth-raft-crash-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const acked: string[] = [];
  // Two crash rounds: the second restarts from a log that already survived one crash.
  for (const [round, killAfter] of [
    ['a', 150],
    ['b', 120],
  ] as const) {
    const lines = await runChild('write', root, killAfter, round);
    acked.push(...lines.filter((l) => l.startsWith('acked ')).map((l) => l.slice(6)));
  }
  t.true(acked.length >= 270, `only ${acked.length} writes were acknowledged`);
  const out = await runChild('verify', root);
  const perNode = JSON.parse(out[out.length - 1] as string) as string[][];
  t.is(perNode.length, 3);
  const first = perNode[0] as string[];
  for (const values of perNode) t.deepEqual(values, first, 'every node applied the same sequence');
  const position = new Map(first.map((v, i) => [v, i]));
  let last = -1;
  for (const v of acked) {
    const at = position.get(v);
    t.not(at, undefined, `acknowledged write ${v} was lost`);
    // Writes were acknowledged one after another, so they must be applied in that order.
    t.true((at ?? -1) > last, `acknowledged write ${v} is out of order`);
    last = at ?? last;
  }
});
