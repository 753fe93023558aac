// Membership/Leave on the client port: `berth-node leave` takes its own member out. The
// member is the one named by the caller's node certificate (system:node:<name>), so a node
// can remove no one else; people use `berthctl member remove` (admins only).

import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { certificateInfo, identityFromCertificate } from '../pki/index.js';
import type { MemberInfo } from '../store/grpc-mapping.js';
import { membershipService } from './protos.js';

export interface MembershipServiceDeps {
  members(): Promise<MemberInfo[]>;
  removeMember(id: string): Promise<void>;
  logger: Logger;
}

export function addMembershipService(server: grpc.Server, deps: MembershipServiceDeps): void {
  server.addService(membershipService(), {
    Leave: (
      call: grpc.ServerUnaryCall<object, { member_id: string }>,
      cb: grpc.sendUnaryData<{ member_id: string }>,
    ) => {
      const peer = call.getAuthContext().sslPeerCertificate;
      const who = peer
        ? identityFromCertificate(certificateInfo(new X509Certificate(peer.raw).toString()))
        : undefined;
      if (who?.kind !== 'node') {
        cb({
          code: grpc.status.PERMISSION_DENIED,
          details: 'only a node may leave, with its own certificate',
        });
        return;
      }
      const name = who.nodeName;
      deps
        .members()
        .then(async (members) => {
          const me = members.find((m) => m.name === name);
          if (!me) {
            cb({ code: grpc.status.NOT_FOUND, details: `no member named ${name}` });
            return;
          }
          await deps.removeMember(me.id);
          const memberId = BigInt(me.id).toString(16).padStart(12, '0');
          deps.logger.info({ name, member: memberId }, 'a member left the cluster');
          cb(null, { member_id: memberId });
        })
        .catch((err: Error & { grpc?: number }) =>
          cb({ code: err.grpc ?? grpc.status.UNAVAILABLE, details: err.message }),
        );
    },
  });
}
