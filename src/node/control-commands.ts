// The node's one-shot control-plane commands: identity init/show/clear, onboarding, and
// applying a side-channel bundle. Each returns the lines to print; cli does the printing.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { checkBundleVersion, openBundle } from '../control/bundle.js';
import { ControllerClient } from '../control/controller-client.js';
import { DeviceIdentity } from '../control/identity.js';
import { identityDir, openNodeStore, type NodeStore } from './node-store.js';
import { onboard } from '../control/onboard.js';
import { readControllerTrust } from '../control/trust.js';
import { softwareSigner } from '../control/x509/software-signer.js';
import { importP256PrivateKey } from '../crypto/p256.js';
import type { NodeConfig } from './config/node-config.js';
import { createLogger } from './log.js';
import { saveBundle } from './side-channel.js';
import { certsCheckpoint } from './node-daemon.js';

function storeLine(store: NodeStore): string {
  return store.degraded === undefined ? `key store: ${store.keys.describe()}` : `key store: ${store.keys.describe()} — NO TPM (${store.degraded}): no attestation quotes, no vault encryption`;
}

export async function identityInit(config: NodeConfig): Promise<string[]> {
  const store = await openNodeStore(config, createLogger());
  const trust = readControllerTrust(config.controller.serverFile, config.controller.rootCaFile);
  const identity = await DeviceIdentity.create(identityDir(config), store.keys, trust, new Date());
  return [storeLine(store), `device certificate: ${identityDir(config)}/device.cert.pem (${new X509Certificate(identity.deviceCertPem).fingerprint256})`, `bound to ${trust.serverFile} and ${trust.rootCaFile}`];
}

export async function identityShow(config: NodeConfig, json: boolean): Promise<string[]> {
  const store = await openNodeStore(config, createLogger());
  const identity = DeviceIdentity.load(identityDir(config), store.keys);
  const device = new X509Certificate(identity.deviceCertPem);
  const changed = identity.trustChanges({ serverFile: config.controller.serverFile, rootCaFile: config.controller.rootCaFile });
  const facts = {
    keyStore: identity.keyStoreKind,
    keyStoreDetail: store.keys.describe(),
    degraded: store.degraded ?? null,
    deviceCert: { subject: device.subject, serial: device.serialNumber, notBefore: device.validFrom, notAfter: device.validTo, sha256: device.fingerprint256 },
    uuid: identity.uuid ?? null,
    trust: changed.length === 0 ? 'intact' : `CHANGED: ${changed.join(', ')}`,
    bundleCounter: { kind: store.counter.kind, value: (await store.counter.read()).toString() },
    createdAt: identity.createdAt,
  };
  if (json) return [JSON.stringify(facts)];
  return [
    storeLine(store),
    `device certificate: ${facts.deviceCert.subject.replace(/\n/g, ', ')}, serial ${facts.deviceCert.serial}, ${facts.deviceCert.notBefore} – ${facts.deviceCert.notAfter}`,
    `uuid: ${facts.uuid ?? '(not onboarded)'}`,
    `controller trust: ${facts.trust}`,
    `side-channel bundle counter (${facts.bundleCounter.kind}${store.counter.kind === 'file' ? ', monotonic only while the disk is trusted' : ''}): ${facts.bundleCounter.value}`,
  ];
}

export async function identityClear(config: NodeConfig): Promise<string[]> {
  const store = await openNodeStore(config, createLogger());
  await DeviceIdentity.clear(identityDir(config), store.keys);
  return [`identity removed from ${identityDir(config)} (${store.keys.describe()}); 'lispnode onboard' creates a new one — the controller must clear this device first ('lispnode controller device clear')`];
}

export async function onboardNow(config: NodeConfig, clear: boolean): Promise<string[]> {
  const store = await openNodeStore(config, createLogger());
  const dir = identityDir(config);
  const trust = readControllerTrust(config.controller.serverFile, config.controller.rootCaFile);
  if (clear) await DeviceIdentity.clear(dir, store.keys);
  const identity = DeviceIdentity.exists(dir) ? DeviceIdentity.load(dir, store.keys) : await DeviceIdentity.create(dir, store.keys, trust, new Date());
  const o = config.onboarding;
  const onboarding = o && { credentials: { signer: softwareSigner(importP256PrivateKey(readFileSync(o.keyFile, 'utf8'))), certPem: readFileSync(o.certFile, 'utf8') }, serial: o.serial };
  const client = new ControllerClient(() => readControllerTrust(config.controller.serverFile, config.controller.rootCaFile), certsCheckpoint(config));
  const uuid = await onboard(identity, client, trust, onboarding);
  return [storeLine(store), `onboarded: device ${uuid} with ${trust.url.host}`];
}

/** Verifies a bundle, checks its version against the counter, keeps it for the daemon, advances the counter. */
export async function applyBundleFile(config: NodeConfig, file: string): Promise<{ applied: boolean; lines: string[] }> {
  const store = await openNodeStore(config, createLogger());
  const identity = DeviceIdentity.load(identityDir(config), store.keys);
  const uuid = identity.uuid;
  if (uuid === undefined) return { applied: false, lines: ['refused: this node has no UUID yet (onboard it first)'] };
  const trust = readControllerTrust(config.controller.serverFile, config.controller.rootCaFile);
  const changed = identity.trustChanges(trust);
  if (changed.length > 0) return { applied: false, lines: [`refused: controller trust changed (${changed.join(', ')}); restore the files or re-onboard`] };
  const bytes = readFileSync(file);
  const opened = openBundle(bytes, trust.rootCaPem, new Date(), uuid);
  const refusal = opened.ok ? checkBundleVersion(opened.bundle, await store.counter.read()) : opened;
  if (refusal && !refusal.ok) return { applied: false, lines: [`refused (${refusal.reason}): ${refusal.message}`] };
  if (!opened.ok) return { applied: false, lines: [] };
  saveBundle(config, bytes);
  await store.counter.advanceTo(opened.bundle.version);
  return { applied: true, lines: [`applied bundle version ${opened.bundle.version} (config ${opened.config.configHash}); the node runs it at its next start or poll`] };
}
