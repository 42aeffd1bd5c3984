// What the store knows of its committed contents without asking lmdb: values
// it decoded or wrote, and keys lmdb lacks. A value shared by every reader
// must be one no reader can change (deep-frozen).

/**
 * Deep-freezes a decoded value and returns true, or returns false (leaving it
 * unfrozen, not to be shared) when it holds a Uint8Array, which cannot be frozen.
 */
export function freezeTree(value: unknown): boolean {
  if (!freezable(value)) return false;
  deepFreeze(value);
  return true;
}

function freezable(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (value instanceof Uint8Array) return false;
  for (const item of Object.values(value)) if (!freezable(item)) return false;
  return true;
}

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null) return;
  for (const item of Object.values(value)) deepFreeze(item);
  Object.freeze(value);
}

/**
 * Bounds on the cache: entries of each part, and the encoded size of a value
 * it keeps (bytes; a string of up to a third as many UTF-16 units), so it
 * holds at most a few tens of MiB whatever vats store. Reaching an entry
 * bound empties that part (cheap, and no eviction order to keep).
 */
const CACHED_ENTRIES = 4_096;
const CACHED_VALUE_BYTES = 4_096;

/**
 * COMMITTED contents the store answers from memory. Decoded values (read, or
 * written by the last commit), deeply frozen, so repeated reads of the
 * kernel's hot records decode once (issue #10: decoding was ~10% of a
 * crank); frozen because every reader shares one object: mutating a value
 * read from the store throws instead of silently changing what others read.
 * And keys lmdb lacks: the kernel asks on every delivery about keys that are
 * usually absent (is this object orphaned, being dropped, pinned for the
 * host? is a GC cycle marking?), each an lmdb lookup. Uncommitted writes live
 * in the crank buffer, which reads consult first, so a rolled-back crank
 * leaves this valid; commit() updates it, import and close empty it.
 */
export class CommittedCache {
  readonly #values = new Map<string, unknown>();
  readonly #absent = new Set<string>();

  /** The committed value of `key` if known (a value is never undefined). */
  value(key: string): unknown {
    return this.#values.get(key);
  }

  has(key: string): boolean {
    return this.#values.has(key);
  }

  /** Whether lmdb is known to lack `key`. */
  absent(key: string): boolean {
    return this.#absent.has(key);
  }

  /** lmdb was read: `value` decoded from `bytes` bytes (kept if small enough and freezable), or undefined for a key it lacks. */
  read(key: string, value: unknown, bytes: number): void {
    if (value === undefined) add(this.#absent, key);
    else if (bytes <= CACHED_VALUE_BYTES && freezeTree(value)) remember(this.#values, key, value);
  }

  /** A commit wrote `key`: its held value (a frozen copy, kept if small enough), or undefined when it was held as bytes. */
  written(key: string, value: unknown, bytes: number): void {
    this.#absent.delete(key);
    if (value !== undefined && bytes <= CACHED_VALUE_BYTES) remember(this.#values, key, value);
    else this.#values.delete(key);
  }

  /** A commit deleted `key`. */
  deleted(key: string): void {
    this.#values.delete(key);
  }

  clear(): void {
    this.#values.clear();
    this.#absent.clear();
  }
}

function remember(values: Map<string, unknown>, key: string, value: unknown): void {
  if (values.size >= CACHED_ENTRIES) values.clear();
  values.set(key, value);
}

function add(keys: Set<string>, key: string): void {
  if (keys.size >= CACHED_ENTRIES) keys.clear();
  keys.add(key);
}
