// The options of a replicated host (Host.open({ replicate })) and what a
// replica reports when it halts.
import type { RunPolicy } from '../kernel/run-policy.js';

export interface ReplicateOptions {
  /** etcd client URLs, e.g. ["http://127.0.0.1:2379"]. */
  readonly endpoints: readonly string[];
  /** The cluster: replicas of one cluster share one log. */
  readonly cluster: string;
  /** This replica's name, unique in the cluster (letters, digits, "_", ".", "-"). */
  readonly name: string;
  /** Run for block cutter (default true). */
  readonly cutter?: boolean;
  /** The run policy of the blocks this replica cuts (defaults: maxCranks 1000, run-policy.ts otherwise). */
  readonly runPolicy?: RunPolicy;
  /** The cutter's election lease, and the lease of this replica's live key, in seconds (default 5; etcd's minimum is about 2). */
  readonly leaseSeconds?: number;
  /** How long one etcd call may take before it is retried on another endpoint, in ms (default 5000). */
  readonly callTimeoutMs?: number;
  /** Most inputs per block (default 500). */
  readonly maxBlockInputs?: number;
  /** How long the cutter waits for more inputs once one is waiting, in ms (default 5). */
  readonly batchMs?: number;
  /**
   * How many blocks an applied input id is remembered (a repeat refused) in
   * the blocks this replica cuts (default 100,000); a retry must reach the log
   * within it. Recorded in each block, so every replica forgets alike.
   */
  readonly retryWindow?: number;
  /** Start from this state export (host.exportState) when the store is empty. */
  readonly importFrom?: string;
}

export interface HaltReport {
  readonly height: number;
  readonly reason: string;
}
