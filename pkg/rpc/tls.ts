// Mutual TLS credentials for every gRPC server and channel of a node, from one in-memory
// certificate source. grpc-js asks a CertificateProvider for the CA and the identity on each
// new handshake, so `update` (after a certificate rotation) takes effect for new connections
// at once while open ones keep going: rotation without a restart and without downtime.

import * as grpc from '@grpc/grpc-js';

const { createCertificateProviderChannelCredentials, createCertificateProviderServerCredentials } =
  grpc.experimental;
type CertificateProvider = grpc.experimental.CertificateProvider;
type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

/** PEM text of the cluster CA's certificate and of this party's certificate and key. */
export interface TlsMaterial {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** A CertificateProvider whose CA and identity are replaced by `update`. */
export class TlsSource implements CertificateProvider {
  private material: TlsMaterial;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();

  constructor(material: TlsMaterial) {
    this.material = material;
  }

  get current(): TlsMaterial {
    return this.material;
  }

  /** New certificate (and CA): used by every handshake from now on. */
  update(material: TlsMaterial): void {
    this.material = material;
    for (const l of this.caListeners) l(this.caUpdate());
    for (const l of this.identityListeners) l(this.identityUpdate());
  }

  private caUpdate() {
    return { caCertificate: Buffer.from(this.material.caPem) };
  }

  private identityUpdate() {
    return { certificate: Buffer.from(this.material.certPem), privateKey: Buffer.from(this.material.keyPem) };
  }

  // The first value goes out on a later tick: grpc-js's server registers its watcher only
  // after adding our listener, and would miss a value delivered at once.
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    queueMicrotask(() => this.caListeners.has(listener) && listener(this.caUpdate()));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => this.identityListeners.has(listener) && listener(this.identityUpdate()));
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  /** Server side: clients must present a certificate signed by the CA, else the handshake fails. */
  serverCredentials(requireClientCertificate = true): grpc.ServerCredentials {
    return createCertificateProviderServerCredentials(this, this, requireClientCertificate);
  }

  /** Client side: the server must prove the CA signed it; we present our certificate. */
  channelCredentials(): grpc.ChannelCredentials {
    return createCertificateProviderChannelCredentials(this, this);
  }
}

/** Credentials of a client holding fixed PEM material (berthctl). */
export function staticChannelCredentials(m: TlsMaterial): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(m.caPem), Buffer.from(m.keyPem), Buffer.from(m.certPem));
}
