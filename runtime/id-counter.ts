// A vat's ID counters (export and promise numbers) survive upgrades through
// the vatstore. Writing on every allocation would cost a syscall each, so a
// block of IDs is reserved at a time and the next incarnation starts after
// the last reserved block.
import type { Syscall } from './syscall.js';

/** IDs reserved per vatstore write. */
const RESERVE = 64;

export interface IdCounter {
  /** Reads where the previous incarnation's reservations end; call once, at start-up. */
  start(): void;
  /** The next ID (1, 2, ...), reserving another block when the current one is used up. */
  allocate(): number;
  /** The ID allocate() will give next. */
  readonly value: number;
}

export function makeIdCounter(syscall: Syscall, key: string): IdCounter {
  let next = 1;
  let ceiling = 0;
  return {
    start() {
      const stored = syscall.vatstoreGet(key);
      next = stored === undefined ? 1 : Number(stored);
      ceiling = next - 1;
    },
    allocate() {
      if (next > ceiling) {
        ceiling = next + RESERVE - 1;
        syscall.vatstoreSet(key, String(ceiling + 1));
      }
      return next++;
    },
    get value() {
      return next;
    },
  };
}
