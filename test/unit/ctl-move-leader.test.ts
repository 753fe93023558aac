// etcd's Maintenance.MoveLeader at the gRPC edge, as berthctl transfer-leader uses it: the
// request reaches ClusterInfo.moveLeader with the target's id; without that hook the server
// answers UNIMPLEMENTED; a refusal keeps its code and message.
import * as grpc from '@grpc/grpc-js';
import test, { type ExecutionContext } from 'ava';
import { createClient } from '../../pkg/client/client.js';
import { GrpcCode, StoreError, StoreErrorCode } from '../../pkg/store/errors.js';
import { addKvServices, type ClusterInfo, kvServerOptions } from '../../pkg/store/grpc-server.js';
import { createLocalStore } from '../../pkg/store/local-store.js';

const base: ClusterInfo = {
  clusterId: '7',
  memberId: '1',
  raftTerm: () => 3,
  leader: () => '1',
  members: () => [],
  addMember: () => Promise.reject(new Error('not in this test')),
  removeMember: () => Promise.reject(new Error('not in this test')),
  promoteMember: () => Promise.reject(new Error('not in this test')),
  status: () => ({ version: 'test', dbSize: 0, leader: '1', raftIndex: 0, raftTerm: 3, raftAppliedIndex: 0 }),
};

async function serve(t: ExecutionContext, cluster: ClusterInfo) {
  const kv = createLocalStore();
  const server = new grpc.Server(kvServerOptions());
  addKvServices(server, { kv, cluster });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const client = createClient({ endpoints: [`127.0.0.1:${port}`] });
  t.teardown(async () => {
    await client.close();
    server.forceShutdown();
    await kv.close();
  });
  return client;
}

test('MoveLeader reaches ClusterInfo.moveLeader with the target id, full 64 bits', async (t) => {
  const targets: string[] = [];
  const client = await serve(t, {
    ...base,
    moveLeader: async (id) => {
      targets.push(id);
    },
  });
  const res = await client.cluster.moveLeader('18446744073709551615');
  t.deepEqual(targets, ['18446744073709551615']);
  t.is(res.header.clusterId, '7');
  t.is(res.header.memberId, '1');
});

test('a refusal keeps its code and message', async (t) => {
  const client = await serve(t, {
    ...base,
    moveLeader: () =>
      Promise.reject(
        new StoreError(
          StoreErrorCode.InvalidArgument,
          GrpcCode.FailedPrecondition,
          'etcdserver: target is not a voting member',
        ),
      ),
  });
  const err = await t.throwsAsync(client.cluster.moveLeader('5'), { instanceOf: StoreError });
  t.is(err?.message, 'etcdserver: target is not a voting member');
  t.is(err?.grpc, GrpcCode.FailedPrecondition);
});

test('without ClusterInfo.moveLeader, MoveLeader is UNIMPLEMENTED', async (t) => {
  const client = await serve(t, base);
  const err = await t.throwsAsync(client.cluster.moveLeader('5'), { instanceOf: StoreError });
  t.is(err?.message, 'berth: move leader is not supported');
  t.is((err?.cause as { code?: number } | undefined)?.code, grpc.status.UNIMPLEMENTED);
});
