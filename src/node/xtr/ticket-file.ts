// The attestation ticket an xTR carries in its Map-Registers comes from a file that the node
// daemon (or an operator) replaces when the controller renews it: read again whenever the file
// changes, and nothing carried while it is missing (the map-server then refuses, and says so).
import { readFileSync, statSync } from 'node:fs';
import type { Logger } from '../log.js';

export function ticketFileProvider(file: string, log: Logger): (now: number) => Uint8Array | undefined {
  let seen: { mtimeMs: number; size: number; bytes: Uint8Array } | undefined;
  let missingLogged = false;
  return () => {
    try {
      const stat = statSync(file);
      if (!seen || seen.mtimeMs !== stat.mtimeMs || seen.size !== stat.size) seen = { mtimeMs: stat.mtimeMs, size: stat.size, bytes: readFileSync(file) };
      missingLogged = false;
      return seen.bytes;
    } catch (error) {
      if (!missingLogged) log.log('warn', 'no attestation ticket to carry', { file, error: (error as NodeJS.ErrnoException).code ?? String(error) });
      missingLogged = true;
      seen = undefined;
      return undefined;
    }
  };
}
