// The pki package's error catalogue: one base class with a stable `code`. Callers branch on
// `code` (or instanceof), never on message text. Messages never echo secrets.

export const PkiErrorCode = {
  /** The text is not a parseable PEM certificate, key or CSR. */
  Malformed: 'PKI_MALFORMED',
  /** A CSR whose self-signature does not verify: altered in transit or forged. */
  CsrSignature: 'PKI_CSR_SIGNATURE',
  /** A join token string that does not have the BERTH1 shape. */
  TokenFormat: 'PKI_TOKEN_FORMAT',
} as const;
export type PkiErrorCode = (typeof PkiErrorCode)[keyof typeof PkiErrorCode];

export class PkiError extends Error {
  readonly code: PkiErrorCode;
  constructor(code: PkiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PkiError';
    this.code = code;
  }
}

/** PEM input that does not parse as the expected kind of object. */
export class MalformedPemError extends PkiError {
  constructor(
    readonly what: 'certificate' | 'private key' | 'certificate request',
    cause?: unknown,
  ) {
    super(PkiErrorCode.Malformed, `pki: not a valid PEM ${what}`, { cause });
    this.name = 'MalformedPemError';
  }
}

/** The CSR's signature does not match its public key; it must not be signed. */
export class CsrSignatureError extends PkiError {
  constructor() {
    super(PkiErrorCode.CsrSignature, 'pki: certificate request signature does not verify');
    this.name = 'CsrSignatureError';
  }
}

/** A malformed join token; `message` says which part is wrong, never the token itself. */
export class TokenFormatError extends PkiError {
  constructor(message: string) {
    super(PkiErrorCode.TokenFormat, `pki: ${message}`);
    this.name = 'TokenFormatError';
  }
}
