// Throwaway copies of a vat for pre-flight checks, dry runs and shadows,
// built from what the kernel exposes; nothing here changes the kernel or the
// store. Trials run under the vat's own limits: its budget, the kernel's
// sandbox options, and (in trial-vat.ts) the kernel's syscall checks and charges.
import type { Sandbox } from '../engine/index.js';
import type { Kernel, VatBundle } from '../kernel/kernel.js';
import type { Capdata, Kref, VatId, Vref } from '../kernel/refs.js';
import { copiedVatstore, TrialVat, type VatstoreView } from './trial-vat.js';

export interface TrialOptions {
  /**
   * Read the committed vatstore directly instead of copying it: starting
   * costs nothing however large the vatstore, but the trial must be disposed
   * before the next crank commits (pre-flight, dry runs). Default: a copy,
   * for trials that outlive later cranks (shadows).
   */
  readonly readThrough?: boolean;
}

function vatstoreFor(kernel: Kernel, vat: VatId, options: TrialOptions): VatstoreView {
  if (!options.readThrough) return copiedVatstore(kernel.vatstoreCopy(vat));
  const prefix = kernel.state.vatstoreKey(vat, '');
  return {
    get: (key) => kernel.store.get(prefix + key) as string | undefined,
    nextKey: (prior) => kernel.store.getNextKey(prefix, prefix + prior)?.slice(prefix.length),
  };
}

/**
 * Starts the next incarnation of `vat` in a throwaway copy (fresh sandbox
 * from the base image, private overlay on the vatstore). Nothing live changes.
 */
export function trialUpgrade(
  kernel: Kernel,
  vat: VatId,
  bundle: VatBundle,
  options: { privateArgs?: Capdata; vatParameters?: Capdata; exits?: Record<string, unknown> } & TrialOptions = {},
): { trial: TrialVat; ok: boolean; error?: string } {
  kernel.assertIdle();
  const record = kernel.vatRecord(vat);
  const image = kernel.baseImage().image;
  const incarnation = record.incarnation + 1;
  const opts: Record<string, unknown> = { incarnation, role: record.role === 'contract' ? 'upgrade' : 'root' };
  // What the upgrade would pass, in its order (upgrader.ts). A trial gone
  // before the next crank (readThrough) gets references new to the vat as
  // the imports the upgrade would give them, without importing them, so
  // pre-flight judges what the upgrade accepts (break16 #6). One that lives
  // on (a shadow) could see those vrefs given to other objects later, so it
  // takes only references the vat already holds.
  const fresh = new Map<Kref, Vref>();
  const toTrial = (data: Capdata) => (options.readThrough ? kernel.translator.provisionalToVat(vat, data, fresh) : kernel.translator.existingToVat(vat, data));
  if (options.privateArgs) opts.privateArgs = toTrial(options.privateArgs);
  if (options.vatParameters) opts.vatParameters = toTrial(options.vatParameters);
  if (options.exits) opts.exits = options.exits;
  const trial = TrialVat.restore(image, `${vat}#${incarnation}`, vatstoreFor(kernel, vat, options), BigInt(record.budget), kernel.sandboxOptions);
  const outcome = trial.deliver(['startVat', bundle, opts]);
  return { trial, ok: outcome.ok, error: outcome.error };
}

/**
 * A throwaway copy of the vat as it is now (its current memory, cloned from
 * its live sandbox, ~1 ms; and its vatstore). The live sandbox is left as it
 * is: a refused upgrade keeps serving from it (break16 #2).
 */
export function trialOfCurrent(kernel: Kernel, vat: VatId, options: TrialOptions = {}): TrialVat {
  kernel.assertIdle();
  const record = kernel.vatRecord(vat);
  return new TrialVat(kernel.manager(vat).load().clone(), vatstoreFor(kernel, vat, options), BigInt(record.budget));
}

/**
 * A throwaway copy of `sandbox`, a live sandbox of `vat` inside the open
 * crank (e.g. a new incarnation the upgrade just started): a clone of its
 * memory over the vatstore as the crank sees it. Dispose it before the
 * crank ends.
 */
export function trialOfStarted(kernel: Kernel, vat: VatId, sandbox: Sandbox): TrialVat {
  return new TrialVat(sandbox.clone(), vatstoreFor(kernel, vat, { readThrough: true }), BigInt(kernel.vatRecord(vat).budget));
}

/**
 * Which methods clients have sent, or are waiting to send, to which of the
 * vat's exported objects: the index the kernel keeps as it delivers, plus the
 * sends still in the vat's run-queue lane (e.g. queued while it is suspended).
 */
export function methodsUsed(kernel: Kernel, vat: VatId): Map<Vref, Set<string>> {
  const used = kernel.state.methodsUsed(vat);
  for (const item of kernel.queue.waiting(vat)) {
    if (item.type !== 'send') continue;
    const vref = kernel.vrefOf(vat, item.target);
    if (vref === undefined) continue;
    used.set(vref, (used.get(vref) ?? new Set<string>()).add(item.msg.method));
  }
  return used;
}
