// The reference controller's state in one SQLite file (better-sqlite3, synchronous and
// transactional): pre-registered devices (onboarding certificate + serial), the device
// certificate each one registered, its mesh definition, and its side-channel bundle counter;
// attestation state lives in tables of its own (attestation-store.ts) in the same file.
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { AttestationStore } from './attestation-store.js';

export interface DeviceRecord {
  readonly uuid: string;
  readonly serial: string;
  /** SHA-256 of the onboarding certificate's DER: how /register finds the pre-registration. */
  readonly onboardCertHash: Uint8Array;
  readonly onboardCertPem: string;
  /** The device certificate registered with /register, if any. */
  readonly deviceCertPem: string | undefined;
  /** SHA-256 of the device certificate's DER: how device-signed envelopes find their sender. */
  readonly deviceCertHash: Uint8Array | undefined;
  /** The device's mesh definition (JSON of a MeshSpec). */
  readonly meshJson: string;
  readonly bundleVersion: number;
}

interface DeviceRow {
  uuid: string;
  serial: string;
  onboard_cert_hash: Buffer;
  onboard_cert_pem: string;
  device_cert_pem: string | null;
  device_cert_hash: Buffer | null;
  mesh_json: string;
  bundle_version: number;
  retired_not_before: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS devices (
  uuid TEXT PRIMARY KEY,
  serial TEXT NOT NULL,
  onboard_cert_hash BLOB NOT NULL,
  onboard_cert_pem TEXT NOT NULL,
  device_cert_pem TEXT,
  device_cert_hash BLOB UNIQUE,
  mesh_json TEXT NOT NULL,
  bundle_version INTEGER NOT NULL DEFAULT 0,
  retired_not_before INTEGER NOT NULL DEFAULT 0,
  UNIQUE (onboard_cert_hash, serial)
);
CREATE TABLE IF NOT EXISTS retired_certs (device_uuid TEXT NOT NULL, cert_hash BLOB NOT NULL, PRIMARY KEY (device_uuid, cert_hash));
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

function toRecord(row: DeviceRow): DeviceRecord {
  return {
    uuid: row.uuid,
    serial: row.serial,
    onboardCertHash: new Uint8Array(row.onboard_cert_hash),
    onboardCertPem: row.onboard_cert_pem,
    deviceCertPem: row.device_cert_pem ?? undefined,
    deviceCertHash: row.device_cert_hash ? new Uint8Array(row.device_cert_hash) : undefined,
    meshJson: row.mesh_json,
    bundleVersion: row.bundle_version,
  };
}

/**
 * `rollback`: the certificate is one this device already retired (re-onboarding), or older,
 * so a stolen old identity cannot register again.
 */
export type RegisterOutcome = 'registered' | 'repeated' | 'conflict' | 'rollback' | 'unknown';

export class ControllerStore {
  private readonly db: Database.Database;
  /** Attestation modes, PCR policies, device attestation certificates, escrowed keys. */
  readonly attestation: AttestationStore;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.exec(SCHEMA);
    this.attestation = new AttestationStore(this.db);
  }

  close(): void {
    this.db.close();
  }

  /** Pre-registers a device; its UUID is assigned now, so the operator can refer to it at once. */
  addDevice(serial: string, onboardCertHash: Uint8Array, onboardCertPem: string, meshJson: string): DeviceRecord {
    const uuid = randomUUID();
    this.db
      .prepare('INSERT INTO devices (uuid, serial, onboard_cert_hash, onboard_cert_pem, mesh_json) VALUES (?, ?, ?, ?, ?)')
      .run(uuid, serial, Buffer.from(onboardCertHash), onboardCertPem, meshJson);
    return this.device(uuid) ?? (() => { throw new Error('the device vanished after insertion'); })();
  }

  device(uuid: string): DeviceRecord | undefined {
    const row = this.db.prepare('SELECT * FROM devices WHERE uuid = ?').get(uuid) as DeviceRow | undefined;
    return row && toRecord(row);
  }

  /** The device whose uuid, or serial, is `key`. */
  findDevice(key: string): DeviceRecord | undefined {
    const row = this.db.prepare('SELECT * FROM devices WHERE uuid = ? OR serial = ?').get(key, key) as DeviceRow | undefined;
    return row && toRecord(row);
  }

  deviceByCertHash(hash: Uint8Array): DeviceRecord | undefined {
    const row = this.db.prepare('SELECT * FROM devices WHERE device_cert_hash = ?').get(Buffer.from(hash)) as DeviceRow | undefined;
    return row && toRecord(row);
  }

  devices(): DeviceRecord[] {
    return (this.db.prepare('SELECT * FROM devices ORDER BY serial').all() as DeviceRow[]).map(toRecord);
  }

  /**
   * /register: the onboarding certificate and serial must match a pre-registration; a device
   * certificate already registered for them stays unless it is the same one (EVE's 409).
   */
  register(onboardCertHash: Uint8Array, serial: string, device: { readonly pem: string; readonly hash: Uint8Array; readonly notBefore: Date }): RegisterOutcome {
    const { pem: deviceCertPem, hash: deviceCertHash } = device;
    return this.db.transaction((): RegisterOutcome => {
      const row = this.db.prepare('SELECT * FROM devices WHERE onboard_cert_hash = ? AND serial = ?').get(Buffer.from(onboardCertHash), serial) as DeviceRow | undefined;
      if (!row) return 'unknown';
      if (row.device_cert_hash) return Buffer.from(deviceCertHash).equals(row.device_cert_hash) ? 'repeated' : 'conflict';
      // X.509 times have one-second resolution: an equal NotBefore is a re-onboarding in the same
      // second, unless it is the retired certificate itself.
      const retired = this.db.prepare('SELECT 1 FROM retired_certs WHERE device_uuid = ? AND cert_hash = ?').get(row.uuid, Buffer.from(deviceCertHash));
      if (device.notBefore.getTime() < row.retired_not_before || retired !== undefined) return 'rollback';
      this.db.prepare('UPDATE devices SET device_cert_pem = ?, device_cert_hash = ? WHERE uuid = ?').run(deviceCertPem, Buffer.from(deviceCertHash), row.uuid);
      return 'registered';
    })();
  }

  /**
   * Forgets a device's registered certificate, so that a re-onboarded node can register again;
   * remembers it and its NotBefore so that neither it nor an older one ever can. The attestation
   * certificates, escrowed keys and learned PCRs of the old identity go with it.
   */
  clearRegistration(uuid: string, retiredNotBefore: Date | undefined): boolean {
    return this.db.transaction(() => {
      this.attestation.forgetDevice(uuid);
      this.db.prepare('INSERT OR IGNORE INTO retired_certs (device_uuid, cert_hash) SELECT uuid, device_cert_hash FROM devices WHERE uuid = ? AND device_cert_hash IS NOT NULL').run(uuid);
      return (
        this.db
          .prepare('UPDATE devices SET device_cert_pem = NULL, device_cert_hash = NULL, retired_not_before = MAX(retired_not_before, ?) WHERE uuid = ?')
          .run(retiredNotBefore?.getTime() ?? 0, uuid).changes === 1
      );
    })();
  }

  setMesh(uuid: string, meshJson: string): boolean {
    return this.db.prepare('UPDATE devices SET mesh_json = ? WHERE uuid = ?').run(meshJson, uuid).changes === 1;
  }

  /** The next side-channel bundle version for the device (1, 2, 3 …), counted atomically. */
  nextBundleVersion(uuid: string): number {
    return this.db.transaction(() => {
      this.db.prepare('UPDATE devices SET bundle_version = bundle_version + 1 WHERE uuid = ?').run(uuid);
      const row = this.db.prepare('SELECT bundle_version FROM devices WHERE uuid = ?').get(uuid) as { bundle_version: number } | undefined;
      if (!row) throw new Error(`no device ${uuid}`);
      return row.bundle_version;
    })();
  }

  setting(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setSetting(key: string, value: string): void {
    this.db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }
}
