// The xTR's signed key agreement (docs/key-agreement.md), from its configuration: with a
// crypto-EID and encryption on, its key offers and answers are signed by the crypto-EID key, and
// crypto-EIDs (the configured prefix) get and give keys only through signed agreements.
import { sign } from 'node:crypto';
import type { EidDerivation, EidPrefix as CryptoEidPrefix } from '../../crypto/crypto-eid.js';
import type { P256KeyPair } from '../../crypto/p256.js';
import type { EtrOptions } from '../../lisp/etr.js';
import { parseIpv6 } from '../../lisp/ip-text.js';
import type { CryptoEidScope, KeyAgreementIdentity } from '../../lisp/xtr-control/key-agreement-proof.js';
import type { OpeningMeta } from '../../lisp/xtr-control/key-exchange.js';
import type { XtrConfig } from '../config/xtr-config.js';

export interface KeyAuthentication {
  readonly identity: KeyAgreementIdentity;
  readonly scope: CryptoEidScope;
}

/** Undefined without a crypto-EID or without encryption: key agreement is then RFC 8061's, unsigned. */
export function keyAuthentication(config: Pick<XtrConfig, 'cryptoEid' | 'encryption' | 'instanceId'>): KeyAuthentication | undefined {
  return config.cryptoEid && config.encryption.mode === 'required' ? keyAuthenticationFor(config.cryptoEid, config.instanceId) : undefined;
}

export function keyAuthenticationFor(c: { readonly key: P256KeyPair; readonly eid: string; readonly prefix: CryptoEidPrefix; readonly derivation: EidDerivation }, instanceId: number): KeyAuthentication {
  const eid = parseIpv6(c.eid);
  if (!eid) throw new RangeError(`not an IPv6 crypto-EID: ${c.eid}`);
  const privateKey = c.key.privateKey;
  return {
    // node:crypto's ECDSA: 0.05 ms a signature against 0.7 ms for the RFC 6979 signer of
    // ecdsa.ts, and an ETR signs every answer to a signed offer. Its nonce comes from OpenSSL's
    // CSPRNG, which is what a randomized ECDSA nonce needs.
    identity: { instanceId, eid, spki: c.key.spki, sign: (message) => new Uint8Array(sign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' })) },
    scope: { prefix: c.prefix, derivation: c.derivation },
  };
}

/** The ETR's check that a crypto-EID source came under a key agreed with that EID. */
export function cryptoSources(auth: KeyAuthentication, instanceId: number): NonNullable<EtrOptions['cryptoSources']> {
  return {
    prefix: { instanceId, family: 6, address: auth.scope.prefix.address, length: auth.scope.prefix.length },
    eidOf: (meta) => {
      const a = (meta as OpeningMeta | undefined)?.authentication;
      return a?.kind === 'crypto-eid' ? a.eid : undefined;
    },
  };
}
