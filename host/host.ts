// The host: the Node-side owner of the store, the kernel and every vat, and
// the API code outside any vat uses to talk to them.
import crypto from 'node:crypto';
import { bundleFromSource, bundleId, sourceBundleFromText } from './bundles/vat-bundle.js';
import { ModuleStore, bundlecapInfo, isBundlecap, type Bundlecap } from './bundles/module-store.js';
import { grantExits, validateExitPolicy, type ExitPolicy } from './bundles/exit-policy.js';
import { manifestBundleId, manifestToVatBundle, validateManifest, type Manifest, type SourceBundle } from './bundles/manifest.js';
import type { PreflightResult } from './upgrade/preflight.js';
import type { ReviewContext } from './review/review.js';
import type { ShadowDifference, ShadowReport } from './upgrade/shadow.js';
import { ChangeChecks } from './upgrade/change-checks.js';
import type { DryRunReport } from './upgrade/dry-run.js';
import { Kernel, type KernelOptions, type VatBundle } from './kernel/kernel.js';
import { answerDevice, provideDevice, type DeviceHost } from './upgrade/devices.js';
import type { Capdata, Kref } from './kernel/refs.js';
import { makeHostMarshal, type HostMarshal } from './marshal/host-marshal.js';
import { harden } from './marshal/endo.js';
import { Store } from './store/index.js';
import { BlockRunner } from './kernel/block-runner.js';
import type { BlockReport, RunPolicy } from './kernel/run-policy.js';
import { assertSendable } from './marshal/sendable.js';
import { PreflightRefused, UpgradeError, upgradeReason } from './upgrade/upgrade-error.js';
import { readStateExport, writeStateExport, type ExportMeta } from './store/state-export.js';
import { CLUSTER_BINDING_KEY } from './replica/store-binding.js';
import type { Replica, ReplicateOptions } from './replica/replica.js';

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

type Eventual<T> = { [K in keyof T]: (...args: any[]) => Promise<any> } & Record<string, (...args: any[]) => Promise<any>>;

export class Host {
  private closed = false;
  private readonly runner: BlockRunner;
  private readonly checks: ChangeChecks;
  private readonly marshal: HostMarshal;
  private readonly admins = new WeakMap<object, string>();
  private readonly adminByVat = new Map<string, object>();
  private readonly serialize = (value: unknown): Capdata => this.marshal.serialize(harden(value));

  /** Content-addressed code: upload pieces, get bundlecaps (SPEC §3). */
  readonly bundles: ModuleStore;
  /** The replica this host is (Host.open with `replicate`), else undefined. */
  replica: Replica | undefined;

  private constructor(
    readonly store: Store,
    readonly kernel: Kernel,
    options: HostOptions,
  ) {
    this.marshal = makeHostMarshal((kp) => this.promiseFor(kp));
    this.checks = new ChangeChecks({
      kernel,
      store,
      marshal: this.marshal,
      serialize: this.serialize,
      policyOf: (vat) => this.installationPolicyOf(vat),
      grants: (vat, manifest, extra) => this.upgradeGrants(vat, manifest, extra),
      runningManifestOf: (vat) => this.runningManifestOf(vat),
    });
    this.runner = new BlockRunner(kernel, options.autoRun ?? true, options.runPolicy);
    this.bundles = new ModuleStore(store);
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
      const imported = options.replicate?.importFrom && !store.hasState() ? readStateExport(store, options.replicate.importFrom) : undefined;
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

  /** Eventual send from outside any vat: host.E(presence).method(...args) returns a promise. */
  E<T = unknown>(target: unknown): Eventual<T> {
    this.assertOpen();
    const kref = this.marshal.krefOf(target);
    if (kref === undefined) throw new TypeError('host.E needs a presence this host received from a vat');
    return new Proxy({} as Eventual<T>, {
      get: (_t, method) => {
        if (typeof method !== 'string') return undefined;
        return (...args: unknown[]) => this.send(kref, method, args);
      },
    });
  }

  private send(target: Kref, method: string, args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.assertOpen();
      if (typeof method !== 'string' || method.length > 1000) throw new TypeError('a method name must be a string of at most 1000 characters');
      const data = this.marshal.serialize(harden(assertSendable(args)));
      if (this.replica) {
        this.replica.send(target, method, data).then(({ rejected, data: result }) => this.settle(resolve, reject, rejected, result), reject);
        return;
      }
      this.runner.atBoundary(
        () => {
          try {
            this.kernel.queueToKref(target, method, data, (rejected, result) => this.settle(resolve, reject, rejected, result));
          } catch (err) {
            reject(err);
            return;
          }
          this.runner.schedule();
        },
        () => reject(new Error(`the host was closed before ${method.slice(0, 80)} was sent`)),
      );
    });
  }

  private settle(resolve: (v: unknown) => void, reject: (e: unknown) => void, rejected: boolean, data: Capdata): void {
    let value: unknown;
    try {
      value = this.marshal.unserialize(data);
    } catch (err) {
      reject(err);
      return;
    }
    if (rejected) reject(value);
    else resolve(value);
  }

  // One JS promise per kernel promise while anything holds it, settled
  // asynchronously: promises whose values name each other then decode without
  // recursion, and to the same objects.
  private readonly promises = new Map<Kref, WeakRef<Promise<unknown>>>();
  private readonly forgetPromise = new FinalizationRegistry<Kref>((kp) => {
    if (this.promises.get(kp)?.deref() === undefined) this.promises.delete(kp);
  });

  private promiseFor(kp: Kref): Promise<unknown> {
    const known = this.promises.get(kp)?.deref();
    if (known) return known;
    const p = new Promise((resolve, reject) =>
      this.kernel.waitFor(kp, (rejected, data) => queueMicrotask(() => this.settle(resolve, reject, rejected, data))),
    );
    this.promises.set(kp, new WeakRef(p));
    this.forgetPromise.register(p, kp);
    return p;
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

  /** The adminFacet of an instance (host-side; hand it to governance, not to clients). */
  adminFacet(instanceId: string): object {
    let admin = this.adminByVat.get(instanceId);
    if (!admin) {
      this.kernel.vatRecord(instanceId);
      admin = harden({ instanceId, toString: () => `[adminFacet ${instanceId}]` });
      this.admins.set(admin, instanceId);
      this.adminByVat.set(instanceId, admin);
    }
    return admin;
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

  private adminVat(adminFacet: object): string {
    const vat = this.admins.get(adminFacet);
    if (vat === undefined) throw new TypeError('expected an adminFacet from startInstance');
    return vat;
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

  /**
   * The stable, printable reference of an object this host received from a
   * vat (its kref, e.g. "ko12"): the way external clients address objects
   * between processes. Valid for the life of the store, across Host.open
   * (SPEC §8, issue 14). Throws TypeError for anything that is not a presence.
   */
  refOf(presence: unknown): string {
    const kref = this.marshal.krefOf(presence);
    if (kref === undefined) throw new TypeError('refOf needs a presence this host received from a vat');
    return kref;
  }

  /**
   * Releases objects this host received (presences, or refs from refOf):
   * every object a vat hands the host stays alive for it, however long,
   * until released (issue #11; without it a long-running host would pin
   * everything it was ever given). Once released, the next GC point drops an
   * object no vat or queued message holds, and its presence and ref stop
   * working (sends to it fail with "no kernel object"); an object handed to
   * the host again is held again. Resolves to how many were held.
   * Throws TypeError for anything that is not a presence or ref of this host,
   * and for a facet of an instance kit (the host keeps kits: instanceKit).
   */
  release(...refs: unknown[]): Promise<number> {
    this.assertOpen();
    if (this.replica) throw new Error('release is not replicated yet: a replica keeps every object it was handed');
    const krefs = refs.map((r) => {
      const kref = typeof r === 'string' ? r : this.marshal.krefOf(r);
      if (kref === undefined || !/^ko\d+$/.test(kref)) throw new TypeError('release needs presences this host received from a vat, or refs from refOf');
      return kref;
    });
    // Instance kits stay held: instanceKit() hands them out again at any time.
    for (const [key, kit] of this.store.entries('h.kit.')) {
      const facet = krefs.find((k) => (kit as Capdata).slots.includes(k));
      if (facet) throw new TypeError(`${facet} is a facet of instance ${key.slice('h.kit.'.length)}'s kit, which the host keeps (instanceKit); it cannot be released`);
    }
    return new Promise((resolve, reject) =>
      this.runner.atBoundary(
        () => {
          try {
            resolve(this.kernel.releaseHostRefs(krefs));
          } catch (err) {
            reject(err);
            return;
          }
          this.runner.schedule();
        },
        () => reject(new Error('the host was closed before release')),
      ),
    );
  }

  /** The presence for a reference from refOf; TypeError if this store has no such object. */
  presence(ref: string): object {
    this.assertOpen();
    if (typeof ref !== 'string' || !/^ko\d+$/.test(ref) || this.kernel.state.objectOwner(ref) === undefined) {
      throw new TypeError(`no object ${JSON.stringify(ref)} on this host (references look like ko12, from refOf)`);
    }
    return this.marshal.presence(ref);
  }

  /** The interface name its vat gave an object ("Alleged: Counter"), if a message carried it in this process. */
  interfaceOf(presence: unknown): string | undefined {
    const kref = this.marshal.krefOf(presence);
    return kref === undefined ? undefined : this.marshal.interfaceOf(kref);
  }

  /** sha256 over the committed store and every vat's memory image. */
  stateHash(): string {
    this.assertOpen();
    // Between cranks of a running block: its finished cranks are committed first.
    if (this.store.dirty) this.kernel.commit();
    const h = crypto.createHash('sha256').update(this.store.stateHash());
    for (const vat of this.kernel.vatIds()) h.update(`${vat}:${this.kernel.vatMemoryHash(vat)}`);
    return h.digest('hex');
  }

  /** Capdata for a passable value (presences become krefs): how the replicated log carries values. */
  toCapdata(value: unknown): Capdata {
    return this.serialize(value);
  }

  /** The value of capdata from toCapdata or a vat, with presences for krefs. */
  fromCapdata(data: Capdata): unknown {
    return this.marshal.unserialize(data);
  }

  /**
   * Writes every committed entry of the store to `file`, with the replica
   * height and state hash (issue #15): a new replica joins from it
   * (`replicate.importFrom`). Between blocks only: it refuses while cranks
   * wait uncommitted.
   */
  exportState(file: string): ExportMeta & { entries: number; bytes: number } {
    this.assertOpen();
    if (this.store.dirty) throw new Error('the host has uncommitted work; run() its block first, then export');
    const binding = this.store.get(CLUSTER_BINDING_KEY) as { cluster: string; genesis: string } | undefined;
    return writeStateExport(this.store, file, {
      height: (this.store.get('replica.height') as number | undefined) ?? 0,
      stateHash: this.stateHash(),
      ...(binding ? { cluster: { name: binding.cluster, genesis: binding.genesis } } : {}),
    });
  }

  // ---------------------------------------------------------------- running

  /**
   * Runs one block under `policy` (defaults: run-policy.ts): cranks until
   * nothing is runnable or a limit is reached, yielding to the event loop
   * between cranks, then one commit. Resolves with what the block did. With
   * autoRun on, this waits its turn behind the background runner's block.
   */
  async run(policy?: RunPolicy): Promise<BlockReport> {
    this.assertOpen();
    return this.runner.runBlock(policy);
  }

  /**
   * Suspends an instance or vat (SPEC extension, issue #10): messages to it
   * wait in the run queue; `resume` runs them. It can still be upgraded.
   * Survives restart.
   */
  suspend(instance: object | string, reason?: string): void {
    this.assertOpen();
    this.kernel.suspendVat(this.vatOf(instance), reason);
  }

  resume(instance: object | string): void {
    this.assertOpen();
    this.kernel.resumeVat(this.vatOf(instance));
    this.runner.schedule();
  }

  /**
   * Per-vat counters for operators: deliveries, meter units used, aborted
   * deliveries and meter faults, messages waiting for it (`queued`), messages
   * it sent that are still waiting (`queueShare`), and whether it is suspended.
   */
  vatStats(instance: object | string): ReturnType<Kernel['vatStats']> & { suspendedBecause?: string } {
    this.assertOpen();
    const vat = this.vatOf(instance);
    const reason = this.kernel.suspensionOf(vat);
    return { ...this.kernel.vatStats(vat), ...(reason ? { suspendedBecause: reason } : {}) };
  }

  private vatOf(instance: object | string): string {
    if (typeof instance === 'string') {
      this.kernel.vatRecord(instance);
      return instance;
    }
    return this.adminVat(instance);
  }

  /** Stops the background runner after its current crank, commits what ran, and closes the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.replica?.stop();
    await this.runner.stop();
    this.kernel.commit();
    // Their messages stay queued (and run after the next open); this process will not hear the answers.
    this.kernel.abandonWaiters('the host was closed before this message was answered; it stays queued and runs when the store is opened again');
    this.kernel.dropAllSandboxes();
    await this.store.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('host is closed');
  }
}

