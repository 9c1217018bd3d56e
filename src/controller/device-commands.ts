// The reference controller's one-shot commands on its store: pre-register a device (with its
// attestation mode and PCR policy), list, clear a registration for re-onboarding, replace a mesh,
// forget learned PCRs, export a side-channel bundle. Each returns the lines to print.
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { sealBundle } from '../control/bundle.js';
import { meshFromJson, meshToJson } from '../control/mesh.js';
import { ControllerApi } from './api.js';
import { ATTESTATION_MODES, parsePcrValues, PcrPolicyError, type AttestationMode, type PcrValues } from './attestation-policy.js';
import { loadControllerDir } from './controller-dir.js';
import { deviceConfig } from './device-config.js';
import { loadMeshSpec } from './mesh-spec.js';
import { ControllerStore, type DeviceRecord } from './store.js';

const silentLog = { log: () => undefined };

export class DeviceCommandError extends Error {
  override readonly name = 'DeviceCommandError';
}

function withStore<T>(dir: string, body: (store: ControllerStore) => T): T {
  const store = new ControllerStore(loadControllerDir(dir).databaseFile);
  try {
    return body(store);
  } finally {
    store.close();
  }
}

function find(store: ControllerStore, key: string): DeviceRecord {
  const device = store.findDevice(key);
  if (!device) throw new DeviceCommandError(`no device with UUID or serial '${key}'`);
  return device;
}

export interface AddDeviceOptions {
  readonly dir: string;
  readonly serial: string;
  readonly onboardingCert: string;
  readonly mesh: string;
  /** `none` (default; `tpm` when a PCR policy is given) or `tpm`. */
  readonly attestation?: string;
  /** JSON {"<pcr>":"<sha-256 hex>"}; without it a `tpm` device's first attestation pins its PCRs. */
  readonly pcrPolicy?: string;
}

function attestationOptions(o: AddDeviceOptions): { mode: AttestationMode; policy: PcrValues | undefined } {
  const mode = o.attestation ?? (o.pcrPolicy === undefined ? 'none' : 'tpm');
  if (!ATTESTATION_MODES.includes(mode as AttestationMode)) throw new DeviceCommandError(`--attestation ${mode}: expected ${ATTESTATION_MODES.join(' or ')}`);
  if (o.pcrPolicy === undefined) return { mode: mode as AttestationMode, policy: undefined };
  if (mode !== 'tpm') throw new DeviceCommandError('--pcr-policy needs --attestation tpm: a device without a TPM sends no PCRs');
  let text: string;
  try {
    text = readFileSync(o.pcrPolicy, 'utf8');
  } catch (error) {
    throw new DeviceCommandError(`--pcr-policy ${o.pcrPolicy}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  try {
    return { mode: 'tpm', policy: parsePcrValues(text, `--pcr-policy ${o.pcrPolicy}`) };
  } catch (error) {
    if (error instanceof PcrPolicyError) throw new DeviceCommandError(error.message);
    throw error;
  }
}

const describeAttestation = (mode: AttestationMode, policy: PcrValues | undefined): string =>
  mode === 'none' ? 'attestation none' : `attestation tpm (${policy ? `PCR policy ${[...policy.keys()].join(',')}` : 'learn PCRs at the first attestation'})`;

export function addDevice(o: AddDeviceOptions): string[] {
  const { mode, policy } = attestationOptions(o);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(o.onboardingCert));
  } catch (error) {
    throw new DeviceCommandError(`--onboarding-cert ${o.onboardingCert}: not a readable PEM certificate (${(error as Error).message})`);
  }
  return withStore(o.dir, (store) => {
    // The mesh's UUIDs derive from the device's, which the store assigns: check the file first
    // with a placeholder, then store the real one.
    loadMeshSpec(o.mesh, '00000000-0000-0000-0000-000000000000');
    const onboardHash = createHash('sha256').update(cert.raw).digest();
    let device: DeviceRecord;
    try {
      device = store.addDevice(o.serial, onboardHash, cert.toString(), '{}');
    } catch (error) {
      throw new DeviceCommandError(`serial ${o.serial} with this onboarding certificate is already registered (${(error as Error).message})`);
    }
    store.setMesh(device.uuid, meshToJson(loadMeshSpec(o.mesh, device.uuid)));
    store.attestation.setMode(device.uuid, mode, policy);
    return [`device ${device.uuid} (serial ${o.serial}) pre-registered, ${describeAttestation(mode, policy)}`];
  });
}

export function listDevices(dir: string): string[] {
  return withStore(dir, (store) =>
    store.devices().map((d) => {
      const mesh = meshFromJson(d.meshJson);
      const attestation = store.attestation.attestation(d.uuid);
      const pinned = attestation.mode === 'tpm' && !attestation.policy && attestation.pinned ? ', pinned' : '';
      return `${d.uuid}  serial ${d.serial}  ${d.deviceCertHash ? 'registered' : 'not registered'}  mesh ${mesh.instances.map((i) => `${i.name}/iid ${i.instanceId}`).join(', ') || '(none)'}  bundles ${d.bundleVersion}  ${describeAttestation(attestation.mode, attestation.policy)}${pinned}`;
    }),
  );
}

export function clearDevice(dir: string, key: string): string[] {
  return withStore(dir, (store) => {
    const device = find(store, key);
    const notBefore = device.deviceCertPem === undefined ? undefined : new Date(new X509Certificate(device.deviceCertPem).validFrom);
    store.clearRegistration(device.uuid, notBefore);
    return [`device ${device.uuid}: registration cleared; it may register a new device certificate (never this one or an older one)`];
  });
}

export function setDeviceMesh(dir: string, key: string, meshFile: string): string[] {
  return withStore(dir, (store) => {
    const device = find(store, key);
    store.setMesh(device.uuid, meshToJson(loadMeshSpec(meshFile, device.uuid)));
    return [`device ${device.uuid}: mesh replaced; the node picks it up at its next config poll`];
  });
}

/** Learn mode after a legitimate change (an upgrade): the next successful attestation pins anew. */
/** Changes a device's attestation mode or explicit PCR policy (e.g. the expected values after an upgrade). */
export function setAttestation(dir: string, key: string, o: { readonly attestation?: string; readonly pcrPolicy?: string }): string[] {
  const { mode, policy } = attestationOptions({ dir, serial: '', onboardingCert: '', mesh: '', ...o });
  return withStore(dir, (store) => {
    const device = find(store, key);
    store.attestation.setMode(device.uuid, mode, policy);
    return [`device ${device.uuid}: ${describeAttestation(mode, policy)}`];
  });
}

export function relearnPcrs(dir: string, key: string): string[] {
  return withStore(dir, (store) => {
    const device = find(store, key);
    const attestation = store.attestation.attestation(device.uuid);
    if (attestation.mode !== 'tpm' || attestation.policy) throw new DeviceCommandError(`device ${device.uuid} does not learn its PCRs (${describeAttestation(attestation.mode, attestation.policy)})`);
    store.attestation.unpin(device.uuid);
    return [`device ${device.uuid}: learned PCR values forgotten; its next successful attestation pins them again`];
  });
}

export async function exportBundle(o: { dir: string; device: string; out: string; version?: string }): Promise<string[]> {
  const material = loadControllerDir(o.dir);
  const { device, version } = withStore(o.dir, (store) => {
    const d = find(store, o.device);
    if (o.version !== undefined && !/^\d{1,15}$/.test(o.version)) throw new DeviceCommandError(`--version ${o.version}: expected a positive integer`);
    return { device: d, version: o.version !== undefined ? BigInt(o.version) : BigInt(store.nextBundleVersion(d.uuid)) };
  });
  const certsHash = new ControllerApi(new ControllerStore(':memory:'), material.keys, silentLog).certsHash;
  const bytes = await sealBundle(material.keys, { version, deviceUuid: device.uuid, config: deviceConfig(device, certsHash), created: new Date() });
  writeFileSync(o.out, bytes, { mode: 0o600 });
  return [`bundle version ${version} for device ${device.uuid} written to ${o.out} (${bytes.length} bytes)`];
}
