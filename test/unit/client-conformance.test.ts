// The store's conformance suite (test/conformance/kv-conformance.ts) through Berth's client:
// once against Berth's gRPC server over a local store (the whole wire path: client mapping,
// protos, server mapping, error catalogue), and once against a real etcd 3.4, which proves
// the hand-written protos speak etcd's protocol.

import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { createClient } from '../../pkg/client/client.js';
import { addKvServices, type ClusterInfo, kvServerOptions } from '../../pkg/store/grpc-server.js';
import { createLocalStore } from '../../pkg/store/local-store.js';
import { kvConformance } from '../conformance/kv-conformance.js';
import { type EtcdCluster, etcdVersion, startEtcdCluster } from '../support/etcd-cluster.js';

const cluster: ClusterInfo = {
  clusterId: '1',
  memberId: '1',
  raftTerm: () => 1,
  leader: () => '1',
  members: () => [{ id: '1', name: 'n1', peerUrls: [], clientUrls: [], isLearner: false }],
  addMember: () => Promise.reject(new Error('not in this test')),
  removeMember: () => Promise.reject(new Error('not in this test')),
  promoteMember: () => Promise.reject(new Error('not in this test')),
  status: () => ({ version: 'test', dbSize: 0, leader: '1', raftIndex: 0, raftTerm: 1, raftAppliedIndex: 0 }),
};

const store = createLocalStore();
const server = new grpc.Server(kvServerOptions());
addKvServices(server, { kv: store, cluster });
let address: string | undefined;
let etcd: EtcdCluster | undefined;

test.before(async () => {
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  address = `127.0.0.1:${port}`;
  if (etcdVersion() !== undefined) etcd = await startEtcdCluster({ size: 1, baseAddress: '127.0.10.31' });
});

test.after.always(async () => {
  server.forceShutdown();
  await store.close();
  await etcd?.stop();
});

kvConformance(test, 'client→berth', async () => {
  const kv = createClient({ endpoints: [address as string] });
  return { kv, cleanup: () => kv.close() };
});

kvConformance(test, 'client→etcd', async () => {
  if (!etcd) {
    throw new Error('no etcd binary: install etcd 3.4 with `bash scripts/ensure-etcd.sh` (as root)');
  }
  const kv = createClient({ endpoints: etcd.endpoints });
  return { kv, cleanup: () => kv.close() };
});
