// The generated EVE API v2 messages against the field numbers of eve-api.md, checked without
// trusting our own .proto files. Each fixture pairs a message built with the generated code and
// a raw tree written by hand from the spec's numbers: (a) `protoc --decode_raw` must read our
// encoding as it reads the tree's bytes (made by the small writer below), and (b) the tree's
// bytes must decode with our code to the same message.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { create, equals, fromBinary, toBinary, toJsonString, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import {
  ACEDirection,
  AddressType,
  AttestationTicketSchema,
  AttestGPSInput,
  AttestPolicyPcrListSchema,
  AttestStorageKeysResponseCode,
  AttestVersionType,
  AttestVolumeKeyDataSchema,
  AttestVolumeKeyType,
  AttestVolumeKeyVersion,
  AuthContainerSchema,
  ConfigBundleSchema,
  ConfigRequestSchema,
  ConfigResponseSchema,
  DHCPType,
  EdgeDevConfigSchema,
  EncryptionScheme,
  HashAlgorithm,
  KeyExchangeScheme,
  PhyIoType,
  TpmHashAlgo,
  UuidRequestSchema,
  UuidResponseSchema,
  ZAttestReqSchema,
  ZAttestReqType,
  ZAttestResponseCode,
  ZAttestResponseSchema,
  ZAttestRespType,
  ZCertMetaDataType,
  ZCertType,
  ZControllerCertSchema,
  ZcServiceType,
  ZInfoMsgSchema,
  ZInfoTypes,
  ZNetworkInstType,
  ZNetworkOpaqueConfigType,
  ZRegisterMsgSchema,
  type AttestVolumeKeySchema,
  type EdgeDevConfig,
  type ZCertSchema,
} from '../src/control/proto/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// ---- A raw protobuf tree and an independent writer for it -------------------------------------

class Fixed64 {
  constructor(readonly bits: bigint) {}
  static double(value: number): Fixed64 {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, value, true);
    return new Fixed64(view.getBigUint64(0, true));
  }
}
class Fixed32 {
  constructor(readonly bits: number) {}
}
/** number/bigint = varint, string/bytes = length-delimited, array = embedded message. */
type Value = number | bigint | string | Uint8Array | Fixed64 | Fixed32 | Raw;
type Raw = readonly (readonly [number, Value])[];

function varint(value: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value);
  do {
    const low = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v === 0n ? low : low | 0x80);
  } while (v !== 0n);
  return out;
}

function encodeRaw(raw: Raw): Uint8Array {
  const out: number[] = [];
  const delimited = (n: number, body: Uint8Array): void => {
    out.push(...varint(BigInt((n << 3) | 2)), ...varint(BigInt(body.length)), ...body);
  };
  for (const [n, value] of raw) {
    if (typeof value === 'number' || typeof value === 'bigint') out.push(...varint(BigInt(n << 3)), ...varint(BigInt(value)));
    else if (typeof value === 'string') delimited(n, new TextEncoder().encode(value));
    else if (value instanceof Uint8Array) delimited(n, value);
    else if (value instanceof Fixed64) {
      const b = new DataView(new ArrayBuffer(8));
      b.setBigUint64(0, value.bits, true);
      out.push(...varint(BigInt((n << 3) | 1)), ...new Uint8Array(b.buffer));
    } else if (value instanceof Fixed32) {
      const b = new DataView(new ArrayBuffer(4));
      b.setUint32(0, value.bits, true);
      out.push(...varint(BigInt((n << 3) | 5)), ...new Uint8Array(b.buffer));
    } else delimited(n, encodeRaw(value));
  }
  return new Uint8Array(out);
}

// ---- protoc --decode_raw as the independent reader --------------------------------------------

function unescapeC(text: string): Uint8Array {
  const out: number[] = [];
  const simple: Record<string, number> = { n: 10, r: 13, t: 9, '"': 34, "'": 39, '\\': 92 };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] ?? '';
    if (ch !== '\\') {
      out.push(ch.charCodeAt(0));
      continue;
    }
    const next = text[i + 1] ?? '';
    if (/[0-7]/.test(next)) {
      const octal = /^[0-7]{1,3}/.exec(text.slice(i + 1))?.[0] ?? '';
      out.push(parseInt(octal, 8));
      i += octal.length;
    } else if (next in simple) {
      out.push(simple[next] ?? 0);
      i += 1;
    } else throw new Error(`unknown escape \\${next} in decode_raw output`);
  }
  return new Uint8Array(out);
}

function decodeRaw(bytes: Uint8Array): Raw {
  const run = spawnSync('protoc', ['--decode_raw'], { input: bytes, encoding: 'latin1' });
  if (run.error) throw new Error(`protoc is needed for this test (npm run setup installs it): ${run.error.message}`);
  assert.equal(run.status, 0, `protoc --decode_raw failed: ${run.stderr}`);
  const stack: [number, Value][][] = [[]];
  for (const line of run.stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const top = stack[stack.length - 1] ?? [];
    const open = /^(\d+) \{$/.exec(line);
    const field = /^(\d+): (.*)$/.exec(line);
    if (open) {
      const nested: [number, Value][] = [];
      top.push([Number(open[1]), nested]);
      stack.push(nested);
    } else if (line === '}') stack.pop();
    else if (field) {
      const [, n, text = ''] = field;
      let value: Value;
      if (text.startsWith('"')) value = unescapeC(text.slice(1, -1));
      else if (/^0x[0-9a-f]{16}$/.test(text)) value = new Fixed64(BigInt(text));
      else if (/^0x[0-9a-f]{8}$/.test(text)) value = new Fixed32(Number(text));
      else value = BigInt(text);
      top.push([Number(n), value]);
    } else throw new Error(`unexpected decode_raw line: ${line}`);
  }
  return stack[0] ?? [];
}

// Both sides go through decode_raw: our encoding and the bytes of the hand-written tree. That
// way its guesses (a length-delimited field shows as a message when its bytes happen to parse as
// one, even as a group; an empty one shows as "") are the same on both sides. Fields are ordered
// by number, since the wire order of different fields carries no meaning.
type Shown = readonly (readonly [number, unknown])[];

function showBytes(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString('latin1');
  return /^[\x20-\x7e]*$/.test(text) ? text : `hex:${Buffer.from(bytes).toString('hex')}`;
}

function show(raw: Raw): Shown {
  const shown = raw.map(([n, value]): readonly [number, unknown] => {
    if (typeof value === 'number' || typeof value === 'bigint') return [n, BigInt(value)];
    if (value instanceof Fixed64) return [n, `fixed64:0x${value.bits.toString(16).padStart(16, '0')}`];
    if (value instanceof Fixed32) return [n, `fixed32:0x${value.bits.toString(16).padStart(8, '0')}`];
    if (typeof value === 'string') return [n, value];
    if (value instanceof Uint8Array) return [n, showBytes(value)];
    return [n, show(value)];
  });
  return shown.sort((a, b) => a[0] - b[0]);
}

function assertWireTree(bytes: Uint8Array, expected: Raw): void {
  assert.deepEqual(show(decodeRaw(bytes)), show(decodeRaw(encodeRaw(expected))));
}

// ---- Fixtures: messages and their raw trees, numbered from eve-api.md -------------------------

interface Fixture {
  readonly name: string;
  readonly raw: Raw;
  encode(): Uint8Array;
  assertDecodes(bytes: Uint8Array): void;
}

const fixtures: Fixture[] = [];

function fixture<Desc extends DescMessage>(name: string, schema: Desc, init: MessageInitShape<Desc>, raw: Raw): void {
  fixtures.push({
    name,
    raw,
    encode: () => toBinary(schema, create(schema, init)),
    assertDecodes: (bytes) => {
      const got = fromBinary(schema, bytes);
      const want = create(schema, init);
      assert.equal(got.$unknown, undefined, `fields our schema does not know: ${JSON.stringify(got.$unknown?.map((f) => f.no))}`);
      assert.ok(equals(schema, got, want), `decoded\n${toJsonString(schema, got)}\nexpected\n${toJsonString(schema, want)}`);
    },
  });
}

const seq = (length: number, from = 0): Uint8Array => Uint8Array.from({ length }, (_, i) => (from + i) & 0xff);
const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);
const pem = (label: string, body: string): string => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;

const DEV_UUID = '6e6f6465-0000-4000-8000-000000000001';
const APP_UUID = '61707031-0000-4000-8000-000000000002';
const NI_UUID = '6e693031-0000-4000-8000-000000000003';
const SIGNING_PEM = ascii(pem('CERTIFICATE', 'MIIBsigningcertificate'));
const ECDH_PEM = ascii(pem('CERTIFICATE', 'MIIBecdhcertificate'));
const DEVICE_PEM = pem('CERTIFICATE', 'MIIBdevicecertificate');
const DEVICE_PEM_B64 = Buffer.from(DEVICE_PEM).toString('base64');

// §3 ZRegisterMsg: 1 onBoardKey, 2 pemCert (base64 of PEM), 3 serial, 4 softSerial.
const REGISTER_RAW: Raw = [
  [1, 'legacy-key'],
  [2, DEVICE_PEM_B64],
  [3, 'SN-0001'],
  [4, 'soft_0001'],
];
fixture(
  'ZRegisterMsg',
  ZRegisterMsgSchema,
  { onBoardKey: 'legacy-key', pemCert: ascii(DEVICE_PEM_B64), serial: 'SN-0001', softSerial: 'soft_0001' },
  REGISTER_RAW,
);

// §2 AuthContainer: 1 protectedPayload{1 payload}, 2 algo, 3 senderCertHash, 4 signatureHash,
// 5 senderCert. The payload here is the register message above, built by the writer.
fixture(
  'AuthContainer (register, senderCert set)',
  AuthContainerSchema,
  {
    protectedPayload: { payload: encodeRaw(REGISTER_RAW) },
    algo: HashAlgorithm.SHA256_32BYTES,
    senderCertHash: seq(32),
    signatureHash: seq(64, 0x00),
    senderCert: ascii(DEVICE_PEM_B64),
  },
  [
    [1, [[1, REGISTER_RAW]]],
    [2, 2],
    [3, seq(32)],
    [4, seq(64)],
    [5, DEVICE_PEM_B64],
  ],
);

// §2 AuthContainer 6 cipherContext{1 contextId, 2 hashScheme, 3 keyExchangeScheme,
// 4 encryptionScheme, 5 deviceCertHash, 6 controllerCertHash}, 7 cipherData{1 cipherContextId,
// 2 initialValue, 3 cipherData, 4 clearTextSha256}.
fixture(
  'AuthContainer (encrypted form)',
  AuthContainerSchema,
  {
    algo: HashAlgorithm.SHA256_16BYTES,
    senderCertHash: seq(16),
    signatureHash: seq(64),
    cipherContext: {
      contextId: 'ctx-1',
      hashScheme: HashAlgorithm.SHA256_16BYTES,
      keyExchangeScheme: KeyExchangeScheme.KEA_ECDH,
      encryptionScheme: EncryptionScheme.SA_AES_256_CFB,
      deviceCertHash: seq(16, 0x00),
      controllerCertHash: seq(16, 0x00),
    },
    cipherData: { cipherContextId: 'ctx-1', initialValue: seq(16), cipherData: seq(40), clearTextSha256: seq(32) },
  },
  [
    [2, 1],
    [3, seq(16)],
    [4, seq(64)],
    [6, [[1, 'ctx-1'], [2, 1], [3, 1], [4, 1], [5, seq(16)], [6, seq(16)]]],
    [7, [[1, 'ctx-1'], [2, seq(16)], [3, seq(40)], [4, seq(32)]]],
  ],
);

// §4 ZCert: 1 hashAlgo, 2 certHash, 3 type, 4 cert, 5 attributes{1 is_mutable, 2 is_tpm},
// 6 meta_data_items{1 type, 2 meta_data}; ZControllerCert: 1 certs.
const SIGNING_CERT: MessageInitShape<typeof ZCertSchema> = {
  hashAlgo: HashAlgorithm.SHA256_16BYTES,
  certHash: seq(16),
  type: ZCertType.CERT_TYPE_CONTROLLER_SIGNING,
  cert: SIGNING_PEM,
  attributes: { isMutable: true, isTpm: false },
};
const SIGNING_CERT_RAW: Raw = [
  [1, 1],
  [2, seq(16)],
  [3, 1],
  [4, SIGNING_PEM],
  [5, [[1, 1]]],
];
fixture(
  'ZControllerCert',
  ZControllerCertSchema,
  {
    certs: [
      SIGNING_CERT,
      {
        hashAlgo: HashAlgorithm.SHA256_32BYTES,
        certHash: seq(32),
        type: ZCertType.CERT_TYPE_CONTROLLER_ECDH_EXCHANGE,
        cert: ECDH_PEM,
        metaDataItems: [{ type: ZCertMetaDataType.TPM2_PUBLIC, metaData: seq(8) }],
      },
    ],
  },
  [
    [1, SIGNING_CERT_RAW],
    [1, [[1, 2], [2, seq(32)], [3, 3], [4, ECDH_PEM], [6, [[1, 1], [2, seq(8)]]]]],
  ],
);

// §5 UuidRequest has no fields; UuidResponse: 1 uuid, 2 manufacturer, 3 product_name.
fixture('UuidRequest', UuidRequestSchema, {}, []);
fixture(
  'UuidResponse',
  UuidResponseSchema,
  { uuid: DEV_UUID, manufacturer: 'QEMU', productName: 'Standard PC (Q35)' },
  [
    [1, DEV_UUID],
    [2, 'QEMU'],
    [3, 'Standard PC (Q35)'],
  ],
);

// §7 ConfigRequest: 1 configHash, 2 integrity_token.
fixture('ConfigRequest', ConfigRequestSchema, { configHash: 'hash-4', integrityToken: seq(16, 0x00) }, [
  [1, 'hash-4'],
  [2, seq(16)],
]);

// §7 NetworkAdapter 1 name, 3 networkId, 4 addr, 5 hostname, 6 lispsignature, 7 pemcert,
// 8 pemprivatekey, 9 macAddress, 10 cryptoEid, 40 acls, 41 access_vlan_id, 42 allow_to_discover,
// 50 interface_order; ACE 1 matches{1 type, 2 value}, 2 actions{1 drop .. 7 appPort}, 3 name,
// 4 id, 5 dir.
const EID_CERT = ascii(pem('CERTIFICATE', 'MIIBeidcertificate'));
const EID_KEY = ascii(pem('EC PRIVATE KEY', 'MHcCAQEEIeidkey'));
const ADAPTER_RAW: Raw = [
  [1, 'eth0'],
  [3, NI_UUID],
  [4, '10.1.0.5'],
  [5, 'app1'],
  [6, 'c2lnbmF0dXJl'],
  [7, EID_CERT],
  [8, EID_KEY],
  [9, '02:00:00:00:00:01'],
  [10, 'fd00::1'],
  [
    40,
    [
      [1, [[1, 'ip'], [2, '10.1.0.0/24']]],
      [2, [[2, 1], [3, 10], [4, 's'], [5, 5], [6, 1], [7, 8080]]],
      [3, 'allow-lan'],
      [4, 1],
      [5, 1],
    ],
  ],
  [41, 100],
  [42, 1],
  [50, 3],
];
// §7 NetworkInstanceConfig 1 uuidandversion, 2 displayname, 4 instType (Mesh = 4), 5 activate,
// 20 port (Adapter 1 type, 2 name, 4 interface_order), 30 cfg{1 oconfig, 2 lispConfig, 3 type},
// 39 ipType, 40 ip, 41 dns; NetworkInstanceLispConfig 1 LispMSs{1 NameOrIp, 2 Credential,
// 3 zsType}, 2 LispInstanceId, 3 allocate, 4 exportprivate, 5 allocationprefix,
// 6 allocationprefixlen, 20 experimental; ipspec 2 dhcp, 3 subnet, 5 gateway, 6 domain, 7 ntp,
// 8 dns, 9 dhcpRange{1 start, 2 end}, 10 more_ntp; ZnetStaticDNSEntry 1 HostName, 2 Address.
const MESH_RAW: Raw = [
  [1, [[1, NI_UUID], [2, '2']]],
  [2, 'mesh0'],
  [4, 4],
  [5, 1],
  [20, [[1, 1], [2, 'uplink'], [4, 1]]],
  [
    30,
    [
      [
        2,
        [
          [1, [[1, 'ms1.example.net'], [2, 'site-secret'], [3, 1]]],
          [1, [[1, '192.0.2.10'], [2, 'other-secret'], [3, 1]]],
          [2, 1000],
          [3, 1],
          [5, new Uint8Array([0xfd])],
          [6, 8],
          [20, 1],
        ],
      ],
      [3, 1],
    ],
  ],
  [39, 4],
  [
    40,
    [
      [2, 1],
      [3, 'fd00::/8'],
      [5, 'fd00::1'],
      [6, 'mesh.local'],
      [7, '192.0.2.1'],
      [8, 'fd00::53'],
      [9, [[1, 'fd00::100'], [2, 'fd00::1ff']]],
      [10, '192.0.2.2'],
    ],
  ],
  [41, [[1, 'peer1'], [2, 'fd00::2'], [2, '10.1.0.6']]],
];
// §7 EdgeDevConfig 1 id, 4 apps (AppInstanceConfig 1 uuidandversion, 2 displayname, 5 activate,
// 6 interfaces), 11 configItems{1 key, 2 value}, 16 networkInstances,
// 22 controllercert_confighash, 25 controller_epoch; ConfigResponse 1 config, 2 configHash.
const EDGE_DEV_CONFIG_RAW: Raw = [
  [1, [[1, DEV_UUID], [2, '5']]],
  [4, [[1, [[1, APP_UUID], [2, '1']]], [2, 'app1'], [5, 1], [6, ADAPTER_RAW]]],
  [11, [[1, 'timer.config.interval'], [2, '60']]],
  [16, MESH_RAW],
  [22, 'certs-v1'],
  [25, 7],
];
const EDGE_DEV_CONFIG: MessageInitShape<typeof EdgeDevConfigSchema> = {
  id: { uuid: DEV_UUID, version: '5' },
  apps: [
    {
      uuidandversion: { uuid: APP_UUID, version: '1' },
      displayname: 'app1',
      activate: true,
      interfaces: [
        {
          name: 'eth0',
          networkId: NI_UUID,
          addr: '10.1.0.5',
          hostname: 'app1',
          lispsignature: 'c2lnbmF0dXJl',
          pemcert: EID_CERT,
          pemprivatekey: EID_KEY,
          macAddress: '02:00:00:00:00:01',
          cryptoEid: 'fd00::1',
          acls: [
            {
              matches: [{ type: 'ip', value: '10.1.0.0/24' }],
              actions: [{ drop: false, limit: true, limitrate: 10, limitunit: 's', limitburst: 5, portmap: true, appPort: 8080 }],
              name: 'allow-lan',
              id: 1,
              dir: ACEDirection.INGRESS,
            },
          ],
          accessVlanId: 100,
          allowToDiscover: true,
          interfaceOrder: 3,
        },
      ],
    },
  ],
  configItems: [{ key: 'timer.config.interval', value: '60' }],
  networkInstances: [
    {
      uuidandversion: { uuid: NI_UUID, version: '2' },
      displayname: 'mesh0',
      instType: ZNetworkInstType.ZnetInstMesh,
      activate: true,
      port: { type: PhyIoType.PhyIoNetEth, name: 'uplink', interfaceOrder: 1 },
      cfg: {
        type: ZNetworkOpaqueConfigType.ZNetOConfigLisp,
        lispConfig: {
          LispMSs: [
            { NameOrIp: 'ms1.example.net', Credential: 'site-secret', zsType: ZcServiceType.mapServer },
            { NameOrIp: '192.0.2.10', Credential: 'other-secret', zsType: ZcServiceType.mapServer },
          ],
          LispInstanceId: 1000,
          allocate: true,
          exportprivate: false,
          allocationprefix: new Uint8Array([0xfd]),
          allocationprefixlen: 8,
          experimental: true,
        },
      },
      ipType: AddressType.CryptoIPV6,
      ip: {
        dhcp: DHCPType.Static,
        subnet: 'fd00::/8',
        gateway: 'fd00::1',
        domain: 'mesh.local',
        ntp: '192.0.2.1',
        dns: ['fd00::53'],
        dhcpRange: { start: 'fd00::100', end: 'fd00::1ff' },
        moreNtp: ['192.0.2.2'],
      },
      dns: [{ HostName: 'peer1', Address: ['fd00::2', '10.1.0.6'] }],
    },
  ],
  controllercertConfighash: 'certs-v1',
  controllerEpoch: 7n,
};
fixture('ConfigResponse (Mesh network instance with lispConfig, app NetworkAdapter)', ConfigResponseSchema, { config: EDGE_DEV_CONFIG, configHash: 'hash-5' }, [
  [1, EDGE_DEV_CONFIG_RAW],
  [2, 'hash-5'],
]);

// §6 AttestVolumeKey 1 key_type, 2 key, 4 has_policy_pcr_list, 5 policy_pcr_list{1 pcr_indices
// (packed by proto3: 0, 7, 300 = 00 07 ac02), 2 policy_id}.
const VOLUME_KEY: MessageInitShape<typeof AttestVolumeKeySchema> = {
  keyType: AttestVolumeKeyType.VSK,
  key: seq(24, 0x00),
  hasPolicyPcrList: true,
  policyPcrList: { pcrIndices: [0, 7, 300], policyId: 2 },
};
const VOLUME_KEY_RAW: Raw = [
  [1, 1],
  [2, seq(24)],
  [4, 1],
  [5, [[1, new Uint8Array([0x00, 0x07, 0xac, 0x02])], [2, 2]]],
];
const TPMS_ATTEST = new Uint8Array([0xff, 0x54, 0x43, 0x47, 0x80, 0x18, ...seq(16, 0x00)]);
const QUOTE_SIGNATURE = new Uint8Array([0x30, 0x44, 0x02, 0x20, ...seq(32, 0x01), 0x02, 0x20, ...seq(32, 0x21)]);
const AIK_PEM = ascii(pem('CERTIFICATE', 'MIIBaikcertificate'));
const AIK_CERT: MessageInitShape<typeof ZCertSchema> = { hashAlgo: HashAlgorithm.SHA256_16BYTES, certHash: seq(16), type: ZCertType.CERT_TYPE_DEVICE_RESTRICTED_SIGNING, cert: AIK_PEM };

// §6 ZAttestReq 1 reqType, 2 quote, 3 certs, 4 storage_keys; ZAttestQuote 1 attestData,
// 2 signature, 3 pcr_values{1 index, 2 hash_algo, 3 value}, 4 event_log{1 index, 2 pcr_index,
// 3 event_type, 4 digest{1 hash_algo, 2 digest}, 5 event_data_binary, 6 event_data_string,
// 7 event_binary_size}, 5 versions{1 version_type, 2 version}, 6 gps_info{1 gps_input,
// 2 latitude, 3 longitude}, 7 tpm_binary_event_log.
fixture(
  'ZAttestReq (quote)',
  ZAttestReqSchema,
  {
    reqType: ZAttestReqType.ATTEST_REQ_QUOTE,
    quote: {
      attestData: TPMS_ATTEST,
      signature: QUOTE_SIGNATURE,
      pcrValues: [
        { index: 0, hashAlgo: TpmHashAlgo.SHA256, value: seq(32, 0x00) },
        { index: 7, hashAlgo: TpmHashAlgo.SHA256, value: seq(32, 0x80) },
      ],
      eventLog: [
        {
          index: 1,
          pcrIndex: 4,
          eventType: 0x80000008,
          digest: { hashAlgo: TpmHashAlgo.SHA256, digest: seq(32, 0x00) },
          eventDataBinary: seq(4, 0xa0),
          eventDataString: 'EV_EFI_ACTION',
          eventBinarySize: 4,
        },
      ],
      versions: [
        { versionType: AttestVersionType.EVE, version: '14.5.0' },
        { versionType: AttestVersionType.FIRMWARE, version: 'OVMF' },
      ],
      gpsInfo: { gpsInput: AttestGPSInput.ATTEST_GPS_INPUT_PRESENT, latitude: 52.52, longitude: 13.405 },
      tpmBinaryEventLog: new Uint8Array([0x1f, 0x8b, 0x08, 0x00]),
    },
    certs: [AIK_CERT],
  },
  [
    [1, 3],
    [
      2,
      [
        [1, TPMS_ATTEST],
        [2, QUOTE_SIGNATURE],
        [3, [[2, 2], [3, seq(32, 0x00)]]], // index 0 is proto3's default: not sent
        [3, [[1, 7], [2, 2], [3, seq(32, 0x80)]]],
        [4, [[1, 1], [2, 4], [3, 0x80000008], [4, [[1, 2], [2, seq(32)]]], [5, seq(4, 0xa0)], [6, 'EV_EFI_ACTION'], [7, 4]]],
        [5, [[1, 1], [2, '14.5.0']]],
        [5, [[1, 2], [2, 'OVMF']]],
        [6, [[1, 1], [2, Fixed64.double(52.52)], [3, Fixed64.double(13.405)]]],
        [7, new Uint8Array([0x1f, 0x8b, 0x08, 0x00])],
      ],
    ],
    [3, [[1, 1], [2, seq(16)], [3, 11], [4, AIK_PEM]]],
  ],
);

// §6 AttestStorageKeys 1 integrity_token, 2 keys.
fixture(
  'ZAttestReq (store keys)',
  ZAttestReqSchema,
  { reqType: ZAttestReqType.Z_ATTEST_REQ_TYPE_STORE_KEYS, storageKeys: { integrityToken: ascii('token-0123'), keys: [VOLUME_KEY] } },
  [
    [1, 4],
    [4, [[1, 'token-0123'], [2, VOLUME_KEY_RAW]]],
  ],
);

// §6 ZAttestResponse 1 respType, 2 nonce{1 nonce}, 3 quoteResp{1 response, 2 integrity_token,
// 3 keys}, 4 storage_keys_resp{1 response}.
fixture(
  'ZAttestResponse (quoteResp)',
  ZAttestResponseSchema,
  {
    respType: ZAttestRespType.ATTEST_RESP_QUOTE_RESP,
    quoteResp: { response: ZAttestResponseCode.SUCCESS, integrityToken: ascii('token-0123'), keys: [VOLUME_KEY] },
  },
  [
    [1, 3],
    [3, [[1, 1], [2, 'token-0123'], [3, VOLUME_KEY_RAW]]],
  ],
);
fixture(
  'ZAttestResponse (nonce)',
  ZAttestResponseSchema,
  { respType: ZAttestRespType.ATTEST_RESP_NONCE, nonce: { nonce: ascii('a1b2c3d4e5f6') } },
  [
    [1, 2],
    [2, [[1, 'a1b2c3d4e5f6']]],
  ],
);
fixture(
  'ZAttestResponse (storage keys)',
  ZAttestResponseSchema,
  {
    respType: ZAttestRespType.Z_ATTEST_RESP_TYPE_STORE_KEYS,
    storageKeysResp: { response: AttestStorageKeysResponseCode.ITOKEN_MISMATCH },
  },
  [
    [1, 4],
    [4, [[1, 2]]],
  ],
);

// §6 AttestVolumeKeyData 1 encrypted_key, 2 digest_sha256, 5 version.
fixture(
  'AttestVolumeKeyData',
  AttestVolumeKeyDataSchema,
  { encryptedKey: seq(32, 0x00), digestSha256: seq(32, 0x00), version: AttestVolumeKeyVersion.V1 },
  [
    [1, seq(32)],
    [2, seq(32)],
    [5, 1],
  ],
);

// §10 ZInfoMsg 1 ztype, 2 devId, 6 atTimeStamp{1 seconds, 2 nanos}, 12 niinfo (oneof);
// §8 ZInfoNetworkInstance 26 ipv4Eid.
fixture(
  'ZInfoMsg (network instance)',
  ZInfoMsgSchema,
  {
    ztype: ZInfoTypes.ZiNetworkInstance,
    devId: DEV_UUID,
    atTimeStamp: { seconds: 1_795_000_000n, nanos: 5 },
    InfoContent: { case: 'niinfo', value: { ipv4Eid: true } },
  },
  [
    [1, 6],
    [2, DEV_UUID],
    [6, [[1, 1_795_000_000], [2, 5]]],
    [12, [[26, 1]]],
  ],
);

// lispnode's own messages (proto/lispnode/bundle.proto): ConfigBundle 1 version, 2 device_uuid,
// 3 controller_certs, 4 config, 5 created_unix_ms; AttestationTicket 1 device_uuid,
// 2 device_cert_hash, 3 instance_ids (packed: 1000, 5 = e807 05), 4 eid_prefixes,
// 5 not_before_unix_ms, 6 not_after_unix_ms.
fixture(
  'lispnode.ConfigBundle',
  ConfigBundleSchema,
  {
    version: 3n,
    deviceUuid: DEV_UUID,
    controllerCerts: { certs: [SIGNING_CERT] },
    config: { config: { id: { uuid: DEV_UUID, version: '5' } }, configHash: 'hash-5' },
    createdUnixMs: 1_795_000_000_000n,
  },
  [
    [1, 3],
    [2, DEV_UUID],
    [3, [[1, SIGNING_CERT_RAW]]],
    [4, [[1, [[1, [[1, DEV_UUID], [2, '5']]]]], [2, 'hash-5']]],
    [5, 1_795_000_000_000],
  ],
);
fixture(
  'lispnode.AttestationTicket',
  AttestationTicketSchema,
  {
    deviceUuid: DEV_UUID,
    deviceCertHash: seq(32),
    instanceIds: [1000, 5],
    eidPrefixes: ['fd00::/8', '10.1.0.0/24'],
    notBeforeUnixMs: 1_795_000_000_000n,
    notAfterUnixMs: 1_795_000_300_000n,
  },
  [
    [1, DEV_UUID],
    [2, seq(32)],
    [3, new Uint8Array([0xe8, 0x07, 0x05])],
    [4, 'fd00::/8'],
    [4, '10.1.0.0/24'],
    [5, 1_795_000_000_000],
    [6, 1_795_000_300_000],
  ],
);

for (const f of fixtures) {
  test(`${f.name}: protoc --decode_raw of our encoding shows the spec's field numbers`, () => {
    assertWireTree(f.encode(), f.raw);
  });
  test(`${f.name}: bytes built from the spec's field numbers decode to the message`, () => {
    f.assertDecodes(encodeRaw(f.raw));
  });
}

test('repeated scalars decode packed and unpacked alike (AttestPolicyPcrList.pcr_indices)', () => {
  const packed = encodeRaw([
    [1, new Uint8Array([0x00, 0x07, 0xac, 0x02])],
    [2, 2],
  ]);
  const unpacked = encodeRaw([
    [1, 0],
    [1, 7],
    [1, 300],
    [2, 2],
  ]);
  // Both forms at once, as a concatenation of two encodings would produce: merged in order.
  const mixed = encodeRaw([
    [1, 0],
    [1, new Uint8Array([0x07, 0xac, 0x02])],
    [2, 2],
  ]);
  for (const bytes of [packed, unpacked, mixed]) {
    const list = fromBinary(AttestPolicyPcrListSchema, bytes);
    assert.deepEqual(list.pcrIndices, [0, 7, 300]);
    assert.equal(list.policyId, 2);
  }
});

test('an empty protectedPayload is still sent: tag 1, length 0', () => {
  const bytes = toBinary(AuthContainerSchema, create(AuthContainerSchema, { protectedPayload: { payload: new Uint8Array() }, algo: 2 }));
  assert.deepEqual([...bytes], [0x0a, 0x00, 0x10, 0x02]);
});

test('EdgeDevConfig fields this subset omits survive a decode and re-encode', () => {
  // 26 and 50 are in use upstream but not modelled; 16 is, to see both kinds side by side.
  const bytes = encodeRaw([
    [1, [[1, DEV_UUID]]],
    [16, [[2, 'mesh0'], [4, 4]]],
    [26, 'upstream-only'],
    [50, 1],
  ]);
  const config: EdgeDevConfig = fromBinary(EdgeDevConfigSchema, bytes);
  assert.equal(config.networkInstances[0]?.displayname, 'mesh0');
  assertWireTree(toBinary(EdgeDevConfigSchema, config), [
    [1, [[1, DEV_UUID]]],
    [16, [[2, 'mesh0'], [4, 4]]],
    [26, 'upstream-only'],
    [50, 1],
  ]);
});

test('the committed generated code is what scripts/gen-proto.mjs makes from proto/', () => {
  const committed = join(ROOT, 'src', 'control', 'proto', 'gen');
  const scratch = mkdtempSync(join(tmpdir(), 'lispnode-proto-'));
  try {
    const fresh = join(scratch, 'gen');
    const run = spawnSync(process.execPath, [join(ROOT, 'scripts', 'gen-proto.mjs'), fresh], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(run.status, 0, `gen-proto failed: ${run.stderr}`);
    const files = (dir: string): string[] =>
      readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile())
        .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
        .sort();
    assert.deepEqual(files(fresh), files(committed), 'the set of generated files differs: run `npm run proto`');
    for (const file of files(committed)) {
      assert.ok(readFileSync(join(fresh, file)).equals(readFileSync(join(committed, file))), `${file} is stale: run \`npm run proto\``);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});
