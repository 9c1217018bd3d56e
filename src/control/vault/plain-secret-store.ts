// Node secrets on a node without a TPM: UNENCRYPTED. EVE has no vault encryption without a TPM,
// and neither does lispnode; the secrets are mode-0600 files in a 0700 directory, protected only
// by file permissions and whatever protects the disk. `encrypted` is false so status can say so.
// File: 0x00 ‖ the secret's bytes (the format byte lets an encrypted store recognise the file).
import { FileSecretStore, SecretFormat } from './secret-store.js';

export class PlainSecretStore extends FileSecretStore {
  readonly encrypted = false;

  describe(): string {
    return `secrets in ${this.dir}, NOT ENCRYPTED (no TPM: 0600 files only)`;
  }

  protected encode(_name: string, secret: Uint8Array): Uint8Array {
    return Buffer.concat([Buffer.of(SecretFormat.Plain), secret]);
  }

  protected decode(_name: string, file: string, bytes: Uint8Array): Uint8Array {
    this.checkHeader(file, bytes, SecretFormat.Plain, 1);
    return new Uint8Array(bytes.subarray(1));
  }
}
