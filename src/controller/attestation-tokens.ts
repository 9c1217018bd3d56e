// Integrity tokens: what a successful attestation earns a device (ZAttestQuoteResp.integrity_token),
// echoed in every ConfigRequest, AttestStorageKeys and attestation-ticket request. One current
// token per device, bound to the device certificate it attested with; a refusal revokes it.
// In memory only, like EVE's own copy (/run, tmpfs: valid for one boot): a controller restart
// makes every device attest again (its /config gets 403, which EVE answers by attesting), and no
// token ever rests in the database or its backups.
import { randomBytes, timingSafeEqual } from 'node:crypto';

interface Current {
  readonly token: Buffer;
  readonly certHash: string;
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

export class TokenBook {
  private readonly current = new Map<string, Current>();

  /** A fresh token replacing any earlier one: 64 hex characters (ASCII), like Adam's. */
  issue(device: string, certHash: Uint8Array): Uint8Array {
    const token = Buffer.from(randomBytes(32).toString('hex'), 'ascii');
    this.current.set(device, { token, certHash: hex(certHash) });
    return new Uint8Array(token);
  }

  /** Whether `token` is the device's current one, earned with this device certificate. */
  isCurrent(device: string, certHash: Uint8Array | undefined, token: Uint8Array): boolean {
    const entry = this.current.get(device);
    if (!entry || certHash === undefined || entry.certHash !== hex(certHash) || entry.token.length !== token.length) return false;
    return timingSafeEqual(entry.token, token);
  }

  /** True if the device had a token. */
  revoke(device: string): boolean {
    return this.current.delete(device);
  }
}
