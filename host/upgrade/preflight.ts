// Pre-flight checks (SPEC §5.7, issue 13): what would go wrong if this
// upgrade were enacted now, found in throwaway copies of the live vat under
// the live vat's limits. Nothing live changes. The new incarnation is started
// in a trial vat; then a sample of every durable kind's stored records (the
// oldest, the newest and evenly spaced ones between) is read through it.
import type { Kernel, VatBundle } from '../kernel/kernel.js';
import type { TrialVat } from './trial-vat.js';
import { methodsUsed, trialOfCurrent, trialUpgrade } from './trials.js';
import type { Capdata, Kref } from '../kernel/refs.js';
import type { KindSample, RecordSample } from '../../runtime/record-sample.js';
import { summarizeUpgrade, type UpgradeSummary } from '../review/upgrade-summary.js';

/** What pre-flight can find; the catalog with messages is in docs/contract-authors-guide.md. */
export type PreflightCode =
  | 'kind-not-redefined'
  | 'state-version-lowered'
  | 'state-version-invalid'
  | 'migrate-missing'
  | 'migrate-threw'
  | 'record-unreadable'
  | 'state-shape-mismatch'
  | 'record-shape-changed'
  | 'method-removed'
  | 'record-shape-unchecked'
  | 'exit-not-granted'
  | 'upgrade-failed'
  | 'bundle-invalid';

export interface PreflightProblem {
  readonly code: PreflightCode;
  readonly message: string;
  /** the durable kind's tag, where the problem is about one */
  readonly kind?: string;
  /** a stored record it was found on (vref), where it was found on one */
  readonly record?: string;
  /** the fields concerned, for record-shape-changed */
  readonly fields?: readonly string[];
}

export interface PreflightResult {
  readonly ok: boolean;
  readonly problems: readonly PreflightProblem[];
  /**
   * What pre-flight could not check and says so rather than passing it
   * silently (e.g. record-shape-unchecked); warnings do not refuse the upgrade.
   */
  readonly warnings?: readonly PreflightProblem[];
  /** per durable kind with stored records: how many it has and how many were read */
  readonly sampled?: Readonly<Record<string, { readonly records: number; readonly read: number }>>;
}

/** A pre-flight run with what the upgrade would change, for reviews. */
export interface PreflightReport extends PreflightResult {
  readonly summary: UpgradeSummary;
}

/** Records read per durable kind: enough to include both ends and a spread between, flat in the kind's size. */
export const SAMPLE_PER_KIND = 32;

interface Inspection {
  methods: Record<string, string[]>;
  kinds: KindSample[];
}

export interface PreflightInput {
  readonly kernel: Kernel;
  readonly vat: string;
  readonly bundle: VatBundle;
  readonly exits: Record<string, unknown>;
  readonly privateArgs?: Capdata;
  /** the vatParameters the upgrade would pass (pre-flight starts the new incarnation exactly as the upgrade would) */
  readonly vatParameters?: Capdata;
  /** The instance's facets: name -> kref (empty for a buildRootObject vat, whose root is o+0). */
  readonly facets: Readonly<Record<string, Kref>>;
  readonly decode: (data: Capdata) => unknown;
  /** named exits the running bundle and the new one import (for the summary) */
  readonly exitNames?: { readonly from: readonly string[]; readonly to: readonly string[] };
}

const KIND_NOT_REDEFINED = /kind "([^"]+)" \(defined by incarnation (\d+)\) was not redefined/g;
const VERSION_INVALID = /kind "([^"]+)" declares stateVersion (.*?); it must be a non-negative integer/;
const VERSION_LOWERED = /kind "([^"]+)" lowers stateVersion from (\d+) to (\d+)/;

/**
 * Pre-flight in a trial vat: inspects the current incarnation, starts the
 * new one in a throwaway copy and judges it. Nothing live changes.
 */
export function runPreflight(input: PreflightInput, earlier: PreflightProblem[] = []): PreflightReport {
  const session = new PreflightSession(input, earlier);
  const { trial, ok, error } = trialUpgrade(input.kernel, input.vat, input.bundle, {
    privateArgs: input.privateArgs,
    vatParameters: input.vatParameters,
    exits: input.exits,
    readThrough: true,
  });
  try {
    return ok ? session.judge(trial) : session.startFailed(error ?? 'failed');
  } finally {
    trial.dispose();
  }
}

/**
 * One pre-flight run, in two steps: constructing it inspects the current
 * incarnation (which objects clients use, their methods, the durable
 * kinds); then the new incarnation, started somewhere (a trial vat, or the
 * upgrade's own crank, issue 16), is judged with judge() or, if it did not
 * start, startFailed(). Both give the same report for the same incarnation.
 */
export class PreflightSession {
  private readonly problems: PreflightProblem[];
  /** exported object (vref) -> how problems name it */
  private readonly names: Map<string, string>;
  /** exported object (vref) -> methods clients have called or queued on it (or on objects of its kind) */
  private readonly used = new Map<string, Set<string>>();
  private readonly vrefs: string[];
  private readonly before: Inspection;
  private readonly exits: { readonly from: readonly string[]; readonly to: readonly string[] };

  constructor(
    private readonly input: PreflightInput,
    earlier: readonly PreflightProblem[] = [],
  ) {
    const { kernel, vat } = input;
    this.problems = [...earlier];
    this.exits = input.exitNames ?? { from: [], to: [] };
    const facetVrefs = Object.entries(input.facets)
      .map(([name, kref]) => [name, kernel.vrefOf(vat, kref)] as const)
      .filter((e): e is readonly [string, string] => e[1] !== undefined);
    // Every exported object clients have called (or have calls queued for),
    // kit facets or not: a method removed from any of them breaks its callers.
    // Objects of one durable kind (and facet) share their methods, so one
    // representative per kind is inspected, with the methods used on any of
    // them: inspection stays bounded however many objects clients hold.
    const { used } = this;
    const names = new Map<string, string>(facetVrefs.map(([name, vref]) => [vref, name]));
    const reps = new Map<string, string>();
    for (const [vref, methods] of methodsUsed(kernel, vat)) {
      // Only what survives the upgrade: the root and durable objects (heap and
      // virtual objects are disconnected by any upgrade, whatever their methods).
      if (vref !== 'o+0' && !vref.startsWith('o+d')) continue;
      const group = names.has(vref) ? undefined : kindGroup(vref);
      let rep = group === undefined ? vref : reps.get(group);
      if (rep === undefined) {
        rep = vref;
        reps.set(group!, rep);
      }
      if (!names.has(rep)) names.set(rep, group === undefined ? `object ${rep}` : `objects of durable kind ${group} (e.g. ${rep})`);
      for (const m of methods) used.set(rep, (used.get(rep) ?? new Set<string>()).add(m));
    }
    this.names = names;
    this.vrefs = [...names.keys()];
    const current = trialOfCurrent(kernel, vat, { readThrough: true });
    try {
      this.before = this.inspect(current, 0);
    } finally {
      current.dispose();
    }
  }

  /** The report when the new incarnation did not start (`error`: why, in the contract author's terms). */
  startFailed(error: string): PreflightReport {
    const problems = [...this.problems, ...startFailure(error)];
    const gone = problems.filter((p) => p.code === 'kind-not-redefined').map((p) => p.kind!);
    return { ok: false, problems, summary: summarizeUpgrade(this.before.kinds, undefined, this.exits, gone) };
  }

  /** The report on a started new incarnation, read through `trial` (which the caller disposes). */
  judge(trial: TrialVat): PreflightReport {
    const { before, exits, names, used } = this;
    const problems = [...this.problems];
    let after: Inspection;
    try {
      after = this.inspect(trial, SAMPLE_PER_KIND);
    } catch (err) {
      // Reading the stored records through the new version blew a limit (meter, memory).
      problems.push({ code: 'record-unreadable', message: `reading stored records through the new version failed: ${(err as Error).message}` });
      return { ok: false, problems, summary: summarizeUpgrade(before.kinds, undefined, exits) };
    }
    for (const [vref, name] of names) {
      const now = new Set(after.methods[vref] ?? []);
      for (const method of before.methods[vref] ?? []) {
        if (!now.has(method) && used.get(vref)?.has(method)) {
          problems.push({ code: 'method-removed', message: `${name} loses method "${method}", which existing clients have called or have calls queued for` });
        }
      }
    }
    const sampled: Record<string, { records: number; read: number }> = {};
    const warnings: PreflightProblem[] = [];
    for (const k of after.kinds) {
      if (k.samples.length === 0) continue;
      sampled[k.tag] = { records: k.records, read: k.samples.length };
      problems.push(...recordProblems(k));
      if (k.initFields === undefined && k.shapeFields === undefined && k.initNeedsArgs) {
        warnings.push({
          code: 'record-shape-unchecked',
          kind: k.tag,
          message:
            `durable kind "${k.tag}": its init needs arguments and it declares no stateShape, so pre-flight cannot tell which fields the new version's records have; ` +
            `fields added or dropped without migrate are not detected for this kind (declare a stateShape to have them checked)`,
        });
      }
    }
    return { ok: problems.length === 0, problems, ...(warnings.length > 0 ? { warnings } : {}), sampled, summary: summarizeUpgrade(before.kinds, after.kinds, exits) };
  }

  private inspect(t: TrialVat, sample: number): Inspection {
    const out = t.deliver(['inspect', this.vrefs, sample]);
    if (!out.ok || !out.result) throw new Error(`inspection failed: ${out.error}`);
    return this.input.decode(out.result) as Inspection;
  }
}

// The new incarnation did not start: name the kinds or the cause.
function startFailure(error: string): PreflightProblem[] {
  const lowered = VERSION_LOWERED.exec(error);
  if (lowered) {
    const [, tag, from, to] = lowered;
    return [{ code: 'state-version-lowered', kind: tag, message: `durable kind "${tag}" lowers stateVersion from ${from} to ${to}: records stored at version ${from} could not be read (the upgrade refuses this)` }];
  }
  const invalid = VERSION_INVALID.exec(error);
  if (invalid) {
    const [, tag, value] = invalid;
    return [{ code: 'state-version-invalid', kind: tag, message: `durable kind "${tag}" declares stateVersion ${value}, which is not a non-negative integer (the new version cannot start; the upgrade refuses this)` }];
  }
  const kinds = [...error.matchAll(KIND_NOT_REDEFINED)];
  if (kinds.length > 0) {
    return kinds.map(([, tag, inc]) => ({ code: 'kind-not-redefined', kind: tag, message: `durable kind "${tag}" (defined by incarnation ${inc}) was not redefined by the new version` }));
  }
  return [{ code: 'upgrade-failed', message: `the dry-run upgrade failed: ${error}` }];
}

/** Durable objects o+d<kind>/<n>[:<facet>] grouped by kind and facet; undefined for other vrefs. */
function kindGroup(vref: string): string | undefined {
  const m = /^o\+d(\d+)\/\d+(?::(.*))?$/.exec(vref);
  return m ? `${m[1]}${m[2] === undefined ? '' : `:${m[2]}`}` : undefined;
}

const list = (fields: readonly string[]) => `{${fields.join(', ')}}`;

/** What the sampled records of one kind say: one problem per kind and kind of fault, naming the first record it was seen on. */
function recordProblems(k: KindSample): PreflightProblem[] {
  const out: PreflightProblem[] = [];
  // One problem per kind of fault, named on the first sampled record it was seen on.
  const faults: [NonNullable<RecordSample['failure']>, PreflightCode, (s: RecordSample) => string][] = [
    ['version-lowered', 'state-version-lowered', (s) => `stored record ${s.vref} has state version ${s.version}, above the new version's stateVersion ${k.stateVersion} (stateVersion was lowered; the record could not be read)`],
    ['no-migrate', 'migrate-missing', (s) => `stored record ${s.vref} has state version ${s.version} but the new version declares stateVersion ${k.stateVersion} and no migrate`],
    ['migrate-threw', 'migrate-threw', (s) => `migrate throws on stored record ${s.vref} (state version ${s.version}): ${s.error}`],
    ['unreadable', 'record-unreadable', (s) => `stored record ${s.vref} cannot be read: ${s.error}`],
    ['shape-mismatch', 'state-shape-mismatch', (s) => `stored record ${s.vref} does not match the new version's stateShape: ${s.error}`],
  ];
  for (const [failure, code, say] of faults) {
    const s = k.samples.find((x) => x.failure === failure);
    if (s) out.push({ code, kind: k.tag, record: s.vref, message: `durable kind "${k.tag}": ${say(s)}` });
  }
  // The fields new records will have: what init makes, else the stateShape's keys.
  const newFields = k.initFields ?? k.shapeFields;
  if (newFields) {
    const made = new Set(newFields);
    for (const s of k.samples) {
      if (!s.readFields) continue;
      const has = new Set(s.readFields);
      const lacking = newFields.filter((f) => !has.has(f));
      const extra = s.readFields.filter((f) => !made.has(f));
      if (lacking.length === 0 && extra.length === 0) continue;
      const how = s.version === k.stateVersion ? 'and declares no migrate for them (add stateVersion and migrate)' : 'and its migrate does not produce that shape';
      const details = [
        lacking.length > 0 ? `field${lacking.length > 1 ? 's' : ''} ${lacking.join(', ')} would be missing from old records` : '',
        extra.length > 0 ? `field${extra.length > 1 ? 's' : ''} ${extra.join(', ')} of old records the new version never makes` : '',
      ].filter(Boolean);
      out.push({
        code: 'record-shape-changed',
        kind: k.tag,
        record: s.vref,
        fields: [...lacking, ...extra],
        message:
          `durable kind "${k.tag}": existing records have fields ${list(s.readFields)} but the new version ${k.initFields ? 'makes' : "declares (stateShape)"} ${list(newFields)} ${how}: ` +
          `${details.join('; ')} (first seen on stored record ${s.vref})`,
      });
      break;
    }
  }
  return out;
}
