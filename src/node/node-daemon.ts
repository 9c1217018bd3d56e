// The node role (`lispnode run`): holds the device identity, onboards with the one trusted
// controller, polls its signed config, and runs the mesh network instance it describes as an
// in-process xTR. When the controller-trust files change it stops talking to the controller
// (fail closed) and says why on every poll, and resumes only when they are restored; the
// overlay that is already up keeps running on its last verified config.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ControllerClient, ControllerError, type CertsCheckpoint } from '../control/controller-client.js';
import { DeviceIdentity, TrustChangedError } from '../control/identity.js';
import { meshFromEdgeDevConfig } from '../control/mesh-config.js';
import { planMeshXtrs, type MeshXtrPlan } from '../control/mesh-xtr.js';
import { identityDir, openNodeStore, type NodeStore } from '../control/node-store.js';
import { onboard, type Onboarding } from '../control/onboard.js';
import { readControllerTrust } from '../control/trust.js';
import { softwareSigner } from '../control/x509/software-signer.js';
import { importP256PrivateKey } from '../crypto/p256.js';
import type { EdgeDevConfig } from '../control/proto/index.js';
import { loadXtrConfig } from './config/xtr-config.js';
import { loadBundle } from './side-channel.js';
import { openBundle } from '../control/bundle.js';
import type { NodeConfig } from './config/node-config.js';
import type { Logger } from './log.js';
import { XtrNode } from './xtr/xtr-node.js';

/** `config-rejected`: the controller answered, but its config cannot run here (the log says why). */
export type ControllerState = 'starting' | 'onboarding' | 'connected' | 'unreachable' | 'refused' | 'trust-changed' | 'config-rejected';

export interface NodeStats {
  readonly keyStore: string;
  readonly degraded: string | undefined;
  readonly uuid: string | undefined;
  readonly controller: ControllerState;
  readonly lastError: string | undefined;
  readonly configHash: string;
  readonly mesh: readonly MeshXtrPlan[];
  readonly xtr: unknown;
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
      if (!current || current.signingNotBefore < signingNotBefore) writeText(file, `${signingNotBefore.toISOString()}\n`);
    },
  };
}

function writeText(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

export class NodeDaemon {
  private controllerState: ControllerState = 'starting';
  private lastError: string | undefined;
  private configHash = '';
  private bundleVersion: bigint | undefined;
  private plans: MeshXtrPlan[] = [];
  private xtr: XtrNode | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> = Promise.resolve();
  private stopped = false;

  private constructor(
    private readonly config: NodeConfig,
    private readonly store: NodeStore,
    private readonly identity: DeviceIdentity,
    private readonly client: ControllerClient,
    private readonly log: Logger,
  ) {}

  static async start(config: NodeConfig, log: Logger): Promise<NodeDaemon> {
    const store = await openNodeStore(config, log);
    const dir = identityDir(config);
    const trust = readControllerTrust(config.controller.serverFile, config.controller.rootCaFile);
    const identity = DeviceIdentity.exists(dir) ? DeviceIdentity.load(dir, store.keys) : await DeviceIdentity.create(dir, store.keys, trust, new Date());
    const client = new ControllerClient(() => readControllerTrust(config.controller.serverFile, config.controller.rootCaFile), certsCheckpoint(config));
    const daemon = new NodeDaemon(config, store, identity, client, log);
    log.log('info', 'node started', { store: store.keys.describe(), uuid: identity.uuid ?? '(not onboarded)', controller: trust.url.href });
    daemon.schedule(0);
    return daemon;
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

  /** One round with the controller; every failure becomes a state and a log line, never a crash. */
  private async poll(): Promise<void> {
    try {
      const trust = readControllerTrust(this.config.controller.serverFile, this.config.controller.rootCaFile);
      const changed = this.identity.trustChanges(trust);
      if (changed.length > 0) {
        await this.identity.deviceSigner(trust); // throws the TrustChangedError that explains it
      }
      if (this.identity.uuid === undefined) this.setState('onboarding');
      const uuid = await onboard(this.identity, this.client, trust, this.onboarding());
      await this.applySideChannel(trust.rootCaPem, uuid);
      const device = { signer: await this.identity.deviceSigner(trust), certPem: this.identity.deviceCertPem };
      const response = await this.client.config(device, uuid, this.configHash);
      this.setState('connected');
      if (response?.config) {
        try {
          await this.apply(response.config);
        } catch (error) {
          // Remember the hash all the same: the same bad config is not re-applied every poll.
          this.configHash = response.configHash;
          this.setState('config-rejected', (error as Error).message);
          return;
        }
        this.configHash = response.configHash;
      }
    } catch (error) {
      const state: ControllerState = error instanceof TrustChangedError ? 'trust-changed' : error instanceof ControllerError && error.reason === 'network' ? 'unreachable' : 'refused';
      this.setState(state, (error as Error).message);
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
    await this.apply(config);
    this.configHash = opened.config.configHash;
    this.log.log('info', 'side-channel bundle applied', { version: version.toString() });
  }

  private setState(state: ControllerState, error?: string): void {
    if (state !== this.controllerState || error !== this.lastError) {
      this.log.log(error === undefined ? 'info' : state === 'unreachable' ? 'warn' : 'error', `controller ${state}`, error === undefined ? {} : { error });
    }
    this.controllerState = state;
    this.lastError = error;
  }

  /** Applies a verified config: the mesh instance becomes (or replaces) the running xTR. */
  async apply(config: EdgeDevConfig): Promise<void> {
    const mesh = meshFromEdgeDevConfig(config);
    if (!mesh.ok) throw new Error(`the controller's config cannot run here: ${mesh.error}`);
    const plans = planMeshXtrs(mesh.mesh, { stateDir: this.config.stateDir, underlayAddress: this.config.underlay.address });
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
    this.xtr = await XtrNode.start(loadXtrConfig(plan.configFile), this.log);
    this.log.log('info', 'mesh network instance up', { name: plan.name, instanceId: plan.instanceId, eid: plan.eid, config: plan.configFile });
  }

  stats(): NodeStats {
    return {
      keyStore: this.store.keys.describe(),
      degraded: this.store.degraded,
      uuid: this.identity.uuid,
      controller: this.controllerState,
      lastError: this.lastError,
      configHash: this.configHash,
      mesh: this.plans,
      xtr: this.xtr?.stats(),
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.polling;
    await this.xtr?.stop();
  }
}
