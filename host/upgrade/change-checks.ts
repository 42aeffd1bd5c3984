// Checking a proposed change before it is enacted, against a live instance
// (SPEC §5.6-5.7, issue 13): pre-flight, shadows beside the live vat, and
// dry-run shadows on forks. All of it runs in throwaway trial vats and
// changes nothing live. The host API (host.ts) resolves its arguments and
// calls these.
import { ExitNotGranted, grantExits, type ExitPolicy } from '../bundles/exit-policy.js';
import type { Manifest } from '../bundles/manifest.js';
import type { Kernel, UpgradeChecks, VatBundle } from '../kernel/kernel.js';
import type { Capdata, Kref } from '../kernel/refs.js';
import { Far, harden, makeMarshal } from '../marshal/endo.js';
import type { HostMarshal } from '../marshal/host-marshal.js';
import type { Store } from '../store/index.js';
import { runDryRun, type DryRunReport } from './dry-run.js';
import { PreflightSession, runPreflight, type PreflightInput, type PreflightProblem, type PreflightReport } from './preflight.js';
import { Shadow, type ShadowDifference } from './shadow.js';
import { trialOfStarted, trialUpgrade } from './trials.js';
import { PreflightRefused, UpgradeError, upgradeReason } from './upgrade-error.js';

/** Code already resolved and loaded (not yet stored). */
export interface LoadedCode {
  readonly manifest: Manifest;
  readonly bundle: VatBundle;
}

/** What the checks need from the host. */
export interface ChangeHost {
  readonly kernel: Kernel;
  readonly store: Store;
  readonly marshal: HostMarshal;
  serialize(value: unknown): Capdata;
  /** The named-exit policy the instance runs under now. */
  policyOf(vat: string): ExitPolicy;
  /** The exits a new bundle for `vat` gets: its current policy plus `extra` (throws if one is not granted). */
  grants(vat: string, manifest: Manifest, extra?: ExitPolicy): { policy: ExitPolicy; exits: Record<string, unknown> };
  runningManifestOf(vat: string): Manifest | undefined;
}

export class ChangeChecks {
  constructor(private readonly h: ChangeHost) {}

  /**
   * Pre-flight as part of the upgrade itself (issue 16): the current
   * incarnation is inspected now, in a clone of its live sandbox; the new
   * one is judged inside the upgrade's crank
   * on a clone of the sandbox the upgrade started, and any problem aborts
   * that crank with PreflightRefused. The verdict is runPreflight's: the
   * same inspection of the same incarnation, started by the same delivery
   * under the same limits. The exits must already be granted.
   */
  upgradeChecks(vat: string, source: LoadedCode, options: { privateArgs?: unknown; vatParameters?: unknown; exits?: ExitPolicy }): UpgradeChecks {
    const { kernel } = this.h;
    const next = kernel.vatRecord(vat).incarnation + 1;
    const session = new PreflightSession(this.preflightInput(vat, source, options, {}));
    return {
      started: (sandbox) => {
        const trial = trialOfStarted(kernel, vat, sandbox);
        let report: PreflightReport;
        try {
          report = session.judge(trial);
        } finally {
          trial.dispose();
        }
        if (!report.ok) throw new PreflightRefused(vat, next, report.problems);
      },
      failed: (err) => new PreflightRefused(vat, next, session.startFailed(upgradeReason(err)).problems),
    };
  }

  /** Pre-flight of code already loaded, in trial vats (nothing live changes). */
  preflight(vat: string, source: LoadedCode, options: { privateArgs?: unknown; vatParameters?: unknown; exits?: ExitPolicy }): PreflightReport {
    const { h } = this;
    const problems: PreflightProblem[] = [];
    let exits: Record<string, unknown> = {};
    const policy = { ...h.policyOf(vat), ...(options.exits ?? {}) };
    for (const exit of source.manifest.exits) {
      try {
        Object.assign(exits, grantExits([exit], policy, h.serialize, `the new bundle for ${vat}`));
      } catch (err) {
        if (!(err instanceof ExitNotGranted)) throw err;
        problems.push({ code: 'exit-not-granted', message: err.message });
      }
    }
    if (problems.length > 0) exits = {};
    return runPreflight(this.preflightInput(vat, source, options, exits), problems);
  }

  private preflightInput(
    vat: string,
    source: LoadedCode,
    options: { privateArgs?: unknown; vatParameters?: unknown },
    exits: Record<string, unknown>,
  ): PreflightInput {
    const { h } = this;
    return {
      kernel: h.kernel,
      vat,
      bundle: source.bundle,
      exits,
      privateArgs: options.privateArgs === undefined ? undefined : h.marshal.serialize(harden(options.privateArgs)),
      vatParameters: options.vatParameters === undefined ? undefined : h.marshal.serialize(harden(options.vatParameters)),
      facets: this.facetsOf(vat),
      decode: this.vatDecoder(vat),
      exitNames: { from: h.runningManifestOf(vat)?.exits ?? [], to: source.manifest.exits },
    };
  }

  /**
   * Starts `source` as a shadow of the live vat: fed every later committed
   * delivery of it; `detach()` stops it. Throws UpgradeError if it cannot start.
   */
  shadow(vat: string, load: () => LoadedCode, options: { privateArgs?: unknown; exits?: ExitPolicy; onDifference?: (d: ShadowDifference) => void }): { shadow: Shadow; detach(): void } {
    const { kernel, marshal } = this.h;
    if (kernel.shadows.has(vat)) throw new Error(`instance ${vat} already has a shadow; drop or promote it first`);
    const source = load();
    const { exits } = this.h.grants(vat, source.manifest, options.exits);
    const privateArgs = options.privateArgs === undefined ? undefined : marshal.serialize(harden(options.privateArgs));
    const { trial, ok, error } = trialUpgrade(kernel, vat, source.bundle, { privateArgs, exits });
    if (!ok) {
      trial.dispose();
      throw new UpgradeError(vat, kernel.vatRecord(vat).incarnation + 1, `the shadow could not start: ${error}`);
    }
    const shadow = new Shadow(vat, trial, this.vatDecoder(vat), (vref) => kernel.krefOf(vat, vref));
    shadow.onDifference = options.onDifference ?? null;
    kernel.shadows.set(vat, shadow);
    const detach = () => {
      if (kernel.shadows.get(vat) === shadow) kernel.shadows.delete(vat);
      shadow.dispose();
    };
    return { shadow, detach };
  }

  /** Replays `calls` on a fork running the current incarnation and a fork running `source`; compares answers. */
  dryRun(
    vat: string,
    source: LoadedCode,
    calls: readonly { readonly target: object; readonly method: string; readonly args?: readonly unknown[] }[],
    options: { privateArgs?: unknown; exits?: ExitPolicy },
  ): DryRunReport {
    const { h } = this;
    const { exits } = h.grants(vat, source.manifest, options.exits);
    const hostCalls = calls.map((c, i) => {
      const target = h.marshal.krefOf(c.target);
      if (target === undefined) throw new TypeError(`call ${i + 1} (${c.method}): the target must be a presence of the instance`);
      return { target, method: c.method, args: h.serialize(c.args ?? []) };
    });
    return runDryRun({
      kernel: h.kernel,
      vat,
      bundle: source.bundle,
      exits,
      privateArgs: options.privateArgs === undefined ? undefined : h.serialize(options.privateArgs),
      calls: hostCalls,
      decode: this.vatDecoder(vat),
      toVat: (data) => h.kernel.translator.existingToVat(vat, data),
    });
  }

  // Decodes capdata from a vat's point of view: references it shares with the
  // kernel become presences, references only it knows become placeholders.
  private vatDecoder(vat: string): (data: Capdata) => unknown {
    const { kernel, marshal } = this.h;
    const placeholders = new Map<string, object>();
    const m = makeMarshal(undefined, (vref: string) => {
      const kref = kernel.krefOf(vat, vref);
      if (kref !== undefined && kref.startsWith('ko')) return marshal.presence(kref);
      let p = placeholders.get(vref);
      if (!p) placeholders.set(vref, (p = Far(`${vref} (new in the vat)`, {})));
      return p;
    }, { serializeBodyFormat: 'smallcaps' });
    return (data) => m.fromCapData(data as any);
  }

  private facetsOf(vat: string): Record<string, Kref> {
    const { store, marshal } = this.h;
    const kit = store.get(`h.kit.${vat}`) as Capdata | undefined;
    if (!kit) return {};
    const decoded = marshal.unserialize(kit) as Record<string, unknown>;
    const out: Record<string, Kref> = {};
    for (const [name, value] of Object.entries(decoded)) {
      const kref = marshal.krefOf(value);
      if (kref !== undefined) out[name] = kref;
    }
    return out;
  }
}
