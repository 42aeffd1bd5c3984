// The sweep's gray queue (gc-sweep.ts): promises marked whose resolution data
// is still to be marked. Marking a promise queues it instead of decoding its
// row at once, so that the work of marking a resolution (which may name
// thousands of krefs) is counted against a slice's budget (break-10e #4).
//
// Two parts, taken in this order: the store's queue (k.gc.gq.<n>, from
// k.gc.gqHead to k.gc.gqTail), which survives between slices and takes what
// the write barrier marks between them; and the running slice's own, in
// memory, which takes what the slice marks. A slice marks every queued item's
// result promise, and a store row for each cost four writes and a delete; only
// the promises a slice did not reach go to the store when it ends.
import type { Store } from '../store/index.js';
import { pad } from './gc-cycle.js';
import type { KernelState } from './kernel-state.js';
import type { Kref } from './refs.js';

export const GRAY_PREFIX = 'k.gc.gq.';
const HEAD = 'k.gc.gqHead';
const TAIL = 'k.gc.gqTail';
/** Slots of the store queue's head promise already marked (a big resolution is marked over several slices). */
const SLOT = 'k.gc.gqSlot';

/** Slots, and characters of body, of a promise's resolution whose decoding counts as one unit of work (the row is decoded whenever the queue reaches or resumes it; break-10f #2). */
const SLOTS_PER_DECODE_UNIT = 256;
const BODY_CHARS_PER_DECODE_UNIT = 4096;

export class GrayQueue {
  /** The running slice's queue: promises, the next to visit, and the slot reached in it. */
  private slice: { queue: Kref[]; at: number; from: number } | null = null;

  constructor(
    private readonly store: Store,
    private readonly state: KernelState,
    private readonly workPerCrank: number,
    private readonly mark: (kref: Kref) => void,
  ) {}

  beginSlice(): void {
    this.slice = { queue: [], at: 0, from: 0 };
  }

  /** Ends the slice: what it did not reach goes to the store when the cycle goes on (`keep`), else is forgotten (the cycle ended, or the crank is rolled back). */
  endSlice(keep: boolean): void {
    const gray = this.slice;
    this.slice = null;
    if (!keep || !gray || gray.at >= gray.queue.length) return;
    // The store's queue is empty whenever the slice's own was reached, so a
    // partly marked head of the slice's queue becomes the store queue's head.
    if (gray.from > 0) this.store.set(SLOT, gray.from);
    this.pushToStore(gray.queue.slice(gray.at));
  }

  push(kp: Kref): void {
    if (this.slice) this.slice.queue.push(kp);
    else this.pushToStore([kp]);
  }

  /** Forgets the store queue's cursor (the clear phase deletes its rows). */
  clearCursor(): void {
    for (const key of [HEAD, TAIL, SLOT]) this.store.delete(key);
  }

  /** Marks what queued promises' resolutions name, the store's queue first; false when the budget ran out first. */
  drain(spend: () => void, remaining: () => number): boolean {
    const tail = (this.store.get(TAIL) as number | undefined) ?? 0;
    let head = tail === 0 ? 0 : ((this.store.get(HEAD) as number | undefined) ?? 0);
    if (head < tail) {
      try {
        while (head < tail) {
          if (remaining() <= 0) return false;
          const key = GRAY_PREFIX + pad(head);
          const reached = this.visit(this.store.get(key) as Kref, (this.store.get(SLOT) as number | undefined) ?? 0, spend, remaining);
          if (reached === 'wait') return false;
          if (reached !== 'done') {
            this.store.set(SLOT, reached);
            return false;
          }
          this.store.delete(SLOT);
          this.store.delete(key);
          head++;
        }
      } finally {
        this.store.set(HEAD, head);
      }
    }
    const gray = this.slice;
    while (gray && gray.at < gray.queue.length) {
      if (remaining() <= 0) return false;
      const reached = this.visit(gray.queue[gray.at], gray.from, spend, remaining);
      if (reached === 'wait') return false;
      if (reached !== 'done') {
        gray.from = reached;
        return false;
      }
      gray.from = 0;
      gray.at++;
    }
    return true;
  }

  private pushToStore(kps: readonly Kref[]): void {
    let tail = (this.store.get(TAIL) as number | undefined) ?? 0;
    for (const kp of kps) this.store.set(GRAY_PREFIX + pad(tail++), kp);
    this.store.set(TAIL, tail);
  }

  /**
   * Marks what one promise's resolution names from slot `from`: 'done', the
   * slot to go on from when the budget ran out, or 'wait' when too little
   * budget is left to decode it (a fresh slice always takes it).
   */
  private visit(kp: Kref, from: number, spend: () => void, remaining: () => number): number | 'done' | 'wait' {
    const p = this.state.hasPromise(kp) ? this.state.promise(kp) : undefined;
    // An unresolved promise names nothing yet: the barrier marks its
    // resolution's krefs when it is resolved (setPromise).
    const slots = p && p.state !== 'unresolved' ? p.data.slots : [];
    // Decoding the row, again in each slice that resumes it, is work in proportion to its size.
    const body = p && p.state !== 'unresolved' ? p.data.body.length : 0;
    const decode = 1 + Math.floor(slots.length / SLOTS_PER_DECODE_UNIT) + Math.floor(body / BODY_CHARS_PER_DECODE_UNIT);
    if (decode > remaining() && remaining() < this.workPerCrank) return 'wait';
    for (let i = 0; i < decode; i++) spend();
    // A visit marks at least as many slots as one decode unit stands for, so
    // a row whose decoding alone takes a slice still progresses in linear
    // time (break-10f #3).
    for (let marked = 0; from < slots.length; from++, marked++) {
      if (remaining() <= 0 && marked >= SLOTS_PER_DECODE_UNIT) return from;
      spend();
      this.mark(slots[from]);
    }
    return 'done';
  }
}
