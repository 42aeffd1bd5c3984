// Run policy: how much work one block may do before the host commits it and
// gets control back. Agoric's kernel asks a runPolicy after every crank
// (SwingSet docs/run-policy.md); ours is data, not callbacks, so that every
// replica cutting blocks by the same policy cuts the same blocks.
//
// A block is the unit of durability: its cranks commit in one store
// transaction. A crank stays the unit of atomicity: a failed crank rolls back
// its own writes only.

export interface RunPolicy {
  /** Stop the block after this many cranks. Default 100. */
  readonly maxCranks?: number;
  /**
   * Stop the block once its deliveries have used this many meter units in
   * total (checked after each crank, so one crank may overshoot by at most its
   * own delivery budget). Default 1,000,000,000.
   */
  readonly computeBudget?: bigint;
  /**
   * Suspend a vat whose deliveries exhaust their meter this many times in a
   * row (counted across blocks, reset by a delivery that does not; 0 = never).
   * Default 0.
   */
  readonly suspendAfterMeterFaults?: number;
}

export type ResolvedRunPolicy = Required<RunPolicy>;

export const DEFAULT_RUN_POLICY: ResolvedRunPolicy = Object.freeze({
  maxCranks: 100,
  computeBudget: 1_000_000_000n,
  suspendAfterMeterFaults: 0,
});

export function resolveRunPolicy(policy: RunPolicy = {}): ResolvedRunPolicy {
  if (typeof policy !== 'object' || policy === null) throw new TypeError(`a run policy must be an object, got ${policy === null ? 'null' : typeof policy}`);
  // An option given as undefined means its default.
  const given = Object.fromEntries(Object.entries(policy).filter(([, v]) => v !== undefined));
  const p = { ...DEFAULT_RUN_POLICY, ...given } as ResolvedRunPolicy;
  if (!(Number.isSafeInteger(p.maxCranks) && p.maxCranks > 0)) {
    throw new RangeError(`run policy maxCranks must be a positive integer, got ${String(p.maxCranks)}`);
  }
  if (typeof p.computeBudget !== 'bigint' || p.computeBudget <= 0n) {
    throw new RangeError(`run policy computeBudget must be a positive bigint (meter units), got ${String(p.computeBudget)}`);
  }
  if (!(Number.isSafeInteger(p.suspendAfterMeterFaults) && p.suspendAfterMeterFaults >= 0)) {
    throw new RangeError(`run policy suspendAfterMeterFaults must be a non-negative integer, got ${String(p.suspendAfterMeterFaults)}`);
  }
  return p;
}

/** What one block did. */
export interface BlockReport {
  /** Cranks run (failed ones included). */
  readonly cranks: number;
  /** Meter units the block's deliveries used. */
  readonly computeUsed: bigint;
  /** Items still waiting (including those for suspended vats). */
  readonly queueLength: number;
  /** Why the block ended: nothing runnable left, or a policy limit. */
  readonly stoppedBy: 'idle' | 'maxCranks' | 'computeBudget';
  /** Vats the block suspended (suspendAfterMeterFaults). */
  readonly suspended: readonly string[];
}

/** Tracks one block against its policy. */
export class BlockMeter {
  cranks = 0;
  computeUsed = 0n;
  readonly suspended: string[] = [];

  constructor(readonly policy: ResolvedRunPolicy) {}

  /** Why the block must stop now, or null to run another crank. */
  limitReached(): 'maxCranks' | 'computeBudget' | null {
    if (this.cranks >= this.policy.maxCranks) return 'maxCranks';
    if (this.computeUsed >= this.policy.computeBudget) return 'computeBudget';
    return null;
  }

  /** Counts host work done for the block's cranks (deliveries' meter units, clean-up). */
  recordWork(units: bigint): void {
    this.computeUsed += units;
  }
}
