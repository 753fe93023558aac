// Membership and status as the etcd Cluster and Maintenance services show them. Raft knows
// members by id and peer address; names and client addresses are published by each member
// under /berth/members/<id> in the store itself (visible to etcdctl, replicated like any key).
import { randomBytes } from 'node:crypto';
import { DropReason, ProposalDroppedError } from '../../pkg/raft/errors.js';
import { GrpcCode, invalidArgument, StoreError, StoreErrorCode } from '../../pkg/store/errors.js';
import type { MemberInfo, MemberStatus } from '../../pkg/store/grpc-mapping.js';
import type { ClusterInfo } from '../../pkg/store/grpc-server.js';
import { type ReplicatedStore, storeErrorFromRaft } from '../../pkg/store/replicated-store.js';
import { prefixEnd } from '../../pkg/store/types.js';

export const MEMBER_PREFIX = '/berth/members/';
export const SERVER_VERSION = '3.4.0';

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface MemberRecord {
  name: string;
  peerUrls: string[];
  clientUrls: string[];
}

export function memberKey(id: number): Uint8Array {
  return enc.encode(`${MEMBER_PREFIX}${id}`);
}

/** Accept "host:port" or "http://host:port"; Berth peers speak gRPC on host:port. */
export function peerAddressOf(url: string): string {
  return url.replace(/^https?:\/\//, '').replace(/\/$/, '');
}

const failedPrecondition = (msg: string) =>
  new StoreError(StoreErrorCode.InvalidArgument, GrpcCode.FailedPrecondition, msg);

export function createClusterInfo(store: ReplicatedStore, clusterId: string, selfId: number): ClusterInfo {
  const raft = () => store.raft;
  const conf = () => raft().status().appliedConfState;

  const registry = async (): Promise<Map<number, MemberRecord>> => {
    const prefix = enc.encode(MEMBER_PREFIX);
    const r = await store.range({ key: prefix, rangeEnd: prefixEnd(prefix), serializable: true });
    const out = new Map<number, MemberRecord>();
    for (const kv of r.kvs) {
      const id = Number(dec.decode(kv.key).slice(MEMBER_PREFIX.length));
      try {
        out.set(id, JSON.parse(dec.decode(kv.value)) as MemberRecord);
      } catch {
        // A hand-edited record: show the member without its details.
      }
    }
    return out;
  };

  const mustBeMember = (id: string): number => {
    const n = Number(id);
    const { voters, learners } = conf();
    if (!Number.isSafeInteger(n) || (!voters.includes(n) && !learners.includes(n))) {
      throw new StoreError(StoreErrorCode.InvalidArgument, GrpcCode.NotFound, 'etcdserver: member not found');
    }
    return n;
  };

  const raftCall = async (p: () => Promise<void>): Promise<void> => {
    try {
      await p();
    } catch (err) {
      if (err instanceof ProposalDroppedError && err.reason === DropReason.LearnerNotReady) {
        throw failedPrecondition(
          'etcdserver: can only promote a learner member which is in sync with leader',
        );
      }
      if (err instanceof ProposalDroppedError && err.reason === DropReason.ConfChangePending) {
        throw failedPrecondition('etcdserver: another membership change is in progress; retry');
      }
      throw storeErrorFromRaft(err);
    }
  };

  return {
    clusterId,
    memberId: String(selfId),
    raftTerm: () => raft().status().term,
    leader: () => String(raft().status().leader),

    async members(): Promise<MemberInfo[]> {
      const { voters, learners } = conf();
      const reg = await registry();
      return [...voters, ...learners].map((id) => ({
        id: String(id),
        name: reg.get(id)?.name ?? '',
        peerUrls: reg.get(id)?.peerUrls ?? [],
        clientUrls: reg.get(id)?.clientUrls ?? [],
        isLearner: learners.includes(id),
      }));
    },

    /** Every new member starts as a learner and promotes itself once it has caught up. */
    async addMember(peerUrls: string[]): Promise<MemberInfo> {
      if (peerUrls.length !== 1) throw invalidArgument('a member needs exactly one peer URL');
      const address = peerAddressOf(peerUrls[0] as string);
      const reg = await registry();
      for (const r of reg.values()) {
        if (r.peerUrls.map(peerAddressOf).includes(address)) {
          throw failedPrecondition('etcdserver: Peer URLs already exists');
        }
      }
      const id = randomBytes(6).readUIntBE(0, 6) || 1;
      await raftCall(() => raft().addLearner(id, address));
      const record: MemberRecord = { name: '', peerUrls: [address], clientUrls: [] };
      await store.put({ key: memberKey(id), value: enc.encode(JSON.stringify(record)) });
      return { id: String(id), ...record, isLearner: true };
    },

    async removeMember(id: string): Promise<void> {
      const n = mustBeMember(id);
      const { voters } = conf();
      if (voters.length === 1 && voters[0] === n) {
        throw failedPrecondition(
          'etcdserver: cannot remove the last voting member; the cluster would be gone',
        );
      }
      // The record goes first: once the member (perhaps the leader) is gone, a write may
      // have to wait for a new leader. If the removal fails, the record comes back.
      const record = await store.range({ key: memberKey(n) });
      await store.deleteRange({ key: memberKey(n) });
      try {
        await raftCall(() => raft().removeMember(n));
      } catch (err) {
        const kv = record.kvs[0];
        if (kv) await store.put({ key: kv.key, value: kv.value }).catch(() => undefined);
        throw err;
      }
    },

    async promoteMember(id: string): Promise<void> {
      const n = mustBeMember(id);
      if (!conf().learners.includes(n))
        throw failedPrecondition('etcdserver: can only promote a learner member');
      await raftCall(() => raft().promote(n));
    },

    /**
     * Unlike etcd, any member accepts this, not only the leader: a follower's Raft forwards
     * the transfer request to the leader it knows (none known: it times out).
     */
    async moveLeader(targetId: string): Promise<void> {
      const n = Number(targetId);
      if (!Number.isSafeInteger(n) || !conf().voters.includes(n)) {
        throw failedPrecondition('etcdserver: target is not a voting member');
      }
      await raftCall(() => raft().transferLeadership(n));
    },

    status(): MemberStatus {
      const st = raft().status();
      return {
        version: SERVER_VERSION,
        dbSize: 0,
        leader: String(st.leader),
        raftIndex: st.commit,
        raftTerm: st.term,
        raftAppliedIndex: st.applied,
        isLearner: st.appliedConfState.learners.includes(selfId),
      };
    },
  };
}
