// A mesh network instance in EVE's config protobuf, both ways: the controller builds an
// EdgeDevConfig from a MeshConfig; the node reads the MeshConfig back out of the signed
// EdgeDevConfig it received, refusing what it cannot run. EVE's mapping (eve-api.md §7–8):
// NetworkInstanceConfig with instType ZnetInstMesh (4), ipType CryptoIPV6, cfg.type
// ZNetOConfigLisp carrying NetworkInstanceLispConfig; ECOs are app interfaces whose networkId is
// the instance. EVE's API has no RTR type: lispnode carries RTRs as ZcServicePoints of type
// supportServer — a convention of ours, documented in docs/controller.md.
import { create } from '@bufbuild/protobuf';
import { parseIpv4, parseIpv6 } from '../lisp/ip-text.js';
import {
  AddressType,
  AppInstanceConfigSchema,
  EdgeDevConfigSchema,
  NetworkAdapterSchema,
  NetworkInstanceConfigSchema,
  ZcServiceType,
  ZNetworkInstType,
  ZNetworkOpaqueConfigType,
  type EdgeDevConfig,
} from './proto/index.js';
import type { MeshConfig, MeshEco, MeshNetworkInstance } from './mesh.js';

export function edgeDevConfigFromMesh(deviceUuid: string, mesh: MeshConfig, version: string): EdgeDevConfig {
  return create(EdgeDevConfigSchema, {
    id: { uuid: deviceUuid, version },
    networkInstances: mesh.instances.map((ni) =>
      create(NetworkInstanceConfigSchema, {
        uuidandversion: { uuid: ni.uuid, version },
        displayname: ni.name,
        instType: ZNetworkInstType.ZnetInstMesh,
        activate: true,
        ipType: AddressType.CryptoIPV6,
        cfg: {
          type: ZNetworkOpaqueConfigType.ZNetOConfigLisp,
          lispConfig: {
            LispInstanceId: ni.instanceId,
            allocate: ni.allocate,
            allocationprefix: ni.allocationPrefix,
            allocationprefixlen: ni.allocationPrefixLength,
            LispMSs: [
              ...ni.mapServers.map((ms) => ({ NameOrIp: ms.address, Credential: ms.credential, zsType: ZcServiceType.mapServer })),
              ...ni.rtrs.map((rtr) => ({ NameOrIp: rtr, zsType: ZcServiceType.supportServer })),
            ],
          },
        },
      }),
    ),
    apps: groupByApp(mesh.ecos).map(([first, ...more]) =>
      create(AppInstanceConfigSchema, {
        uuidandversion: { uuid: first.appUuid, version },
        displayname: first.appName,
        activate: true,
        interfaces: [first, ...more].map((eco) =>
          create(NetworkAdapterSchema, {
            name: eco.interfaceName,
            networkId: eco.networkUuid,
            ...(eco.privateKeyPem !== undefined && { pemprivatekey: new TextEncoder().encode(eco.privateKeyPem) }),
          }),
        ),
      }),
    ),
  });
}

function groupByApp(ecos: readonly MeshEco[]): [MeshEco, ...MeshEco[]][] {
  const groups = new Map<string, [MeshEco, ...MeshEco[]]>();
  for (const eco of ecos) {
    const group = groups.get(eco.appUuid);
    if (group) group.push(eco);
    else groups.set(eco.appUuid, [eco]);
  }
  return [...groups.values()];
}

export type MeshResult = { readonly ok: true; readonly mesh: MeshConfig } | { readonly ok: false; readonly error: string };

const isAddress = (text: string): boolean => parseIpv4(text) !== undefined || parseIpv6(text) !== undefined;

/** The mesh instances of a config and the ECOs on them; other instance types are not ours. */
export function meshFromEdgeDevConfig(config: EdgeDevConfig): MeshResult {
  const instances: MeshNetworkInstance[] = [];
  for (const ni of config.networkInstances) {
    if (ni.instType !== ZNetworkInstType.ZnetInstMesh || !ni.activate) continue;
    const where = `network instance ${ni.displayname || ni.uuidandversion?.uuid || '?'}`;
    const lisp = ni.cfg?.type === ZNetworkOpaqueConfigType.ZNetOConfigLisp ? ni.cfg.lispConfig : undefined;
    if (!lisp) return { ok: false, error: `${where}: a mesh instance without a LISP config (cfg.type ZNetOConfigLisp)` };
    if (ni.ipType !== AddressType.CryptoIPV6) return { ok: false, error: `${where}: ipType ${ni.ipType}; only CryptoIPV6 EIDs are supported` };
    const iid = lisp.LispInstanceId;
    if (iid < 1 || iid > 0xfffffe) return { ok: false, error: `${where}: instance-id ${iid} outside 1..16777214` };
    // EVE's defaults when the prefix is empty: fd/8.
    const prefix = lisp.allocationprefix.length > 0 ? lisp.allocationprefix : Uint8Array.of(0xfd);
    const prefixLength = lisp.allocationprefix.length > 0 ? lisp.allocationprefixlen : 8;
    if (prefixLength % 8 !== 0 || prefixLength < 8 || prefixLength > 120 || prefix.length !== prefixLength / 8) {
      return { ok: false, error: `${where}: allocation prefix of ${prefix.length} bytes with length ${prefixLength} bits; expected whole bytes, 8..120 bits` };
    }
    const servers = lisp.LispMSs;
    const bad = servers.find((s) => !isAddress(s.NameOrIp));
    if (bad) return { ok: false, error: `${where}: service point '${bad.NameOrIp}' is not an IP address (names are not resolved)` };
    const mapServers = servers.filter((s) => s.zsType === ZcServiceType.mapServer);
    if (mapServers.length === 0) return { ok: false, error: `${where}: no map-server` };
    if (mapServers.some((s) => s.Credential === '')) return { ok: false, error: `${where}: a map-server without a credential` };
    instances.push({
      uuid: ni.uuidandversion?.uuid ?? '',
      name: ni.displayname,
      instanceId: iid,
      allocationPrefix: prefix,
      allocationPrefixLength: prefixLength,
      mapServers: mapServers.map((s) => ({ address: s.NameOrIp, credential: s.Credential })),
      rtrs: servers.filter((s) => s.zsType === ZcServiceType.supportServer).map((s) => s.NameOrIp),
      allocate: lisp.allocate,
    });
  }
  const ecos: MeshEco[] = [];
  for (const app of config.apps) {
    if (!app.activate) continue;
    for (const adapter of app.interfaces) {
      if (!instances.some((ni) => ni.uuid === adapter.networkId)) continue;
      ecos.push({
        appUuid: app.uuidandversion?.uuid ?? '',
        appName: app.displayname,
        networkUuid: adapter.networkId,
        interfaceName: adapter.name,
        privateKeyPem: adapter.pemprivatekey.length > 0 ? new TextDecoder().decode(adapter.pemprivatekey) : undefined,
      });
    }
  }
  return { ok: true, mesh: { instances, ecos } };
}
