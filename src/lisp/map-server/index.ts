// The map-server's registration side: site configuration, the registration store, the
// Map-Register handler. Pure (sans-IO): the daemon feeds it datagrams and a clock.
export * from './site.js';
export * from './registrations.js';
export * from './register-handler.js';
