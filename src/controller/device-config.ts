// A device's config as the controller serves it: the EdgeDevConfig built from its mesh, and its
// hash (base64url SHA-256 of the marshalled config, as Adam does). The same for /config and for
// side-channel bundles, so a node sees one hash for one config whichever way it came.
import { createHash } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { edgeDevConfigFromMesh } from '../control/mesh-config.js';
import { meshFromJson } from '../control/mesh.js';
import { ConfigResponseSchema, EdgeDevConfigSchema, type ConfigResponse } from '../control/proto/index.js';
import type { DeviceRecord } from './store.js';

/** `certsHash` changes when the controller's certificate set does, so nodes re-fetch /certs. */
export function deviceConfig(device: DeviceRecord, certsHash: string): ConfigResponse {
  const config = edgeDevConfigFromMesh(device.uuid, meshFromJson(device.meshJson), '1');
  config.controllercertConfighash = certsHash;
  const configHash = createHash('sha256').update(toBinary(EdgeDevConfigSchema, config)).digest('base64url');
  return create(ConfigResponseSchema, { config, configHash });
}
