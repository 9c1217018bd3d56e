// The controller's attestation state in its SQLite file (tables next to `devices`): each device's
// attestation mode and PCR policy (explicit, or the values pinned by its first attestation), the
// certificates it sent with ATTEST_REQ_CERT, and the vault keys it escrowed. Integrity tokens
// and nonces are deliberately not here (attestation-tokens.ts, attestation-nonces.ts).
import type Database from 'better-sqlite3';
import { pcrValuesToJson, type AttestationMode, type PcrValues } from './attestation-policy.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS device_attestation (
  device_uuid TEXT PRIMARY KEY,
  mode TEXT NOT NULL CHECK (mode IN ('none', 'tpm')),
  pcr_policy TEXT,
  pinned_pcrs TEXT
);
CREATE TABLE IF NOT EXISTS device_attest_certs (
  device_uuid TEXT NOT NULL,
  cert_type INTEGER NOT NULL,
  cert_pem TEXT NOT NULL,
  PRIMARY KEY (device_uuid, cert_type)
);
CREATE TABLE IF NOT EXISTS escrowed_keys (device_uuid TEXT PRIMARY KEY, keys BLOB NOT NULL);
`;

export interface DeviceAttestation {
  readonly mode: AttestationMode;
  /** Operator-given expected values; when absent the policy is "learn". */
  readonly policy: PcrValues | undefined;
  /** Learn mode: the values the first successful attestation pinned. */
  readonly pinned: PcrValues | undefined;
}

/** A certificate as the device sent it: its ZCertType and its PEM. */
export interface DeviceCert {
  readonly type: number;
  readonly pem: string;
}

/** `conflict`: a different certificate of that type is already stored (they are immutable). */
export type StoreCertsOutcome = { readonly kind: 'stored'; readonly added: number } | { readonly kind: 'conflict'; readonly type: number };

function valuesFromJson(text: string | null): PcrValues | undefined {
  if (text === null) return undefined;
  return new Map(Object.entries(JSON.parse(text) as Record<string, string>).map(([index, value]) => [Number(index), value]));
}

export class AttestationStore {
  constructor(private readonly db: Database.Database) {
    db.exec(SCHEMA);
  }

  /** Sets the mode and the explicit policy (undefined: learn); keeps nothing learned before. */
  setMode(uuid: string, mode: AttestationMode, policy: PcrValues | undefined): void {
    this.db
      .prepare('INSERT INTO device_attestation (device_uuid, mode, pcr_policy, pinned_pcrs) VALUES (?, ?, ?, NULL) ON CONFLICT(device_uuid) DO UPDATE SET mode = excluded.mode, pcr_policy = excluded.pcr_policy, pinned_pcrs = NULL')
      .run(uuid, mode, policy === undefined ? null : pcrValuesToJson(policy));
  }

  /** A device without a row attests in mode `none`, as every device did before attestation. */
  attestation(uuid: string): DeviceAttestation {
    const row = this.db.prepare('SELECT mode, pcr_policy, pinned_pcrs FROM device_attestation WHERE device_uuid = ?').get(uuid) as
      | { mode: AttestationMode; pcr_policy: string | null; pinned_pcrs: string | null }
      | undefined;
    return row ? { mode: row.mode, policy: valuesFromJson(row.pcr_policy), pinned: valuesFromJson(row.pinned_pcrs) } : { mode: 'none', policy: undefined, pinned: undefined };
  }

  /** Learn mode: pins `values` unless some are pinned already (two racing first quotes: one wins). */
  pin(uuid: string, values: PcrValues): boolean {
    return this.db.prepare('UPDATE device_attestation SET pinned_pcrs = ? WHERE device_uuid = ? AND pinned_pcrs IS NULL').run(pcrValuesToJson(values), uuid).changes === 1;
  }

  /** Forgets learned values, so the next successful attestation pins afresh (after an upgrade). */
  unpin(uuid: string): void {
    this.db.prepare('UPDATE device_attestation SET pinned_pcrs = NULL WHERE device_uuid = ?').run(uuid);
  }

  cert(uuid: string, type: number): string | undefined {
    return (this.db.prepare('SELECT cert_pem FROM device_attest_certs WHERE device_uuid = ? AND cert_type = ?').get(uuid, type) as { cert_pem: string } | undefined)?.cert_pem;
  }

  /**
   * Stores the certificates, all or none: a type already stored keeps its certificate for good
   * (a compromised device must not swap a TPM key for a soft one), so a different one conflicts.
   */
  storeCerts(uuid: string, certs: readonly DeviceCert[]): StoreCertsOutcome {
    return this.db.transaction((): StoreCertsOutcome => {
      let added = 0;
      for (const { type, pem } of certs) {
        const stored = this.cert(uuid, type);
        if (stored !== undefined && stored !== pem) return { kind: 'conflict', type };
        if (stored === undefined) added += this.db.prepare('INSERT INTO device_attest_certs (device_uuid, cert_type, cert_pem) VALUES (?, ?, ?)').run(uuid, type, pem).changes;
      }
      return { kind: 'stored', added };
    })();
  }

  /** The escrowed keys as the attestation layer marshalled them. */
  escrowedKeys(uuid: string): Uint8Array | undefined {
    const row = this.db.prepare('SELECT keys FROM escrowed_keys WHERE device_uuid = ?').get(uuid) as { keys: Buffer } | undefined;
    return row && new Uint8Array(row.keys);
  }

  setEscrowedKeys(uuid: string, keys: Uint8Array): void {
    this.db.prepare('INSERT INTO escrowed_keys (device_uuid, keys) VALUES (?, ?) ON CONFLICT(device_uuid) DO UPDATE SET keys = excluded.keys').run(uuid, Buffer.from(keys));
  }

  /**
   * A cleared (re-onboarding) device comes back with new keys: its certificates, escrowed keys
   * and learned PCR values go; the operator's mode and explicit policy stay.
   */
  forgetDevice(uuid: string): void {
    this.db.prepare('DELETE FROM device_attest_certs WHERE device_uuid = ?').run(uuid);
    this.db.prepare('DELETE FROM escrowed_keys WHERE device_uuid = ?').run(uuid);
    this.unpin(uuid);
  }
}
