/** LISP control message types: the high nibble of byte 0 (RFC 9301 §5.1, IANA). */
export const MESSAGE_TYPE = {
  mapRequest: 1,
  mapReply: 2,
  mapRegister: 3,
  mapNotify: 4,
  mapNotifyAck: 5,
  info: 7,
  ecm: 8,
} as const;
