// Brings a mesh network instance to the xTR role: the ECO's crypto-EID key (generated here when
// the controller asks the node to allocate), the node's X25519 data-plane key and the
// map-servers' credentials go into the node's secret store (encrypted under the vault key where
// there is a TPM); the xTR config file written to the state directory names them by reference
// (`secret:<name>`), so it holds no secret and an operator can read what runs.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { deriveCryptoEid } from '../crypto/crypto-eid.js';
import { exportPrivateKeyPem, generateP256KeyPair, importP256PrivateKey } from '../crypto/p256.js';
import { x25519FromPrivate, x25519ToPem } from '../crypto/x25519-kdf.js';
import { formatIpv6 } from '../lisp/ip-text.js';
import { secretReference } from './config/secret-ref.js';
import { writeFileAtomicSync } from '../control/atomic-file.js';
import type { MeshConfig, MeshEco, MeshNetworkInstance } from '../control/mesh.js';
import type { SecretStore } from '../control/vault/index.js';

export interface MeshXtrPlan {
  readonly instanceId: number;
  readonly name: string;
  /** The generated xTR config file. */
  readonly configFile: string;
  /** The ECO's crypto-EID. */
  readonly eid: string;
  /** The secret-store entries the config names (to load it). */
  readonly secrets: readonly string[];
  /** Where the node keeps the attestation ticket this xTR carries (when it attests). */
  readonly ticketFile: string | undefined;
}

export class MeshConfigError extends Error {
  override readonly name = 'MeshConfigError';
}

/** The allocation prefix as text (`fd00::/8`). */
function prefixText(ni: MeshNetworkInstance): string {
  const bytes = new Uint8Array(16);
  bytes.set(ni.allocationPrefix.subarray(0, 16));
  return `${formatIpv6(bytes)}/${ni.allocationPrefixLength}`;
}

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');
const encode = (value: string): Uint8Array => new TextEncoder().encode(value);

/** The ECO key: kept once made (its EID must not change), or the controller's, as given. */
async function ecoKey(secrets: SecretStore, name: string, ni: MeshNetworkInstance, eco: MeshEco): Promise<string> {
  if (eco.privateKeyPem !== undefined) {
    importP256PrivateKey(eco.privateKeyPem); // throws on a key that is not P-256
    await secrets.put(name, encode(eco.privateKeyPem));
    return eco.privateKeyPem;
  }
  const kept = await secrets.get(name);
  if (kept) return text(kept);
  if (!ni.allocate) throw new MeshConfigError(`network instance ${ni.name}: ECO ${eco.appName} has no key and the instance does not allocate one`);
  const pem = exportPrivateKeyPem(generateP256KeyPair(randomBytes));
  await secrets.put(name, encode(pem));
  return pem;
}

export interface MeshXtrOptions {
  readonly stateDir: string;
  readonly underlayAddress: string;
  readonly secrets: SecretStore;
  /** Carry an attestation ticket in the Map-Registers (a node that attests with a TPM). */
  readonly attestationTicket: boolean;
}

/**
 * Writes one xTR config per mesh instance that has an ECO. The xTR serves one crypto-EID, so
 * an instance with several ECOs on this node is refused with a clear error rather than half-run.
 */
export async function planMeshXtrs(mesh: MeshConfig, options: MeshXtrOptions): Promise<MeshXtrPlan[]> {
  const { secrets } = options;
  const plans: MeshXtrPlan[] = [];
  for (const ni of mesh.instances) {
    const ecos = mesh.ecos.filter((e) => e.networkUuid === ni.uuid);
    if (ecos.length === 0) continue;
    const [eco] = ecos;
    if (!eco || ecos.length > 1) throw new MeshConfigError(`network instance ${ni.name}: ${ecos.length} ECO interfaces on one node; this xTR serves one crypto-EID per instance`);
    const dir = join(options.stateDir, 'mesh', String(ni.instanceId));
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const names = { eco: `eco-${eco.appUuid}`, data: `data-key-${ni.instanceId}`, credential: (i: number) => `map-server-${ni.instanceId}-${i}` };
    const ecoPem = await ecoKey(secrets, names.eco, ni, eco);
    if (!(await secrets.get(names.data))) await secrets.put(names.data, encode(x25519ToPem(x25519FromPrivate(randomBytes(32)))));
    for (const [i, ms] of ni.mapServers.entries()) await secrets.put(names.credential(i), encode(ms.credential));
    const prefix = prefixText(ni);
    const eid = deriveCryptoEid({
      spki: importP256PrivateKey(ecoPem).spki,
      iid: ni.instanceId,
      prefix: { address: Uint8Array.from({ length: 16 }, (_, i) => ni.allocationPrefix[i] ?? 0), length: ni.allocationPrefixLength },
      derivation: 'eve',
    });
    const ticketFile = options.attestationTicket ? join(dir, 'attestation-ticket') : undefined;
    const config = {
      tun: { name: `lnm${ni.instanceId}`, routes: [prefix] },
      underlay: { address: options.underlayAddress },
      'instance-id': ni.instanceId,
      'crypto-eid': { 'key-file': secretReference(names.eco), prefix, derivation: 'eve', ...(ticketFile !== undefined && { 'attestation-ticket-file': ticketFile }) },
      'local-eids': [],
      // Proxy replies: the map-server answers lookups itself, so it applies its lookup policy and
      // bounds the answers' TTL by the attestation ticket (data keys then come from RLOC probes).
      'map-servers': ni.mapServers.map((ms, i) => ({ address: ms.address, key: { 'key-id': 0, 'password-file': secretReference(names.credential(i)) }, 'proxy-reply': true })),
      'map-resolvers': ni.mapServers.map((ms) => ({ address: ms.address })),
      encryption: { mode: 'required', 'cipher-suite': 5, 'private-key-file': secretReference(names.data), peers: [] },
    };
    const configFile = join(dir, 'xtr.yaml');
    writeFileAtomicSync(configFile, `# Generated by lispnode from the controller's mesh network instance ${ni.name} (${ni.uuid}); do not edit.\n# secret:<name> is an entry of the node's secret store (${secrets.describe()}).\n${stringify(config)}`);
    plans.push({
      instanceId: ni.instanceId,
      name: ni.name,
      configFile,
      eid: formatIpv6(eid.eid),
      secrets: [names.eco, names.data, ...ni.mapServers.map((_, i) => names.credential(i))],
      ticketFile,
    });
  }
  return plans;
}
