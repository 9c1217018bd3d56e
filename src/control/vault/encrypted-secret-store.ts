// Node secrets encrypted under the vault key. Each file is
//   0x01 ‖ IV (12, random) ‖ AES-256-GCM ciphertext ‖ tag (16)
// with AAD = the format byte ‖ the secret's name, so a file renamed or copied over another
// secret's fails authentication instead of handing out the wrong secret. The store key is not the
// vault key itself but HKDF-SHA256(vault key, info "lispnode secret store v1"): the vault key may
// get other uses (volume encryption), and one key per purpose keeps them from interacting.
import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { VAULT_KEY_BYTES } from './sealed-key.js';
import { FileSecretStore, SecretFileError, SecretFormat } from './secret-store.js';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + IV_BYTES;
export const SECRET_STORE_KDF_INFO = 'lispnode secret store v1';

/** The store key derived from the vault key (HKDF-SHA256, no salt: the vault key is uniformly random). */
export function deriveSecretStoreKey(vaultKey: Uint8Array): KeyObject {
  if (vaultKey.length !== VAULT_KEY_BYTES) throw new RangeError(`a vault key is ${VAULT_KEY_BYTES} bytes, got ${vaultKey.length}`);
  return createSecretKey(Buffer.from(hkdfSync('sha256', vaultKey, new Uint8Array(0), SECRET_STORE_KDF_INFO, 32)));
}

const aad = (name: string): Buffer => Buffer.concat([Buffer.of(SecretFormat.AesGcmV1), Buffer.from(name, 'utf8')]);

export class EncryptedSecretStore extends FileSecretStore {
  readonly encrypted = true;
  private readonly key: KeyObject;

  constructor(dir: string, vaultKey: Uint8Array) {
    super(dir);
    this.key = deriveSecretStoreKey(vaultKey);
  }

  describe(): string {
    return `secrets in ${this.dir}, AES-256-GCM under a key derived from the TPM-sealed vault key`;
  }

  protected encode(name: string, secret: Uint8Array): Uint8Array {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv).setAAD(aad(name));
    return Buffer.concat([Buffer.of(SecretFormat.AesGcmV1), iv, cipher.update(secret), cipher.final(), cipher.getAuthTag()]);
  }

  protected decode(name: string, file: string, bytes: Uint8Array): Uint8Array {
    this.checkHeader(file, bytes, SecretFormat.AesGcmV1, HEADER_BYTES + TAG_BYTES);
    const iv = bytes.subarray(1, HEADER_BYTES);
    const ciphertext = bytes.subarray(HEADER_BYTES, bytes.length - TAG_BYTES);
    const tag = bytes.subarray(bytes.length - TAG_BYTES);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, iv).setAAD(aad(name)).setAuthTag(tag);
      return new Uint8Array(Buffer.concat([decipher.update(ciphertext), decipher.final()]));
    } catch (error) {
      throw new SecretFileError(
        file,
        'authentication',
        `secret "${name}" does not authenticate: the file was altered, truncated, copied from another secret, or written under another vault key; put the secret again`,
        { cause: error },
      );
    }
  }
}
