// What the store's decoded-value cache may hold: a value shared by every
// reader must be one no reader can change (deep-frozen).

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

/** Most keys AbsentKeys remembers; reaching it empties the set (no eviction order to keep). */
const ABSENT_KEYS = 4_096;

/** Committed keys known to be absent (the store's negative cache); bounded. */
export class AbsentKeys {
  readonly #keys = new Set<string>();

  has(key: string): boolean {
    return this.#keys.has(key);
  }

  add(key: string): void {
    if (this.#keys.size >= ABSENT_KEYS) this.#keys.clear();
    this.#keys.add(key);
  }

  delete(key: string): void {
    this.#keys.delete(key);
  }

  clear(): void {
    this.#keys.clear();
  }
}
