// The EVE API v2 messages lispnode speaks, plus its own bundle messages. Everything under gen/
// is generated from proto/ by `npm run proto` (scripts/gen-proto.mjs) and committed; edit the
// .proto files, never the generated modules.
export * from './gen/auth/auth_pb.js';
export * from './gen/evecommon/evecommon_pb.js';
export * from './gen/evecommon/acipherinfo_pb.js';
export * from './gen/evecommon/netcmn_pb.js';
export * from './gen/evecommon/devmodelcommon_pb.js';
export * from './gen/certs/certs_pb.js';
export * from './gen/register/register_pb.js';
export * from './gen/eveuuid/eveuuid_pb.js';
export * from './gen/attest/attest_pb.js';
export * from './gen/config/devcommon_pb.js';
export * from './gen/config/devconfig_pb.js';
export * from './gen/config/netinst_pb.js';
export * from './gen/config/appconfig_pb.js';
export * from './gen/config/netconfig_pb.js';
export * from './gen/config/fw_pb.js';
export * from './gen/info/info_pb.js';
export * from './gen/lispnode/bundle_pb.js';
