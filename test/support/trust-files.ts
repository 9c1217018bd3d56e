// A controller's trust files as a node is installed with them (server + root CA), written into
// a temporary folder, from a real controller PKI; and a second, unrelated root for "changed" cases.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createControllerPki, type ControllerPki } from '../../src/control/x509/controller-pki.js';

export interface TrustFiles {
  readonly serverFile: string;
  readonly rootCaFile: string;
  readonly pki: ControllerPki;
}

export function newPki(): Promise<ControllerPki> {
  return createControllerPki({ dnsName: 'controller.test', ipAddresses: ['127.0.0.1'], now: new Date(), random: (n) => randomBytes(n) });
}

export async function writeTrustFiles(dir: string, server = '127.0.0.1:8443', pki?: ControllerPki): Promise<TrustFiles> {
  const used = pki ?? (await newPki());
  const serverFile = join(dir, 'server');
  const rootCaFile = join(dir, 'root-certificate.pem');
  writeFileSync(serverFile, `${server}\n`);
  writeFileSync(rootCaFile, used.root.certPem);
  return { serverFile, rootCaFile, pki: used };
}
