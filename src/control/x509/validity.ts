// Certificate validity windows. Both start a day before `now`, EVE's margin for a device whose
// clock lags the issuer's. X.509 times have whole seconds, so `now` is truncated first and a
// certificate's dates compare equal to the ones computed here.

const DAY_MS = 86_400_000;

export interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

const backdated = (now: Date): Date => new Date(Math.floor(now.getTime() / 1000) * 1000 - DAY_MS);

/** EVE's window (`createDeviceCertTemplate`): 20 calendar years from a day before `now`. */
export function eveValidity(now: Date): Validity {
  const notBefore = backdated(now);
  const notAfter = new Date(notBefore);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + 20); // Go's AddDate(20, 0, 0)
  return { notBefore, notAfter };
}

/** `days` days from a day before `now`. */
export function validityDays(now: Date, days: number): Validity {
  if (!Number.isInteger(days) || days < 1) throw new RangeError('a validity is a whole number of days, at least 1');
  const notBefore = backdated(now);
  return { notBefore, notAfter: new Date(notBefore.getTime() + days * DAY_MS) };
}
