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
