// The reference captures shipped in pcap/ and their site keys (pcap/keys.json), for the demo
// and the tests.
import { readFileSync } from 'node:fs';
import { isAuthAlgorithm, passwordKey, type AuthKey } from '../lisp/auth.js';

/** pcap/ beside dist/ — this file runs from dist/src/node/. */
export const PCAP_DIR = new URL('../../../pcap/', import.meta.url);

export interface BundledCapture {
  readonly file: string;
  readonly path: URL;
  readonly siteKey?: AuthKey;
}

interface KeyEntry {
  readonly password: string;
  readonly keyId: number;
  readonly algorithmId: number;
}

export function bundledCaptures(): BundledCapture[] {
  const table = JSON.parse(readFileSync(new URL('keys.json', PCAP_DIR), 'utf8')) as Record<string, KeyEntry | null>;
  return Object.entries(table).map(([file, entry]) => {
    const path = new URL(file, PCAP_DIR);
    if (!entry) return { file, path };
    if (!isAuthAlgorithm(entry.algorithmId)) throw new Error(`pcap/keys.json: ${file}.algorithmId must be 1 or 2`);
    return { file, path, siteKey: passwordKey(entry.keyId, entry.algorithmId, entry.password) };
  });
}
