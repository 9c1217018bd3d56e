// Where this node's keys and bundle counter live, per its config: the TPM at the configured
// TCTI, or PEM files when there is none — EVE's degraded mode (no quotes, no vault encryption),
// which is reported loudly, never hidden. An identity made in the TPM never falls back to files.
import { join } from 'node:path';
import type { NodeConfig } from './config/node-config.js';
import type { Logger } from './log.js';
import { DeviceIdentity } from '../control/identity.js';
import { FileKeyStore, TpmKeyStore, type KeyStore } from '../control/key-store/index.js';
import { Tpm, TpmUnavailableError } from '../control/tpm/index.js';
import { FileVersionCounter, TpmVersionCounter, type VersionCounter } from '../control/version-counter.js';

export interface NodeStore {
  readonly keys: KeyStore;
  readonly counter: VersionCounter;
  readonly tpm: Tpm | undefined;
  /** Why there is no TPM, when there is none. */
  readonly degraded: string | undefined;
}

export const IDENTITY_SUBDIR = 'identity';

export function identityDir(config: NodeConfig): string {
  return join(config.stateDir, IDENTITY_SUBDIR);
}

function fileStore(config: NodeConfig, degraded: string, log: Logger): NodeStore {
  log.log('warn', 'NO TPM: device keys are PEM files, no attestation quotes, no vault encryption', { reason: degraded });
  return { keys: new FileKeyStore(join(identityDir(config), 'keys')), counter: new FileVersionCounter(join(config.stateDir, 'bundle-counter')), tpm: undefined, degraded };
}

export async function openNodeStore(config: NodeConfig, log: Logger): Promise<NodeStore> {
  const dir = identityDir(config);
  const existing = DeviceIdentity.exists(dir) ? DeviceIdentity.storeKind(dir) : undefined;
  if (config.tpm.mode === 'none' && existing !== 'tpm') return fileStore(config, 'tpm.mode is none', log);
  try {
    const tpm = await Tpm.open(config.tpm.tcti);
    return { keys: new TpmKeyStore(tpm), counter: new TpmVersionCounter(tpm), tpm, degraded: undefined };
  } catch (error) {
    if (!(error instanceof TpmUnavailableError) || config.tpm.mode === 'required' || existing === 'tpm') {
      const why = existing === 'tpm' ? 'this identity lives in the TPM' : `tpm.mode is ${config.tpm.mode}`;
      throw new Error(`the TPM at ${config.tpm.tcti} is not usable and ${why}: ${(error as Error).message}`, { cause: error });
    }
    return fileStore(config, `no TPM at ${config.tpm.tcti} (${(error as Error).message})`, log);
  }
}
