// The node's static X25519 data-plane key (until the control plane exchanges keys): a PKCS#8 PEM
// file, and its public half as the base64 text the peers' configs carry.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { x25519FromPem, x25519FromPrivate, x25519ToPem } from '../../crypto/x25519-kdf.js';

/** Creates the key file (mode 0600, never overwriting) and returns the public key in base64. */
export function newDataKey(file: string): string {
  const pair = x25519FromPrivate(randomBytes(32));
  writeFileSync(file, x25519ToPem(pair), { mode: 0o600, flag: 'wx' });
  return Buffer.from(pair.publicKey).toString('base64');
}

export function dataKeyPublic(file: string): string {
  return Buffer.from(x25519FromPem(readFileSync(file, 'utf8')).publicKey).toString('base64');
}
