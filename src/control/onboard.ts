// Onboarding as EVE does it (eve-security.md §2.3): fetch and verify the controller's
// certificates, register the device certificate under the onboarding key and serial, then ask
// for the UUID with the device key. Onboarding is complete only when /uuid answers.
import type { ControllerClient, RequestSigner } from './controller-client.js';
import type { DeviceIdentity } from './identity.js';
import type { ControllerTrust } from './trust.js';

export interface Onboarding {
  readonly credentials: RequestSigner;
  readonly serial: string;
}

/** Returns the device UUID (kept in the identity), onboarding first when there is none yet. */
export async function onboard(identity: DeviceIdentity, client: ControllerClient, trust: ControllerTrust, onboarding: Onboarding | undefined): Promise<string> {
  const known = identity.uuid;
  if (known !== undefined) return known;
  const device = { signer: await identity.deviceSigner(trust), certPem: identity.deviceCertPem };
  await client.fetchCerts();
  if (!onboarding) throw new Error("the node has no UUID yet and its config has no 'onboarding' section (onboarding certificate, key and serial)");
  await client.register(onboarding.credentials, identity.deviceCertPem, onboarding.serial, identity.softSerial);
  const uuid = await client.uuid(device);
  identity.saveUuid(uuid);
  return uuid;
}
