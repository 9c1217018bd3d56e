// EVE's no-TPM fallback: the keys as PEM files (`<role>.key.pem`, mode 0600, beside a public
// `<role>.pub.pem` so the public key can be read without the authorization). A key created with
// an authorization is PKCS#8-encrypted under a passphrase derived from it (its hex), so a wrong
// authorization cannot open it — the software analogue of the TPM's userAuth. That protects
// against a changed authorization, not against a thief who can compute the right one.
import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { exportPrivateKeyPem, exportPublicKeyPem, generateP256KeyPair, importP256PublicKey, p256FromScalar } from '../../crypto/p256.js';
import { writeFileAtomic } from '../atomic-file.js';
import type { P256Signer } from '../signer.js';
import { checkSha256Digest } from '../tpm/tpm.js';
import { softwareSigner } from '../x509/software-signer.js';
import { checkSigningRole, KeyExistsError, KeyMissingError, KeyRefusedError, normalizeAuth, type KeyRole, type KeyStore } from './key-store.js';

const passphrase = (auth: Uint8Array): string => Buffer.from(auth).toString('hex');

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

export class FileKeyStore implements KeyStore {
  readonly kind = 'file';

  constructor(readonly dir: string) {}

  describe(): string {
    return `key files in ${this.dir} (no TPM; the device key file is encrypted under its authorization)`;
  }

  private keyFile(role: KeyRole): string {
    return join(this.dir, `${role}.key.pem`);
  }

  private publicFile(role: KeyRole): string {
    return join(this.dir, `${role}.pub.pem`);
  }

  async has(role: KeyRole): Promise<boolean> {
    try {
      await stat(this.keyFile(role));
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  async create(role: KeyRole, auth?: Uint8Array): Promise<KeyObject> {
    const normalized = normalizeAuth(auth);
    if (await this.has(role)) throw new KeyExistsError(role, `${this.keyFile(role)} already exists`);
    const pair = generateP256KeyPair(randomBytes);
    const pem =
      normalized === undefined
        ? exportPrivateKeyPem(pair)
        : pair.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: passphrase(normalized) }).toString();
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // The private file last: once it exists (has() is true) the public one is there too.
    await writeFileAtomic(this.publicFile(role), exportPublicKeyPem(pair.publicKey), 0o644);
    await writeFileAtomic(this.keyFile(role), pem, 0o600);
    return pair.publicKey;
  }

  async publicKey(role: KeyRole): Promise<KeyObject> {
    try {
      return importP256PublicKey(await readFile(this.publicFile(role), 'utf8')).publicKey;
    } catch (error) {
      if (isMissing(error)) throw new KeyMissingError(role, `no ${role} key: ${this.publicFile(role)} does not exist`, { cause: error });
      throw error;
    }
  }

  async signer(role: KeyRole, auth?: Uint8Array): Promise<P256Signer> {
    checkSigningRole(role);
    const normalized = normalizeAuth(auth);
    const publicKey = await this.publicKey(role);
    // Opened on first use, like the TPM key, so both stores refuse at signDigest.
    let opened: Promise<P256Signer> | undefined;
    return {
      publicKey,
      signDigest: async (digest) => {
        checkSha256Digest(digest);
        opened ??= this.open(role, normalized, publicKey);
        return (await opened).signDigest(digest);
      },
    };
  }

  private async open(role: KeyRole, auth: Uint8Array | undefined, publicKey: KeyObject): Promise<P256Signer> {
    let pem: string;
    try {
      pem = await readFile(this.keyFile(role), 'utf8');
    } catch (error) {
      if (isMissing(error)) throw new KeyMissingError(role, `no ${role} key: ${this.keyFile(role)} does not exist`, { cause: error });
      throw error;
    }
    // As the TPM does, a key without authorization refuses one presented, and vice versa.
    if (pem.includes('BEGIN ENCRYPTED PRIVATE KEY') !== (auth !== undefined)) throw new KeyRefusedError(role);
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(auth === undefined ? { key: pem, format: 'pem' } : { key: pem, format: 'pem', passphrase: passphrase(auth) });
    } catch (error) {
      throw new KeyRefusedError(role, { cause: error });
    }
    const d = privateKey.export({ format: 'jwk' }).d;
    if (d === undefined) throw new TypeError(`${this.keyFile(role)} holds no private scalar`);
    const pair = p256FromScalar(Buffer.from(d, 'base64url'));
    if (!pair.publicKey.equals(publicKey)) throw new TypeError(`${this.keyFile(role)} and ${this.publicFile(role)} are not one key pair`);
    return softwareSigner(pair);
  }

  async remove(role: KeyRole): Promise<void> {
    await rm(this.keyFile(role), { force: true });
    await rm(this.publicFile(role), { force: true });
  }
}
