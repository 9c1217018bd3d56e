// The map-server: site configuration, the registration store, the Map-Register handler, and the
// Map-Request side (lookup policy, proxy replies, forwarding, negative replies). Pure (sans-IO):
// the daemon feeds it datagrams and a clock.
export * from './site.js';
export * from './registrations.js';
export * from './register-handler.js';
export * from './lookup-policy.js';
export * from './request-handler.js';
export * from './attestation-ticket.js';
