// The public surface of src/control/x509: certificate issuance through a P256Signer (device
// and controller templates) and EVE's verification of a controller cert set.
export * from './controller-pki.js';
export * from './device.js';
export * from './pem.js';
export * from './sign.js';
export * from './software-signer.js';
export * from './validity.js';
export * from './verify.js';
