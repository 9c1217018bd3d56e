// A mesh network instance (EVE's ZnetInstMesh, type 4): one LISP overlay instance-id with its
// EID allocation prefix, map-servers and RTRs, and the ECO interfaces attached to it. This is
// the plain form both ends share; mesh-config.ts maps it to and from EVE's protobuf config.
export interface MeshMapServer {
  /** Locator of the map-server (also used as the map-resolver). */
  readonly address: string;
  /** The site's authentication key (HMAC-SHA-256 password), EVE's ZcServicePoint.Credential. */
  readonly credential: string;
}

export interface MeshNetworkInstance {
  readonly uuid: string;
  readonly name: string;
  readonly instanceId: number;
  /** EID allocation prefix: its bytes and length in bits (EVE default fd/8). */
  readonly allocationPrefix: Uint8Array;
  readonly allocationPrefixLength: number;
  readonly mapServers: readonly MeshMapServer[];
  /** RTR locators. Carried and reported; NAT traversal through them is not implemented yet. */
  readonly rtrs: readonly string[];
  /** True: the node generates each ECO's key pair (EVE's `allocate`). */
  readonly allocate: boolean;
}

/** An ECO interface on a mesh instance; without allocation the controller supplies the key. */
export interface MeshEco {
  readonly appUuid: string;
  readonly appName: string;
  readonly networkUuid: string;
  readonly interfaceName: string;
  readonly privateKeyPem: string | undefined;
}

export interface MeshConfig {
  readonly instances: readonly MeshNetworkInstance[];
  readonly ecos: readonly MeshEco[];
}

/** JSON for storage (the controller keeps each device's mesh as text). */
export function meshToJson(mesh: MeshConfig): string {
  return JSON.stringify(mesh, (_key, value: unknown) => (value instanceof Uint8Array ? { hex: Buffer.from(value).toString('hex') } : value));
}

export function meshFromJson(text: string): MeshConfig {
  return JSON.parse(text, (_key, value: unknown) =>
    value !== null && typeof value === 'object' && 'hex' in value && typeof value.hex === 'string' ? new Uint8Array(Buffer.from(value.hex, 'hex')) : value,
  ) as MeshConfig;
}
