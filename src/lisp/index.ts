// The public surface of the LISP wire codec.
export * from './address.js';
export * from './auth.js';
export { toHex, fromHex } from './bytes.js';
export * from './control.js';
export * from './data-header.js';
export * from './errors.js';
export * from './ip-text.js';
export * from './ip-udp.js';
export * from './info.js';
export * from './map-register.js';
export * from './map-reply.js';
export * from './map-request.js';
export * from './message-type.js';
export * from './records.js';
export * from './xtr-identity.js';
export * from './describe.js';
