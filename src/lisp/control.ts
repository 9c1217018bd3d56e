// One entry point for every control message on UDP 4342: decode by type nibble, encode by kind.
import { ByteReader, ByteWriter } from './bytes.js';
import { readEcm, writeEcm, type Ecm } from './ecm.js';
import { DecodeError, decodeSafely, type DecodeResult, type Quirk } from './errors.js';
import { readInfo, writeInfo, type InfoMessage } from './info.js';
import { readMapNotify, readMapRegister, writeMapNotify, writeMapRegister, type MapNotify, type MapRegister } from './map-register.js';
import { readMapReply, writeMapReply, type MapReply } from './map-reply.js';
import { readMapRequest, writeMapRequest, type MapRequest } from './map-request.js';
import { MESSAGE_TYPE } from './message-type.js';

/** Anything that may travel inside an ECM. */
export type InnerMessage = MapRequest | MapReply | MapRegister | MapNotify | InfoMessage;
export type ControlMessage = InnerMessage | Ecm<InnerMessage>;
export type { Ecm };

export function decodeControl(bytes: Uint8Array): DecodeResult<ControlMessage> {
  return decodeSafely((quirks) => readControl(new ByteReader(bytes), quirks));
}

export function readControl(r: ByteReader, quirks: Quirk[]): ControlMessage {
  r.need(1, 'control message');
  if ((r.bytes[r.offset] ?? 0) >>> 4 === MESSAGE_TYPE.ecm) {
    return readEcm(r, quirks, (inner) => readInner(inner, quirks));
  }
  return readInner(r, quirks);
}

function readInner(r: ByteReader, quirks: Quirk[]): InnerMessage {
  r.need(1, 'control message');
  const at = r.offset;
  const type = (r.bytes[at] ?? 0) >>> 4;
  switch (type) {
    case MESSAGE_TYPE.mapRequest:
      return readMapRequest(r, quirks);
    case MESSAGE_TYPE.mapReply:
      return readMapReply(r, quirks);
    case MESSAGE_TYPE.mapRegister:
      return readMapRegister(r, quirks);
    case MESSAGE_TYPE.mapNotify:
    case MESSAGE_TYPE.mapNotifyAck:
      return readMapNotify(r, quirks);
    case MESSAGE_TYPE.info:
      return readInfo(r, quirks);
    default:
      throw new DecodeError('bad-type', at, `control message type ${type} is not supported`);
  }
}

export function encodeControl(m: ControlMessage): Uint8Array {
  const w = new ByteWriter();
  writeControl(w, m);
  return w.finish();
}

function writeControl(w: ByteWriter, m: ControlMessage): void {
  switch (m.type) {
    case 'ecm':
      writeEcm(w, m, encodeControl);
      return;
    case 'map-request':
      writeMapRequest(w, m);
      return;
    case 'map-reply':
      writeMapReply(w, m);
      return;
    case 'map-register':
      writeMapRegister(w, m);
      return;
    case 'map-notify':
    case 'map-notify-ack':
      writeMapNotify(w, m);
      return;
    case 'info-request':
    case 'info-reply':
      writeInfo(w, m);
      return;
  }
}
