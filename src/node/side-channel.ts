// Where an applied side-channel bundle waits for the node daemon: one file in the state
// directory. The daemon verifies it again when it loads it (the disk may have been edited
// offline) and runs it only if its version is exactly the counter's — the last one applied.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../control/atomic-file.js';
import type { NodeConfig } from './config/node-config.js';

const bundleFile = (config: NodeConfig): string => join(config.stateDir, 'side-channel.bundle');

export function saveBundle(config: NodeConfig, bytes: Uint8Array): void {
  writeFileAtomicSync(bundleFile(config), bytes);
}

export function loadBundle(config: NodeConfig): Uint8Array | undefined {
  try {
    return readFileSync(bundleFile(config));
  } catch {
    return undefined;
  }
}
