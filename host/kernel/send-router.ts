// Where a send waits and whose share it counts against (issue #10): a send
// to an object waits in its owner's lane and counts against the sender's
// share for that vat; a send to a promise waits in the sender's own promise
// lane and counts against its share for promises. See run-queue.ts.
import { HOST_VAT, type KernelState, type RunItem } from './kernel-state.js';
import { isKpid, type Kref, type VatId } from './refs.js';
import { KERNEL_LANE, PROMISES, promiseLane, type Lane, type RunQueue } from './run-queue.js';

export class SendRouter {
  constructor(
    private readonly state: KernelState,
    private readonly queue: RunQueue,
    private readonly maxQueuedPerVat: number,
  ) {}

  /** Queues a send, counting it against `from`'s share for its destination (none for the kernel's own). */
  enqueue(item: RunItem & { type: 'send' }, from: VatId | null): void {
    const sender = from === null ? null : { vat: from, dest: this.destOf(item.target) };
    this.queue.enqueue(item, isKpid(item.target) ? promiseLane(from) : this.laneOf(item.target), sender);
  }

  /** Queues a vat's send, or returns why not: the vat is over its share for that destination. */
  admitFromVat(vat: VatId, item: RunItem & { type: 'send' }): string | null {
    const dest = this.destOf(item.target);
    const share = this.queue.share(vat, dest);
    if (share >= this.maxQueuedPerVat) {
      const where = dest === PROMISES ? 'for promises' : 'for that vat';
      return `${item.msg.method.slice(0, 80)} was not sent: this vat already has ${share} messages waiting ${where}, its share`;
    }
    this.enqueue(item, vat);
    return null;
  }

  /** Which of a sender's shares a send to `target` counts against: the receiving vat, or promises. */
  private destOf(target: Kref): string {
    return isKpid(target) ? PROMISES : this.laneOf(target);
  }

  private laneOf(target: Kref): Lane {
    if (isKpid(target)) return KERNEL_LANE;
    const owner = this.state.objectOwner(target);
    return owner === undefined || owner === HOST_VAT ? KERNEL_LANE : owner;
  }
}
