// Runs the kernel's queue in blocks without holding the event loop: between
// cranks it yields (setImmediate), so timers, I/O and other host calls go on
// while a busy or runaway vat keeps the queue full (issue #10). Blocks run
// one at a time, in the order they were asked for; the background runner asks
// for one block at a time and re-queues itself, so an explicit host.run()
// never waits behind an endless queue.
//
// Where the yields fall never changes state: cranks are deterministic, and a
// block only decides when they are committed.
import { HostStackOverflow } from '../engine/index.js';
import type { Kernel } from './kernel.js';
import { BlockMeter, resolveRunPolicy, type BlockReport, type RunPolicy } from './run-policy.js';

const MAX_STACK_RETRIES = 3;
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export class BlockRunner {
  private chain: Promise<unknown> = Promise.resolve();
  private scheduled = false;
  private stopping = false;
  private inBlock = false;
  private stackRetries = 0;
  /** Inputs that arrived during a block; they enter the queue when it ends. */
  private deferred: { run(): void; cancel(): void }[] = [];
  /** The last unexpected kernel failure; the background runner stops after one. */
  failure: Error | null = null;

  constructor(
    private readonly kernel: Kernel,
    private readonly autoRun: boolean,
    private readonly policy: RunPolicy | undefined,
  ) {
    resolveRunPolicy(policy); // refuse a bad policy at open, not at the first send
  }

  /** Makes sure the background runner will look at the queue (no-op with autoRun off). */
  schedule(): void {
    if (!this.autoRun || this.scheduled || this.stopping || this.failure) return;
    this.scheduled = true;
    void this.enqueue(async () => {
      this.scheduled = false;
      if (this.stopping || !this.kernel.hasRunnableWork()) return;
      try {
        await this.block(this.policy);
      } catch (err) {
        this.failure = err as Error;
        console.error(`quickvat: the kernel stopped running blocks: ${(err as Error).stack ?? err}`);
        return;
      }
      this.schedule();
    });
  }

  /** Runs one block under `policy` after any block already asked for. */
  runBlock(policy?: RunPolicy): Promise<BlockReport> {
    const resolved = resolveRunPolicy(policy);
    return this.enqueue(() => this.block(resolved));
  }

  /**
   * Runs an input (a host send or release) now, or, while a block is
   * running, right after it commits: a block's content never depends on when
   * sends arrive during it (issue #10: inputs enter at block boundaries).
   * Host operations (createVat, install, upgrade, suspend...) are synchronous
   * and do not come through here: made during a block they run between two
   * of its cranks (docs/operators-guide.md, "Blocks and durability").
   */
  atBoundary(run: () => void, cancel: () => void): void {
    if (this.inBlock) this.deferred.push({ run, cancel });
    else run();
  }

  /** Lets the current crank finish, commits, and runs nothing more; inputs still waiting are cancelled. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.chain;
    const waiting = this.deferred;
    this.deferred = [];
    for (const d of waiting) d.cancel();
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => {});
    return p;
  }

  private async block(policy: RunPolicy | undefined): Promise<BlockReport> {
    const meter = new BlockMeter(resolveRunPolicy(policy));
    let stoppedBy: BlockReport['stoppedBy'] = 'idle';
    this.inBlock = true;
    try {
      for (;;) {
        const limit = meter.limitReached();
        if (limit) {
          stoppedBy = limit;
          break;
        }
        let more: boolean;
        try {
          more = !this.stopping && this.kernel.crank(meter);
        } catch (err) {
          // Not an outcome (issue #10, item 6): end the block; the item is
          // still queued and the next block starts from the event loop's
          // shallow stack. A fault that repeats there is a real failure.
          if (!(err instanceof HostStackOverflow) || ++this.stackRetries > MAX_STACK_RETRIES) throw err;
          break;
        }
        if (!more) break;
        this.stackRetries = 0;
        await yieldToEventLoop();
      }
    } finally {
      this.kernel.commit();
      this.inBlock = false;
      if (!this.stopping) {
        const arrived = this.deferred;
        this.deferred = [];
        for (const d of arrived) d.run();
      }
    }
    return { cranks: meter.cranks, computeUsed: meter.computeUsed, queueLength: this.kernel.queue.length(), stoppedBy, suspended: meter.suspended };
  }
}
