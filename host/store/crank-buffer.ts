// The writes of the current crank, held in memory until commit: for each key,
// its encoded new value, or null when the crank deleted it.
import { compareKeys } from './keys.js';

export type BufferedWrite = Uint8Array | null;

export class CrankBuffer {
  readonly #writes = new Map<string, BufferedWrite>();
  // Buffered keys in store order, for ordered queries. Keys added since the last
  // query wait in #unsorted, so a crank that only writes never sorts anything.
  #sorted: string[] = [];
  #unsorted: string[] = [];

  get size(): number {
    return this.#writes.size;
  }

  /** The buffered write for `key`, or undefined when the crank has not touched it. */
  lookup(key: string): BufferedWrite | undefined {
    return this.#writes.get(key);
  }

  record(key: string, write: BufferedWrite): void {
    if (!this.#writes.has(key)) this.#unsorted.push(key);
    this.#writes.set(key, write);
  }

  writes(): IterableIterator<[string, BufferedWrite]> {
    return this.#writes.entries();
  }

  clear(): void {
    this.#writes.clear();
    this.#sorted = [];
    this.#unsorted = [];
  }

  /**
   * The smallest buffered key that is set (not deleted), starts with `prefix`
   * and is at or after `from` (strictly after when `exclusive`). Callers pass a
   * `from` that is not below `prefix`, so matching keys form one run from there.
   */
  firstSetKey(prefix: string, from: string, exclusive: boolean): string | undefined {
    const sorted = this.#ordered();
    for (let i = lowerBound(sorted, from, exclusive); i < sorted.length; i++) {
      const key = sorted[i];
      if (!key.startsWith(prefix)) return undefined;
      if (this.#writes.get(key) !== null) return key;
    }
    return undefined;
  }

  #ordered(): string[] {
    if (this.#unsorted.length > 0) {
      this.#sorted = merge(this.#sorted, this.#unsorted.sort(compareKeys));
      this.#unsorted = [];
    }
    return this.#sorted;
  }
}

/** Index of the first key >= `from` (> `from` when `exclusive`). */
function lowerBound(sorted: readonly string[], from: string, exclusive: boolean): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareKeys(sorted[mid], from);
    if (c < 0 || (exclusive && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function merge(a: readonly string[], b: readonly string[]): string[] {
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) out.push(compareKeys(a[i], b[j]) <= 0 ? a[i++] : b[j++]);
  while (i < a.length) out.push(a[i++]);
  while (j < b.length) out.push(b[j++]);
  return out;
}
