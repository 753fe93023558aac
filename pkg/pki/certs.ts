// Certificates for Berth's mutual TLS: a self-signed cluster CA, keys and CSRs made by the
// node that will own them (the private key never leaves it), and signing by the CA. All
// keys are ECDSA P-256 with SHA-256 signatures; keys travel as PKCS#8 PEM, certs as PEM.
//
// @peculiar/x509 resolves its algorithm registry through tsyringe, which needs the
// Reflect metadata polyfill loaded first; keep this import above the x509 one.
import 'reflect-metadata';
import { createPrivateKey, X509Certificate as NodeX509, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { CsrSignatureError, MalformedPemError } from './errors.js';

const KEY_ALGORITHM: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const DAY_MS = 24 * 60 * 60 * 1000;
/** Certificates start this far in the past so a peer whose clock lags a little accepts them. */
export const NOT_BEFORE_SKEW_MS = 5 * 60 * 1000;
export const DEFAULT_CA_VALID_DAYS = 3650;

/** A CA's certificate and its private key, both PEM. */
export interface CertAndKey {
  certPem: string;
  keyPem: string;
}

/** Which TLS side a certificate may act as (its extended key usage). */
export type CertUsage = 'server' | 'client' | 'both';

export interface CreateCAOptions {
  commonName: string;
  validDays?: number;
  now?: Date;
}

export interface SubjectOptions {
  commonName: string;
  /** X.509 O= values; Berth reads them as groups (see identity.ts). */
  organizations?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
}

export interface SignCsrOptions {
  usage: CertUsage;
  validDays: number;
  /** When set, replaces the CSR's CN: the signer, not the requester, names the subject. */
  commonName?: string;
  /** When set, replaces the CSR's O= values; a requester must not pick its own groups. */
  organizations?: string[];
  /** When set (even empty), replaces the CSR's requested DNS SANs. */
  dnsNames?: string[];
  /** When set (even empty), replaces the CSR's requested IP SANs. */
  ipAddresses?: string[];
  now?: Date;
}

export interface IssueOptions extends SubjectOptions {
  usage: CertUsage;
  validDays: number;
  now?: Date;
}

/** What Berth needs to know about a certificate, parsed from its PEM. */
export interface CertificateInfo {
  commonName: string;
  organizations: string[];
  notBefore: Date;
  notAfter: Date;
  /** Lowercase hex. */
  serial: string;
  dnsNames: string[];
  ipAddresses: string[];
}

/** A self-signed CA certificate allowed to sign certificates and CRLs. */
export async function createCA(opts: CreateCAOptions): Promise<CertAndKey> {
  const keys = await generateKeys();
  const { notBefore, notAfter } = validity(opts.now, opts.validDays ?? DEFAULT_CA_VALID_DAYS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: subjectName(opts.commonName, []),
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) };
}

/**
 * A fresh key and a CSR for it. The joining node keeps `keyPem` and sends only `csrPem`;
 * the requested subject and SANs are a wish the signer may override.
 */
export async function createKeyAndCsr(opts: SubjectOptions): Promise<{ keyPem: string; csrPem: string }> {
  const keys = await generateKeys();
  const sans = sanEntries(opts.dnsNames, opts.ipAddresses);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subjectName(opts.commonName, opts.organizations ?? []),
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans)] : [],
  });
  return { keyPem: await exportKeyPem(keys.privateKey), csrPem: csr.toString('pem') };
}

/**
 * Signs a CSR with the CA after checking the CSR's own signature (proof the requester
 * holds the key). Subject fields and SANs given in `opts` win over the CSR's; the CSR's
 * are used only where `opts` leaves a field unset.
 */
export async function signCsr(ca: CertAndKey, csrPem: string, opts: SignCsrOptions): Promise<string> {
  const csr = parse(() => new x509.Pkcs10CertificateRequest(csrPem), 'certificate request');
  let valid = false;
  try {
    valid = await csr.verify();
  } catch {
    // A signature that cannot even be decoded is as bad as one that does not match.
  }
  if (!valid) throw new CsrSignatureError();

  const requested = csr.extensions.find(
    (e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension,
  );
  const requestedSans = requested ? namesOf(requested) : { dnsNames: [], ipAddresses: [] };
  const commonName = opts.commonName ?? csr.subjectName.getField('CN')[0] ?? '';
  const organizations = opts.organizations ?? csr.subjectName.getField('O');
  const sans = sanEntries(
    opts.dnsNames ?? requestedSans.dnsNames,
    opts.ipAddresses ?? requestedSans.ipAddresses,
  );
  return sign(ca, csr.publicKey, { commonName, organizations, sans, ...opts });
}

/** Key, CSR and signature in one step, for certificates the CA's own host needs (init). */
export async function issueCertificate(ca: CertAndKey, opts: IssueOptions): Promise<CertAndKey> {
  const { keyPem, csrPem } = await createKeyAndCsr(opts);
  const certPem = await signCsr(ca, csrPem, {
    ...opts,
    organizations: opts.organizations ?? [],
    dnsNames: opts.dnsNames ?? [],
    ipAddresses: opts.ipAddresses ?? [],
  });
  return { certPem, keyPem };
}

export function certificateInfo(pem: string): CertificateInfo {
  const cert = parse(() => new x509.X509Certificate(pem), 'certificate');
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return {
    commonName: cert.subjectName.getField('CN')[0] ?? '',
    organizations: cert.subjectName.getField('O'),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    serial: cert.serialNumber.toLowerCase(),
    ...(san ? namesOf(san) : { dnsNames: [], ipAddresses: [] }),
  };
}

/** True when `caPem` names itself as the issuer of `certPem` and its key verifies the signature. */
export function verifyIssuedBy(certPem: string, caPem: string): boolean {
  try {
    const cert = new NodeX509(certPem);
    const ca = new NodeX509(caPem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/**
 * True once `fraction` of the certificate's lifetime has passed (or it has expired), the
 * point at which its owner should ask for a new one while the old one still works.
 */
export function needsRotation(certPem: string, now: Date, fraction = 2 / 3): boolean {
  const { notBefore, notAfter } = certificateInfo(certPem);
  // Measured from issue (notBefore is backdated by the clock-skew allowance), so a short-lived
  // certificate is not due the moment it is made.
  const issued = Math.min(notBefore.getTime() + NOT_BEFORE_SKEW_MS, notAfter.getTime());
  const lifetime = notAfter.getTime() - issued;
  return now.getTime() - issued >= lifetime * fraction;
}

interface SignInput {
  commonName: string;
  organizations: string[];
  sans: x509.JsonGeneralName[];
  usage: CertUsage;
  validDays: number;
  now?: Date;
}

async function sign(ca: CertAndKey, publicKey: x509.PublicKey, input: SignInput): Promise<string> {
  const caCert = parse(() => new x509.X509Certificate(ca.certPem), 'certificate');
  const caKey = await importKeyPem(ca.keyPem);
  const { notBefore, notAfter } = validity(input.now, input.validDays);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    // ECDSA keys only sign in TLS (ECDHE does the key exchange), so digitalSignature is enough.
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(extendedUsages(input.usage)),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
    // Must match the CA's subject key id, which OpenSSL uses to find the issuer.
    await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
  ];
  if (input.sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(input.sans));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: subjectName(input.commonName, input.organizations),
    issuer: caCert.subjectName,
    notBefore,
    notAfter,
    publicKey,
    signingKey: caKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions,
  });
  return cert.toString('pem');
}

function extendedUsages(usage: CertUsage): x509.ExtendedKeyUsage[] {
  const { serverAuth, clientAuth } = x509.ExtendedKeyUsage;
  if (usage === 'server') return [serverAuth];
  if (usage === 'client') return [clientAuth];
  return [serverAuth, clientAuth];
}

function subjectName(commonName: string, organizations: string[]): x509.JsonName {
  const name: x509.JsonName = [];
  for (const o of organizations) name.push({ O: [o] });
  name.push({ CN: [commonName] });
  return name;
}

function sanEntries(dnsNames: string[] = [], ipAddresses: string[] = []): x509.JsonGeneralName[] {
  return [
    ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
  ];
}

function namesOf(san: x509.SubjectAlternativeNameExtension): { dnsNames: string[]; ipAddresses: string[] } {
  const items = san.names.items;
  return {
    dnsNames: items.filter((n) => n.type === 'dns').map((n) => n.value),
    ipAddresses: items.filter((n) => n.type === 'ip').map((n) => n.value),
  };
}

function validity(now: Date | undefined, validDays: number): { notBefore: Date; notAfter: Date } {
  const start = (now ?? new Date()).getTime();
  return { notBefore: new Date(start - NOT_BEFORE_SKEW_MS), notAfter: new Date(start + validDays * DAY_MS) };
}

/** 128 random bits, kept positive and without a leading zero byte so DER keeps all 16 bytes. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function importKeyPem(pem: string): Promise<webcrypto.CryptoKey> {
  // node:crypto reads PKCS#8 and SEC1 ("EC PRIVATE KEY") alike; WebCrypto wants PKCS#8 DER.
  const der = parse(() => createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' }), 'private key');
  return webcrypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign']);
}

function parse<T>(fn: () => T, what: MalformedPemError['what']): T {
  try {
    return fn();
  } catch (err) {
    throw new MalformedPemError(what, err);
  }
}
