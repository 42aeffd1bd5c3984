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
// Every sender also has a *share* per destination: how many of the messages
// it sent to one vat (or to promises) are waiting, in the queue or parked on
// an unresolved promise. A vat over its share for a destination has its sends
// there refused (their result promises are rejected), so no vat can grow the
// queue or the parked messages without bound, and a suspended vat's backlog
// stops its clients from sending to it, not to everyone else.
import type { Store } from '../store/index.js';
import type { RunItem } from './kernel-state.js';
import type { VatId } from './refs.js';

/** Where an item waits: the vat it will be delivered to, or the kernel's own lane. */
export type Lane = string;
export const KERNEL_LANE: Lane = 'kernel';
/** Sends to promises wait in a lane per sender, so one sender's flood delays only itself. */
export const promiseLane = (sender: VatId | null): Lane => `p.${sender ?? KERNEL_LANE}`;
/** The destination a share counts for sends to promises (queued, or parked on one). */
export const PROMISES: string = '*promises';
/** Who sent an item, and which of the sender's shares it counts against. */
export interface Sender {
  readonly vat: VatId;
  readonly dest: string;
}

interface LaneBounds {
  readonly head: number;
  readonly tail: number;
}

interface QueuedItem {
  readonly item: RunItem;
  readonly sender: Sender | null;
}

const pad = (n: number) => String(n).padStart(12, '0');

export class RunQueue {
  constructor(
    private readonly store: Store,
    /** Told of every item queued (the GC's write barrier, gc-sweep.ts). */
    private readonly onEnqueue: (item: RunItem) => void = () => {},
  ) {}

  /** Total items waiting, in every lane. */
  length(): number {
    return (this.store.get('k.rq.n') as number | undefined) ?? 0;
  }

  laneLength(lane: Lane): number {
    const b = this.bounds(lane);
    return b.tail - b.head;
  }

  /** Messages `vat` sent to `dest` that still wait (queued or parked). */
  share(vat: VatId, dest: string): number {
    return (this.store.get(`k.rq.share.${vat}.${dest}`) as number | undefined) ?? 0;
  }

  /** All messages `vat` sent that still wait, whatever their destination. */
  totalShare(vat: VatId): number {
    return (this.store.get(`k.rq.share.${vat}`) as number | undefined) ?? 0;
  }

  /** Counts a waiting message against its sender's share (+1), or releases it (-1). */
  charge(sender: Sender, delta: 1 | -1): void {
    const bump = (key: string) => {
      const n = ((this.store.get(key) as number | undefined) ?? 0) + delta;
      if (n > 0) this.store.set(key, n);
      else this.store.delete(key);
    };
    bump(`k.rq.share.${sender.vat}.${sender.dest}`);
    bump(`k.rq.share.${sender.vat}`);
  }

  /** Lanes with work, in the order they will be served. */
  lanes(): Lane[] {
    return (this.store.get('k.rq.ring') as Lane[] | undefined) ?? [];
  }

  enqueue(item: RunItem, lane: Lane, sender: Sender | null = null): void {
    const b = this.bounds(lane);
    // Items are only ever at [head, tail): the tail's key is free.
    this.store.set(`k.rq.i.${lane}.${pad(b.tail)}`, { item, sender } satisfies QueuedItem, { fresh: true });
    this.onEnqueue(item);
    this.store.set(`k.rq.l.${lane}`, { head: b.head, tail: b.tail + 1 });
    if (b.tail === b.head) this.store.set('k.rq.ring', [...this.lanes(), lane]);
    this.store.set('k.rq.n', this.length() + 1);
    if (sender !== null) this.charge(sender, 1);
  }

  /**
   * Takes the head of the first lane that may run (skipping, e.g., suspended
   * vats' lanes); that lane moves to the back of the ring if it still has work.
   */
  dequeue(mayRun: (lane: Lane) => boolean): { item: RunItem; lane: Lane; sender: Sender | null } | undefined {
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
      // The last lane of the ring (the only one, when one vat is busy) stays where it is.
      if (at !== ring.length - 1) this.store.set('k.rq.ring', [...rest, lane]);
    }
    this.store.set('k.rq.n', this.length() - 1);
    if (sender !== null) this.charge(sender, -1);
    return { item, lane, sender };
  }

  /** The items waiting in one lane, oldest first (reads only; for pre-flight's look at calls not yet delivered). */
  waiting(lane: Lane): RunItem[] {
    const b = this.bounds(lane);
    const out: RunItem[] = [];
    for (let i = b.head; i < b.tail; i++) out.push((this.store.get(`k.rq.i.${lane}.${pad(i)}`) as QueuedItem).item);
    return out;
  }

  private bounds(lane: Lane): LaneBounds {
    return (this.store.get(`k.rq.l.${lane}`) as LaneBounds | undefined) ?? { head: 0, tail: 0 };
  }
}
