// The processes `npm run bench -- proxy` starts (backends, Berth's proxy, HAProxy, wrk) and the
// temporary directory it writes HAProxy's config to, in one place, so that every way out (the
// normal end, an error, Ctrl-C) ends them.
//
// Ownership: a ProcessGroup ends only the processes it spawned itself, by pid, and removes only
// the directory it created. On SIGINT/SIGTERM and at process exit it works synchronously
// (SIGKILL, rmSync): cli.ts exits right after its own signal handler.
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './stats.js';

/** Characters of a child's stderr kept for error messages. */
const STDERR_TAIL = 4000;

export interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly name: string;
  /** Resolves once the process has exited (with its code, or null after a signal). */
  readonly exited: Promise<number | null>;
  /** The last few thousand characters it wrote to stderr. */
  stderrTail(): string;
}

export class ProcessGroup {
  private readonly live = new Set<Child>();
  private dir: string | undefined;
  private readonly onSignal = () => this.killAllSync();
  private readonly onExit = () => this.killAllSync();

  /** Start ending everything on SIGINT, SIGTERM and process exit; undone by close(). */
  constructor() {
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
    process.once('exit', this.onExit);
  }

  /** A temporary directory of this group's own (made on first use, removed by close()). */
  tempDir(): string {
    this.dir ??= mkdtempSync(join(tmpdir(), 'berth-bench-proxy-'));
    return this.dir;
  }

  /** Spawn `command`; stdin is a pipe (children that watch it exit when the bench is gone). */
  spawn(name: string, command: string, args: readonly string[], opts: SpawnOptions = {}): Child {
    const proc = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
    if (proc.pid === undefined) {
      // spawn reports ENOENT and the like asynchronously; swallow it here, the throw says it.
      proc.once('error', () => undefined);
      throw new Error(`could not start ${name} (${command}): is it installed?`);
    }
    let tail = '';
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (chunk: string) => {
      tail = (tail + chunk).slice(-STDERR_TAIL);
    });
    const exited = new Promise<number | null>((resolve) => {
      proc.once('exit', (code) => resolve(code));
    });
    const child: Child = { proc, pid: proc.pid, name, exited, stderrTail: () => tail };
    this.live.add(child);
    void exited.then(() => this.live.delete(child));
    return child;
  }

  /** SIGTERM `child` by its pid, SIGKILL after `graceMs`, and wait until it has exited. */
  async stop(child: Child, graceMs = 2000): Promise<void> {
    if (!this.live.has(child)) return;
    child.proc.stdin?.end();
    signal(child.pid, 'SIGTERM');
    const timer = setTimeout(() => signal(child.pid, 'SIGKILL'), graceMs);
    await child.exited;
    clearTimeout(timer);
  }

  /** Stop every child still running, remove the temp dir, stop watching for signals. */
  async close(): Promise<void> {
    await Promise.all([...this.live].map((c) => this.stop(c)));
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    process.off('exit', this.onExit);
  }

  private killAllSync(): void {
    for (const c of this.live) signal(c.pid, 'SIGKILL');
    this.live.clear();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** The first line `child` writes on stdout; rejects if it exits or stays silent for `timeoutMs`. */
export function firstLine(child: Child, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const out = child.proc.stdout;
    const done = (err: Error | undefined, line?: string) => {
      clearTimeout(timer);
      out?.off('data', onData);
      if (err) reject(err);
      else resolve(line ?? '');
    };
    const onData = (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(undefined, buf.slice(0, nl));
    };
    const timer = setTimeout(
      () => done(new Error(`${child.name} said nothing within ${timeoutMs} ms: ${child.stderrTail()}`)),
      timeoutMs,
    );
    out?.on('data', onData);
    void child.exited.then((code) =>
      done(new Error(`${child.name} exited (code ${code}) before it was ready: ${child.stderrTail()}`)),
    );
  });
}

/** Wait until `host:port` accepts a TCP connection (or `child` exits, or `timeoutMs` passes). */
export async function waitListening(
  child: Child,
  host: string,
  port: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void child.exited.then(() => {
    gone = true;
  });
  while (Date.now() < deadline) {
    if (gone) throw new Error(`${child.name} exited before it listened: ${child.stderrTail()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(
    `${child.name} did not listen on ${host}:${port} within ${timeoutMs} ms: ${child.stderrTail()}`,
  );
}
