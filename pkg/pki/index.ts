// Public surface of pkg/pki; see README.md.
export * from './certs.js';
export * from './errors.js';
export * from './fingerprint.js';
export * from './identity.js';
export * from './token.js';
