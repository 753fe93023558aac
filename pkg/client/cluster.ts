// The client's cluster facet, for berthctl and operators: membership (etcd's Cluster service)
// and each endpoint's status (Maintenance.Status). Membership changes are writes (not retried
// unless provably not applied); listing is a read; status asks one endpoint, never another.

import type { StoreError } from '../store/errors.js';
import {
  headerFromWire,
  type MemberInfo,
  type MemberStatus,
  memberFromWire,
  statusFromWire,
  uint64String,
  type WireHeader,
  type WireMembersResponse,
  type WireStatusResponse,
} from '../store/grpc-mapping.js';
import type { ResponseHeader } from '../store/types.js';
import type { EndpointPool } from './connection.js';

export type { MemberInfo, MemberStatus } from '../store/grpc-mapping.js';

export interface MembersResponse {
  header: ResponseHeader;
  /** Every member after the change. */
  members: MemberInfo[];
}

export interface MemberAddResponse extends MembersResponse {
  /** The member just added. */
  member: MemberInfo;
}

export type StatusResponse = MemberStatus & { header: ResponseHeader };

/** One endpoint's answer to status, or why it gave none. */
export interface EndpointStatus {
  endpoint: string;
  status?: StatusResponse;
  error?: StoreError;
}

export interface ClusterClient {
  memberList(): Promise<MembersResponse>;
  /** Add a member by its peer URLs; `isLearner` adds it as a non-voting learner. */
  memberAdd(peerUrls: string[], options?: { isLearner?: boolean }): Promise<MemberAddResponse>;
  memberRemove(id: string): Promise<MembersResponse>;
  memberUpdate(id: string, peerUrls: string[]): Promise<MembersResponse>;
  /** Promote a learner that has caught up to a voting member. */
  memberPromote(id: string): Promise<MembersResponse>;
  /** The status of one endpoint (one of the client's), asked of that endpoint only. */
  status(endpoint: string): Promise<StatusResponse>;
  /** Every endpoint's status, in endpoint order; an endpoint that fails carries its error. */
  statusAll(): Promise<EndpointStatus[]>;
  /**
   * Hand Raft leadership to voting member `targetId`; resolves once the member that served
   * the call sees it lead. Berth accepts this on any member; etcd only on the leader (else
   * 'etcdserver: not leader'), so against etcd put the leader's endpoint first.
   */
  moveLeader(targetId: string): Promise<{ header: ResponseHeader }>;
}

function members(w: WireMembersResponse): MembersResponse {
  return { header: headerFromWire(w.header), members: (w.members ?? []).map(memberFromWire) };
}

export function createClusterClient(pool: EndpointPool): ClusterClient {
  const status = async (endpoint: string): Promise<StatusResponse> =>
    statusFromWire(await pool.callOn<object, WireStatusResponse>(endpoint, 'Maintenance', 'Status', {}));
  return {
    async memberList() {
      return members(await pool.call<object, WireMembersResponse>('Cluster', 'MemberList', {}, 'read'));
    },
    async memberAdd(peerUrls, options) {
      const w = await pool.call<object, WireMembersResponse>(
        'Cluster',
        'MemberAdd',
        { peerURLs: peerUrls, isLearner: options?.isLearner ?? false },
        'write',
      );
      return { ...members(w), member: memberFromWire(w.member ?? {}) };
    },
    async memberRemove(id) {
      const req = { ID: uint64String(id, 'member id') };
      return members(await pool.call<object, WireMembersResponse>('Cluster', 'MemberRemove', req, 'write'));
    },
    async memberUpdate(id, peerUrls) {
      const req = { ID: uint64String(id, 'member id'), peerURLs: peerUrls };
      return members(await pool.call<object, WireMembersResponse>('Cluster', 'MemberUpdate', req, 'write'));
    },
    async memberPromote(id) {
      const req = { ID: uint64String(id, 'member id') };
      return members(await pool.call<object, WireMembersResponse>('Cluster', 'MemberPromote', req, 'write'));
    },
    async moveLeader(targetId) {
      const req = { targetID: uint64String(targetId, 'target id') };
      const w = await pool.call<object, { header?: WireHeader }>('Maintenance', 'MoveLeader', req, 'write');
      return { header: headerFromWire(w.header) };
    },
    status,
    async statusAll() {
      return Promise.all(
        pool.endpoints.map(async ({ address }): Promise<EndpointStatus> => {
          try {
            return { endpoint: address, status: await status(address) };
          } catch (err) {
            return { endpoint: address, error: err as StoreError };
          }
        }),
      );
    },
  };
}
