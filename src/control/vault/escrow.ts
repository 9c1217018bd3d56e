// Escrow of the vault key with the controller (eve-security.md §5): the key leaves the node
// encrypted under a key only this TPM can recompute, so the controller stores it without being
// able to read it, and hands it back after a successful attestation when a firmware or OS
// upgrade changed the PCRs and the local unseal fails.
//
// Wrap key (as EVE): Z = TPM2_ECDH_ZGen(ECDH key 0x81000005, point = the device key's public
// point), k = SHA-256(Zx ‖ Zy). Both private halves live in the TPM, so only it can compute Z. The
// ZGen is symmetric (device key × ECDH point gives the same Z) but the device key's side needs its
// authorization (the trust binding), so the ECDH key's side — no authorization — is used.
//
// Cipher: AES-256-GCM with a random 12-byte IV and a 16-byte tag, AAD = a fixed label and the
// version, where EVE uses AES-256-CFB with an all-zero IV. CFB has no integrity: a blob from
// another TPM or a flipped bit decrypts to garbage that only the separate digest catches, and a
// zero IV under a static key is deterministic. eve-api names ATTEST_VOLUME_KEY_VERSION_V1 "AES-GCM
// with TPM-bound key"; this is that version. The blob is therefore not interchangeable with EVE's
// (LEGACY) blobs, and a LEGACY blob is refused.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { createCipheriv, createDecipheriv, createHash, randomBytes, type KeyObject } from 'node:crypto';
import {
  AttestVolumeKeyDataSchema,
  AttestVolumeKeySchema,
  AttestVolumeKeyType,
  AttestVolumeKeyVersion,
  type AttestVolumeKey,
  type AttestVolumeKeyData,
} from '../proto/index.js';
import { eccPointOf } from '../tpm/marshal.js';
import { ECDH_KEY_HANDLE, type Tpm } from '../tpm/tpm.js';
import { EscrowDigestError, EscrowKeyTypeError, EscrowMalformedError, EscrowNotThisTpmError } from './errors.js';
import { VAULT_KEY_BYTES } from './sealed-key.js';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const DIGEST_BYTES = 32;
/** encrypted_key = IV ‖ ciphertext ‖ tag. */
const ENCRYPTED_KEY_BYTES = IV_BYTES + VAULT_KEY_BYTES + TAG_BYTES;
const AAD = Buffer.concat([Buffer.from('lispnode vault key escrow\0', 'utf8'), Buffer.of(AttestVolumeKeyVersion.V1)]);

const sha256 = (data: Uint8Array): Buffer => createHash('sha256').update(data).digest();

/** k = SHA-256(Zx ‖ Zy) with Z = ECDH(ECDH key, device key's point), computed in the TPM. */
async function wrapKey(tpm: Tpm, deviceKeyPublic: KeyObject): Promise<Buffer> {
  const z = await tpm.ecdhZGen(ECDH_KEY_HANDLE, eccPointOf(deviceKeyPublic));
  const k = createHash('sha256').update(z.x).update(z.y).digest();
  z.x.fill(0);
  z.y.fill(0);
  return k;
}

/** The AttestVolumeKey EVE sends in AttestStorageKeys: key_type VSK, key = marshalled AttestVolumeKeyData. */
export async function escrowVaultKey(tpm: Tpm, key: Uint8Array, deviceKeyPublic: KeyObject): Promise<AttestVolumeKey> {
  if (key.length !== VAULT_KEY_BYTES) throw new RangeError(`a vault key is ${VAULT_KEY_BYTES} bytes, got ${key.length}`);
  const k = await wrapKey(tpm, deviceKeyPublic);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', k, iv).setAAD(AAD);
  const encrypted = Buffer.concat([iv, cipher.update(key), cipher.final(), cipher.getAuthTag()]);
  k.fill(0);
  const data = create(AttestVolumeKeyDataSchema, {
    encryptedKey: encrypted,
    digestSha256: sha256(key),
    version: AttestVolumeKeyVersion.V1,
  });
  return create(AttestVolumeKeySchema, { keyType: AttestVolumeKeyType.VSK, key: toBinary(AttestVolumeKeyDataSchema, data) });
}

function parseKeyData(volumeKey: AttestVolumeKey): AttestVolumeKeyData {
  if (volumeKey.keyType !== AttestVolumeKeyType.VSK) {
    throw new EscrowKeyTypeError(`the escrowed key has key_type ${volumeKey.keyType}, not ATTEST_VOLUME_KEY_TYPE_VSK: it is not a vault key`);
  }
  if (volumeKey.key.length === 0) throw new EscrowMalformedError('the escrowed key is empty: the controller holds no key for this device (first contact)');
  let data: AttestVolumeKeyData;
  try {
    data = fromBinary(AttestVolumeKeyDataSchema, volumeKey.key);
  } catch (error) {
    throw new EscrowMalformedError(`the escrowed key is not an AttestVolumeKeyData (${(error as Error).message})`, { cause: error });
  }
  if (data.version !== AttestVolumeKeyVersion.V1) {
    throw new EscrowMalformedError(`the escrowed key has version ${data.version}; only ATTEST_VOLUME_KEY_VERSION_V1 (AES-GCM with a TPM-bound key) is supported`);
  }
  if (data.encryptedKey.length !== ENCRYPTED_KEY_BYTES || data.digestSha256.length !== DIGEST_BYTES) {
    throw new EscrowMalformedError(
      `the escrowed key has ${data.encryptedKey.length} encrypted and ${data.digestSha256.length} digest bytes, expected ${ENCRYPTED_KEY_BYTES} and ${DIGEST_BYTES}`,
    );
  }
  return data;
}

/** Decrypts an escrowed vault key in this TPM and checks its digest. */
export async function recoverEscrowedKey(tpm: Tpm, volumeKey: AttestVolumeKey, deviceKeyPublic: KeyObject): Promise<Uint8Array> {
  const data = parseKeyData(volumeKey);
  const iv = data.encryptedKey.subarray(0, IV_BYTES);
  const ciphertext = data.encryptedKey.subarray(IV_BYTES, IV_BYTES + VAULT_KEY_BYTES);
  const tag = data.encryptedKey.subarray(IV_BYTES + VAULT_KEY_BYTES);
  const k = await wrapKey(tpm, deviceKeyPublic);
  let key: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', k, iv).setAAD(AAD).setAuthTag(tag);
    key = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (error) {
    throw new EscrowNotThisTpmError(
      'the escrowed key does not authenticate: it was wrapped by another TPM or for another device key, or it was altered; ' +
        'this node cannot recover its vault from it',
      { cause: error },
    );
  } finally {
    k.fill(0);
  }
  if (!sha256(key).equals(Buffer.from(data.digestSha256))) {
    key.fill(0);
    throw new EscrowDigestError('the escrowed key decrypted, but its SHA-256 does not match the digest stored with it: the escrow record is inconsistent');
  }
  return new Uint8Array(key);
}
