// Inputs from outside any vat: the host's sends, its waits on kernel
// promises and its releases of references. Each is a small crank-free change
// made between blocks (the kernel refuses them mid-crank); sends run in the
// next block, and waiters hear results only after that block commits.
import type { CrankOutbox, HostWaiter } from './crank-outbox.js';
import type { KernelGC } from './gc.js';
import type { KernelLimits } from './kernel-options.js';
import { HOST_VAT, type KernelState } from './kernel-state.js';
import { isKpid, type Capdata, type Kref } from './refs.js';
import type { RunQueue } from './run-queue.js';
import type { SendRouter } from './send-router.js';

export class HostInputs {
  constructor(
    private readonly state: KernelState,
    private readonly queue: RunQueue,
    private readonly sends: SendRouter,
    private readonly outbox: CrankOutbox,
    private readonly gc: KernelGC,
    private readonly limits: KernelLimits,
  ) {}

  private assertIdle(): void {
    if (this.outbox.inCrank) throw new Error('the kernel is in the middle of a crank');
  }

  /**
   * Queues a message from outside any vat; it runs in the next block, and
   * `waiter` hears its result after that block commits. Throws (queueing
   * nothing) for an unknown target or argument, or a full run queue.
   */
  queueToKref(target: Kref, method: string, args: Capdata, waiter?: HostWaiter): Kref {
    this.assertIdle();
    const known = (k: Kref) => !!this.state.objectOwner(k) || (isKpid(k) && this.state.hasPromise(k));
    if (!known(target)) throw new Error(`no kernel object or promise ${target}`);
    for (const slot of args.slots) if (!known(slot)) throw new Error(`argument references unknown kernel object ${slot}`);
    // Vats' traffic never fills the host's room: its sends have a share of their own.
    if (this.queue.totalShare(HOST_VAT) >= this.limits.maxQueueLength) {
      throw new RangeError(`the run queue is full (${this.limits.maxQueueLength} host messages waiting); the send of ${method.slice(0, 80)} was refused, try again later`);
    }
    this.outbox.begin();
    // A released object the host names again is kept: a drop the GC decided
    // while nobody named it must not run now that this message does
    // (break-10e #1; the exporter naming it again cancels the same way).
    for (const kref of [target, ...args.slots]) if (!isKpid(kref)) this.gc.namedAgain(kref);
    const result = this.state.allocatePromise(null, [HOST_VAT]);
    this.sends.enqueue({ type: 'send', target, msg: { method, args, result } }, HOST_VAT);
    this.state.bump('inputs');
    this.outbox.end();
    if (waiter) this.outbox.addWaiter(result, waiter);
    return result;
  }

  /**
   * The host no longer needs these objects (host.release): they stop being
   * pinned for it, and a GC sweep drops those no vat or queued message holds.
   * Returns how many were pinned.
   */
  releaseHostRefs(krefs: readonly Kref[]): number {
    this.assertIdle();
    this.outbox.begin();
    const n = this.gc.unpinForHost(krefs);
    this.outbox.end();
    return n;
  }

  /** Calls back when a kernel promise settles (at once if it already has). */
  waitFor(kp: Kref, waiter: HostWaiter): void {
    const p = this.state.promise(kp);
    if (p.state !== 'unresolved') {
      // The host cannot send a promise anywhere: once it has the settlement, it no longer needs the row.
      if (this.gc.pinnedForHost(kp)) {
        this.assertIdle();
        this.outbox.begin();
        this.gc.unpinForHost([kp]);
        this.outbox.end();
      }
      return waiter(p.state === 'rejected', p.data);
    }
    if (!p.subscribers.includes(HOST_VAT)) {
      this.assertIdle();
      this.outbox.begin();
      this.state.setPromise(kp, { ...p, subscribers: [...p.subscribers, HOST_VAT] });
      this.outbox.end();
    }
    this.outbox.addWaiter(kp, waiter);
  }
}
