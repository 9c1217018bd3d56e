// Every packet the data plane does not forward is counted under a named reason. The names are
// the counters' names in status output and metrics; the hot path increments a typed array slot.
import { NamedCounters } from './named-counters.js';

export const DROP_REASONS = [
  // ITR: TUN -> UDP
  'itr-not-ip',
  'itr-map-cache-miss',
  'itr-negative-natively-forward',
  'itr-negative-send-map-request',
  'itr-negative-drop',
  'itr-negative-policy-denied',
  'itr-negative-auth-failure',
  'itr-no-reachable-locator',
  'itr-no-key',
  'itr-key-exhausted',
  'itr-too-big',
  'itr-send-failed',
  /** A bug met by the batch (the daemon's receive guard caught it): the batch is lost, the daemon lives. */
  'itr-handler-error',
  // ETR: UDP -> TUN
  'etr-truncated',
  'etr-control-in-data',
  'etr-unknown-instance',
  'etr-no-key',
  'etr-key-expired',
  'etr-replayed',
  'etr-too-old',
  'etr-too-short',
  'etr-icv-mismatch',
  'etr-tag-mismatch',
  'etr-bad-length',
  'etr-clear-refused',
  'etr-bad-inner-version',
  'etr-bad-inner-length',
  'etr-not-local-eid',
  'etr-unknown-source',
  'etr-spoofed-source',
  /** A crypto-EID source under a key not agreed with that EID (or in clear). */
  'etr-crypto-eid-unauthenticated',
  'etr-tun-write-failed',
  'etr-handler-error',
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

/** The data plane's drop counters, one per reason. */
export class DropCounters extends NamedCounters<DropReason> {
  constructor() {
    super(DROP_REASONS);
  }
}
