// `lispnode eid …`: crypto-EID keys, derivation and signatures for operators and scripts.
// Each function takes parsed options and returns what to print; cli.ts does the printing.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import {
  deriveCryptoEid,
  exportPrivateKeyPem,
  exportPublicKeyPem,
  generateP256KeyPair,
  importP256PrivateKey,
  importP256PublicKey,
  publicKeyJsonValue,
  signEid,
  verifyCryptoEid,
  verifyEidSignature,
  type EidDerivation,
  type EidPrefix,
} from '../crypto/index.js';
import { formatIpv6, parseIpv6 } from '../lisp/ip-text.js';

/** A usage or input error: the CLI prints the message and exits 2. */
export class CommandError extends Error {}

export interface EidOptions {
  readonly iid: string;
  readonly prefix: string;
  readonly derivation: string;
}

interface Parsed {
  readonly iid: number;
  readonly prefix: EidPrefix;
  readonly derivation: EidDerivation;
}

function parseEidOptions(o: EidOptions): Parsed {
  const iid = Number(o.iid);
  if (!/^\d+$/.test(o.iid) || !Number.isSafeInteger(iid) || iid > 0xffffffff) throw new CommandError(`--iid: expected an instance-id 0..4294967295, got '${o.iid}'`);
  if (o.derivation !== 'eve' && o.derivation !== 'lispers') throw new CommandError(`--derivation: expected 'eve' or 'lispers', got '${o.derivation}'`);
  const [text, lengthText, ...rest] = o.prefix.split('/');
  const address = text ? parseIpv6(text) : undefined;
  const length = Number(lengthText);
  if (!address || rest.length > 0 || !/^\d+$/.test(lengthText ?? '')) throw new CommandError(`--prefix: expected an IPv6 prefix such as fd00::/8, got '${o.prefix}'`);
  if (length % 8 !== 0 || length < 8 || length > 120) throw new CommandError(`--prefix: the length must be a multiple of 8 between 8 and 120, got ${length}`);
  return { iid, prefix: { address, length }, derivation: o.derivation };
}

function readKeyFile(path: string, option: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new CommandError(`${option} ${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}

/** A public key from a PEM or DER file holding a public key, a private key, or a certificate. */
function loadPublicKey(path: string, option: string): ReturnType<typeof importP256PublicKey> {
  const data = readKeyFile(path, option);
  const text = data.toString('latin1');
  try {
    if (text.includes('PRIVATE KEY')) {
      const pair = importP256PrivateKey(text);
      return { publicKey: pair.publicKey, spki: pair.spki };
    }
    return importP256PublicKey(text.includes('-----BEGIN') ? text : new Uint8Array(data));
  } catch (error) {
    throw new CommandError(`${option} ${path}: not a P-256 public key, private key or certificate (${(error as Error).message})`);
  }
}

function loadPrivateKey(path: string, option: string): ReturnType<typeof importP256PrivateKey> {
  const data = readKeyFile(path, option);
  const text = data.toString('latin1');
  try {
    return importP256PrivateKey(text.includes('-----BEGIN') ? text : new Uint8Array(data));
  } catch (error) {
    throw new CommandError(`${option} ${path}: not a P-256 private key in PEM or PKCS#8 DER (${(error as Error).message})`);
  }
}

function describe(iid: number, eid: Uint8Array, hashEidName: string): Record<string, string> {
  return { eid: `[${iid}]${formatIpv6(eid)}`, 'hash-eid': `[${iid}]'${hashEidName}'` };
}

function render(fields: Readonly<Record<string, string>>, json: boolean): string[] {
  return json ? [JSON.stringify(fields)] : Object.entries(fields).map(([k, v]) => `${k.padEnd(11)} ${v}`);
}

export function eidNew(o: EidOptions & { readonly key?: string; readonly json?: boolean }): string[] {
  const p = parseEidOptions(o);
  const pair = generateP256KeyPair((n) => randomBytes(n));
  const { eid, hashEidName } = deriveCryptoEid({ iid: p.iid, spki: pair.spki, prefix: p.prefix, derivation: p.derivation });
  const fields: Record<string, string> = { ...describe(p.iid, eid, hashEidName), 'public-key': publicKeyJsonValue(pair.publicKey) };
  if (o.key) {
    try {
      writeFileSync(o.key, exportPrivateKeyPem(pair), { mode: 0o600, flag: 'wx' });
    } catch (error) {
      throw new CommandError(`--key ${o.key}: cannot create (${(error as NodeJS.ErrnoException).code ?? String(error)}; an existing key is never overwritten)`);
    }
    fields['private-key'] = o.key;
    return render(fields, o.json === true);
  }
  // Without --key the private key goes to stdout, for a pipe into a secret store.
  return [...render(fields, o.json === true), ...(o.json ? [] : exportPrivateKeyPem(pair).trimEnd().split('\n'))];
}

export function eidDerive(o: EidOptions & { readonly pubkey: string; readonly json?: boolean }): string[] {
  const p = parseEidOptions(o);
  const { spki, publicKey } = loadPublicKey(o.pubkey, '--pubkey');
  const { eid, hashEidName } = deriveCryptoEid({ iid: p.iid, spki, prefix: p.prefix, derivation: p.derivation });
  return render({ ...describe(p.iid, eid, hashEidName), 'public-key': publicKeyJsonValue(publicKey) }, o.json === true);
}

export function eidSign(o: EidOptions & { readonly key: string; readonly eid?: string }): string[] {
  const p = parseEidOptions(o);
  const pair = loadPrivateKey(o.key, '--key');
  const eid = o.eid ? parseEid(o.eid) : deriveCryptoEid({ iid: p.iid, spki: pair.spki, prefix: p.prefix, derivation: p.derivation }).eid;
  return [signEid(pair.scalar, { iid: p.iid, text: formatIpv6(eid) })];
}

/** Exit status 0 when valid, 1 otherwise; the lines say why. */
export function eidVerify(o: EidOptions & { readonly pubkey: string; readonly eid: string; readonly signature: string; readonly binding?: boolean }): { lines: string[]; valid: boolean } {
  const p = parseEidOptions(o);
  const { publicKey, spki } = loadPublicKey(o.pubkey, '--pubkey');
  const eid = parseEid(o.eid);
  const text = formatIpv6(eid);
  const signatureOk = verifyEidSignature(publicKey, { iid: p.iid, text }, o.signature);
  const lines = [`signature   ${signatureOk ? 'valid' : 'INVALID'} for "[${p.iid}]${text}"`];
  let valid = signatureOk;
  if (o.binding) {
    const bound = verifyCryptoEid({ iid: p.iid, eid, spki, prefix: p.prefix, derivation: p.derivation });
    lines.push(`binding     ${bound ? 'valid' : 'INVALID'}: the EID ${bound ? 'is' : 'is not'} derived from this key (${p.derivation}, ${o.prefix})`);
    valid &&= bound;
  }
  return { lines, valid };
}

function parseEid(text: string): Uint8Array {
  const eid = parseIpv6(text.replace(/^\[\d+\]/, ''));
  if (!eid) throw new CommandError(`--eid: expected an IPv6 EID, got '${text}'`);
  return eid;
}

export function publicKeyPem(path: string): string {
  return exportPublicKeyPem(loadPublicKey(path, '--pubkey').publicKey);
}
