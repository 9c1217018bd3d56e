// What the status socket answers to `{"command":"status"}`, per role: plain JSON values (no
// bigints, no bytes), times as "seconds ago / seconds left" so a reader needs no clock. The same
// shapes feed `lispnode status` (status-format.ts) and the tests.
import type { NodeStats } from '../node-daemon.js';

export interface DaemonHeader {
  readonly pid: number;
  readonly configFile: string;
  readonly startedAt: string;
  readonly uptimeSeconds: number;
  readonly reloads: ReloadSummary;
}

export interface ReloadSummary {
  readonly applied: number;
  readonly refused: number;
  /** The last attempt: ISO time, outcome and what it changed or why it was refused. */
  readonly last: { readonly at: string; readonly outcome: 'applied' | 'unchanged' | 'refused' | 'failed'; readonly detail: readonly string[] } | undefined;
}

export interface Traffic {
  readonly packets: number;
  readonly bytes: number;
}

export interface MapCacheRow {
  readonly eidPrefix: string;
  readonly origin: 'static' | 'learned';
  readonly kind: 'positive' | 'negative';
  readonly action: string;
  /** Null for static entries (they never expire). */
  readonly ttlSeconds: number | null;
  readonly locators: readonly {
    readonly address: string;
    readonly port: number;
    readonly priority: number;
    readonly weight: number;
    /** Live: the record's R bit, then RLOC probing's verdict. */
    readonly reachable: boolean;
    /** Whether RLOC probing watches this locator (false: static, or not probed yet). */
    readonly probed: boolean;
  }[];
}

export interface SessionRow {
  readonly peer: string;
  /** out: we seal to the peer (ITR side); in: we open from it (ETR side). */
  readonly direction: 'out' | 'in';
  /** static: keys from the configuration; exchanged: RFC 8061 key exchange. */
  readonly origin: 'static' | 'exchanged';
  readonly keyId: number | null;
  readonly keyAgeSeconds: number | null;
  /** Packets sealed under the current key (out); null where not counted (in). */
  readonly packets: number | null;
  /** How the key agreement was authenticated: 'static key', 'unauthenticated', 'authenticated (crypto-EID …)'. */
  readonly authentication: string;
  /** In: keys agreed but not yet proven by a packet (a rekey under way, or offers nobody used). */
  readonly candidates?: number;
}

export interface RegistrationRow {
  readonly mapServer: string;
  readonly state: 'registered' | 'pending' | 'failing';
  readonly lastRegisterSecondsAgo: number | null;
  readonly lastMapNotifySecondsAgo: number | null;
  /** Consecutive register rounds without a verified Map-Notify. */
  readonly unanswered: number;
  /** Map-Registers sent, verified Map-Notifies taken, register rounds that went unanswered. */
  readonly sent: number;
  readonly notified: number;
  readonly failed: number;
}

export interface XtrStatusReport extends DaemonHeader {
  readonly role: 'xtr';
  readonly tun: { readonly name: string; readonly mtu: number };
  readonly locator: string;
  readonly localEids: readonly string[];
  readonly traffic: {
    readonly tun: { readonly in: Traffic; readonly out: Traffic };
    readonly underlay: { readonly in: Traffic; readonly out: Traffic };
  };
  readonly drops: Readonly<Record<string, number>>;
  readonly dropsTotal: number;
  readonly mapCache: { readonly size: number; readonly entries: readonly MapCacheRow[]; readonly truncated: boolean };
  readonly sessions: readonly SessionRow[];
  readonly registrations: readonly RegistrationRow[];
  readonly control: {
    readonly resolver: Readonly<Record<string, number>>;
    readonly responder: Readonly<Record<string, number>>;
    readonly notifyRefused: Readonly<Record<string, number>>;
    readonly unsupported: number;
    readonly heldDiscarded: number;
    /** Every datagram received on UDP 4342, each under exactly one outcome. */
    readonly datagrams: DatagramOutcomes;
    /** Replies not sent, by reason (a refused destination, a failed send). */
    readonly sendRefused: Readonly<Record<string, number>>;
  };
}

export interface DatagramOutcomes {
  readonly received: number;
  readonly outcomes: Readonly<Record<string, number>>;
}

export interface MapServerRegistrationRow {
  /** `[iid]prefix/len`, or `[iid]'hash-…'` for a crypto-EID's public-key record. */
  readonly eid: string;
  readonly site: string;
  readonly rlocs: readonly string[];
  readonly registeredBy: string;
  readonly proxyReply: boolean;
  readonly keyId: number;
  readonly proof: string;
  readonly firstRegisteredSecondsAgo: number;
  readonly lastRegisteredSecondsAgo: number;
  readonly expiresInSeconds: number;
}

export interface MapServerStatusReport extends DaemonHeader {
  readonly role: 'map-server';
  readonly listen: string;
  readonly sites: readonly { readonly name: string; readonly prefixes: readonly string[]; readonly keyIds: readonly number[]; readonly registrations: number; readonly lookupPolicy: boolean }[];
  readonly registrations: readonly MapServerRegistrationRow[];
  readonly truncated: boolean;
  readonly messages: { readonly received: number; readonly sent: number };
  /** Map-Register and Map-Request outcomes and drops, by name (non-zero ones). */
  readonly counters: Readonly<Record<string, number>>;
  /** Every datagram received on UDP 4342, each under exactly one outcome. */
  readonly datagrams: DatagramOutcomes;
}

/** The node role: its control-plane state and, when a mesh instance runs, its xTR's report. */
export interface NodeStatusReport {
  readonly role: 'node';
  readonly node: NodeStats;
  readonly xtr: XtrStatusReport | undefined;
}

export type StatusReport = XtrStatusReport | MapServerStatusReport | NodeStatusReport;
