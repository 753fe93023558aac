// berthctl's command line, run in-process with captured streams: help, usage errors (exit 2
// with commander's message and a pointer to --help), and failures without a stack (exit 1).
import test from 'ava';
import type { Command } from 'commander';
import type { CtlIO } from '../../cmd/ctl/context.js';
import { buildProgram } from '../../cmd/ctl/program.js';
import { ctlInProcess } from '../support/ctl-in-process.js';

function silentIO(): CtlIO {
  return {
    stdout: () => {},
    stderr: () => {},
    readStdin: async () => new Uint8Array(),
    stderrIsTTY: false,
    onInterrupt: () => () => {},
  };
}

const ctl = ctlInProcess;

test('--help works on every command and shows examples and the global flags', async (t) => {
  // Every command path in the tree, so a new command without examples fails here.
  const paths: string[][] = [[]];
  const walk = (cmd: Command, path: string[]) => {
    for (const sub of cmd.commands) {
      paths.push([...path, sub.name()]);
      walk(sub, [...path, sub.name()]);
    }
  };
  walk(buildProgram(silentIO()), []);
  t.true(paths.length > 30, `found ${paths.length} commands`);
  for (const path of paths) {
    const argv = [...path, '--help'];
    const r = await ctl(argv);
    t.is(r.code, 0, argv.join(' '));
    t.regex(r.stdout, /Examples:\n {2}berthctl /, argv.join(' '));
    t.regex(r.stdout, /--endpoints <list>/, argv.join(' '));
  }
});

test('usage errors exit 2 with the message and where to look', async (t) => {
  const cases: [string[], RegExp][] = [
    [
      ['kv', 'get'],
      /^berthctl: missing required argument 'key'\nRun 'berthctl kv get --help' for usage\.\n$/,
    ],
    [
      ['kv', 'gett', 'x'],
      /^berthctl: unknown command 'gett'\n\(Did you mean get\?\)\nRun 'berthctl kv --help'/,
    ],
    [
      ['-o', 'xml', 'member', 'list'],
      /argument 'xml' is invalid\. Allowed choices are table, json, yaml, wide, name/,
    ],
    [['kv', 'get', 'x', '--timeout', 'soon'], /"soon" is not a duration/],
    [['kv', 'get', 'x', '--rev', '-3'], /"-3" is not a whole number/],
    [['member', 'add', 'n4'], /required option '--peer-url <host:port>' not specified/],
    [['kv', 'put', '', 'v'], /^berthctl: the key must not be empty.*\nRun 'berthctl --help' for usage\.\n$/],
    [['--endpoints', 'nohost', 'kv', 'get', 'x'], /nohost is not host:port/],
  ];
  for (const [argv, re] of cases) {
    const r = await ctl(argv);
    t.is(r.code, 2, argv.join(' '));
    t.regex(r.stderr, re, argv.join(' '));
    t.is(r.stdout, '');
  }
});

test('a command group without its subcommand prints the group help and exits 2', async (t) => {
  const r = await ctl(['member']);
  t.is(r.code, 2);
  t.regex(r.stderr, /Usage: berthctl member/);
});

test('nothing listening: one line naming the endpoints, exit 1', async (t) => {
  // Port 1 on loopback: nothing listens there, the connection is refused at once.
  const r = await ctl(['--endpoints', '127.0.0.1:1', 'kv', 'get', 'x']);
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.regex(
    r.stderr,
    /^berthctl: no connection to 127\.0\.0\.1:1: .*; is the cluster up\? tried: 127\.0\.0\.1:1\n$/,
  );
});
