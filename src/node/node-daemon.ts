// The node role (`lispnode run`): holds the device identity, onboards with the one trusted
// controller, attests (TPM quote, EVE's state machine), keeps the vault (sealed key, escrow,
// recovery after a PCR change) and the secret store under it, polls the signed config with the
// integrity token, and runs the mesh network instance it describes as an in-process xTR that
// carries the controller's attestation ticket. When the controller-trust files change it stops
// talking to the controller (fail closed) and says why on every poll, and resumes only when they
// are restored; the overlay that is already up keeps running on its last verified config until
// its ticket runs out.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { writeFileAtomicSync } from '../control/atomic-file.js';
import { AttestationClient } from '../control/attest/attestation-client.js';
import { openBundle } from '../control/bundle.js';
import { ControllerClient, ControllerError, type CertsCheckpoint, type RequestSigner } from '../control/controller-client.js';
import { DeviceIdentity, TrustChangedError } from '../control/identity.js';
import { meshFromEdgeDevConfig } from '../control/mesh-config.js';
import { planMeshXtrs, type MeshXtrPlan } from './mesh-xtr.js';
import { identityDir, openNodeStore, type NodeStore } from './node-store.js';
import { onboard, type Onboarding } from '../control/onboard.js';
import { AttestationTicketSchema, AuthContainerSchema, type AttestVolumeKey, type EdgeDevConfig } from '../control/proto/index.js';
import { readControllerTrust } from '../control/trust.js';
import { NoMeasuredBootError, plainVault, secretStoreFor, Vault, VaultLockedError, type SecretStore } from '../control/vault/index.js';
import { softwareSigner } from '../control/x509/software-signer.js';
import { importP256PrivateKey } from '../crypto/p256.js';
import type { NodeConfig } from './config/node-config.js';
import { loadXtrConfig } from './config/xtr-config.js';
import type { Logger } from './log.js';
import type { DaemonMetrics } from './ops/metrics.js';
import type { ReloadPlan } from './ops/reload.js';
import type { NodeStatusReport, ReloadSummary } from './ops/status-report.js';
import { loadBundle } from './side-channel.js';
import { XtrNode } from './xtr/xtr-node.js';

export type ControllerState = 'starting' | 'onboarding' | 'connected' | 'unreachable' | 'refused' | 'attestation-required' | 'trust-changed' | 'config-rejected';

/**
 * `unlocked`: encrypted secret store open. `plain`: no TPM (EVE: no vault encryption).
 * `locked`: the PCRs changed since sealing; waiting for the escrowed key after attestation.
 * `unavailable`: a TPM without measured boot (PCR 0 or 4 zero): no key is sealed, no secret stored.
 */
export type VaultStatus = 'unlocked' | 'plain' | 'locked' | 'unavailable';

export interface NodeStats {
  readonly keyStore: string;
  readonly degraded: string | undefined;
  readonly uuid: string | undefined;
  readonly controller: ControllerState;
  readonly lastError: string | undefined;
  readonly configHash: string;
  readonly attestation: AttestationClient['state'] | undefined;
  /** `fingerprint`: a one-way digest of the vault key, to see that the same key came back after a recovery. */
  readonly vault: { readonly status: VaultStatus; readonly detail: string; readonly fingerprint?: string };
  readonly ticket: { readonly notAfter: string; readonly eids: readonly string[] } | undefined;
  readonly mesh: readonly MeshXtrPlan[];
}

/** 16 hex digits of SHA-256 over a label and the key: identifies the key without revealing it. */
function vaultFingerprint(key: Uint8Array): string {
  return createHash('sha256').update('lispnode vault key fingerprint\0').update(key).digest('hex').slice(0, 16);
}

/** The saved NotBefore of the last accepted controller signing certificate. */
export function certsCheckpoint(config: NodeConfig): CertsCheckpoint {
  const file = join(config.stateDir, 'controller-signing-not-before');
  return {
    load() {
      try {
        const date = new Date(readFileSync(file, 'utf8').trim());
        return Number.isNaN(date.getTime()) ? undefined : { signingNotBefore: date };
      } catch {
        return undefined;
      }
    },
    save(signingNotBefore) {
      const current = this.load();
      if (!current || current.signingNotBefore < signingNotBefore) writeFileAtomicSync(file, `${signingNotBefore.toISOString()}\n`);
    },
  };
}

/** The fields of a node config whose change a running node can take without a restart. */
const RELOADABLE = new Set(['/controller/poll-interval', '/ops/log']);

export class NodeDaemon {
  private controllerState: ControllerState = 'starting';
  private lastError: string | undefined;
  private configHash = '';
  private bundleVersion: bigint | undefined;
  private plans: MeshXtrPlan[] = [];
  private xtr: XtrNode | undefined;
  private attestation: AttestationClient | undefined;
  private vaultStatus: NodeStats['vault'];
  private secrets: SecretStore | undefined;
  private vaultKey: Uint8Array | undefined;
  /** A config waiting for the vault (the secret store holds the keys it needs). */
  private pendingConfig: EdgeDevConfig | undefined;
  private ticket: { notAfter: number; eids: string[] } | undefined;
  private ticketTimer: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> = Promise.resolve();
  private stopped = false;

  private constructor(
    private config: NodeConfig,
    private readonly store: NodeStore,
    private readonly identity: DeviceIdentity,
    private readonly client: ControllerClient,
    private readonly vault: Vault | undefined,
    private readonly log: Logger,
    private readonly metrics: DaemonMetrics | undefined,
  ) {
    this.vaultStatus = vault ? { status: 'locked', detail: 'not opened yet' } : { status: 'plain', detail: plainVault().reason };
  }

  static async start(config: NodeConfig, log: Logger, metrics?: DaemonMetrics): Promise<NodeDaemon> {
    const store = await openNodeStore(config, log);
    const dir = identityDir(config);
    const trust = readControllerTrust(config.controller.serverFile, config.controller.rootCaFile);
    const identity = DeviceIdentity.exists(dir) ? DeviceIdentity.load(dir, store.keys) : await DeviceIdentity.create(dir, store.keys, trust, new Date());
    const client = new ControllerClient(() => readControllerTrust(config.controller.serverFile, config.controller.rootCaFile), certsCheckpoint(config));
    const vault = store.tpm && new Vault(store.tpm, config.stateDir, await store.keys.publicKey('device'));
    const daemon = new NodeDaemon(config, store, identity, client, vault, log, metrics);
    await daemon.openVault();
    daemon.registerMetrics();
    log.log('info', 'node started', { store: store.keys.describe(), vault: daemon.vaultStatus.status, uuid: identity.uuid ?? '(not onboarded)', controller: trust.url.href });
    daemon.schedule(0);
    return daemon;
  }

  /** Unseals the vault key (or makes one); a locked vault waits for attestation to recover it. */
  private async openVault(): Promise<void> {
    if (!this.vault) {
      this.secrets = secretStoreFor(join(this.config.stateDir, 'secrets'), plainVault());
      this.log.log('warn', 'secrets are stored unencrypted (no TPM, no vault)', { dir: this.secrets.dir });
      return;
    }
    try {
      const opened = await this.vault.open();
      this.unlock(opened.key, opened.created ? 'created and sealed' : 'unsealed');
    } catch (error) {
      if (error instanceof VaultLockedError) this.vaultStatus = { status: 'locked', detail: error.message };
      else if (error instanceof NoMeasuredBootError) this.vaultStatus = { status: 'unavailable', detail: error.message };
      else throw error;
      this.log.log('error', `vault ${this.vaultStatus.status}`, { error: this.vaultStatus.detail });
    }
  }

  private unlock(key: Uint8Array, how: string): void {
    this.vaultKey = key;
    this.secrets = secretStoreFor(join(this.config.stateDir, 'secrets'), { encrypted: true, key, created: false });
    this.vaultStatus = { status: 'unlocked', detail: how, fingerprint: vaultFingerprint(key) };
    this.log.log('info', 'vault unlocked', { how, fingerprint: this.vaultStatus.fingerprint });
  }

  private registerMetrics(): void {
    const m = this.metrics;
    if (!m) return;
    m.gauge('lispnode_node_tpm', 'Whether the device keys are in a TPM (0: key files, no attestation quotes, no vault encryption)', [], () => (this.store.tpm ? 1 : 0));
    m.gauge('lispnode_node_controller_state', 'Controller connection state (1 = the labelled state)', ['state'], () => [[{ state: this.controllerState }, 1]]);
    m.gauge('lispnode_node_attested', 'Whether the last attestation succeeded and its integrity token stands', [], () => (this.attestation?.integrityToken ? 1 : 0));
    m.gauge('lispnode_node_attestation_phase', 'Attestation state machine phase (1 = the labelled phase)', ['phase'], () => [[{ phase: this.attestation?.state.phase ?? 'idle' }, 1]]);
    m.counter('lispnode_node_attestations_total', 'Attestation rounds started and succeeded', ['outcome'], () => [
      [{ outcome: 'started' }, this.attestation?.state.attempts ?? 0],
      [{ outcome: 'succeeded' }, this.attestation?.state.successes ?? 0],
    ]);
    m.gauge('lispnode_node_vault_state', 'Vault state (1 = the labelled state)', ['state'], () => [[{ state: this.vaultStatus.status }, 1]]);
    m.gauge('lispnode_node_ticket_expiry_seconds', 'Seconds until the attestation ticket expires (0: none or expired)', [], () => Math.max(0, ((this.ticket?.notAfter ?? 0) - Date.now()) / 1000));
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.polling = this.poll().finally(() => this.schedule(this.config.controller.pollInterval * 1000 * (0.9 + Math.random() * 0.2)));
    }, delayMs);
  }

  private onboarding(): Onboarding | undefined {
    const o = this.config.onboarding;
    if (!o) return undefined;
    return { credentials: { signer: softwareSigner(importP256PrivateKey(readFileSync(o.keyFile, 'utf8'))), certPem: readFileSync(o.certFile, 'utf8') }, serial: o.serial };
  }

  /** The device's request signer, checked against the trust files at every use (fail closed). */
  private async device(): Promise<RequestSigner> {
    const trust = readControllerTrust(this.config.controller.serverFile, this.config.controller.rootCaFile);
    return { signer: await this.identity.deviceSigner(trust), certPem: this.identity.deviceCertPem };
  }

  /** One round with the controller; every failure becomes a state and a log line, never a crash. */
  private async poll(): Promise<void> {
    try {
      const trust = readControllerTrust(this.config.controller.serverFile, this.config.controller.rootCaFile);
      if (this.identity.trustChanges(trust).length > 0) await this.identity.deviceSigner(trust); // throws the TrustChangedError that explains it
      if (this.identity.uuid === undefined) this.setState('onboarding');
      const uuid = await onboard(this.identity, this.client, trust, this.onboarding());
      this.startAttestation(uuid);
      await this.applySideChannel(trust.rootCaPem, uuid);
      const response = await this.client.config(await this.device(), uuid, this.configHash, this.attestation?.integrityToken);
      this.setState('connected');
      if (response?.config) {
        // Remembered even if it cannot run, so the same bad config is not re-applied every poll.
        this.configHash = response.configHash;
        await this.tryApply(response.config);
      } else if (this.pendingConfig) {
        await this.tryApply(this.pendingConfig);
      }
    } catch (error) {
      if (error instanceof ControllerError && error.status === 403 && this.attestation) {
        // EVE: the controller wants a fresh attestation before it hands out config. A round still
        // in flight (the first one, at start) will bring the token; only a finished one restarts.
        this.setState('attestation-required', error.message);
        if (this.attestation.state.phase === 'complete') this.attestation.restart('/config answered 403');
        return;
      }
      const state: ControllerState = error instanceof TrustChangedError ? 'trust-changed' : error instanceof ControllerError && error.reason === 'network' ? 'unreachable' : 'refused';
      this.setState(state, (error as Error).message);
    }
  }

  private startAttestation(uuid: string): void {
    if (this.attestation) return;
    this.attestation = new AttestationClient({
      client: this.client,
      uuid,
      device: () => this.device(),
      certs: { ecdhPem: readFileSync(join(identityDir(this.config), 'ecdh.cert.pem'), 'utf8'), attestationPem: readFileSync(join(identityDir(this.config), 'attest.cert.pem'), 'utf8') },
      tpm: this.store.tpm,
      escrow: { escrowKeys: () => this.escrowKeys(), returned: (keys) => this.recoverVault(keys) },
      log: this.log,
      onAttested: () => void this.renewTicket(),
    });
    this.attestation.start();
  }

  /** What to escrow after each successful attestation (EVE re-publishes every time). */
  private async escrowKeys(): Promise<AttestVolumeKey[]> {
    if (!this.vault || !this.vaultKey) return [];
    return [await this.vault.escrow(this.vaultKey)];
  }

  /** Keys the controller returned: if the vault is locked, the escrowed key restores (and reseals) it. */
  private async recoverVault(keys: readonly AttestVolumeKey[]): Promise<void> {
    if (!this.vault || this.vaultStatus.status !== 'locked') return;
    const [key] = keys;
    if (!key) {
      this.log.log('error', 'vault locked and the controller holds no escrowed key for this device', {});
      return;
    }
    try {
      this.unlock(await this.vault.recover(key), 'recovered from the controller escrow and resealed to the current PCRs');
      if (this.pendingConfig) await this.tryApply(this.pendingConfig);
    } catch (error) {
      this.log.log('error', 'vault recovery failed', { error: (error as Error).message });
    }
  }

  private async tryApply(config: EdgeDevConfig): Promise<void> {
    try {
      await this.apply(config);
    } catch (error) {
      this.setState('config-rejected', (error as Error).message);
    }
  }

  /** A side-channel bundle the operator applied (lispnode apply-config), verified again here. */
  private async applySideChannel(rootCaPem: string, uuid: string): Promise<void> {
    const bytes = loadBundle(this.config);
    if (!bytes) return;
    const opened = openBundle(bytes, rootCaPem, new Date(), uuid);
    if (!opened.ok) {
      this.log.log('error', 'side-channel bundle refused', { reason: opened.reason, error: opened.message });
      return;
    }
    const version = opened.bundle.version;
    if (version === this.bundleVersion) return;
    if (version !== (await this.store.counter.read())) {
      this.log.log('error', 'side-channel bundle refused', { reason: 'replayed', error: `version ${version} is not the last applied one` });
      return;
    }
    const config = opened.config.config;
    if (!config) return;
    this.bundleVersion = version;
    this.configHash = opened.config.configHash;
    await this.tryApply(config);
    this.log.log('info', 'side-channel bundle applied', { version: version.toString() });
  }

  private setState(state: ControllerState, error?: string): void {
    if (state !== this.controllerState || error !== this.lastError) {
      const level = error === undefined ? 'info' : state === 'unreachable' || state === 'attestation-required' ? 'warn' : 'error';
      this.log.log(level, `controller ${state}`, error === undefined ? {} : { error });
    }
    this.controllerState = state;
    this.lastError = error;
  }

  /** Applies a verified config: the mesh instance becomes (or replaces) the running xTR. */
  async apply(config: EdgeDevConfig): Promise<void> {
    const mesh = meshFromEdgeDevConfig(config);
    if (!mesh.ok) throw new Error(`the controller's config cannot run here: ${mesh.error}`);
    const secrets = this.secrets;
    if (!secrets) {
      this.pendingConfig = config;
      throw new Error(`the config waits for the vault (${this.vaultStatus.status}: ${this.vaultStatus.detail})`);
    }
    this.pendingConfig = undefined;
    const plans = await planMeshXtrs(mesh.mesh, { stateDir: this.config.stateDir, underlayAddress: this.config.underlay.address, secrets, attestationTicket: this.store.tpm !== undefined });
    // One xTR owns the underlay's LISP ports, so one mesh instance runs per node.
    if (plans.length > 1) throw new Error(`the config has ${plans.length} mesh instances with ECOs here; this node runs one (instance ${plans.map((p) => p.instanceId).join(', ')})`);
    await this.xtr?.stop();
    this.xtr = undefined;
    this.plans = plans;
    const [plan] = plans;
    if (!plan) {
      this.log.log('info', 'no mesh instance with an ECO on this node');
      return;
    }
    const values = new Map<string, string>();
    for (const name of plan.secrets) {
      const value = await secrets.get(name);
      if (value) values.set(name, Buffer.from(value).toString('utf8'));
    }
    this.xtr = await XtrNode.start(loadXtrConfig(plan.configFile, { secrets: (name) => values.get(name) }), this.log, this.metrics);
    this.log.log('info', 'mesh network instance up', { name: plan.name, instanceId: plan.instanceId, eid: plan.eid, config: plan.configFile });
    void this.renewTicket();
  }

  /**
   * Asks for a ticket for the mesh's crypto-EIDs with the current integrity token, hands it to the
   * xTR (a file it reads per Map-Register) and registers at once; schedules a fresh attestation at
   * half its lifetime, whose success renews it. Without a token or a TPM there is no ticket.
   */
  private async renewTicket(): Promise<void> {
    const token = this.attestation?.integrityToken;
    const uuid = this.identity.uuid;
    const withTicket = this.plans.filter((p) => p.ticketFile !== undefined);
    if (!token || !uuid || withTicket.length === 0 || this.stopped) return;
    const eids = withTicket.map((p) => `[${p.instanceId}]${p.eid}`);
    try {
      const bytes = await this.client.attestationTicket(await this.device(), uuid, token, eids);
      const payload = fromBinary(AuthContainerSchema, bytes).protectedPayload?.payload ?? new Uint8Array();
      const notAfter = Number(fromBinary(AttestationTicketSchema, payload).notAfterUnixMs);
      for (const plan of withTicket) if (plan.ticketFile) writeFileAtomicSync(plan.ticketFile, bytes);
      this.ticket = { notAfter, eids };
      this.xtr?.refreshRegistrations();
      this.log.log('info', 'attestation ticket renewed', { eids, notAfter: new Date(notAfter).toISOString() });
      clearTimeout(this.ticketTimer);
      this.ticketTimer = setTimeout(() => this.attestation?.restart('attestation ticket renewal'), Math.max(1000, (notAfter - Date.now()) / 2));
    } catch (error) {
      this.log.log('error', 'attestation ticket refused', { error: (error as Error).message });
    }
  }

  stats(): NodeStats {
    return {
      keyStore: this.store.keys.describe(),
      degraded: this.store.degraded,
      uuid: this.identity.uuid,
      controller: this.controllerState,
      lastError: this.lastError,
      configHash: this.configHash,
      attestation: this.attestation?.state,
      vault: this.vaultStatus,
      ticket: this.ticket && { notAfter: new Date(this.ticket.notAfter).toISOString(), eids: this.ticket.eids },
      mesh: this.plans,
    };
  }

  status(reloads: ReloadSummary, limit?: number): NodeStatusReport {
    return { role: 'node', node: this.stats(), xtr: this.xtr?.status(reloads, limit) };
  }

  /** Only the poll interval and log settings change in place; the rest is the node's identity. */
  prepareReload(next: NodeConfig): ReloadPlan {
    const flat = (c: NodeConfig): Map<string, string> =>
      new Map([
        ['/state-dir', c.stateDir],
        ['/controller/server-file', c.controller.serverFile],
        ['/controller/root-ca-file', c.controller.rootCaFile],
        ['/controller/poll-interval', String(c.controller.pollInterval)],
        ['/onboarding', JSON.stringify(c.onboarding ?? null)],
        ['/tpm', JSON.stringify(c.tpm)],
        ['/underlay/address', c.underlay.address],
        ['/ops/status-socket', c.ops.statusSocket],
        ['/ops/metrics', JSON.stringify(c.ops.metrics ?? null)],
        ['/ops/log', JSON.stringify(c.ops.log)],
      ]);
    const before = flat(this.config);
    const changed = [...flat(next)].filter(([k, v]) => before.get(k) !== v).map(([k]) => k);
    return {
      restart: changed.filter((k) => !RELOADABLE.has(k)),
      changes: changed.filter((k) => k === '/controller/poll-interval'),
      apply: () => {
        this.config = next;
        return Promise.resolve([`poll interval ${next.controller.pollInterval} s`]);
      },
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.ticketTimer);
    this.attestation?.stop();
    await this.polling;
    await this.attestation?.settled();
    await this.xtr?.stop();
  }
}
