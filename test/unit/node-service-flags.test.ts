// berth-node's Service flags (cmd/node/service-flags.ts): defaults, values, and mistakes
// reported as NodeConfigError naming the flag.
import test from 'ava';
import { Command } from 'commander';
import { NodeConfigError } from '../../cmd/node/config.js';
import { addServiceFlags, type RawServiceFlags, toServiceConfig } from '../../cmd/node/service-flags.js';

function parse(argv: string[]) {
  const cmd = addServiceFlags(new Command('berth-node')).exitOverride();
  cmd.parse(argv, { from: 'user' });
  return toServiceConfig(cmd.opts<RawServiceFlags>());
}

test('defaults, and values as given', (t) => {
  t.deepEqual(parse([]), { serviceCIDR: '127.96.0.0/16', nodePortRange: [30000, 32767] });
  t.deepEqual(parse(['--service-cidr', '10.96.0.0/12', '--service-node-port-range', '31000-31999']), {
    serviceCIDR: '10.96.0.0/12',
    nodePortRange: [31000, 31999],
  });
});

test('the help says every node must agree', (t) => {
  const help = addServiceFlags(new Command('berth-node')).helpInformation().replace(/\s+/g, ' ');
  t.regex(help, /--service-cidr <cidr> [^-]*every node of a cluster must use the same value/);
  t.regex(help, /--service-node-port-range <min-max> [^-]*every node of a cluster must use the same value/);
});

test('mistakes name the flag', (t) => {
  const bad: [string[], RegExp][] = [
    [['--service-cidr', '10.96.0.0'], /^--service-cidr: "10\.96\.0\.0" is not an IPv4 CIDR/],
    [['--service-cidr', '10.96.0.300/16'], /^--service-cidr: .* is not an IPv4 CIDR/],
    [['--service-cidr', '10.0.0.0/8'], /^--service-cidr: .*too large/],
    [['--service-cidr', '10.96.0.1/16'], /^--service-cidr: .*did you mean 10\.96\.0\.0\/16\?/],
    [['--service-cidr', 'fd00::/108'], /^--service-cidr: .*only IPv4/],
    [['--service-node-port-range', '30000'], /^--service-node-port-range: "30000" is not min-max/],
    [['--service-node-port-range', '0-100'], /^--service-node-port-range: 0-100 is not within 1-65535/],
    [['--service-node-port-range', '30000-70000'], /^--service-node-port-range: .*not within 1-65535/],
    [['--service-node-port-range', '32000-31000'], /^--service-node-port-range: .*above the last/],
  ];
  for (const [argv, re] of bad) {
    const err = t.throws(() => parse(argv), { instanceOf: NodeConfigError }, argv.join(' '));
    t.regex(err?.message ?? '', re, argv.join(' '));
  }
});
