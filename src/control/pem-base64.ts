// Two PEM files travel as ASCII standard base64 inside `bytes` fields: AuthContainer.senderCert
// (the onboarding cert, register only) and ZRegisterMsg.pemCert (the device cert). ZCert.cert,
// by contrast, carries the raw PEM.

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** PEM file bytes (or text) as the base64 ASCII bytes EVE puts in those fields. */
export function base64Pem(pem: string | Uint8Array): Uint8Array {
  const bytes = typeof pem === 'string' ? Buffer.from(pem, 'utf8') : Buffer.from(pem);
  return new Uint8Array(Buffer.from(bytes.toString('base64'), 'ascii'));
}

/**
 * The PEM file bytes back, or undefined when the field is not well-formed standard base64 (Node's
 * own decoder would silently skip stray characters).
 */
export function pemFromBase64(field: Uint8Array): Uint8Array | undefined {
  const text = Buffer.from(field).toString('latin1');
  if (!BASE64.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text, 'base64'));
}
