// Dry-run shadows (issue 13): a list of calls replayed against two forks of
// the live vat, one running the current incarnation and one running the
// proposed version, with answers compared. Both forks are trial vats reading
// the committed vatstore through private overlays; nothing live changes (no
// delivery, no transcript entry, no kernel reference).
import type { Kernel, VatBundle } from '../kernel/kernel.js';
import type { Capdata, Kref } from '../kernel/refs.js';
import { errorData } from '../kernel/syscalls.js';
import { sameAnswer, showAnswer, type Answer } from './shadow.js';
import type { TrialVat } from './trial-vat.js';
import { trialOfCurrent, trialUpgrade } from './trials.js';

/** One call: a facet of the instance (kref), a method, and arguments already serialized (krefs in slots). */
export interface DryRunCall {
  readonly target: Kref;
  readonly method: string;
  readonly args: Capdata;
}

export interface DryRunAnswer {
  readonly method: string;
  readonly args: unknown;
  /** the current version's answer, or { pending: true } if it did not settle within the delivery */
  readonly current: unknown;
  /** the proposed version's answer, likewise */
  readonly proposed: unknown;
  readonly same: boolean;
}

export interface DryRunReport {
  readonly deliveries: number;
  readonly answers: readonly DryRunAnswer[];
  /** how many answers differ */
  readonly differed: number;
}

export interface DryRunInput {
  readonly kernel: Kernel;
  readonly vat: string;
  readonly bundle: VatBundle;
  readonly exits: Record<string, unknown>;
  readonly privateArgs?: Capdata;
  readonly calls: readonly DryRunCall[];
  readonly decode: (data: Capdata) => unknown;
  /** translates host capdata (krefs) to the vat's references, refusing any the vat does not hold */
  readonly toVat: (data: Capdata) => Capdata;
}

// Result promises the forks decide: import-style ids far above any the kernel hands out in practice.
const FIRST_RESULT = 900_000_000_000_000;

/** Throws (naming the cause) if the proposed version does not start; the forks are always disposed. */
export function runDryRun(input: DryRunInput): DryRunReport {
  const { kernel, vat } = input;
  const { trial: proposed, ok, error } = trialUpgrade(kernel, vat, input.bundle, { privateArgs: input.privateArgs, exits: input.exits, readThrough: true });
  let current: TrialVat | undefined;
  try {
    if (!ok) throw new Error(`the proposed version does not start: ${error}`);
    current = trialOfCurrent(kernel, vat, { readThrough: true });
    const answers: DryRunAnswer[] = [];
    input.calls.forEach((call, i) => {
      const target = kernel.vrefOf(vat, call.target);
      if (target === undefined) throw new Error(`call ${i + 1} (${call.method}): its target is not an object of instance ${vat}`);
      const result = `p-${FIRST_RESULT + i}`;
      const args = input.toVat(call.args);
      const delivery = ['deliver', target, call.method, args, result];
      const a = answerOf(current!, delivery, result);
      const b = answerOf(proposed, delivery, result);
      const same = a !== undefined && b !== undefined ? sameAnswer(a, b) : a === b;
      const show = (x: Answer | undefined) => (x === undefined ? { pending: true } : showAnswer(input.decode, x));
      answers.push({ method: call.method, args: input.decode(args), current: show(a), proposed: show(b), same });
    });
    return { deliveries: input.calls.length, answers, differed: answers.filter((x) => !x.same).length };
  } finally {
    current?.dispose();
    proposed.dispose();
  }
}

function answerOf(fork: TrialVat, delivery: unknown[], result: string): Answer | undefined {
  const outcome = fork.deliver(delivery);
  const resolved = outcome.resolutions.get(result);
  if (resolved) return { rejected: resolved[0], data: resolved[1] };
  if (!outcome.ok) return { rejected: true, data: errorData(outcome.error ?? 'the delivery failed') };
  return undefined;
}
