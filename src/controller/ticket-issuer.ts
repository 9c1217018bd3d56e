// Attestation tickets (lispnode's extension, proto/lispnode/bundle.proto): what the controller
// vouches for after a successful attestation — this device may register these crypto-EIDs until
// not_after. Only EIDs the device's own config allows: each "[iid]eid" must be an IPv6 host
// inside the allocation prefix of one of its mesh instances with that instance-id.
import { create } from '@bufbuild/protobuf';
import { meshFromJson, type MeshNetworkInstance } from '../control/mesh.js';
import { AttestationTicketSchema, type AttestationTicket } from '../control/proto/index.js';
import { eidPrefix, formatPrefix, parsePrefix, prefixContains, type EidPrefix } from '../lisp/prefix.js';
import type { DeviceRecord } from './store.js';

export const DEFAULT_TICKET_LIFETIME_SECONDS = 600;
/** A day: a ticket outliving that is no longer a statement about a recent attestation. */
export const MAX_TICKET_LIFETIME_SECONDS = 86_400;

/** A lifetime as given: whole seconds, 1..86400; throws RangeError otherwise. */
export function checkTicketLifetime(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_TICKET_LIFETIME_SECONDS) throw new RangeError(`ticket lifetime ${seconds}: expected whole seconds, 1..${MAX_TICKET_LIFETIME_SECONDS}`);
  return seconds;
}

/** For `controller run --ticket-lifetime <s>`; throws RangeError. */
/** How far a ticket's validity starts before its issue, for map-servers with slow clocks. */
export const TICKET_CLOCK_SKEW_MS = 60_000;

export function parseTicketLifetime(text: string): number {
  if (!/^[1-9]\d{0,5}$/.test(text)) throw new RangeError(`ticket lifetime '${text}': expected whole seconds, 1..${MAX_TICKET_LIFETIME_SECONDS}`);
  return checkTicketLifetime(Number(text));
}

export type TicketDecision = { readonly ok: true; readonly ticket: AttestationTicket } | { readonly ok: false; readonly reason: string };

function allocationPrefix(ni: MeshNetworkInstance): EidPrefix {
  const address = new Uint8Array(16);
  address.set(ni.allocationPrefix.subarray(0, 16));
  return eidPrefix(ni.instanceId, 6, address, ni.allocationPrefixLength);
}

/** "[iid]eid" (or "[iid]eid/128") as a host prefix, or why it is not one. */
function requestedEid(text: string, instances: readonly MeshNetworkInstance[]): EidPrefix | string {
  const eid = text.startsWith('[') ? parsePrefix(text) : undefined;
  if (!eid || eid.family !== 6 || eid.length !== 128) return `EID '${text}' is not "[iid]ipv6-address"`;
  const inside = instances.some((ni) => ni.instanceId === eid.instanceId && prefixContains(allocationPrefix(ni), eid.address));
  return inside ? eid : `EID '${text}' is not inside the allocation prefix of a mesh instance with IID ${eid.instanceId}`;
}

/** The ticket for these EIDs (validity from `nowMs`), or why one is refused (a 400). */
export function buildTicket(device: DeviceRecord, eids: readonly string[], nowMs: number, lifetimeSeconds: number): TicketDecision {
  if (device.deviceCertHash === undefined) return { ok: false, reason: 'the device has no registered certificate' };
  if (eids.length === 0) return { ok: false, reason: 'the request names no EID' };
  const instances = meshFromJson(device.meshJson).instances;
  const prefixes: EidPrefix[] = [];
  for (const text of eids) {
    const eid = requestedEid(text, instances);
    if (typeof eid === 'string') return { ok: false, reason: eid };
    prefixes.push(eid);
  }
  const ticket = create(AttestationTicketSchema, {
    deviceUuid: device.uuid,
    deviceCertHash: device.deviceCertHash,
    instanceIds: [...new Set(prefixes.map((p) => p.instanceId))].sort((a, b) => a - b),
    eidPrefixes: [...new Set(prefixes.map(formatPrefix))],
    // Backdated a minute: a map-server whose clock lags ours must not refuse a fresh ticket.
    notBeforeUnixMs: BigInt(nowMs - TICKET_CLOCK_SKEW_MS),
    notAfterUnixMs: BigInt(nowMs + lifetimeSeconds * 1000),
  });
  return { ok: true, ticket };
}
