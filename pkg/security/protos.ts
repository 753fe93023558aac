// proto/security.proto, loaded once per process (Join and Certificates services).
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoDir } from '../rpc/proto-path.js';

let definition: protoLoader.PackageDefinition | undefined;

function protos(): protoLoader.PackageDefinition {
  definition ??= protoLoader.loadSync('security.proto', {
    keepCase: true,
    longs: Number,
    defaults: true,
    includeDirs: [protoDir()],
  });
  return definition;
}

export const joinService = (): grpc.ServiceDefinition =>
  protos()['berth.security.v1.Join'] as unknown as grpc.ServiceDefinition;

export const membershipService = (): grpc.ServiceDefinition =>
  protos()['berth.security.v1.Membership'] as unknown as grpc.ServiceDefinition;

export const certificatesService = (): grpc.ServiceDefinition =>
  protos()['berth.security.v1.Certificates'] as unknown as grpc.ServiceDefinition;

/** Path of a method, as grpc.Client.makeUnaryRequest wants it, with its (de)serializers. */
export function method(service: grpc.ServiceDefinition, name: string) {
  const m = service[name];
  if (!m) throw new Error(`no method ${name}`);
  return m as grpc.MethodDefinition<object, Record<string, unknown>>;
}

export interface JoinRequest {
  token_id: string;
  token_secret: string;
  name: string;
  csr_pem: string;
  peer_url: string;
}

export interface JoinReply {
  ca_cert_pem: string;
  cert_pem: string;
  ca_key_pem: string;
  encryption_keyring: string;
  role: string;
  client_urls: string[];
  cluster_id: string;
}

export interface CertificateReply {
  cert_pem: string;
  ca_cert_pem: string;
}
