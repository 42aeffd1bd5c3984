// Pre-flight checks (SPEC §5.7): what would go wrong if this upgrade were
// enacted now, found in throwaway copies of the live vat. Nothing live changes.
import { methodsUsed, trialOfCurrent, trialUpgrade } from './trials.js';
import type { Kernel, VatBundle } from '../kernel/kernel.js';
import type { Capdata, Kref } from '../kernel/refs.js';

export interface PreflightProblem {
  /** kind-not-redefined | method-removed | record-shape-changed | exit-not-granted | upgrade-failed | bundle-invalid */
  readonly code: string;
  readonly message: string;
}

export interface PreflightResult {
  readonly ok: boolean;
  readonly problems: readonly PreflightProblem[];
}

interface KindShape {
  tag: string;
  stateVersion: number;
  hasMigrate: boolean;
  recordFields?: string[];
  recordVersion?: number;
  initFields?: string[];
}

interface Inspection {
  methods: Record<string, string[]>;
  kinds: KindShape[];
}

export interface PreflightInput {
  readonly kernel: Kernel;
  readonly vat: string;
  readonly bundle: VatBundle;
  readonly exits: Record<string, unknown>;
  readonly privateArgs?: Capdata;
  /** The instance's facets: name -> kref (empty for a buildRootObject vat, whose root is o+0). */
  readonly facets: Readonly<Record<string, Kref>>;
  readonly decode: (data: Capdata) => unknown;
}

const KIND_NOT_REDEFINED = /kind "([^"]+)" \(defined by incarnation (\d+)\) was not redefined/g;

export function runPreflight(input: PreflightInput, earlier: PreflightProblem[] = []): PreflightResult {
  const { kernel, vat } = input;
  const problems = [...earlier];
  const { trial, ok, error } = trialUpgrade(kernel, vat, input.bundle, { privateArgs: input.privateArgs, exits: input.exits });
  try {
    if (!ok) {
      const kinds = [...(error ?? '').matchAll(KIND_NOT_REDEFINED)];
      for (const [, tag, inc] of kinds) {
        problems.push({ code: 'kind-not-redefined', message: `durable kind "${tag}" (defined by incarnation ${inc}) is not redefined by the new version` });
      }
      if (kinds.length === 0) problems.push({ code: 'upgrade-failed', message: `the dry-run upgrade failed: ${error}` });
      return { ok: false, problems };
    }
    const facetVrefs = Object.entries(input.facets)
      .map(([name, kref]) => [name, kernel.vrefOf(vat, kref)] as const)
      .filter((e): e is readonly [string, string] => e[1] !== undefined);
    const vrefs = facetVrefs.map(([, v]) => v);
    const inspect = (t: typeof trial): Inspection => {
      const out = t.deliver(['inspect', vrefs]);
      if (!out.ok || !out.result) throw new Error(`inspection failed: ${out.error}`);
      return input.decode(out.result) as Inspection;
    };
    const current = trialOfCurrent(kernel, vat);
    let before: Inspection;
    try {
      before = inspect(current);
    } finally {
      current.dispose();
    }
    const after = inspect(trial);
    const used = methodsUsed(kernel, vat);
    for (const [name, vref] of facetVrefs) {
      const now = new Set(after.methods[vref] ?? []);
      for (const method of before.methods[vref] ?? []) {
        if (!now.has(method) && used.get(vref)?.has(method)) {
          problems.push({
            code: 'method-removed',
            message: `${name} loses method "${method}", which existing clients have called`,
          });
        }
      }
    }
    for (const k of after.kinds) {
      if (!k.recordFields || !k.initFields) continue;
      const same = k.recordFields.join() === k.initFields.join();
      const migrates = k.hasMigrate && k.recordVersion !== k.stateVersion;
      if (!same && !migrates) {
        problems.push({
          code: 'record-shape-changed',
          message:
            `durable kind "${k.tag}": existing records have fields {${k.recordFields.join(', ')}} but the new version makes ` +
            `{${k.initFields.join(', ')}} and declares no migrate for them (add stateVersion and migrate)`,
        });
      }
    }
    return { ok: problems.length === 0, problems };
  } finally {
    trial.dispose();
  }
}
