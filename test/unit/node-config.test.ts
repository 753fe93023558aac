import test from 'ava';
import { clusterIdOf, memberId, NodeConfigError, parseNodeArgs } from '../../cmd/node/config.js';

const three = 'n1=127.0.0.1:2380,n2=127.0.0.2:2380,n3=127.0.0.3:2380';

test('one --address gives etcd-like defaults for all four addresses', (t) => {
  const cfg = parseNodeArgs(['--name', 'n2', '--address', '127.0.0.2', '--initial-cluster', three]);
  t.is(cfg.peerListen, '127.0.0.2:2380');
  t.is(cfg.peerAdvertise, '127.0.0.2:2380');
  t.is(cfg.clientListen, '127.0.0.2:2379');
  t.is(cfg.clientAdvertise, '127.0.0.2:2379');
  t.is(cfg.dataDir, './n2.berth');
  t.is(cfg.initialCluster?.length, 3);
  t.is(cfg.id, memberId('n2', 'berth'));
  t.is(cfg.tickMs, 100);
  t.is(cfg.hpaSyncPeriodMs, 15_000);
  t.is(parseNodeArgs(['--name', 'n1', '--hpa-sync-period', '2']).hpaSyncPeriodMs, 2000);
});

test('member ids are stable, distinct per name and per cluster token, and safe integers', (t) => {
  t.is(memberId('n1', 'berth'), memberId('n1', 'berth'));
  t.not(memberId('n1', 'berth'), memberId('n2', 'berth'));
  t.not(memberId('n1', 'berth'), memberId('n1', 'other'));
  for (const name of ['a', 'n1', 'node-with-a-long-name']) {
    const id = memberId(name, 'berth');
    t.true(Number.isSafeInteger(id) && id > 0);
  }
});

test('the cluster id does not depend on the order members are listed in', (t) => {
  const a = [
    { name: 'n1', peerAddress: '127.0.0.1:2380' },
    { name: 'n2', peerAddress: '127.0.0.2:2380' },
  ];
  t.is(clusterIdOf('berth', a), clusterIdOf('berth', [...a].reverse()));
  t.not(clusterIdOf('berth', a), clusterIdOf('other', a));
});

test('mistakes get an error naming the flag', (t) => {
  const bad: [string[], RegExp][] = [
    [['--address', '127.0.0.1'], /--name/],
    [['--name', 'N_1'], /--name/],
    [['--name', 'n1', '--initial-cluster', 'n2=127.0.0.2:2380'], /does not list this node/],
    [['--name', 'n1', '--initial-cluster', 'n1=127.0.0.9:2380'], /advertises 127\.0\.0\.1:2380/],
    [
      ['--name', 'n1', '--initial-cluster', three, '--join', '127.0.0.2:2379'],
      /either --initial-cluster or --join/,
    ],
    [['--name', 'n1', '--listen-peer', '127.0.0.1:99999'], /--listen-peer: port 99999/],
    [['--name', 'n1', '--initial-cluster', 'n1=127.0.0.1:2380,n1=127.0.0.2:2380'], /appears twice/],
    [['--name', 'n1', '--tick-ms', 'soon'], /--tick-ms must be a positive integer/],
    [['--name', 'n1', '--log-level', 'loud'], /--log-level/],
    [['--name', 'n1', '--hpa-sync-period', '0'], /--hpa-sync-period must be a positive integer/],
    [['--name', 'n1', '--bogus'], /unknown option '--bogus'/],
  ];
  for (const [argv, re] of bad) {
    const err = t.throws(() => parseNodeArgs(argv), { instanceOf: NodeConfigError }, argv.join(' '));
    t.regex(err?.message ?? '', re, argv.join(' '));
  }
});

test('--join takes several addresses and defaults the client port', (t) => {
  const cfg = parseNodeArgs(['--name', 'n4', '--address', '127.0.0.4', '--join', '127.0.0.1,127.0.0.2:2379']);
  t.deepEqual(cfg.join, ['127.0.0.1:2379', '127.0.0.2:2379']);
  t.is(cfg.initialCluster, undefined);
});
