// The public surface of src/crypto: pure functions and session objects, no I/O, no clock.
export * from './cipher-backend.js';
export * from './cipher-suite.js';
export * from './crypto-eid.js';
export * from './ecdsa.js';
export * from './key-agreement-signature.js';
export * from './eid-signature.js';
export * from './node-cipher-backend.js';
export * from './p256.js';
export * from './registration-signature.js';
export * from './replay-window.js';
export * from './session.js';
export * from './x25519-kdf.js';
