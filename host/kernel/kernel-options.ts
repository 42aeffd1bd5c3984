// The kernel's options: what a host may tune, their defaults, and the checks
// that refuse meaningless values at open (naming the option).
import type { SandboxOptions } from '../engine/index.js';
import type { StoredImage } from './base-image.js';
import { GC_WORK_PER_CRANK } from './gc-sweep.js';

export interface KernelOptions {
  /** Snapshot a vat after this many deliveries since its last snapshot. Default 1,000 (replay cost is bounded by snapshotEveryUnits; this caps transcript length for cheap deliveries). */
  readonly snapshotEvery?: number;
  /** ...or once its deliveries since the last snapshot used this many meter units. Default 1e9. */
  readonly snapshotEveryUnits?: bigint;
  /** Compute budget per delivery, in meter units. Default 500,000,000. */
  readonly deliveryBudget?: bigint;
  readonly sandbox?: SandboxOptions;
  /** How many vats keep a live sandbox; the least recently used beyond this are unloaded. Default 32. */
  readonly maxLoadedVats?: number;
  /** Host sends that may wait at once (queued or parked on promises); more are refused. Default 100,000. */
  readonly maxQueueLength?: number;
  /**
   * Messages one vat may have waiting for one destination (a vat, or promises:
   * queued or parked on an unresolved one); its sends beyond it are rejected.
   * Default 1,000.
   */
  readonly maxQueuedPerVat?: number;
  /** The image new vats start from; tests substitute a hostile guest runtime here. */
  readonly baseImage?: () => StoredImage;
  /**
   * Deliveries to a vat between its bring-out-your-dead GC points (there is
   * also one before every snapshot); 0 turns GC off. Default 1,000, the
   * reap interval Agoric's mainnet kernel ran with (kernel.defaultReapInterval
   * 1000; SwingSet's own default of 1 is "low for the benefit of tests").
   * A GC point runs a full QuickJS collection of the vat's heap, ~250,000
   * meter units and ~1-2 ms: at 100 it cost a trivial delivery more than the
   * delivery itself (issue #10's bench).
   */
  readonly gcEvery?: number;
  /**
   * Most units of work (a kernel row visited, or a reference marked) one
   * crank of a GC sweep does; a sweep of a big kernel is cut into cranks of
   * this size, with other work in between. Default 1,000 (a few ms). Like
   * gcEvery, replicas must agree on it.
   */
  readonly gcWorkPerCrank?: number;
  /**
   * Keep every vat's whole transcript (default true, as Agoric's swing-store
   * keepTranscripts). With false, a vat's transcript entries before its
   * latest snapshot are deleted when that snapshot is taken (replay never
   * reads them), so the store stops growing with every delivery; an archive
   * node keeps them. Recorded in each vat's record when the vat is created,
   * like snapshotEvery, so replicas agree on what their stores hold.
   */
  readonly keepTranscripts?: boolean;
}

const DEFAULT_GC_EVERY = 1000;
const DEFAULTS = { snapshotEvery: 1000, deliveryBudget: 500_000_000n, maxLoadedVats: 32, maxQueueLength: 100_000, maxQueuedPerVat: 1_000 };


/** The options' values in force (defaults filled in), checked. */
export interface KernelLimits {
  readonly snapshotEvery: number;
  readonly deliveryBudget: bigint;
  readonly maxLoadedVats: number;
  readonly maxQueueLength: number;
  readonly maxQueuedPerVat: number;
  readonly gcEvery: number;
  readonly gcWorkPerCrank: number;
  readonly keepTranscripts: boolean;
}

/** Fills in defaults; throws RangeError naming an option whose value is meaningless. */
export function resolveKernelLimits(options: KernelOptions): KernelLimits {
  const counts = {
    snapshotEvery: options.snapshotEvery ?? DEFAULTS.snapshotEvery,
    maxLoadedVats: options.maxLoadedVats ?? DEFAULTS.maxLoadedVats,
    maxQueueLength: options.maxQueueLength ?? DEFAULTS.maxQueueLength,
    maxQueuedPerVat: options.maxQueuedPerVat ?? DEFAULTS.maxQueuedPerVat,
  };
  for (const [name, v] of Object.entries(counts)) {
    if (!(Number.isSafeInteger(v) && v > 0)) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }
  const deliveryBudget = options.deliveryBudget ?? DEFAULTS.deliveryBudget;
  if (typeof deliveryBudget !== 'bigint' || deliveryBudget <= 0n) throw new RangeError(`deliveryBudget must be a positive number of meter units, got ${deliveryBudget}`);
  if (options.snapshotEveryUnits !== undefined && !(typeof options.snapshotEveryUnits === 'bigint' && options.snapshotEveryUnits > 0n)) {
    throw new RangeError(`snapshotEveryUnits must be a positive bigint (meter units), got ${String(options.snapshotEveryUnits)}`);
  }
  const gcEvery = options.gcEvery ?? DEFAULT_GC_EVERY;
  if (!(Number.isSafeInteger(gcEvery) && gcEvery >= 0)) throw new RangeError(`gcEvery must be a non-negative integer, got ${gcEvery}`);
  const gcWorkPerCrank = options.gcWorkPerCrank ?? GC_WORK_PER_CRANK;
  if (!(Number.isSafeInteger(gcWorkPerCrank) && gcWorkPerCrank > 0)) throw new RangeError(`gcWorkPerCrank must be a positive integer, got ${gcWorkPerCrank}`);
  const keepTranscripts = options.keepTranscripts ?? true;
  if (typeof keepTranscripts !== 'boolean') throw new TypeError(`keepTranscripts must be a boolean, got ${typeof keepTranscripts}`);
  return { ...counts, deliveryBudget, gcEvery, gcWorkPerCrank, keepTranscripts };
}
