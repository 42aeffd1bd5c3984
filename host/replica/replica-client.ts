// What a client of a replica calls besides submit (issue #15): sends, and the
// state changes a replica's host refuses to make directly (installs, starts,
// upgrades, suspend/resume, bundle uploads), each one input in the log whose
// outcome is the value the host's own method would return.
import { EventEmitter } from 'node:events';
import type { Host, Installation, InstanceKit } from '../host.js';
import type { Bundlecap } from '../bundles/module-store.js';
import type { SourceBundle } from '../bundles/manifest.js';
import type { ExitPolicy } from '../bundles/exit-policy.js';
import type { Capdata, Kref } from '../kernel/refs.js';
import { harden } from '../marshal/endo.js';
import type { Input, Outcome } from './inputs.js';
import { codeRef, type SubmitOptions } from './submission.js';

export abstract class ReplicaClient extends EventEmitter {
  constructor(protected readonly host: Host) {
    super();
  }

  /** Writes `input` to the log; resolves with its outcome once the block holding it commits here (replica.ts). */
  abstract submit(input: Input, options?: SubmitOptions): Promise<Outcome>;

  protected async value(input: Input): Promise<unknown> {
    const { rejected, data } = await this.submit(input);
    const value = this.host.fromCapdata(data);
    if (rejected) throw value;
    return value;
  }

  /** A send (host.E on a replica comes here); resolves with the result's capdata outcome. */
  send(target: Kref, method: string, args: Capdata, options: SubmitOptions = {}): Promise<Outcome> {
    return this.submit({ type: 'send', target, method, args }, options);
  }

  async install(code: Bundlecap | string, options: { label?: string; budget?: bigint; exits?: ExitPolicy } = {}): Promise<Installation> {
    return harden((await this.value({ type: 'install', code: codeRef(code), options: this.host.toCapdata(harden({ ...options })) })) as Installation);
  }

  async startInstance(
    installation: Installation,
    options: { privateArgs?: unknown; parameters?: unknown; vatParameters?: unknown; name?: string; budget?: bigint } = {},
  ): Promise<InstanceKit> {
    const id = await this.value({ type: 'start', installationId: installation.installationId, options: this.host.toCapdata(harden({ ...options })) });
    return this.host.instanceKit(id as string);
  }

  async upgrade(instanceId: string, code: Bundlecap | string, options: { privateArgs?: unknown; vatParameters?: unknown; exits?: ExitPolicy } = {}): Promise<{ incarnation: number }> {
    return (await this.value({ type: 'upgrade', instanceId, code: codeRef(code), options: this.host.toCapdata(harden({ ...options })) })) as { incarnation: number };
  }

  async suspend(instanceId: string, reason?: string): Promise<void> {
    await this.value({ type: 'suspend', instanceId, ...(reason === undefined ? {} : { reason }) });
  }

  async resume(instanceId: string): Promise<void> {
    await this.value({ type: 'resume', instanceId });
  }

  /** Uploads the pieces the replica lacks (one input each), then installs the manifest; resolves with the bundlecap. */
  async addBundle(bundle: Pick<SourceBundle, 'manifest' | 'pieces'>): Promise<Bundlecap> {
    for (const hash of this.host.bundles.missing(bundle.manifest)) await this.value({ type: 'put', pieces: [[hash, bundle.pieces.get(hash)!]] });
    const id = (await this.value({ type: 'installBundle', manifest: bundle.manifest })) as string;
    return this.host.bundles.bundlecap(id)!;
  }
}
