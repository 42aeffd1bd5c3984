// Byte-for-byte what @endo/marshal's smallcaps gives for plain data, without
// its per-value cost: inside QuickJS, harden and pass-style checks cost tens
// of microseconds each, and most capdata on the delivery path is scalars or
// small arrays and records of them. Anything else returns undefined and takes
// the full marshal path.
import type { Capdata } from './syscall.js';

/** Smallcaps gives strings starting with one of !"#$%&'()*+,- a special meaning. */
export const startsSpecial = (s: string) => s.length > 0 && s.charCodeAt(0) >= 0x21 && s.charCodeAt(0) <= 0x2d;

/** The smallcaps body (after '#') for a scalar, or undefined. */
export function scalarBody(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return startsSpecial(value) ? undefined : JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0) ? JSON.stringify(value) : undefined;
    case 'bigint':
      return JSON.stringify(value >= 0n ? `+${value}` : `${value}`);
    case 'boolean':
      return String(value);
    default:
      return value === null ? 'null' : undefined;
  }
}

export function encodeScalar(value: unknown): Capdata | undefined {
  const body = scalarBody(value);
  return body === undefined ? undefined : { body: `#${body}`, slots: [] };
}

// JSON that smallcaps would decode to itself: no special strings (values or
// record keys, which smallcaps escapes the same way), no slots.
function isPlain(v: unknown, depth: number): boolean {
  if (depth > 16) return false;
  switch (typeof v) {
    case 'string':
      return !startsSpecial(v);
    case 'number':
    case 'boolean':
      return true;
    case 'object':
      if (v === null) return true;
      if (Array.isArray(v)) return v.every((x) => isPlain(x, depth + 1));
      return Object.entries(v).every(([k, x]) => !startsSpecial(k) && isPlain(x, depth + 1));
    default:
      return false;
  }
}

/** The decoded (hardened) value for plain data, or undefined. */
export function decodePlain(data: Capdata): { value: unknown } | undefined {
  if (data.slots.length !== 0 || !data.body.startsWith('#')) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(data.body.slice(1));
  } catch {
    return undefined;
  }
  return isPlain(v, 0) ? { value: harden(v) } : undefined;
}
