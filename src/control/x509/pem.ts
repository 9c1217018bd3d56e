// PEM framing of certificates. EVE hashes the PEM bytes of controller certs (ZCert.certHash,
// senderCertHash), so what we emit must be byte-stable: Go's pem.EncodeToMemory layout — 64
// base64 characters a line, LF endings, trailing newline.
const BEGIN = '-----BEGIN CERTIFICATE-----';
const END = '-----END CERTIFICATE-----';
const BLOCK = /-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]*)-----END CERTIFICATE-----/;

export function certPemFromDer(der: Uint8Array): string {
  const lines = Buffer.from(der).toString('base64').match(/.{1,64}/g) ?? [];
  return `${BEGIN}\n${lines.join('\n')}\n${END}\n`;
}

/**
 * The DER of the first CERTIFICATE block, as Go's pem.Decode would find it (text around the
 * block is ignored); undefined when there is none.
 */
export function certDerFromPem(pem: string | Uint8Array): Uint8Array | undefined {
  const text = typeof pem === 'string' ? pem : Buffer.from(pem).toString('latin1');
  const body = BLOCK.exec(text)?.[1];
  if (body === undefined) return undefined;
  const der = Buffer.from(body.replace(/\s+/g, ''), 'base64');
  return der.length > 0 ? new Uint8Array(der) : undefined;
}
