// The node's identity (eve-security.md §2): the device key (TPM persistent handle or a file),
// its self-signed device certificate, and the EdgeNode certificates the device key issues (ECDH
// and attestation). The device key's authorization is the controller-trust binding (trust.ts):
// a node whose server or root-CA file changed cannot sign, and this module says which file
// changed. Only `clear` (explicit re-onboarding) starts over.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from './atomic-file.js';
import type { KeyStoreKind, P256Signer } from './signer.js';
import { KeyRefusedError, type KeyStore } from './key-store/index.js';
import type { ControllerTrust } from './trust.js';
import { createDeviceCert, issueEdgeNodeCert } from './x509/device.js';
import { randomSerial } from './x509/sign.js';

export const IDENTITY_FILES = {
  deviceCert: 'device.cert.pem',
  ecdhCert: 'ecdh.cert.pem',
  attestationCert: 'attest.cert.pem',
  record: 'identity.json',
  uuid: 'uuid',
  softSerial: 'soft_serial',
} as const;

/** What identity.json keeps: the store the keys are in, and fingerprints of the trusted files. */
interface IdentityRecord {
  readonly version: 1;
  readonly keyStore: KeyStoreKind;
  readonly createdAt: string;
  readonly trust: { readonly serverSha256: string; readonly rootCaSha256: string };
}

/** The controller-trust files differ from those the identity was bound to: fail closed. */
export class TrustChangedError extends Error {
  override readonly name = 'TrustChangedError';
}

export class IdentityError extends Error {
  override readonly name = 'IdentityError';
}

const fileHash = (file: string): string => {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return 'unreadable';
  }
};

export class DeviceIdentity {
  private constructor(
    readonly dir: string,
    private readonly store: KeyStore,
    private readonly record: IdentityRecord,
    readonly deviceCertPem: string,
    readonly ecdhCertPem: string,
    readonly attestationCertPem: string,
  ) {}

  static exists(dir: string): boolean {
    return existsSync(join(dir, IDENTITY_FILES.record));
  }

  /** Which store an existing identity uses: a TPM identity must never silently fall back to files. */
  static storeKind(dir: string): KeyStoreKind {
    return DeviceIdentity.readRecord(dir).keyStore;
  }

  private static readRecord(dir: string): IdentityRecord {
    const file = join(dir, IDENTITY_FILES.record);
    try {
      const record = JSON.parse(readFileSync(file, 'utf8')) as IdentityRecord;
      if (record.version !== 1 || (record.keyStore !== 'tpm' && record.keyStore !== 'file')) throw new Error('unknown format');
      return record;
    } catch (error) {
      throw new IdentityError(`${file}: not a lispnode identity (${(error as Error).message}); 'lispnode identity init' creates one`);
    }
  }

  /** Creates the device key bound to `trust`, the device certificate and the EdgeNode certificates. */
  static async create(dir: string, store: KeyStore, trust: ControllerTrust, now: Date): Promise<DeviceIdentity> {
    if (DeviceIdentity.exists(dir)) throw new IdentityError(`${dir} already holds an identity; 'lispnode identity clear' removes it (re-onboarding)`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const role of ['device', 'ecdh', 'attestation'] as const) if (await store.has(role)) await store.remove(role);
    await store.create('device', trust.binding);
    const ecdhKey = await store.create('ecdh');
    const attestationKey = await store.create('attestation');
    const signer = await store.signer('device', trust.binding);
    const random = (n: number): Uint8Array => randomBytes(n);
    const deviceCertPem = await createDeviceCert(signer, { now, serial: randomSerial(random) });
    const ecdhCertPem = await issueEdgeNodeCert(signer, deviceCertPem, ecdhKey, 'ecdh', { now, serial: randomSerial(random) });
    const attestationCertPem = await issueEdgeNodeCert(signer, deviceCertPem, attestationKey, 'attestation', { now, serial: randomSerial(random) });
    writeFileAtomicSync(join(dir, IDENTITY_FILES.deviceCert), deviceCertPem, 0o644);
    writeFileAtomicSync(join(dir, IDENTITY_FILES.ecdhCert), ecdhCertPem, 0o644);
    writeFileAtomicSync(join(dir, IDENTITY_FILES.attestationCert), attestationCertPem, 0o644);
    if (!existsSync(join(dir, IDENTITY_FILES.softSerial))) writeFileAtomicSync(join(dir, IDENTITY_FILES.softSerial), `${randomUUID()}\n`, 0o644);
    const record: IdentityRecord = {
      version: 1,
      keyStore: store.kind,
      createdAt: now.toISOString(),
      trust: { serverSha256: fileHash(trust.serverFile), rootCaSha256: fileHash(trust.rootCaFile) },
    };
    // The record is written last: an interrupted init leaves no identity behind, only files to redo.
    writeFileAtomicSync(join(dir, IDENTITY_FILES.record), `${JSON.stringify(record, null, 2)}\n`, 0o644);
    return new DeviceIdentity(dir, store, record, deviceCertPem, ecdhCertPem, attestationCertPem);
  }

  static load(dir: string, store: KeyStore): DeviceIdentity {
    const record = DeviceIdentity.readRecord(dir);
    if (record.keyStore !== store.kind) throw new IdentityError(`${dir}: the identity's keys are in the ${record.keyStore} store, not the ${store.kind} store`);
    const read = (name: string): string => {
      try {
        return readFileSync(join(dir, name), 'utf8');
      } catch (error) {
        throw new IdentityError(`${join(dir, name)}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
      }
    };
    return new DeviceIdentity(dir, store, record, read(IDENTITY_FILES.deviceCert), read(IDENTITY_FILES.ecdhCert), read(IDENTITY_FILES.attestationCert));
  }

  /** Explicit re-onboarding: removes the keys (TPM handles or files), certificates and UUID. */
  static async clear(dir: string, store: KeyStore): Promise<void> {
    for (const role of ['device', 'ecdh', 'attestation'] as const) if (await store.has(role)) await store.remove(role);
    for (const name of [IDENTITY_FILES.record, IDENTITY_FILES.deviceCert, IDENTITY_FILES.ecdhCert, IDENTITY_FILES.attestationCert, IDENTITY_FILES.uuid]) {
      rmSync(join(dir, name), { force: true });
    }
  }

  get keyStoreKind(): KeyStoreKind {
    return this.record.keyStore;
  }

  get createdAt(): string {
    return this.record.createdAt;
  }

  /** What changed since the identity was bound, by file; empty when nothing did. */
  trustChanges(trust: Pick<ControllerTrust, 'serverFile' | 'rootCaFile'>): string[] {
    const changed: string[] = [];
    if (fileHash(trust.serverFile) !== this.record.trust.serverSha256) changed.push(trust.serverFile);
    if (fileHash(trust.rootCaFile) !== this.record.trust.rootCaSha256) changed.push(trust.rootCaFile);
    return changed;
  }

  /**
   * The device key as a signer, authorized by the current trust files. The fingerprint check
   * gives the clear message; the key's own authorization is what actually refuses.
   */
  async deviceSigner(trust: ControllerTrust): Promise<P256Signer> {
    const changed = this.trustChanges(trust);
    if (changed.length > 0) throw trustChanged(changed);
    const signer = await this.store.signer('device', trust.binding);
    return {
      publicKey: signer.publicKey,
      signDigest: (digest) =>
        signer.signDigest(digest).catch((error: unknown) => {
          throw error instanceof KeyRefusedError ? trustChanged([trust.serverFile, trust.rootCaFile]) : error;
        }),
    };
  }

  get uuid(): string | undefined {
    try {
      return readFileSync(join(this.dir, IDENTITY_FILES.uuid), 'utf8').trim() || undefined;
    } catch {
      return undefined;
    }
  }

  saveUuid(uuid: string): void {
    writeFileAtomicSync(join(this.dir, IDENTITY_FILES.uuid), `${uuid}\n`, 0o644);
  }

  get softSerial(): string {
    return readFileSync(join(this.dir, IDENTITY_FILES.softSerial), 'utf8').trim();
  }
}

function trustChanged(files: readonly string[]): TrustChangedError {
  return new TrustChangedError(
    `controller trust changed: ${files.join(' and ')} ${files.length > 1 ? 'differ' : 'differs'} from the file(s) this identity was bound to at onboarding; ` +
      "the device key refuses to sign and the node will not talk to any controller. Restore the original file(s), or re-onboard explicitly with 'lispnode onboard --clear'",
  );
}
