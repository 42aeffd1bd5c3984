// Runs the kernel's queue in blocks without holding the event loop: between
// cranks it yields (setImmediate), so timers, I/O and other host calls go on
// while a busy or runaway vat keeps the queue full (issue #10). Blocks run
// one at a time, in the order they were asked for; the background runner asks
// for one block at a time and re-queues itself, so an explicit host.run()
// never waits behind an endless queue.
//
// Where the yields fall never changes state: cranks are deterministic, and a
// block only decides when they are committed.
import type { Kernel } from './kernel.js';
import { BlockMeter, resolveRunPolicy, type BlockReport, type RunPolicy } from './run-policy.js';

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export class BlockRunner {
  private chain: Promise<unknown> = Promise.resolve();
  private scheduled = false;
  private stopping = false;
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

  /** Lets the current crank finish, commits, and runs nothing more. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.chain;
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => {});
    return p;
  }

  private async block(policy: RunPolicy | undefined): Promise<BlockReport> {
    const meter = new BlockMeter(resolveRunPolicy(policy));
    let stoppedBy: BlockReport['stoppedBy'] = 'idle';
    try {
      for (;;) {
        const limit = meter.limitReached();
        if (limit) {
          stoppedBy = limit;
          break;
        }
        if (this.stopping || !this.kernel.crank(meter)) break;
        await yieldToEventLoop();
      }
    } finally {
      this.kernel.commit();
    }
    return { cranks: meter.cranks, computeUsed: meter.computeUsed, queueLength: this.kernel.queue.length(), stoppedBy, suspended: meter.suspended };
  }
}
