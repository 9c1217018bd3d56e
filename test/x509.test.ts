// Certificates: the EVE device templates signed through a P256Signer, the controller's PKI, and
// EVE's check of a controller cert set. OpenSSL is the independent oracle for what we issue
// (signatures, chains, the template fields, -purpose sslserver for Go's default EKU check), and
// a real node:https server and client for the TLS cert.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes, createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, get, type RequestOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { exportPrivateKeyPem, exportPublicKeyPem, generateP256KeyPair, importP256PrivateKey } from '../src/crypto/p256.js';
import type { P256Signer } from '../src/control/signer.js';
import {
  CertificateSigningError,
  ControllerCertType,
  createControllerPki,
  createDeviceCert,
  createOnboardingCert,
  eveValidity,
  issueCertificate,
  issueEdgeNodeCert,
  KeyUsageFlags,
  ExtendedKeyUsage,
  rotateSigningCert,
  softwareSigner,
  verifyChainToRoot,
  verifyControllerCertSet,
  type CertAndKey,
  type CertificateSpec,
  type ControllerCert,
} from '../src/control/x509/index.js';
import { testSigner } from './support/test-signer.js';

const DAY = 86_400_000;
const NOW = new Date(); // real time: node:https checks validity against the clock
const serial = (): Uint8Array => randomBytes(16);

const dir = mkdtempSync(join(tmpdir(), 'lispnode-x509-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function file(content: string): string {
  const path = join(dir, `${files++}.pem`);
  writeFileSync(path, content);
  return path;
}

function openssl(...args: string[]): { ok: boolean; out: string } {
  const run = spawnSync('openssl', args, { encoding: 'utf8' });
  return { ok: run.status === 0, out: `${run.stdout}${run.stderr}` };
}

const attime = (at: Date = NOW): string[] => ['-attime', String(Math.floor(at.getTime() / 1000))];

/**
 * `openssl verify` of `pem` with `caPem` as the only trust anchor. -check_ss_sig: OpenSSL trusts
 * an anchor's self-signature unchecked by default, and for a self-signed cert that is the point.
 */
function opensslVerify(caPem: string, pem: string, ...extra: string[]): { ok: boolean; out: string } {
  return openssl('verify', '-check_ss_sig', ...attime(), ...extra, '-CAfile', file(caPem), file(pem));
}

const certText = (pem: string): string => openssl('x509', '-noout', '-text', '-in', file(pem)).out;

function opensslDates(pem: string): { notBefore: Date; notAfter: Date } {
  const out = openssl('x509', '-noout', '-startdate', '-enddate', '-dateopt', 'iso_8601', '-in', file(pem)).out;
  const at = (field: string): Date => new Date((new RegExp(`${field}=(\\S+ \\S+)`).exec(out)?.[1] ?? '').replace(' ', 'T'));
  return { notBefore: at('notBefore'), notAfter: at('notAfter') };
}

/** The TBSCertificate bytes: the first element of the outer SEQUENCE, header included. */
function tbsOf(der: Uint8Array): Uint8Array {
  const header = (at: number): { headerLength: number; length: number } => {
    const first = der[at + 1] ?? 0;
    if (first < 0x80) return { headerLength: 2, length: first };
    let length = 0;
    for (let i = 0; i < (first & 0x7f); i++) length = length * 256 + (der[at + 2 + i] ?? 0);
    return { headerLength: 2 + (first & 0x7f), length };
  };
  const start = header(0).headerLength;
  const inner = header(start);
  return der.subarray(start, start + inner.headerLength + inner.length);
}

const spkiPem = (key: KeyObject): string => exportPublicKeyPem(key);
const certKeyPem = (pem: string): string => new X509Certificate(pem).publicKey.export({ format: 'pem', type: 'spki' }).toString();
const bytes = (pem: string): Uint8Array => new Uint8Array(Buffer.from(pem));
const rootSigner = (root: CertAndKey): P256Signer => softwareSigner(importP256PrivateKey(root.keyPem));

describe('device certs (EVE templates)', () => {
  test('the device cert is self-signed through the P256Signer and carries the EVE template', async () => {
    const signer = testSigner();
    const sn = serial();
    const pem = await createDeviceCert(signer, { now: NOW, serial: sn });

    assert.match(opensslVerify(pem, pem).out, /: OK/);
    const text = certText(pem);
    assert.match(text, /Issuer: O = The Linux Foundation, CN = EVE\n/);
    assert.match(text, /Subject: O = The Linux Foundation, CN = EVE\n/);
    assert.match(text, /Basic Constraints: critical\n\s+CA:TRUE\n/);
    assert.match(text, /Key Usage: critical\n\s+Digital Signature, Certificate Sign\n/);
    assert.match(text, /Extended Key Usage: \n\s+TLS Web Client Authentication, TLS Web Server Authentication\n/);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.equal(openssl('x509', '-noout', '-serial', '-in', file(pem)).out.trim(), `serial=${Buffer.from(sn).toString('hex').toUpperCase().replace(/^(00)+/, '')}`);
    assert.equal(certKeyPem(pem), spkiPem(signer.publicKey));

    const { notBefore, notAfter } = opensslDates(pem);
    assert.equal(notBefore.getTime(), Math.floor(NOW.getTime() / 1000) * 1000 - DAY);
    const twentyYears = new Date(notBefore);
    twentyYears.setUTCFullYear(notBefore.getUTCFullYear() + 20);
    assert.equal(notAfter.getTime(), twentyYears.getTime());

    // One signature, over exactly this certificate's TBS.
    assert.equal(signer.digests.length, 1);
    const der = new Uint8Array(new X509Certificate(pem).raw);
    assert.deepEqual(signer.digests[0], new Uint8Array(createHash('sha256').update(tbsOf(der)).digest()));
  });

  test('a signer whose key is not the one it claims yields a cert that fails verification, and is caught', async () => {
    const liar = testSigner(generateP256KeyPair(randomBytes), generateP256KeyPair(randomBytes));
    const error = await createDeviceCert(liar, { now: NOW, serial: serial() }).then(
      () => assert.fail('a mis-signed certificate was returned'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof CertificateSigningError);
    assert.equal(error.reason, 'signature-mismatch');
    assert.equal(liar.digests.length, 1);
    const evidence = error.certPem ?? assert.fail('no evidence kept');
    assert.equal(certKeyPem(evidence), spkiPem(liar.publicKey)); // the cert names the claimed key…
    const verdict = opensslVerify(evidence, evidence);
    assert.equal(verdict.ok, false); // …and OpenSSL agrees its signature is not by that key
    assert.match(verdict.out, /signature failure/);
  });

  test('signer failures surface unchanged; a signature that is not 64 bytes is refused', async () => {
    const pair = generateP256KeyPair(randomBytes);
    const refusing: P256Signer = { publicKey: pair.publicKey, signDigest: () => Promise.reject(new Error('TPM_RC_AUTH_FAIL')) };
    await assert.rejects(createDeviceCert(refusing, { now: NOW, serial: serial() }), /TPM_RC_AUTH_FAIL/);
    const der: P256Signer = { publicKey: pair.publicKey, signDigest: () => Promise.resolve(new Uint8Array(70)) };
    await assert.rejects(createDeviceCert(der, { now: NOW, serial: serial() }), (e: unknown) => e instanceof CertificateSigningError && e.reason === 'bad-signature-length');
    await assert.rejects(createDeviceCert(softwareSigner(pair), { now: NOW, serial: new Uint8Array(16) }), RangeError);
  });

  for (const [kind, commonName] of [
    ['ecdh', 'Device ECDH certificate'],
    ['attestation', 'Device Attestation certificate'],
  ] as const) {
    test(`the ${kind} EdgeNode cert is issued by the device cert and signed by the device key`, async () => {
      const device = testSigner();
      const devicePem = await createDeviceCert(device, { now: NOW, serial: serial() });
      const subjectKey = generateP256KeyPair(randomBytes).publicKey;
      const pem = await issueEdgeNodeCert(device, devicePem, subjectKey, kind, { now: NOW, serial: serial() });

      assert.equal(device.digests.length, 2);
      assert.match(opensslVerify(devicePem, pem).out, /: OK/);
      assert.match(opensslVerify(devicePem, pem, '-purpose', 'sslserver').out, /: OK/);
      const text = certText(pem);
      assert.match(text, /Issuer: O = The Linux Foundation, CN = EVE\n/);
      assert.match(text, new RegExp(`Subject: CN = ${commonName}\\n`));
      assert.match(text, /Key Usage: critical\n\s+Digital Signature, Key Encipherment\n/);
      assert.match(text, /Extended Key Usage: \n\s+TLS Web Server Authentication\n/);
      assert.doesNotMatch(text, /CA:TRUE/);
      assert.equal(certKeyPem(pem), spkiPem(subjectKey));
      assert.deepEqual(opensslDates(pem), opensslDates(devicePem)); // same window as the device cert
      // The AKI names the device cert's key.
      const ski = /Subject Key Identifier: \n\s+(\S+)/.exec(certText(devicePem))?.[1];
      assert.ok(ski);
      assert.match(text, new RegExp(`Authority Key Identifier: \\n\\s+${ski}`));
      // Under another device cert it does not verify.
      const stranger = await createDeviceCert(testSigner(), { now: NOW, serial: serial() });
      assert.equal(opensslVerify(stranger, pem).ok, false);
    });
  }

  test('the onboarding cert is self-signed with its own software key, CN as asked', async () => {
    const { certPem, keyPem } = await createOnboardingCert({ commonName: 'lispnode onboarding, batch 7', now: NOW, random: randomBytes });
    assert.match(opensslVerify(certPem, certPem).out, /: OK/);
    assert.match(certText(certPem), /Subject: CN = "lispnode onboarding, batch 7"\n/);
    assert.equal(openssl('pkey', '-pubout', '-in', file(keyPem)).out, certKeyPem(certPem));
  });
});

describe('controller PKI', async () => {
  const pki = await createControllerPki({ dnsName: 'localhost', ipAddresses: ['127.0.0.1'], now: NOW, random: randomBytes });

  test('signing, ECDH and TLS certs verify against the root, and pass the serverAuth purpose check', () => {
    for (const leaf of [pki.signing, pki.ecdh, pki.tls]) {
      assert.match(opensslVerify(pki.root.certPem, leaf.certPem).out, /: OK/);
      assert.match(opensslVerify(pki.root.certPem, leaf.certPem, '-purpose', 'sslserver').out, /: OK/);
      assert.equal(openssl('pkey', '-pubout', '-in', file(leaf.keyPem)).out, certKeyPem(leaf.certPem));
    }
    const root = certText(pki.root.certPem);
    assert.match(root, /Basic Constraints: critical\n\s+CA:TRUE\n/);
    assert.match(root, /Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
    const { notBefore, notAfter } = opensslDates(pki.root.certPem);
    assert.equal(notAfter.getUTCFullYear() - notBefore.getUTCFullYear(), 20);

    const signing = certText(pki.signing.certPem);
    assert.match(signing, /Key Usage: critical\n\s+Digital Signature\n/);
    assert.doesNotMatch(signing, /Extended Key Usage|CA:TRUE/);
    const ecdh = certText(pki.ecdh.certPem);
    assert.match(ecdh, /Key Usage: critical\n\s+Key Agreement\n/);
    assert.doesNotMatch(ecdh, /Extended Key Usage|CA:TRUE/);
    const tls = certText(pki.tls.certPem);
    assert.match(tls, /Extended Key Usage: \n\s+TLS Web Server Authentication\n/);
    assert.match(tls, /Subject Alternative Name: \n\s+DNS:localhost, IP Address:127.0.0.1\n/);
  });

  test('the TLS cert serves node:https to a client that trusts only the root', async () => {
    const server = createServer({ cert: pki.tls.certPem, key: pki.tls.keyPem }, (_req, res) => res.end('hello'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const fetch = (options: RequestOptions & { servername?: string }): Promise<string> =>
      new Promise((resolve, reject) => {
        get({ host: '127.0.0.1', port, path: '/', agent: false, ...options }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve(body));
        }).on('error', reject);
      });
    try {
      assert.equal(await fetch({ ca: pki.root.certPem, servername: 'localhost' }), 'hello');
      assert.equal(await fetch({ ca: pki.root.certPem }), 'hello'); // by IP SAN
      // What EVE's V2 client negotiates: TLS 1.2, ECDHE-ECDSA-AES256-GCM-SHA384.
      assert.equal(await fetch({ ca: pki.root.certPem, servername: 'localhost', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' }), 'hello');
      await assert.rejects(fetch({ ca: pki.root.certPem, servername: 'controller.example' }), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
      const other = await createControllerPki({ dnsName: 'localhost', ipAddresses: ['127.0.0.1'], now: NOW, random: randomBytes });
      await assert.rejects(fetch({ ca: other.root.certPem, servername: 'localhost' }), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    } finally {
      server.close();
    }
  });
});

describe('verifyControllerCertSet (EVE VerifyLeavesCertChain)', async () => {
  const pki = await createControllerPki({ dnsName: 'localhost', ipAddresses: ['127.0.0.1'], now: NOW, random: randomBytes });
  const other = await createControllerPki({ dnsName: 'localhost', ipAddresses: [], now: NOW, random: randomBytes });
  const { SIGNING, INTERMEDIATE, ECDH_EXCHANGE } = ControllerCertType;
  const zcert = (type: number, pem: string): ControllerCert => ({ type, pem: bytes(pem) });
  const good = [zcert(SIGNING, pki.signing.certPem), zcert(ECDH_EXCHANGE, pki.ecdh.certPem)];

  /** A cert under `issuer` for a fresh key; `spec` overrides the signing template. */
  async function issue(issuer: CertAndKey, spec: Partial<CertificateSpec> = {}): Promise<CertAndKey> {
    const pair = generateP256KeyPair(randomBytes);
    const certPem = await issueCertificate(
      rootSigner(issuer),
      { subject: [{ CN: ['test leaf'] }], publicKey: pair.publicKey, serial: serial(), ...eveValidity(NOW), keyUsage: KeyUsageFlags.digitalSignature, ...spec },
      issuer.certPem,
    );
    return { certPem, keyPem: exportPrivateKeyPem(pair) };
  }

  function refused(result: ReturnType<typeof verifyControllerCertSet>, reason: string, message: RegExp): void {
    assert.equal(result.ok, false, 'the set was accepted');
    if (result.ok) return;
    assert.equal(result.error.reason, reason, result.error.message);
    assert.match(result.error.message, message);
  }

  test('a proper set verifies: signing and ECDH keys and dates come back, PEM bytes untouched', () => {
    // Order does not matter, and the root sent as an INTERMEDIATE is harmless.
    const set = [zcert(INTERMEDIATE, pki.root.certPem), good[1] as ControllerCert, good[0] as ControllerCert];
    const result = verifyControllerCertSet(set, pki.root.certPem, NOW);
    assert.ok(result.ok, result.ok ? '' : result.error.message);
    assert.deepEqual(result.signing.pem, bytes(pki.signing.certPem));
    assert.equal(spkiPem(result.signing.publicKey), certKeyPem(pki.signing.certPem));
    assert.equal(spkiPem(result.ecdh.publicKey), certKeyPem(pki.ecdh.certPem));
    assert.deepEqual(result.signing.notBefore, opensslDates(pki.signing.certPem).notBefore);
  });

  test('leaves under an intermediate CA need it in the set', async () => {
    const intermediate = await issue(pki.root, { subject: [{ CN: ['intermediate CA'] }], isCA: true, keyUsage: KeyUsageFlags.keyCertSign });
    const signing = await issue(intermediate);
    const ecdh = await issue(intermediate, { keyUsage: KeyUsageFlags.keyAgreement });
    assert.match(openssl('verify', ...attime(), '-CAfile', file(pki.root.certPem), '-untrusted', file(intermediate.certPem), file(signing.certPem)).out, /: OK/);
    const set = [zcert(SIGNING, signing.certPem), zcert(ECDH_EXCHANGE, ecdh.certPem)];
    assert.ok(verifyControllerCertSet([...set, zcert(INTERMEDIATE, intermediate.certPem)], pki.root.certPem, NOW).ok);
    refused(verifyControllerCertSet(set, pki.root.certPem, NOW), 'untrusted-chain', /SIGNING cert #0: .*issued by "CN=intermediate CA", which is neither the root nor a given intermediate/);
    // verifyChainToRoot is the same walk, for one leaf.
    const chain = verifyChainToRoot(signing.certPem, [intermediate.certPem], pki.root.certPem, NOW);
    assert.ok(chain.ok);
    assert.equal(chain.chain.length, 3);
  });

  test("another CA's signing cert: untrusted-chain", () => {
    assert.equal(opensslVerify(pki.root.certPem, other.signing.certPem).ok, false);
    const set = [zcert(SIGNING, other.signing.certPem), good[1] as ControllerCert];
    refused(verifyControllerCertSet(set, pki.root.certPem, NOW), 'untrusted-chain', /^SIGNING cert #0: the signature on "O=lispnode, CN=lispnode controller signing" does not verify under the key of "O=lispnode, CN=lispnode controller root CA"/);
  });

  test('an issuer that is not a CA: untrusted-chain', async () => {
    const underLeaf = await issue(pki.signing);
    const set = [zcert(SIGNING, underLeaf.certPem), zcert(INTERMEDIATE, pki.signing.certPem), good[1] as ControllerCert];
    assert.equal(openssl('verify', ...attime(), '-CAfile', file(pki.root.certPem), '-untrusted', file(pki.signing.certPem), file(underLeaf.certPem)).ok, false);
    refused(verifyControllerCertSet(set, pki.root.certPem, NOW), 'untrusted-chain', /"O=lispnode, CN=lispnode controller signing" signs certificates but is not a CA/);
  });

  test('set shape: two SIGNING, no SIGNING, no ECDH, type 0 or a device type', () => {
    const rotated = zcert(SIGNING, other.signing.certPem);
    refused(verifyControllerCertSet([...good, rotated], pki.root.certPem, NOW), 'many-signing', /2 SIGNING certs \(#0, #2\)/);
    refused(verifyControllerCertSet([good[1] as ControllerCert], pki.root.certPem, NOW), 'no-signing', /no SIGNING/);
    refused(verifyControllerCertSet([good[0] as ControllerCert], pki.root.certPem, NOW), 'no-ecdh', /no ECDH_EXCHANGE/);
    refused(verifyControllerCertSet([...good, zcert(0, pki.root.certPem)], pki.root.certPem, NOW), 'unknown-type', /cert #2 has type 0/);
    refused(verifyControllerCertSet([zcert(13, pki.ecdh.certPem), ...good], pki.root.certPem, NOW), 'unknown-type', /cert #0 has type 13/);
    refused(verifyControllerCertSet([], pki.root.certPem, NOW), 'no-signing', /no SIGNING/);
  });

  test('expired at now (and not yet valid): expired, as OpenSSL says at the same time', () => {
    const notAfter = opensslDates(pki.signing.certPem).notAfter;
    const later = new Date(notAfter.getTime() + DAY);
    assert.match(openssl('verify', ...attime(later), '-CAfile', file(pki.root.certPem), file(pki.signing.certPem)).out, /certificate has expired/);
    refused(verifyControllerCertSet(good, pki.root.certPem, later), 'expired', new RegExp(`^SIGNING cert #0: "O=lispnode, CN=lispnode controller signing" expired at ${notAfter.toISOString()}`));
    assert.ok(verifyControllerCertSet(good, pki.root.certPem, notAfter).ok); // the last valid instant
    refused(verifyControllerCertSet(good, pki.root.certPem, new Date(NOW.getTime() - 2 * DAY)), 'expired', /is not valid before/);
  });

  test('an ECDH cert with EKU clientAuth only: bad-eku; serverAuth only is fine', async () => {
    const clientOnly = await issue(pki.root, { keyUsage: KeyUsageFlags.keyAgreement, extKeyUsage: [ExtendedKeyUsage.clientAuth] });
    assert.equal(opensslVerify(pki.root.certPem, clientOnly.certPem).ok, true);
    assert.equal(opensslVerify(pki.root.certPem, clientOnly.certPem, '-purpose', 'sslserver').ok, false);
    refused(verifyControllerCertSet([good[0] as ControllerCert, zcert(ECDH_EXCHANGE, clientOnly.certPem)], pki.root.certPem, NOW), 'bad-eku', /^ECDH_EXCHANGE cert #1: "CN=test leaf" has ExtKeyUsage 1\.3\.6\.1\.5\.5\.7\.3\.2 without serverAuth/);
    const serverOnly = await issue(pki.root, { extKeyUsage: [ExtendedKeyUsage.serverAuth] });
    assert.ok(verifyControllerCertSet([zcert(SIGNING, serverOnly.certPem), good[1] as ControllerCert], pki.root.certPem, NOW).ok);
  });

  test('anti-rollback: a rotated signing cert older than the saved one is refused, a newer one accepted', async () => {
    const saved = opensslDates(pki.signing.certPem).notBefore;
    const older = await rotateSigningCert(pki.root, { now: new Date(NOW.getTime() - 10 * DAY), random: randomBytes });
    const newer = await rotateSigningCert(pki.root, { now: new Date(NOW.getTime() + 1000), random: randomBytes });
    const withSigning = (pem: string): ControllerCert[] => [zcert(SIGNING, pem), good[1] as ControllerCert];
    assert.ok(verifyControllerCertSet(withSigning(older.certPem), pki.root.certPem, NOW).ok); // fine without history
    refused(verifyControllerCertSet(withSigning(older.certPem), pki.root.certPem, NOW, { signingNotBefore: saved }), 'rollback', /^SIGNING cert #0 \("O=lispnode, CN=lispnode controller signing"\) was issued .* before the saved one/);
    const accepted = verifyControllerCertSet(withSigning(newer.certPem), pki.root.certPem, NOW, { signingNotBefore: saved });
    assert.ok(accepted.ok);
    assert.ok(accepted.signing.notBefore > saved);
    assert.ok(verifyControllerCertSet(good, pki.root.certPem, NOW, { signingNotBefore: saved }).ok); // the same cert again
    assert.match(opensslVerify(pki.root.certPem, newer.certPem).out, /: OK/);
  });

  test('garbage: malformed', () => {
    refused(verifyControllerCertSet([zcert(SIGNING, 'not a certificate'), good[1] as ControllerCert], pki.root.certPem, NOW), 'malformed', /^SIGNING cert #0: the leaf is not a PEM certificate/);
    refused(verifyControllerCertSet([...good, zcert(INTERMEDIATE, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')], pki.root.certPem, NOW), 'malformed', /intermediate #0/);
    refused(verifyControllerCertSet(good, 'nope', NOW), 'malformed', /the root/);
  });
});
