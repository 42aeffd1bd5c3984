// The host: the Node-side owner of the store, the kernel and every vat, and
// the API code outside any vat uses to talk to them. This file: opening,
// vats, installations, instances and their upgrades (with pre-flight, review
// and shadows); host-base.ts: sends, references, state and running blocks.
import { HostBase } from './host-base.js';
import { bundleFromSource, bundleId, sourceBundleFromText } from './bundles/vat-bundle.js';
import { bundlecapInfo, isBundlecap, type Bundlecap } from './bundles/module-store.js';
import { grantExits, validateExitPolicy, type ExitPolicy } from './bundles/exit-policy.js';
import { manifestBundleId, manifestToVatBundle, validateManifest, type Manifest, type SourceBundle } from './bundles/manifest.js';
import type { PreflightResult } from './upgrade/preflight.js';
import type { ReviewContext } from './review/review.js';
import type { ShadowDifference, ShadowReport } from './upgrade/shadow.js';
import { ChangeChecks } from './upgrade/change-checks.js';
import type { DryRunReport } from './upgrade/dry-run.js';
import { Kernel, type KernelOptions, type VatBundle } from './kernel/kernel.js';
import { answerDevice, provideDevice, type DeviceHost } from './upgrade/devices.js';
import type { Capdata } from './kernel/refs.js';
import { harden } from './marshal/endo.js';
import { Store } from './store/index.js';
import type { RunPolicy } from './kernel/run-policy.js';
import { UpgradeError, upgradeReason } from './upgrade/upgrade-error.js';
import { readStateExport } from './store/state-export.js';
import type { ReplicateOptions } from './replica/replica.js';

/** An installed contract: a zygote image plus its bundle. */
export interface Installation {
  readonly installationId: string;
  readonly label: string;
}

/** What startInstance gives back; facets are presences, adminFacet a host-side capability. */
export interface InstanceKit {
  readonly instanceId: string;
  readonly adminFacet: object;
  readonly publicFacet?: unknown;
  readonly creatorFacet?: unknown;
  readonly root?: unknown;
  readonly [facet: string]: unknown;
}

export interface HostOptions extends KernelOptions {
  /** LMDB directory; omitted = a temporary store removed on close. */
  readonly path?: string;
  /**
   * Run queued work in the background, in blocks under `runPolicy`, yielding
   * to the event loop between cranks (default true). With false, nothing runs
   * until the caller calls `host.run(policy)` (e.g. a replica applying blocks).
   */
  readonly autoRun?: boolean;
  /** The policy blocks run under when the host runs them itself (defaults: run-policy.ts). */
  readonly runPolicy?: RunPolicy;
  /**
   * Makes this host a replica of a cluster whose inputs are ordered by etcd
   * (issue #15; host/replica/): it applies the log's blocks, and state changes
   * go through `host.replica` (host.E and upgrade are routed there by
   * themselves). Implies autoRun false.
   */
  readonly replicate?: ReplicateOptions;
}

export class Host extends HostBase {
  private readonly checks: ChangeChecks;

  private constructor(store: Store, kernel: Kernel, options: HostOptions) {
    super(store, kernel, options);
    this.checks = new ChangeChecks({
      kernel,
      store,
      marshal: this.marshal,
      serialize: this.serialize,
      policyOf: (vat) => this.installationPolicyOf(vat),
      grants: (vat, manifest, extra) => this.upgradeGrants(vat, manifest, extra),
      runningManifestOf: (vat) => this.runningManifestOf(vat),
    });
    kernel.deviceHandler = (target, method, args) => answerDevice(this.deviceHost, target, method, args);
    kernel.onDeviceUpgrade = (vat, bundle, note) => this.recordUpgrade(vat, bundle, note as ExitPolicy);
  }

  // ---------------------------------------------------------------- devices

  private get deviceHost(): DeviceHost {
    return {
      store: this.store,
      kernel: this.kernel,
      bundles: this.bundles,
      marshal: this.marshal,
      policyOf: (vat) => this.installationPolicyOf(vat),
      runningBundleOf: (vat) => this.runningBundleOf(vat),
    };
  }

  /**
   * The instance's admin capability as a kernel object, so a vat (a
   * governance contract) can hold it: upgrade(bundlecap, { exits }),
   * setExits(exitsDelta), getInstanceId(), getIncarnation().
   */
  adminPresence(adminFacet: object): object {
    this.assertOpen();
    const vat = this.adminVat(adminFacet);
    return provideDevice(this.deviceHost, `admin.${vat}`, { type: 'admin', vat });
  }

  /** A bundlecap as a kernel object a vat can hold and pass on: getBundleId(). */
  bundlecapPresence(cap: Bundlecap): object {
    this.assertOpen();
    if (!isBundlecap(cap)) throw new TypeError('expected a bundlecap from host.bundles.install');
    const { bundleId: id } = bundlecapInfo(cap);
    return provideDevice(this.deviceHost, `bundle.${id}`, { type: 'bundlecap', bundleId: id });
  }

  /**
   * A bundlecap for `code`: a bundlecap is returned as is; source text (a
   * convenience for tools and tests) is bundled as one module, uploaded and
   * installed into the module store first.
   */
  private capFor(code: Bundlecap | string, name: string): Bundlecap {
    if (isBundlecap(code)) return code;
    if (typeof code !== 'string') throw new TypeError('expected a bundlecap (from host.bundles.install) or contract source text');
    const sb = sourceBundleFromText(code, `${name}.js`);
    this.bundles.put(sb.pieces);
    return this.bundles.install(sb.manifest);
  }

  /** Opens (or creates) a host; after a crash, every vat comes back at its last committed state. */
  static async open(options: HostOptions = {}): Promise<Host> {
    const store = Store.open({ path: options.path });
    let host: Host;
    try {
      let imported = options.replicate?.importFrom && !store.hasState() ? readStateExport(store, options.replicate.importFrom) : undefined;
      if (options.replicate?.importFrom && !imported) {
        // A replica behind a prune, given an export into its own directory.
        const { importBehindPrune } = await import('./replica/rejoin.js');
        imported = await importBehindPrune(store, options.replicate);
      }
      host = new Host(store, new Kernel(store, options), options.replicate ? { ...options, autoRun: false } : options);
      if (imported && host.stateHash() !== imported.stateHash) {
        throw new Error(`the state imported from ${options.replicate!.importFrom} hashes to ${host.stateHash()}, not ${imported.stateHash} as its export says`);
      }
      // Work committed to the run queue before a crash or restart continues,
      // in the background: a queue that never empties must not hang open().
      host.runner.schedule();
      if (options.replicate) {
        // Loaded only by replicas: a plain host never needs the etcd client.
        const { Replica } = await import('./replica/replica.js');
        host.replica = await Replica.start(host, options.replicate, imported);
      }
    } catch (err) {
      await store.close();
      throw err;
    }
    return host;
  }


  /**
   * Creates a vat from a bundle (or the source text of one ES module) whose
   * entry exports buildRootObject; returns the root object's presence.
   */
  createVat(bundleOrSource: VatBundle | string, options: { name?: string; vatParameters?: unknown; budget?: bigint } = {}): { vatId: string; root: object } {
    this.assertOpen();
    const bundle = typeof bundleOrSource === 'string' ? bundleFromSource(bundleOrSource, `${options.name ?? 'vat'}.js`) : bundleOrSource;
    const { vat, root } = this.kernel.createVat(bundleId(bundle), bundle, {
      name: options.name,
      budget: options.budget,
      vatParameters: this.marshal.serialize(harden(options.vatParameters ?? null)),
    });
    return { vatId: vat, root: this.marshal.presence(root!) };
  }

  /** Every vat, in creation order, with its root object's presence. */
  vats(): { vatId: string; name: string; root: object | undefined }[] {
    this.assertOpen();
    return this.kernel.vatIds().map((vatId) => {
      const r = this.kernel.vatRecord(vatId);
      return { vatId, name: r.name, root: r.root ? this.marshal.presence(r.root) : undefined };
    });
  }

  /**
   * Runs an installation's one-time init and keeps its memory image as the
   * zygote. `exits` is the installation's named-exit policy: every `host:*`
   * import of the bundle must be granted there.
   */
  install(code: Bundlecap | string, options: { label?: string; budget?: bigint; exits?: ExitPolicy } = {}): Installation {
    this.assertOpen();
    const label = options.label ?? 'contract';
    // One crank: the pieces of source text, the zygote and the host's records
    // commit together, or nothing is stored (issue #10).
    return this.kernel.operation(() => {
      const cap = this.capFor(code, label);
      const { bundleId: id, manifest } = bundlecapInfo(cap);
      const policy = validateExitPolicy(options.exits, this.serialize, `installation ${label}`);
      const exits = grantExits(manifest.exits, policy, this.serialize, `installation ${label}`);
      const bundle = this.bundles.loadVatBundle(cap);
      const { vat, result } = this.kernel.createVat(id, bundle, { name: `installation:${label}`, role: 'zygote', budget: options.budget, exits });
      const entry = result && this.marshal.unserialize(result) === 'buildRootObject' ? 'buildRootObject' : 'contract';
      this.store.set(`h.installation.${vat}`, { label, bundleId: id, entry, exits: policy });
      this.bundles.hold(cap, `installation:${vat}`, { commit: false });
      return harden({ installationId: vat, label });
    });
  }

  /**
   * Starts an instance: forks the zygote (installation baggage copied), runs
   * the instance function and the kit maker. For a buildRootObject bundle the
   * vat starts cold and the kit holds its root.
   */
  startInstance(
    installation: Installation,
    options: { privateArgs?: unknown; parameters?: unknown; vatParameters?: unknown; name?: string; budget?: bigint } = {},
  ): InstanceKit {
    this.assertOpen();
    const info = this.store.get(`h.installation.${installation?.installationId}`) as
      | { label: string; bundleId: string; entry: string; exits: ExitPolicy }
      | undefined;
    if (!info) throw new TypeError(`unknown installation ${String(installation?.installationId)}`);
    if (info.entry === 'buildRootObject') {
      const bundle = this.kernel.state.bundle(info.bundleId) as VatBundle;
      const manifest = this.bundles.manifest(info.bundleId);
      const exits = grantExits(manifest?.exits ?? [], info.exits ?? {}, this.serialize, `installation ${info.label}`);
      const { vat, root } = this.kernel.createVat(info.bundleId, bundle, {
        name: options.name ?? info.label,
        budget: options.budget,
        exits,
        vatParameters: this.marshal.serialize(harden(options.vatParameters ?? options.parameters ?? null)),
        record: (v) => {
          const r = this.kernel.vatRecord(v).root!;
          this.recordInstance(v, installation.installationId, info.bundleId, this.marshal.serialize(harden({ root: this.marshal.presence(r) })));
        },
      });
      return harden({ instanceId: vat, root: this.marshal.presence(root!), adminFacet: this.adminFacet(vat) });
    }
    const instanceIdHint = options.name ?? info.label;
    const { vat, kit } = this.kernel.startInstance(installation.installationId, {
      name: instanceIdHint,
      budget: options.budget,
      context: this.marshal.serialize(harden({ parameters: options.parameters ?? null, label: info.label })),
      privateArgs: this.marshal.serialize(harden(options.privateArgs ?? null)),
      record: (v, k) => this.recordInstance(v, installation.installationId, info.bundleId, k),
    });
    const facets = this.marshal.unserialize(kit) as Record<string, unknown>;
    return harden({ ...facets, instanceId: vat, adminFacet: this.adminFacet(vat) });
  }

  /** Every installation on this host, in creation order. */
  installations(): Installation[] {
    return [...this.store.entries('h.installation.')].map(([key, info]) =>
      harden({ installationId: key.slice('h.installation.'.length), label: (info as { label: string }).label }),
    );
  }

  /** The bundle id an instance is running now, if it is an instance of this host. */
  runningBundleOf(instanceId: string): string | undefined {
    return this.store.get(`h.instanceBundle.${instanceId}`) as string | undefined;
  }

  private runningManifestOf(instanceId: string): Manifest | undefined {
    const id = this.runningBundleOf(instanceId);
    return id === undefined ? undefined : this.bundles.manifest(id);
  }

  /** An instance's kit again (e.g. in a later process): its facets and adminFacet. */
  instanceKit(instanceId: string): InstanceKit {
    this.assertOpen();
    const kit = this.store.get(`h.kit.${instanceId}`) as Capdata | undefined;
    if (!kit) throw new TypeError(`unknown instance ${JSON.stringify(instanceId)}`);
    return harden({ ...(this.marshal.unserialize(kit) as Record<string, unknown>), instanceId, adminFacet: this.adminFacet(instanceId) });
  }

  /**
   * Upgrades an instance to a new bundle, atomically (SPEC §5). Pre-flight
   * runs first (issue 13): on any problem the upgrade is refused with
   * PreflightRefused (an UpgradeError listing the problems) and nothing
   * changes, unless `force: true`. Upgrading to the bundle the instance
   * already runs is refused unless `restart: true` (or new `exits` are
   * given). Throws UpgradeError naming the cause; the old incarnation then
   * keeps serving.
   */
  async upgrade(
    adminFacet: object,
    code: Bundlecap | string,
    options: { privateArgs?: unknown; vatParameters?: unknown; exits?: ExitPolicy; upgradeMessage?: string; force?: boolean; restart?: boolean } = {},
  ): Promise<{ incarnation: number }> {
    this.assertOpen();
    const vat = this.admins.get(adminFacet);
    if (vat === undefined) throw new TypeError('upgrade needs an adminFacet from startInstance');
    if (this.replica && !this.replica.applying) return this.replica.upgrade(vat, code, options);
    const next = this.kernel.vatRecord(vat).incarnation + 1;
    try {
      // Checked before the upgrade's crank, on code not yet stored: a refused
      // upgrade leaves nothing behind.
      const source = this.codeOf(code, `${vat}-incarnation-${next}`);
      const id = isBundlecap(code) ? bundlecapInfo(code).bundleId : manifestBundleId(source.manifest);
      const newExits = options.exits !== undefined && Object.keys(options.exits).length > 0;
      if (id === this.runningBundleOf(vat) && !options.restart && !newExits) {
        throw new UpgradeError(vat, next, `instance ${vat} already runs bundle ${id}; nothing to upgrade (pass restart: true to start a new incarnation of the same bundle)`);
      }
      this.upgradeGrants(vat, source.manifest, options.exits);
      // Pre-flight runs inside the upgrade's crank, on the incarnation the
      // upgrade starts: a problem rolls the crank back (PreflightRefused).
      const checks = options.force ? undefined : this.checks.upgradeChecks(vat, source, options);
      // One crank: pieces of source text, the new incarnation and the host's
      // records (running bundle, bundle hold) commit together or not at all.
      return this.kernel.operation(() => {
        const cap = this.capFor(code, `${vat}-incarnation-${next}`);
        const { bundleId: id, manifest } = bundlecapInfo(cap);
        const { policy, exits } = this.upgradeGrants(vat, manifest, options.exits);
        return this.kernel.upgradeVat(vat, id, this.bundles.loadVatBundle(cap), {
          privateArgs: options.privateArgs === undefined ? undefined : this.marshal.serialize(harden(options.privateArgs)),
          vatParameters: options.vatParameters === undefined ? undefined : this.marshal.serialize(harden(options.vatParameters)),
          exits,
          upgradeMessage: options.upgradeMessage,
          checks,
          record: () => this.recordUpgrade(vat, id, policy),
        });
      });
    } catch (err) {
      if (err instanceof UpgradeError) throw err;
      throw new UpgradeError(vat, next, upgradeReason(err as Error), { cause: err });
    } finally {
      // Promises the upgrade settled (disconnections) are delivered in blocks.
      this.runner.schedule();
    }
  }

  // The instance now runs `bundle` under `policy`; its old bundle is released.
  // Always inside the upgrade's crank: the writes commit with it.
  private recordUpgrade(vat: string, bundle: string, policy: ExitPolicy): void {
    const previous = this.runningBundleOf(vat);
    this.store.set(`h.exits.${vat}`, policy);
    this.store.set(`h.instanceBundle.${vat}`, bundle);
    this.bundles.hold(bundle, `instance:${vat}`, { commit: false });
    if (previous && previous !== bundle && this.bundles.holders(previous).includes(`instance:${vat}`)) {
      this.bundles.release(previous, `instance:${vat}`, { commit: false });
    }
  }

  private recordInstance(vat: string, installationId: string, bundle: string, kit: Capdata): void {
    this.store.set(`h.instanceOf.${vat}`, installationId);
    this.store.set(`h.kit.${vat}`, kit);
    this.store.set(`h.instanceBundle.${vat}`, bundle);
    this.bundles.hold(bundle, `instance:${vat}`, { commit: false });
  }

  // The exits a new bundle for `vat` gets: its current policy plus `extra`.
  private upgradeGrants(vat: string, manifest: Manifest, extra?: ExitPolicy): { policy: ExitPolicy; exits: Record<string, unknown> } {
    const policy = { ...this.installationPolicyOf(vat), ...validateExitPolicy(extra, this.serialize, `exits for ${vat}`) };
    return { policy, exits: grantExits(manifest.exits, policy, this.serialize, `the new bundle for ${vat}`) };
  }

  // The policy an instance runs under: its installation's, or what its last upgrade granted.
  private installationPolicyOf(vat: string): ExitPolicy {
    const own = this.store.get(`h.exits.${vat}`) as ExitPolicy | undefined;
    if (own) return own;
    const installation = this.store.get(`h.instanceOf.${vat}`) as string | undefined;
    const info = installation === undefined ? undefined : (this.store.get(`h.installation.${installation}`) as { exits?: ExitPolicy } | undefined);
    return info?.exits ?? {};
  }

  /** The code, manifest and bundle id for `code`, without storing anything. */
  private codeOf(code: Bundlecap | string | SourceBundle, name: string): { manifest: Manifest; bundle: VatBundle } {
    if (isBundlecap(code)) return { manifest: bundlecapInfo(code).manifest, bundle: this.bundles.loadVatBundle(code) };
    if (typeof code === 'object' && code !== null && 'manifest' in code && 'pieces' in code) {
      const source = code as SourceBundle;
      const manifest = validateManifest(source.manifest);
      return { manifest, bundle: manifestToVatBundle(manifest, (h) => source.pieces.get(h)) };
    }
    if (typeof code !== 'string') throw new TypeError('expected a bundlecap or contract source text');
    const sb = sourceBundleFromText(code, `${name}.js`);
    return { manifest: sb.manifest, bundle: manifestToVatBundle(sb.manifest, (h) => sb.pieces.get(h)) };
  }

  /**
   * Pre-flight checks (SPEC §5.7): a dry-run upgrade in a throwaway copy of the
   * live vat, plus checks that name the problem. Changes nothing. Takes the
   * adminFacet or just the instance id.
   */
  async preflight(
    instance: object | string,
    code: Bundlecap | string,
    options: { privateArgs?: unknown; vatParameters?: unknown; exits?: ExitPolicy } = {},
  ): Promise<PreflightResult> {
    this.assertOpen();
    // It changes nothing, so anyone may run it: an instance id is enough.
    const vat = typeof instance === 'string' ? instance : this.adminVat(instance);
    this.kernel.vatRecord(vat);
    let source;
    try {
      source = this.codeOf(code, `${vat}-preflight`);
      validateExitPolicy(options.exits, this.serialize, `exits for ${vat}`);
    } catch (err) {
      return { ok: false, problems: [{ code: 'bundle-invalid', message: (err as Error).message }] };
    }
    const { summary: _summary, ...result } = this.checks.preflight(vat, source, options);
    return result;
  }

  /**
   * What a voter's review shows next to the code when it is against a
   * running instance (issue 13): the instance, its incarnation and bundle;
   * the upgrade summary (durable kinds, facets and methods, stateVersions,
   * named exits, old -> new) from both versions loaded in trial vats; and the
   * pre-flight results. Changes nothing.
   */
  async reviewContext(instanceId: string, code: Bundlecap | string | SourceBundle, options: { privateArgs?: unknown; exits?: ExitPolicy } = {}): Promise<ReviewContext> {
    this.assertOpen();
    const record = this.kernel.vatRecord(instanceId);
    const bundleId = this.runningBundleOf(instanceId);
    if (bundleId === undefined) throw new TypeError(`${instanceId} is not an instance of this host`);
    const report = this.checks.preflight(instanceId, this.codeOf(code, `${instanceId}-review`), options);
    return {
      instance: { id: instanceId, incarnation: record.incarnation, bundleId },
      summary: report.summary,
      preflight: { ok: report.ok, problems: report.problems, ...(report.warnings ? { warnings: report.warnings } : {}) },
    };
  }

  /**
   * Shadow validation (SPEC §5.6): upgrades a throwaway copy of the live vat
   * and feeds it every later delivery; its effects go nowhere; answers that
   * differ are reported. promote() enacts the upgrade; drop() discards it.
   */
  async shadow(
    adminFacet: object,
    code: Bundlecap | string,
    options: { privateArgs?: unknown; exits?: ExitPolicy; onDifference?: (d: ShadowDifference) => void } = {},
  ): Promise<{ report(): ShadowReport; promote(promoteOptions?: { force?: boolean }): Promise<{ incarnation: number }>; drop(): Promise<void> }> {
    this.assertOpen();
    const vat = this.adminVat(adminFacet);
    const { shadow, detach } = this.checks.shadow(vat, () => this.codeOf(code, `${vat}-shadow`), options);
    return harden({
      report: () => shadow.report(),
      promote: async (promoteOptions: { force?: boolean } = {}) => {
        detach();
        return this.upgrade(adminFacet, code, { privateArgs: options.privateArgs, exits: options.exits, force: promoteOptions.force });
      },
      drop: async () => detach(),
    });
  }

  /**
   * A dry-run shadow (issue 13): `calls` are replayed, in order, against a
   * fork of the live vat running its current incarnation and a fork running
   * `code`, and their answers compared. Nothing live changes: the forks read
   * the committed vatstore through private overlays and their sends go
   * nowhere. Takes the adminFacet or just the instance id; throws if `code`
   * does not start or a call targets something that is not the instance's.
   */
  async shadowDryRun(
    instance: object | string,
    code: Bundlecap | string,
    calls: readonly { readonly target: object; readonly method: string; readonly args?: readonly unknown[] }[],
    options: { privateArgs?: unknown; exits?: ExitPolicy } = {},
  ): Promise<DryRunReport> {
    this.assertOpen();
    const vat = typeof instance === 'string' ? instance : this.adminVat(instance);
    this.kernel.vatRecord(vat);
    return this.checks.dryRun(vat, this.codeOf(code, `${vat}-dry-run`), calls, options);
  }
}
