// Store keys are strings, kept in lmdb as their UTF-8 bytes (keyEncoding
// 'binary'), so lmdb's memcmp order is exactly UTF-8 byte order. lmdb's default
// 'ordered-binary' key encoding escapes control characters and would put keys
// such as "\u0001" out of that order.
import { inspect } from 'node:util';

// lmdb-js's key size limit at the default page size (its DEFAULT_MAX_KEY_SIZE).
export const MAX_KEY_BYTES = 1978;

/**
 * No lone surrogates (String.prototype.isWellFormed: Node 20, not in
 * TypeScript's ES2022 lib). It answers a one-byte string at once, where a
 * /\p{Cs}/u test scans it.
 */
export const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

export type KeyRole = 'key' | 'prefix' | 'after key';

/** Validates `value` as a key (or prefix, which may be empty) and returns its lmdb bytes. */
export function encodeKey(value: unknown, role: KeyRole = 'key'): Buffer {
  checkKey(value, role);
  return Buffer.from(value as string, 'utf8');
}

/**
 * encodeKey's checks without making the bytes (a read served from memory
 * needs none). Throws TypeError (not a string, empty, lone surrogate) or
 * RangeError (over MAX_KEY_BYTES of UTF-8).
 */
export function checkKey(value: unknown, role: KeyRole = 'key'): void {
  if (typeof value !== 'string' || (value === '' && role !== 'prefix')) {
    const expected = role === 'prefix' ? 'a string' : 'a non-empty string';
    throw new TypeError(`store ${role} must be ${expected}, got ${describe(value)}`);
  }
  // A lone surrogate has no UTF-8 form: Buffer.from would silently turn it into
  // U+FFFD, aliasing distinct keys.
  if (!isWellFormed(value)) {
    throw new TypeError(`store ${role} must not contain lone surrogates, got ${describe(value)}`);
  }
  // A UTF-16 code unit is at most 3 bytes of UTF-8: short keys need no count.
  if (value.length * 3 > MAX_KEY_BYTES) {
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > MAX_KEY_BYTES) {
      throw new RangeError(`store ${role} is ${bytes} bytes of UTF-8, more than lmdb's limit of ${MAX_KEY_BYTES}: ${describe(value)}`);
    }
  }
}

export function decodeKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

/** Orders well-formed strings as lmdb orders their UTF-8 bytes. */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return utf8Rank(x) - utf8Rank(y);
  }
  return a.length - b.length;
}

// UTF-16 code-unit order agrees with UTF-8 byte (= code point) order except
// where a surrogate meets U+E000..U+FFFF: surrogates stand for code points above
// U+FFFF, so they must rank above that range. The ranks stay distinct, so two
// different units never compare equal.
function utf8Rank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

export function describe(value: unknown): string {
  return inspect(value, { depth: 1, maxStringLength: 80, maxArrayLength: 5, breakLength: Infinity });
}
