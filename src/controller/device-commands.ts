// The reference controller's one-shot commands on its store: pre-register a device, list,
// clear a registration for re-onboarding, replace a mesh, export a side-channel bundle. Each
// returns the lines to print.
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { sealBundle } from '../control/bundle.js';
import { meshFromJson, meshToJson } from '../control/mesh.js';
import { ControllerApi } from './api.js';
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

export function addDevice(o: { dir: string; serial: string; onboardingCert: string; mesh: string }): string[] {
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
    return [`device ${device.uuid} (serial ${o.serial}) pre-registered`];
  });
}

export function listDevices(dir: string): string[] {
  return withStore(dir, (store) =>
    store.devices().map((d) => {
      const mesh = meshFromJson(d.meshJson);
      return `${d.uuid}  serial ${d.serial}  ${d.deviceCertHash ? 'registered' : 'not registered'}  mesh ${mesh.instances.map((i) => `${i.name}/iid ${i.instanceId}`).join(', ') || '(none)'}  bundles ${d.bundleVersion}`;
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
