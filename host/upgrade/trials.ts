// Throwaway copies of a vat for pre-flight checks and shadows, built from
// what the kernel exposes; nothing here changes the kernel or the store.
import type { Kernel, VatBundle } from '../kernel/kernel.js';
import type { Capdata, VatId, Vref } from '../kernel/refs.js';
import { TrialVat } from './trial-vat.js';

/**
 * Starts the next incarnation of `vat` in a throwaway copy (fresh sandbox
 * from the base image, in-memory copy of the vatstore). Nothing live changes.
 */
export function trialUpgrade(
  kernel: Kernel,
  vat: VatId,
  bundle: VatBundle,
  options: { privateArgs?: Capdata; vatParameters?: Capdata; exits?: Record<string, unknown> } = {},
): { trial: TrialVat; ok: boolean; error?: string } {
  kernel.assertIdle();
  const record = kernel.vatRecord(vat);
  const image = kernel.decodeImage(kernel.baseImage());
  const incarnation = record.incarnation + 1;
  const opts: Record<string, unknown> = { incarnation, role: record.role === 'contract' ? 'upgrade' : 'root' };
  if (options.privateArgs) opts.privateArgs = kernel.translator.existingToVat(vat, options.privateArgs);
  if (options.vatParameters) opts.vatParameters = kernel.translator.existingToVat(vat, options.vatParameters);
  if (options.exits) opts.exits = options.exits;
  const trial = new TrialVat(image, `${vat}#${incarnation}`, kernel.vatstoreCopy(vat), BigInt(record.budget));
  const outcome = trial.deliver(['startVat', bundle, opts]);
  return { trial, ok: outcome.ok, error: outcome.error };
}

/** A throwaway copy of the vat as it is now (its current memory and vatstore). */
export function trialOfCurrent(kernel: Kernel, vat: VatId): TrialVat {
  kernel.assertIdle();
  const sandbox = kernel.manager(vat).load();
  const record = kernel.vatRecord(vat);
  return new TrialVat(sandbox.snapshot(), undefined, kernel.vatstoreCopy(vat), BigInt(record.budget));
}

/** Which methods clients have sent to which of the vat's objects, per its transcript. */
export function methodsUsed(kernel: Kernel, vat: VatId): Map<Vref, Set<string>> {
  const used = new Map<Vref, Set<string>>();
  const prefix = `k.t.${vat}.`;
  for (const [, entry] of kernel.store.entries(prefix)) {
    const d = (entry as { d: unknown[] }).d;
    if (d[0] !== 'deliver') continue;
    const set = used.get(d[1] as string) ?? new Set<string>();
    set.add(d[2] as string);
    used.set(d[1] as string, set);
  }
  return used;
}
