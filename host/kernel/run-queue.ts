// The run queue: one FIFO lane per receiving vat, served round-robin, kept in
// the store so that it commits (or vanishes) with the cranks that change it.
//
// Why lanes: with one global FIFO a vat that sends two messages per delivery
// doubles the queue every round, and a message to an unrelated vat waits
// behind all of it. With lanes, a message to vat C is delivered after at most
// one crank of every other lane that has work (issue #10, "fairness"); order
// between messages to the same vat is still FIFO, so E-order per target holds.
// Erlang's scheduler and Agoric's run policy are the models.
//
// Every vat also has a *share*: how many of the items waiting in the queue it
// sent. A vat over its share has its sends refused (their result promises are
// rejected), so no vat can grow the queue without bound.
import type { Store } from '../store/index.js';
import type { RunItem } from './kernel-state.js';
import type { VatId } from './refs.js';

/** Where an item waits: the vat it will be delivered to, or the kernel's own lane. */
export type Lane = string;
export const KERNEL_LANE: Lane = 'kernel';

interface LaneBounds {
  readonly head: number;
  readonly tail: number;
}

interface QueuedItem {
  readonly item: RunItem;
  readonly sender: VatId | null;
}

const pad = (n: number) => String(n).padStart(12, '0');

export class RunQueue {
  constructor(private readonly store: Store) {}

  /** Total items waiting, in every lane. */
  length(): number {
    return (this.store.get('k.rq.n') as number | undefined) ?? 0;
  }

  laneLength(lane: Lane): number {
    const b = this.bounds(lane);
    return b.tail - b.head;
  }

  /** Items waiting that `vat` sent. */
  share(vat: VatId): number {
    return (this.store.get(`k.rq.share.${vat}`) as number | undefined) ?? 0;
  }

  /** Lanes with work, in the order they will be served. */
  lanes(): Lane[] {
    return (this.store.get('k.rq.ring') as Lane[] | undefined) ?? [];
  }

  enqueue(item: RunItem, lane: Lane, sender: VatId | null = null): void {
    const b = this.bounds(lane);
    this.store.set(`k.rq.i.${lane}.${pad(b.tail)}`, { item, sender } satisfies QueuedItem);
    this.store.set(`k.rq.l.${lane}`, { head: b.head, tail: b.tail + 1 });
    if (b.tail === b.head) this.store.set('k.rq.ring', [...this.lanes(), lane]);
    this.store.set('k.rq.n', this.length() + 1);
    if (sender !== null) this.store.set(`k.rq.share.${sender}`, this.share(sender) + 1);
  }

  /**
   * Takes the head of the first lane that may run (skipping, e.g., suspended
   * vats' lanes); that lane moves to the back of the ring if it still has work.
   */
  dequeue(mayRun: (lane: Lane) => boolean): { item: RunItem; lane: Lane } | undefined {
    const ring = this.lanes();
    const at = ring.findIndex(mayRun);
    if (at < 0) return undefined;
    const lane = ring[at];
    const b = this.bounds(lane);
    const key = `k.rq.i.${lane}.${pad(b.head)}`;
    const { item, sender } = this.store.get(key) as QueuedItem;
    this.store.delete(key);
    const rest = ring.slice(0, at).concat(ring.slice(at + 1));
    if (b.head + 1 === b.tail) {
      this.store.delete(`k.rq.l.${lane}`);
      this.store.set('k.rq.ring', rest);
    } else {
      this.store.set(`k.rq.l.${lane}`, { head: b.head + 1, tail: b.tail });
      this.store.set('k.rq.ring', [...rest, lane]);
    }
    this.store.set('k.rq.n', this.length() - 1);
    if (sender !== null) {
      const n = this.share(sender) - 1;
      if (n > 0) this.store.set(`k.rq.share.${sender}`, n);
      else this.store.delete(`k.rq.share.${sender}`);
    }
    return { item, lane };
  }

  private bounds(lane: Lane): LaneBounds {
    return (this.store.get(`k.rq.l.${lane}`) as LaneBounds | undefined) ?? { head: 0, tail: 0 };
  }
}
