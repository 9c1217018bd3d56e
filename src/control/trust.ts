// The one controller this node trusts: its address (the `server` file) and its root CA
// (`root-certificate.pem`), both fixed at install time. The trust binding is a digest of both
// files' exact bytes; the device key's authorization is that digest, so a node whose files were
// edited cannot sign anything for the controller — it fails closed until the files are restored
// or the node is explicitly re-onboarded (EVE wanted this and never built it).
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface ControllerTrust {
  /** The controller's base URL (`https://host:port`, or `http://` for development). */
  readonly url: URL;
  /** The root CA in PEM: the only TLS trust anchor and the only anchor for signed objects. */
  readonly rootCaPem: string;
  /** SHA-256 over both files' bytes: the device key's authorization value. */
  readonly binding: Uint8Array;
  readonly serverFile: string;
  readonly rootCaFile: string;
}

export class TrustFileError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'TrustFileError';
  }
}

const DOMAIN = 'lispnode controller trust v1\0';

/** The binding digest: length-prefixed so no two (server, root) pairs can collide by shifting bytes. */
export function trustBinding(serverBytes: Uint8Array, rootCaBytes: Uint8Array): Uint8Array {
  const hash = createHash('sha256').update(DOMAIN);
  for (const part of [serverBytes, rootCaBytes]) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(part.length);
    hash.update(length).update(part);
  }
  return new Uint8Array(hash.digest());
}

/** A server file holds `host:port` (EVE) or a URL; no scheme means https, as in EVE. */
export function parseServer(text: string): URL | undefined {
  const trimmed = text.trim();
  if (trimmed === '' || /\s/.test(trimmed)) return undefined;
  try {
    const url = new URL(/^[a-z]+:\/\//i.test(trimmed) ? trimmed : `https://${trimmed}`);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
    if (url.pathname !== '/' || url.search || url.hash || url.username) return undefined;
    return url;
  } catch {
    return undefined;
  }
}

function readBytes(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new TrustFileError(file, `cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}

/** Reads and checks both files; the binding is over the bytes as read. */
export function readControllerTrust(serverFile: string, rootCaFile: string): ControllerTrust {
  const serverBytes = readBytes(serverFile);
  const rootBytes = readBytes(rootCaFile);
  const url = parseServer(Buffer.from(serverBytes).toString('utf8'));
  if (!url) throw new TrustFileError(serverFile, 'expected the controller as host:port or an https:// URL with no path');
  const rootCaPem = Buffer.from(rootBytes).toString('utf8');
  let root: X509Certificate;
  try {
    root = new X509Certificate(rootCaPem);
  } catch {
    throw new TrustFileError(rootCaFile, 'expected the controller root CA certificate in PEM');
  }
  if (!root.ca) throw new TrustFileError(rootCaFile, 'the certificate is not a CA (basicConstraints CA:TRUE missing)');
  return { url, rootCaPem, binding: trustBinding(serverBytes, rootBytes), serverFile, rootCaFile };
}
