// berthctl run in the test's own process, its output captured: for tests of the CLI that need
// no separate process (no signals, no stdin).
import type { CtlIO } from '../../cmd/ctl/context.js';
import { run } from '../../cmd/ctl/program.js';

export async function ctlInProcess(
  argv: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CtlIO = {
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
    },
    readStdin: async () => new Uint8Array(),
    stderrIsTTY: false,
    onInterrupt: () => () => {},
  };
  const code = await run(argv, io);
  return { code, stdout, stderr };
}
