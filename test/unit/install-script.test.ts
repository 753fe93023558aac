// scripts/install.sh under a --prefix (no systemd, no apt, node_modules copied from this
// checkout and pruned, so it is offline and fast): the app lands in opt/berth with only the
// runtime dependencies, the relative command links work under the prefix, the config and
// data directories get their modes, the unit file is installed, and a second run upgrades in
// place without touching a modified berth.env or the contents of pki/ and the data dir.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SCRIPT = join(ROOT, 'scripts', 'install.sh');

/** Runs install.sh under `prefix` (asynchronously: the other tests keep running meanwhile). */
async function install(prefix: string): Promise<{ code: number; out: string }> {
  const args = [
    SCRIPT,
    '--prefix',
    prefix,
    '--no-systemd',
    '--skip-deps',
    '--no-build',
    '--node-modules-from',
    ROOT,
  ];
  try {
    const r = await promisify(execFile)('bash', args, { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    return { code: 0, out: `${r.stdout}${r.stderr}` };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const mode = (path: string) => statSync(path).mode & 0o777;

test('bash -n and shellcheck (when installed) accept the script', (t) => {
  t.notThrows(() => execFileSync('bash', ['-n', SCRIPT]));
  const which = spawnSync('bash', ['-c', 'command -v shellcheck'], { encoding: 'utf8' });
  if (which.status !== 0) {
    t.log('shellcheck is not installed; skipped');
    return;
  }
  const sc = spawnSync('shellcheck', [SCRIPT], { encoding: 'utf8' });
  t.is(sc.status, 0, sc.stdout + sc.stderr);
});

test('--help prints the usage and the options', (t) => {
  const out = execFileSync('bash', [SCRIPT, '--help'], { encoding: 'utf8' });
  t.regex(out, /^Usage: install\.sh/);
  for (const opt of [
    '--tarball',
    '--prefix',
    '--install-node',
    '--skip-deps',
    '--no-systemd',
    '--node-modules-from',
  ]) {
    t.true(out.includes(opt), opt);
  }
});

test('an unknown option is refused', (t) => {
  const r = spawnSync('bash', [SCRIPT, '--frobnicate'], { encoding: 'utf8' });
  t.not(r.status, 0);
  t.regex(r.stderr, /unknown option: --frobnicate/);
});

test('installs under a prefix, and a second run keeps berth.env, pki/ and the data dir', async (t) => {
  const prefix = mkdtempSync(join(tmpdir(), 'berth-install-test-'));
  t.teardown(() => rmSync(prefix, { recursive: true, force: true }));

  const first = await install(prefix);
  t.is(first.code, 0, first.out);

  // The program and only its runtime dependencies.
  const app = join(prefix, 'opt', 'berth');
  for (const f of [
    'dist/cmd/node/main.js',
    'dist/cmd/ctl/main.js',
    'bin/berth-node.js',
    'proto',
    'package.json',
    'package-lock.json',
    'examples/demo.yaml',
  ]) {
    t.true(existsSync(join(app, f)), f);
  }
  t.false(existsSync(join(app, 'dist', 'test')), 'no compiled tests');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  for (const dep of Object.keys(pkg.dependencies)) {
    t.true(existsSync(join(app, 'node_modules', dep, 'package.json')), `runtime dependency ${dep}`);
  }
  // (@types/node stays: a runtime dependency depends on it.)
  for (const dep of Object.keys(pkg.devDependencies).filter((d) => !d.startsWith('@types/'))) {
    t.false(existsSync(join(app, 'node_modules', dep)), `dev dependency ${dep} pruned`);
  }
  t.false(existsSync(join(prefix, 'opt', 'berth.new')), 'no staging dir left');

  // The commands: relative links that work under the prefix.
  for (const cmd of ['berth-node', 'berthctl']) {
    const link = join(prefix, 'usr', 'local', 'bin', cmd);
    t.true(lstatSync(link).isSymbolicLink(), cmd);
    const help = spawnSync(link, ['--help'], { encoding: 'utf8' });
    t.is(help.status, 0, help.stderr);
    t.regex(help.stdout, new RegExp(`^Usage: ${cmd} `));
  }

  // Configuration, secrets and data directories.
  const env = join(prefix, 'etc', 'berth', 'berth.env');
  t.is(mode(join(prefix, 'etc', 'berth')), 0o755);
  t.is(mode(env), 0o644);
  t.regex(readFileSync(env, 'utf8'), /^BERTH_NODE_ARGS="--name CHANGE-ME --address CHANGE-ME /m);
  t.is(mode(join(prefix, 'etc', 'berth', 'pki')), 0o700);
  t.is(mode(join(prefix, 'var', 'lib', 'berth')), 0o700);
  const unit = readFileSync(join(prefix, 'etc', 'systemd', 'system', 'berth.service'), 'utf8');
  t.regex(unit, /^ExecStart=\/usr\/local\/bin\/berth-node \$BERTH_NODE_ARGS$/m);
  t.regex(unit, /^EnvironmentFile=\/etc\/berth\/berth\.env$/m);

  // Second run: an upgrade in place.
  const edited =
    'BERTH_NODE_ARGS="--name n1 --address 10.0.0.1 --data-dir /var/lib/berth --pki-dir /etc/berth/pki"\n';
  writeFileSync(env, edited);
  writeFileSync(join(prefix, 'etc', 'berth', 'pki', 'ca.crt'), 'kept');
  writeFileSync(join(prefix, 'var', 'lib', 'berth', 'marker'), 'kept');
  writeFileSync(join(app, 'stale-file'), 'from the old version');

  const second = await install(prefix);
  t.is(second.code, 0, second.out);
  t.regex(second.out, /keeping the existing .*berth\.env/);
  t.is(readFileSync(env, 'utf8'), edited);
  t.is(readFileSync(join(prefix, 'etc', 'berth', 'pki', 'ca.crt'), 'utf8'), 'kept');
  t.is(readFileSync(join(prefix, 'var', 'lib', 'berth', 'marker'), 'utf8'), 'kept');
  t.false(existsSync(join(app, 'stale-file')), 'opt/berth is replaced, not merged');
  t.true(existsSync(join(app, 'dist', 'cmd', 'node', 'main.js')));
  const help = spawnSync(join(prefix, 'usr', 'local', 'bin', 'berth-node'), ['--help'], { encoding: 'utf8' });
  t.is(help.status, 0, help.stderr);
});
