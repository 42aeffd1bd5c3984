// How often stored data (virtual and durable object state, collection values
// and strong keys) names each of the vat's ordinary references: imports
// (o-N), ordinary heap exports (o+N) and promises (p±N). Virtual and durable
// objects count their own references (virtual-refcounts.ts).
//
// A reference named from stored data must stay usable however the heap and
// the kernel let go of it (Agoric's liveslots keeps the same counts: its
// "remotable refcount" for heap exports, and the vatstore reachability of
// imports):
//   - counts from virtual data live in the heap: virtual data dies with the
//     incarnation, and so does the heap, so the two cannot disagree; an
//     aborted delivery discards both (the sandbox is dropped);
//   - counts from durable data (which can hold only imports) live in the
//     vatstore under ls.rc.<vref>, so a new incarnation inherits them.
// A reference whose count reaches zero is reported as released: the next GC
// point decides whether anything else still holds it.
//
// Vats whose durable data was written by a runtime from before these counts
// pinned every stored import for good (ls.pin.<vref>): such an import stays
// held, as that runtime promised, and a count that would go below zero (a
// reference stored then, deleted now) stays at zero.
import type { Syscall } from './syscall.js';

export interface SlotRefs {
  /** Stored data now names `vref` once more (delta 1) or once less (delta -1). */
  adjust(vref: string, delta: 1 | -1, durable: boolean): void;
  /** True while any stored data names `vref`. */
  held(vref: string): boolean;
  /** References whose count reached zero since the last call. */
  takeReleased(): string[];
}

const DURABLE = 'ls.rc.';
const LEGACY_PIN = 'ls.pin.';

export function makeSlotRefs(syscall: Syscall): SlotRefs {
  const heap = new Map<string, number>();
  const released = new Set<string>();
  const durableCount = (vref: string) => Number(syscall.vatstoreGet(DURABLE + vref) ?? '0');

  const held = (vref: string) =>
    (heap.get(vref) ?? 0) > 0 || (vref.startsWith('o-') && (durableCount(vref) > 0 || syscall.vatstoreGet(LEGACY_PIN + vref) !== undefined));

  return {
    adjust(vref, delta, durable) {
      if (durable) {
        const n = durableCount(vref) + delta;
        if (n > 0) syscall.vatstoreSet(DURABLE + vref, String(n));
        else syscall.vatstoreDelete(DURABLE + vref);
      } else {
        const n = (heap.get(vref) ?? 0) + delta;
        if (n > 0) heap.set(vref, n);
        else heap.delete(vref);
      }
      if (delta < 0 && !held(vref)) released.add(vref);
    },
    held,
    takeReleased() {
      const out = [...released];
      released.clear();
      return out;
    },
  };
}
