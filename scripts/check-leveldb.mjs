// Does the native LevelDB binding (classic-level) work? npm 11 may skip dependencies' install
// scripts; classic-level ships prebuilt binaries, so it normally loads anyway: open a real
// database to be sure. Run with the working directory where node_modules is, as
//   node --input-type=module -e "$(cat scripts/check-leveldb.mjs)"
// (so the import resolves there: scripts/ensure-deps.sh and scripts/install.sh do).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { ClassicLevel } = await import('classic-level');
const dir = mkdtempSync(join(tmpdir(), 'berth-leveldb-check-'));
try {
  const db = new ClassicLevel(dir);
  await db.open();
  await db.put('k', 'v', { sync: true });
  if ((await db.get('k')) !== 'v') throw new Error('read back a different value');
  await db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
