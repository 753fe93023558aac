// The cluster's Certificates service (proto/security.proto), as berthctl calls it: Issue goes
// to each endpoint in turn with the context's credentials, since only voters hold the CA key
// (a worker answers UNAVAILABLE) and a member may be down.
import * as grpc from '@grpc/grpc-js';
import { unary } from '../../pkg/rpc/unary.js';
import { type CertificateReply, certificatesService, method } from '../../pkg/security/protos.js';
import { CtlError } from './errors.js';

export type UserRole = 'admin' | 'readonly';

export interface IssueRequest {
  name: string;
  role: UserRole;
  csr_pem: string;
  /** 0: the cluster's default. */
  valid_days: number;
}

export interface IssueOptions {
  endpoints: readonly string[];
  credentials: grpc.ChannelCredentials;
  timeoutMs: number;
}

/** Codes after which the next endpoint may do better; any other answer is the cluster's. */
const TRY_NEXT = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);

function issueOn(target: string, req: IssueRequest, o: IssueOptions): Promise<CertificateReply> {
  const m = method(certificatesService(), 'Issue');
  const client = new grpc.Client(target, o.credentials);
  return unary<CertificateReply>(client, m, req, o.timeoutMs).finally(() => client.close());
}

/** A certificate for `req` from the first endpoint that can sign; CtlError when none can. */
export async function issueUserCertificate(req: IssueRequest, o: IssueOptions): Promise<CertificateReply> {
  const tried: string[] = [];
  for (const target of o.endpoints) {
    try {
      return await issueOn(target, req, o);
    } catch (err) {
      const e = err as grpc.ServiceError;
      if (!TRY_NEXT.has(e.code))
        throw new CtlError(`${target} refused to issue the certificate: ${e.details ?? e.message}`);
      tried.push(`${target}: ${e.details ?? e.message}`);
    }
  }
  throw new CtlError(`no member could issue the certificate (tried ${tried.join('; ')})`);
}
