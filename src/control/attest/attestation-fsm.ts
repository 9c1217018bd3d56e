// EVE's attestation state machine (pkg/pillar/attest; eve-security.md §4), sans-IO: events in,
// actions out, time as a parameter. One round is nonce → quote over PCRs 0–15 with that nonce
// → verdict → escrow of the vault key. Failures wait 15 s and start again; a 403 from /config
// (the controller no longer accepts our integrity token) restarts it, deferred while a round is
// in flight, as EVE does. The integrity token lives only here, in memory: valid for this boot.

/** EVE's retryTimeInterval. */
export const ATTEST_RETRY_MS = 15_000;

/** What the controller said about a quote (ZAttestResponseCode, by meaning). */
export type QuoteVerdict =
  | { readonly kind: 'success'; readonly token: Uint8Array; readonly keys: readonly Uint8Array[] }
  | { readonly kind: 'refused'; readonly code: 'nonce-mismatch' | 'no-cert' | 'quote-failed' | 'invalid'; readonly detail: string };

export type AttestEvent =
  | { readonly type: 'start' }
  | { readonly type: 'restart'; readonly why: string } // a 403 from /config
  | { readonly type: 'nonce'; readonly nonce: Uint8Array }
  | { readonly type: 'quote'; readonly quote: unknown } // the driver's quote, passed through untouched
  | { readonly type: 'verdict'; readonly verdict: QuoteVerdict }
  | { readonly type: 'escrowed' }
  | { readonly type: 'escrow-refused'; readonly detail: string } // ITOKEN_MISMATCH
  | { readonly type: 'failed'; readonly step: AttestStep; readonly detail: string } // network, TPM, controller status
  | { readonly type: 'tick' };

export type AttestStep = 'nonce' | 'quote' | 'verdict' | 'escrow';

export type AttestAction =
  | { readonly type: 'request-nonce' }
  | { readonly type: 'make-quote'; readonly nonce: Uint8Array }
  | { readonly type: 'send-quote'; readonly quote: unknown }
  /** Hands the escrowed keys the controller returned to the vault (empty on first contact). */
  | { readonly type: 'deliver-keys'; readonly keys: readonly Uint8Array[] }
  | { readonly type: 'escrow'; readonly token: Uint8Array }
  | { readonly type: 'log'; readonly level: 'info' | 'warn' | 'error'; readonly message: string };

export type AttestPhase = 'idle' | 'nonce-wait' | 'quote-wait' | 'verdict-wait' | 'escrow-wait' | 'complete' | 'retry-wait';

export class AttestationFsm {
  private phase: AttestPhase = 'idle';
  private token: Uint8Array | undefined;
  private retryAt = 0;
  private restartPending = false;
  private lastError: string | undefined;
  private attempts = 0;
  private successes = 0;

  /** The integrity token of the last successful attestation, for /config and ticket requests. */
  get integrityToken(): Uint8Array | undefined {
    return this.token;
  }

  get state(): { readonly phase: AttestPhase; readonly attested: boolean; readonly lastError: string | undefined; readonly attempts: number; readonly successes: number } {
    return { phase: this.phase, attested: this.token !== undefined, lastError: this.lastError, attempts: this.attempts, successes: this.successes };
  }

  /** When the driver should deliver a `tick` (undefined: nothing is waiting on time). */
  get wakeAt(): number | undefined {
    return this.phase === 'retry-wait' ? this.retryAt : undefined;
  }

  handle(event: AttestEvent, now: number): AttestAction[] {
    switch (event.type) {
      case 'start':
        return this.phase === 'idle' ? this.begin() : [];
      case 'restart':
        // In flight: finish this round first (EVE's restartRequestPending).
        if (this.phase === 'complete' || this.phase === 'idle') {
          this.token = undefined;
          return [{ type: 'log', level: 'warn', message: `attestation restarted: ${event.why}` }, ...this.begin()];
        }
        this.restartPending = true;
        return [];
      case 'nonce':
        if (this.phase !== 'nonce-wait') return [];
        this.phase = 'quote-wait';
        return [{ type: 'make-quote', nonce: event.nonce }];
      case 'quote':
        if (this.phase !== 'quote-wait') return [];
        this.phase = 'verdict-wait';
        return [{ type: 'send-quote', quote: event.quote }];
      case 'verdict':
        return this.phase === 'verdict-wait' ? this.verdict(event.verdict, now) : [];
      case 'escrowed':
        if (this.phase !== 'escrow-wait') return [];
        return this.complete();
      case 'escrow-refused':
        if (this.phase !== 'escrow-wait') return [];
        this.token = undefined;
        return this.retry(now, `escrow refused: ${event.detail}`);
      case 'failed':
        if (!this.waitingFor(event.step)) return [];
        // A failed escrow leaves the attestation itself valid: the token stays, escrow is retried.
        if (event.step !== 'escrow') this.token = undefined;
        return this.retry(now, `${event.step}: ${event.detail}`);
      case 'tick':
        if (this.phase !== 'retry-wait' || now < this.retryAt) return [];
        return this.token !== undefined ? this.escrowAgain() : this.begin();
    }
  }

  private waitingFor(step: AttestStep): boolean {
    return (
      (step === 'nonce' && this.phase === 'nonce-wait') ||
      (step === 'quote' && this.phase === 'quote-wait') ||
      (step === 'verdict' && this.phase === 'verdict-wait') ||
      (step === 'escrow' && this.phase === 'escrow-wait')
    );
  }

  private begin(): AttestAction[] {
    this.phase = 'nonce-wait';
    this.restartPending = false;
    this.attempts++;
    return [{ type: 'request-nonce' }];
  }

  private verdict(verdict: QuoteVerdict, now: number): AttestAction[] {
    if (verdict.kind === 'refused') {
      this.token = undefined;
      return this.retry(now, `the controller refused the quote (${verdict.code}): ${verdict.detail}`);
    }
    this.token = verdict.token;
    this.phase = 'escrow-wait';
    return [{ type: 'deliver-keys', keys: verdict.keys }, { type: 'escrow', token: verdict.token }];
  }

  private escrowAgain(): AttestAction[] {
    this.phase = 'escrow-wait';
    return [{ type: 'escrow', token: this.token ?? new Uint8Array() }];
  }

  private complete(): AttestAction[] {
    this.phase = 'complete';
    this.successes++;
    const wasError = this.lastError !== undefined;
    this.lastError = undefined;
    const actions: AttestAction[] = [{ type: 'log', level: 'info', message: wasError ? 'attested (after earlier failures)' : 'attested' }];
    if (this.restartPending) return [...actions, ...this.begin()];
    return actions;
  }

  private retry(now: number, error: string): AttestAction[] {
    this.phase = 'retry-wait';
    this.retryAt = now + ATTEST_RETRY_MS;
    this.restartPending = false;
    this.lastError = error;
    return [{ type: 'log', level: 'error', message: `attestation failed, retrying in ${ATTEST_RETRY_MS / 1000} s: ${error}` }];
  }
}
