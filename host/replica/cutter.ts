// The block cutter: the one replica, chosen by etcd's lease-based election,
// that turns waiting inputs into block records. If it dies, its lease expires
// and another replica's campaign wins. Safety does not rest on the election:
// a block is written only if the head is unchanged since the cutter read it
// and the block does not exist (etcd-log.ts cutBlock), so two cutters that
// both believe they lead still never cut a block twice (issue #15).
//
// The cutter cuts block H+1 only once its own replica has applied H: it then
// knows whether the kernel has work left (an empty block runs it), and inputs
// that arrive while a block applies are batched into the next one.
import type { Campaign } from 'etcd3';
import type { ResolvedRunPolicy } from '../kernel/run-policy.js';
import { MAX_LOGGED_INPUT_BYTES, type EtcdLog, type PendingInput } from './etcd-log.js';
import { MAX_INPUT_BYTES, type BlockRecord } from './inputs.js';

export interface CutterOptions {
  readonly policy: ResolvedRunPolicy;
  /** Most inputs per block. */
  readonly maxInputs: number;
  /** Most input bytes per block (etcd refuses requests over 1.5 MiB). */
  readonly maxBytes: number;
  /** How long to wait for more inputs once one is waiting, in ms. */
  readonly batchMs: number;
  /** The election lease: another replica takes over this long after the cutter dies, in seconds. */
  readonly leaseSeconds: number;
  /** The retry window of the blocks it cuts, in blocks (BlockRecord.retryWindow). */
  readonly retryWindow: number;
}

/** What the cutter needs from its own replica. */
export interface CutterReplica {
  readonly name: string;
  height(): number;
  hasRunnableWork(): boolean;
  /** Resolves when the replica has applied `height` (or after `ms`). */
  waitForHeight(height: number, ms: number): Promise<void>;
  readonly stopped: boolean;
  /** True while the replica must not make progress (halted, or its hash disputed). */
  readonly paused: boolean;
  /** A block was cut: apply it now (its watch may sit on a frozen etcd member, and only the poll would wake it). */
  blockCut(): void;
}

/** Waits for `p` at most `ms`, ignoring its failure. */
export async function withTimeout(p: Promise<unknown> | undefined, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p?.catch(() => {}), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class Cutter {
  private campaign: Campaign | null = null;
  private leading = false;
  private stopped = false;
  private wake: (() => void) | null = null;
  private watcher: Promise<{ cancel(): Promise<void> }> | null = null;
  /** Blocks this cutter has cut (in this process). */
  cut = 0;

  constructor(
    private readonly log: EtcdLog,
    private readonly replica: CutterReplica,
    private readonly options: CutterOptions,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.watcher = this.log.watchInputs(() => this.poke());
    this.watcher.catch(() => {});
    this.runForElection();
  }

  /** Wakes the cutter (an input arrived, a block was applied). */
  poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private stopping: Promise<void> | null = null;

  /** Steps down (resigns, so another replica need not wait for the lease) and stops watching. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      this.leading = false;
      this.poke();
      const campaign = this.campaign;
      this.campaign = null;
      // The lease dies with the connection anyway: never wait long for etcd here.
      await withTimeout(campaign?.resign(), 1000);
      await withTimeout((async () => (await this.watcher)?.cancel())(), 1000);
    })();
    return this.stopping;
  }

  private runForElection(): void {
    if (this.stopped) return;
    const campaign = this.log.campaign(this.options.leaseSeconds, this.replica.name);
    this.campaign = campaign;
    campaign.on('elected', () => {
      if (this.campaign !== campaign || this.stopped) return;
      this.leading = true;
      void this.lead(campaign);
    });
    campaign.on('error', () => {
      // Lost the lease (etcd unreachable, leader change): step down, run again.
      if (this.campaign !== campaign) return;
      this.leading = false;
      this.campaign = null;
      this.poke();
      if (!this.stopped) setTimeout(() => this.runForElection(), 300);
    });
  }

  private async lead(campaign: Campaign): Promise<void> {
    while (this.leading && this.campaign === campaign && !this.stopped && !this.replica.stopped) {
      let progressed = false;
      try {
        progressed = await this.cutOnce();
      } catch {
        await sleep(100); // etcd unreachable for a moment: the lease decides whether we still lead
      }
      if (!progressed) await this.idle(250);
    }
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  // One step: wait for our replica, or cut a block. False when there was nothing to do.
  private async cutOnce(): Promise<boolean> {
    if (this.replica.paused) return false;
    const { head, modRevision } = await this.log.head();
    if (this.replica.height() < head.height) {
      await this.replica.waitForHeight(head.height, 1000);
      return true;
    }
    const { maxBytes, maxInputs } = this.options;
    let pending = await this.log.pendingInputs(head.to, maxBytes, maxInputs);
    if (pending.length === 0 && !this.replica.hasRunnableWork()) return false;
    if (pending.length > 0 && pending.length < this.options.maxInputs && this.options.batchMs > 0) {
      await sleep(this.options.batchMs);
      pending = await this.log.pendingInputs(head.to, maxBytes, maxInputs);
    }
    const taken = this.take(pending);
    const { policy } = this.options;
    const block: BlockRecord = {
      height: head.height + 1,
      from: head.to,
      to: taken.length > 0 ? taken[taken.length - 1].rev : head.to,
      policy: { maxCranks: policy.maxCranks, computeBudget: String(policy.computeBudget), suspendAfterMeterFaults: policy.suspendAfterMeterFaults },
      retryWindow: this.options.retryWindow,
      // Keys that hold no applicable input still count in the revision range
      // (so they are never looked at again), but are not cut into the block.
      inputs: taken.filter((t) => !t.poison).map(({ id, origin, input, rev, reply }) => ({ id, origin, input, rev, ...(reply === true ? { reply } : {}) })),
    };
    const poisoned = taken.flatMap((t) => (t.poison ? [t.poison] : []));
    if (!this.leading) return false;
    if (await this.log.cutBlock(block, modRevision)) {
      this.cut++;
      this.replica.blockCut();
      // The block holds copies; the waiting inputs can go (best effort: a
      // later cutter never looks below the head's revision anyway).
      void this.log.forgetInputs(taken.filter((t) => !t.poison).map((t) => t.id)).catch(() => {});
      if (poisoned.length > 0) void this.log.forgetKeys(poisoned.map((p) => p.key)).catch(() => {});
    }
    return true;
  }

  // A prefix of the waiting inputs within the block's limits, by revision:
  // inputs one etcd transaction wrote stay together, so the block is exactly
  // the revisions (from, to]. A first revision whose inputs together are over
  // the byte limit (each can be under it) could never be cut, and the cutter
  // would retry the block for ever (break-15c #1): its inputs are skipped and
  // deleted as poison, like a key holding no input.
  private take(pending: readonly PendingInput[]): PendingInput[] {
    const taken: PendingInput[] = [];
    let bytes = 0;
    const size = (p: PendingInput) => (p.poison ? 0 : p.bytes);
    for (let i = 0; i < pending.length; ) {
      let j = i;
      let groupBytes = 0;
      while (j < pending.length && pending[j].rev === pending[i].rev) groupBytes += size(pending[j++]);
      const group = pending.slice(i, j);
      if (taken.length > 0 && (taken.length >= this.options.maxInputs || bytes + groupBytes > this.options.maxBytes)) break;
      if (taken.length === 0 && group.length > 1 && groupBytes > this.options.maxBytes + MAX_LOGGED_INPUT_BYTES - MAX_INPUT_BYTES) {
        const why = `the inputs written at revision ${group[0].rev} take ${groupBytes} bytes together, over the log's limit of ${this.options.maxBytes} for one block`;
        return group.map((t) => (t.poison ? t : { ...t, poison: { key: `in/${t.id}`, why } }));
      }
      taken.push(...group);
      bytes += groupBytes;
      i = j;
    }
    return taken;
  }
}
