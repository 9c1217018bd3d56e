// A reference controller on 127.0.0.1 (a fresh data directory, a random port) and nodes set up
// to trust it (their own copies of the server and root-CA files, an onboarding certificate, a
// file key store), for the controller, trust and side-channel tests.
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControllerApi, type ControllerSigningKeys } from '../../src/controller/api.js';
import { CONTROLLER_FILES, initControllerDir, loadControllerDir } from '../../src/controller/controller-dir.js';
import { addDevice } from '../../src/controller/device-commands.js';
import { ControllerServer } from '../../src/controller/server.js';
import { ControllerStore } from '../../src/controller/store.js';
import { createOnboardingCert } from '../../src/control/x509/device.js';
import type { NodeConfig } from '../../src/node/config/node-config.js';
import type { Logger } from '../../src/node/log.js';

export const quiet: Logger = { log: () => undefined };

/** Collects log lines, for asserting on what was logged. */
export function recordingLog(): Logger & { readonly lines: { level: string; message: string; fields: Record<string, unknown> }[] } {
  const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  return { lines, log: (level, message, fields = {}) => void lines.push({ level, message, fields: { ...fields } }) };
}

export const MESH_YAML = `network-instances:
  - name: overlay
    instance-id: 1000
    map-servers: [{ address: 198.18.0.10, credential: overlay-secret }]
`;

export interface ControllerFixture {
  readonly dir: string;
  readonly server: ControllerServer;
  readonly requests: string[];
  readonly onboardingCert: string;
  readonly onboardingKey: string;
  /** Pre-registers a device; returns its UUID. */
  addDevice(serial: string, mesh?: string, attestation?: 'none' | 'tpm'): string;
  /** A node config trusting this controller (own copies of the trust files). */
  node(name: string, serial: string): NodeConfig;
  stop(): Promise<void>;
}

export async function startController(options: { readonly api?: (store: ControllerStore, keys: ControllerSigningKeys, log: Logger) => ControllerApi } = {}): Promise<ControllerFixture> {
  const base = mkdtempSync(join(tmpdir(), 'lispnode-controller-test-'));
  const dir = join(base, 'controller');
  await initControllerDir(dir, { dnsName: '127.0.0.1', addresses: [], port: 8443 });
  const material = loadControllerDir(dir);
  const store = new ControllerStore(material.databaseFile);
  const api = (options.api ?? ((s, k, l) => new ControllerApi(s, k, l)))(store, material.keys, quiet);
  const requests: string[] = [];
  const counting = Object.create(api) as ControllerApi;
  counting.handle = (method, path, body) => {
    requests.push(`${method} ${path}`);
    return api.handle(method, path, body);
  };
  const server = await ControllerServer.serve(counting, store, material.tls, { host: '127.0.0.1', port: 0, log: quiet });
  const pair = await createOnboardingCert({ commonName: 'test onboarding', now: new Date(), random: (n) => randomBytes(n) });
  const onboardingCert = join(base, 'onboard.cert.pem');
  const onboardingKey = join(base, 'onboard.key.pem');
  writeFileSync(onboardingCert, pair.certPem);
  writeFileSync(onboardingKey, pair.keyPem, { mode: 0o600 });
  return {
    dir,
    server,
    requests,
    onboardingCert,
    onboardingKey,
    addDevice(serial, mesh = MESH_YAML, attestation = 'none') {
      const file = join(base, `${serial}.mesh.yaml`);
      writeFileSync(file, mesh);
      const line = addDevice({ dir, serial, onboardingCert, mesh: file, attestation })[0] ?? '';
      return /device (\S+)/.exec(line)?.[1] ?? '';
    },
    node(name, serial) {
      const stateDir = join(base, name);
      mkdirSync(stateDir, { recursive: true });
      const serverFile = join(stateDir, 'server');
      const rootCaFile = join(stateDir, 'root-certificate.pem');
      writeFileSync(serverFile, `127.0.0.1:${server.port}\n`);
      copyFileSync(join(dir, CONTROLLER_FILES.root), rootCaFile);
      return {
        file: join(stateDir, 'node.yaml'),
        stateDir,
        controller: { serverFile, rootCaFile, pollInterval: 1 },
        onboarding: { certFile: onboardingCert, keyFile: onboardingKey, serial },
        tpm: { mode: 'none', tcti: 'device:/dev/null' },
        underlay: { address: '198.18.0.1' },
        ops: { statusSocket: join(stateDir, 'status.sock'), metrics: undefined, log: { level: undefined, format: undefined } },
      };
    },
    async stop() {
      await server.stop();
      rmSync(base, { recursive: true, force: true });
    },
  };
}
