// Where the node's three P-256 keys live, as in EVE (eve-security.md §2.2): in the TPM when
// there is one, else as PEM files. Both stores behave alike to their callers: the device key is
// created with an authorization value and refuses to sign under any other (TPM userAuth, or the
// passphrase of an encrypted PKCS#8 file), which the node uses to notice that the controller's
// root CA or server file changed underneath it.
import type { KeyObject } from 'node:crypto';
import type { KeyStoreKind, P256Signer } from '../signer.js';

export type KeyRole = 'device' | 'ecdh' | 'attestation';

export interface KeyStore {
  readonly kind: KeyStoreKind;
  /** One line for logs and `status`: which store, where. */
  describe(): string;
  has(role: KeyRole): Promise<boolean>;
  /** Creates the role's key (KeyExistsError if there is one) and returns its public key. */
  create(role: KeyRole, auth?: Uint8Array): Promise<KeyObject>;
  /** KeyMissingError if the role has no key. */
  publicKey(role: KeyRole): Promise<KeyObject>;
  /**
   * A signer for the device key (the only signing role: the attestation key is restricted to
   * TPM quotes and the ECDH key only agrees keys — KeyUsageError). Its signDigest rejects with
   * KeyRefusedError when `auth` is not the key's.
   */
  signer(role: KeyRole, auth?: Uint8Array): Promise<P256Signer>;
  /** Deletes the role's key; nothing to do if there is none. */
  remove(role: KeyRole): Promise<void>;
}

export class KeyStoreError extends Error {
  override readonly name: string = 'KeyStoreError';
  constructor(
    readonly role: KeyRole,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The key exists but will not sign: the authorization presented is not the one it was made with. */
export class KeyRefusedError extends KeyStoreError {
  override readonly name = 'KeyRefusedError';
  constructor(role: KeyRole, options?: ErrorOptions) {
    super(role, `the ${role} key refused to sign: its authorization no longer matches the one it was created with`, options);
  }
}

export class KeyMissingError extends KeyStoreError {
  override readonly name = 'KeyMissingError';
}

export class KeyExistsError extends KeyStoreError {
  override readonly name = 'KeyExistsError';
}

export class KeyUsageError extends KeyStoreError {
  override readonly name = 'KeyUsageError';
}

/** The largest authorization value: a TPM object's auth is at most its name digest (SHA-256). */
export const MAX_KEY_AUTH_BYTES = 32;

/**
 * The authorization as the TPM sees it: the TPM drops trailing zero bytes of an auth value (on
 * swtpm "ab\0" and "ab" open the same key), so the file store does the same, and an empty one
 * is no authorization at all.
 */
export function normalizeAuth(auth: Uint8Array | undefined): Uint8Array | undefined {
  if (auth === undefined) return undefined;
  let end = auth.length;
  while (end > 0 && auth[end - 1] === 0) end--;
  if (end > MAX_KEY_AUTH_BYTES) throw new RangeError(`a key authorization is at most ${MAX_KEY_AUTH_BYTES} bytes`);
  return end === 0 ? undefined : auth.subarray(0, end);
}

export function checkSigningRole(role: KeyRole): void {
  if (role === 'attestation') throw new KeyUsageError(role, 'the attestation key is restricted: it signs only TPM quotes, not caller digests');
  if (role === 'ecdh') throw new KeyUsageError(role, 'the ECDH key is for key agreement only, it does not sign');
}
