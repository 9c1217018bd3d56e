// The reference controller's data directory: its PKI as PEM files (root CA, signing, ECDH and
// TLS certificates with their keys), the `server` file devices pin, and the SQLite store.
// `init` creates it once; everything else loads it. The two files a node must be installed with
// — `server` and `root-certificate.pem` — are written here for the operator to copy.
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importP256PrivateKey } from '../crypto/p256.js';
import { createControllerPki } from '../control/x509/controller-pki.js';
import { softwareSigner } from '../control/x509/software-signer.js';
import type { ControllerSigningKeys } from './api.js';

export const CONTROLLER_FILES = {
  root: 'root-certificate.pem',
  rootKey: 'root.key.pem',
  signing: 'signing.cert.pem',
  signingKey: 'signing.key.pem',
  ecdh: 'ecdh.cert.pem',
  ecdhKey: 'ecdh.key.pem',
  tls: 'tls.cert.pem',
  tlsKey: 'tls.key.pem',
  server: 'server',
  database: 'controller.db',
} as const;

export class ControllerDirError extends Error {
  override readonly name = 'ControllerDirError';
}

export interface ControllerInitOptions {
  /** The name (or address) devices dial and check in the TLS certificate. */
  readonly dnsName: string;
  /** Addresses the TLS certificate also covers. */
  readonly addresses: readonly string[];
  readonly port: number;
}

export async function initControllerDir(dir: string, options: ControllerInitOptions): Promise<void> {
  if (existsSync(join(dir, CONTROLLER_FILES.root))) throw new ControllerDirError(`${dir} already holds a controller (${CONTROLLER_FILES.root} exists)`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Dialled by address, the name is only the certificate's CN; the address goes in its SANs.
  const byAddress = isIP(options.dnsName) !== 0;
  const pki = await createControllerPki({
    dnsName: byAddress ? 'lispnode-controller' : options.dnsName,
    ipAddresses: byAddress ? [options.dnsName, ...options.addresses] : options.addresses,
    now: new Date(),
    random: (n) => randomBytes(n),
  });
  const write = (name: string, content: string, mode: number): void => writeFileSync(join(dir, name), content, { mode, flag: 'wx' });
  write(CONTROLLER_FILES.root, pki.root.certPem, 0o644);
  write(CONTROLLER_FILES.rootKey, pki.root.keyPem, 0o600);
  write(CONTROLLER_FILES.signing, pki.signing.certPem, 0o644);
  write(CONTROLLER_FILES.signingKey, pki.signing.keyPem, 0o600);
  write(CONTROLLER_FILES.ecdh, pki.ecdh.certPem, 0o644);
  write(CONTROLLER_FILES.ecdhKey, pki.ecdh.keyPem, 0o600);
  write(CONTROLLER_FILES.tls, pki.tls.certPem, 0o644);
  write(CONTROLLER_FILES.tlsKey, pki.tls.keyPem, 0o600);
  write(CONTROLLER_FILES.server, `${isIP(options.dnsName) === 6 ? `[${options.dnsName}]` : options.dnsName}:${options.port}\n`, 0o644);
}

export interface ControllerMaterial {
  readonly keys: ControllerSigningKeys;
  readonly rootPem: string;
  readonly tls: { readonly certPem: string; readonly keyPem: string };
  readonly databaseFile: string;
}

function read(dir: string, name: string): string {
  try {
    return readFileSync(join(dir, name), 'utf8');
  } catch (error) {
    throw new ControllerDirError(`${join(dir, name)}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)}); run 'lispnode controller init' first`);
  }
}

export function loadControllerDir(dir: string): ControllerMaterial {
  const signingKeyPem = read(dir, CONTROLLER_FILES.signingKey);
  return {
    keys: {
      signingCertPem: read(dir, CONTROLLER_FILES.signing),
      signer: softwareSigner(importP256PrivateKey(signingKeyPem)),
      ecdhCertPem: read(dir, CONTROLLER_FILES.ecdh),
      intermediatePems: [],
    },
    rootPem: read(dir, CONTROLLER_FILES.root),
    tls: { certPem: read(dir, CONTROLLER_FILES.tls), keyPem: read(dir, CONTROLLER_FILES.tlsKey) },
    databaseFile: join(dir, CONTROLLER_FILES.database),
  };
}
