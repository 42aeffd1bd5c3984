// What the store's decoded-value cache may hold: a value shared by every
// reader must be one no reader can change (deep-frozen), and a scalar cached
// when set must read back exactly as it was given.

/**
 * A scalar that decodes to itself: not -0 (msgpack has none) and not a string
 * with a lone surrogate (UTF-8 has none). Objects are excluded: the caller
 * may still change them.
 */
export function readsBackAsIs(value: unknown): boolean {
  switch (typeof value) {
    case 'number':
      return !Object.is(value, -0);
    case 'bigint':
    case 'boolean':
      return true;
    case 'string':
      return !/\p{Cs}/u.test(value);
    default:
      return false;
  }
}

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
