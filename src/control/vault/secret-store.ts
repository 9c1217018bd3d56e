// Where node secrets live (ECO private keys, map-server credentials, controller tokens): one
// file per secret under a private directory. The layout, name rules and crash-safe writes are
// shared here; EncryptedSecretStore (a TPM vault) and PlainSecretStore (no TPM) differ only in how
// a secret becomes file bytes. Every file starts with a format byte, so each store recognises the
// other's files instead of misreading them.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensurePrivateDir, isTemporaryName, removeFileDurably, writeFileAtomic } from '../atomic-file.js';

export interface SecretStore {
  /** False for PlainSecretStore: the bytes sit on disk unencrypted. */
  readonly encrypted: boolean;
  readonly dir: string;
  /** One line for logs and status. */
  describe(): string;
  put(name: string, secret: Uint8Array): Promise<void>;
  /** Undefined if there is no such secret; SecretFileError if its file is damaged or not readable with this store's key. */
  get(name: string): Promise<Uint8Array | undefined>;
  /** Nothing to do if there is no such secret. */
  delete(name: string): Promise<void>;
  /** Secret names, sorted. */
  list(): Promise<string[]>;
}

/** The first byte of every secret file. */
export const SecretFormat = { Plain: 0x00, AesGcmV1: 0x01 } as const;
export type SecretFormat = (typeof SecretFormat)[keyof typeof SecretFormat];

export class SecretStoreError extends Error {
  override readonly name: string = 'SecretStoreError';
}

/** A name that cannot be a secret's file name (path separators, dots first, too long ...). */
export class SecretNameError extends SecretStoreError {
  override readonly name = 'SecretNameError';
}

export type SecretFileProblem = 'truncated' | 'format' | 'authentication';

/** A secret's file cannot give back the secret; `file` names it and `problem` says why. */
export class SecretFileError extends SecretStoreError {
  override readonly name = 'SecretFileError';
  constructor(
    readonly file: string,
    readonly problem: SecretFileProblem,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${file}: ${message}`, options);
  }
}

// A name is a single path component of safe characters that cannot be `.`/`..` or a temporary
// file, so no name reaches outside the directory or collides with a write in progress.
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const SUFFIX = '.secret';

export function checkSecretName(name: string): void {
  if (!NAME.test(name)) {
    throw new SecretNameError(`invalid secret name ${JSON.stringify(name)}: use 1-100 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit`);
  }
}

/** The file layout and I/O of both stores; subclasses turn a secret into file bytes and back. */
export abstract class FileSecretStore implements SecretStore {
  abstract readonly encrypted: boolean;

  constructor(readonly dir: string) {}

  abstract describe(): string;
  /** File bytes for `secret`, starting with the store's format byte. */
  protected abstract encode(name: string, secret: Uint8Array): Uint8Array;
  /** The secret in `bytes` (the file of `name`), or SecretFileError. */
  protected abstract decode(name: string, file: string, bytes: Uint8Array): Uint8Array;

  fileOf(name: string): string {
    checkSecretName(name);
    return join(this.dir, `${name}${SUFFIX}`);
  }

  async put(name: string, secret: Uint8Array): Promise<void> {
    const file = this.fileOf(name);
    await ensurePrivateDir(this.dir);
    await writeFileAtomic(file, this.encode(name, secret), 0o600);
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    const file = this.fileOf(name);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    return this.decode(name, file, bytes);
  }

  async delete(name: string): Promise<void> {
    await removeFileDurably(this.fileOf(name));
  }

  async list(): Promise<string[]> {
    let entries: string[];
    try {
      entries = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return entries
      .filter((entry) => entry.endsWith(SUFFIX) && !isTemporaryName(entry))
      .map((entry) => entry.slice(0, -SUFFIX.length))
      .filter((name) => NAME.test(name))
      .sort();
  }

  /** SecretFileError unless `bytes` is at least `minimum` long and starts with `format`. */
  protected checkHeader(file: string, bytes: Uint8Array, format: SecretFormat, minimum: number): void {
    if (bytes.length < minimum) throw new SecretFileError(file, 'truncated', `truncated secret file (${bytes.length} bytes, at least ${minimum} expected)`);
    if (bytes[0] !== format) {
      const seen = bytes[0] === SecretFormat.Plain ? 'an unencrypted secret (PlainSecretStore)' : bytes[0] === SecretFormat.AesGcmV1 ? 'an encrypted secret (EncryptedSecretStore)' : `format ${String(bytes[0])}`;
      throw new SecretFileError(file, 'format', `holds ${seen}, which this ${this.encrypted ? 'encrypted' : 'plain'} store does not read; put the secret again`);
    }
  }
}
