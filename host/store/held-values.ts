// What a buffered write holds until commit: the value itself, frozen, when it
// reads back exactly as its encoding would; otherwise its encoded bytes.
//
// Holding values (write-behind) is what makes a block cheap (issue #10): the
// kernel rewrites its hot records (queue counters, shares, vat statistics,
// transcript position) on every crank and creates then deletes promise, queue
// and c-list rows within one block. Encoding at set() paid msgpack for every
// one of those writes and a decode for every read that followed; holding the
// value encodes each surviving key once, at commit, and never encodes a row
// that is deleted before the block ends.
import { decodeValue, encodeChecked, encodeValue } from './codec.js';
import { isWellFormed } from './keys.js';

/** A write held as bytes: values a frozen copy cannot stand for (see heldCopy). */
export class Encoded {
  constructor(readonly bytes: Uint8Array) {}
}

/**
 * A buffered write: null for a delete, Encoded bytes, or a value that reads
 * back as itself (a scalar, or a deep-frozen plain copy the caller cannot
 * change). Never undefined.
 */
export type Held = Encoded | null | string | number | bigint | boolean | object;

/**
 * Validates `value` as encodeValue does (same errors) and returns what to
 * buffer: a deep-frozen copy when decode(encode(value)) would give an equal
 * value of the same shape, else the encoded bytes. Equal includes key order:
 * the copy inserts keys in the order msgpack writes them, so both enumerate
 * alike.
 *
 * Encoded (rare in the kernel): a top-level null (null marks a delete), -0
 * (msgpack has none), a string that is not well-formed UTF-16 (UTF-8 has no
 * lone surrogates), binary data (decoded as a Buffer copy, which cannot be
 * frozen), a "__proto__" key (msgpackr renames it), a key that is not
 * well-formed, and a large tree (over HOLD_WEIGHT): bytes hold a big value
 * in a third of the heap a copy takes (break-10d #2), and big values are
 * rarely rewritten within a block, which is what holding a copy saves.
 *
 * @throws TypeError naming the key and the path to the part that cannot be stored.
 */
export function holdValue(key: string, value: unknown): Held {
  // One walk checks and copies what the kernel stores; anything it does not
  // take (an invalid value, for the error; binary data; a deep tree, where a
  // cycle may hide) goes through encodeValue's full check and the codec.
  const outer = weight;
  weight = 0;
  let copy: unknown;
  try {
    copy = value === null ? UNFIT : frozenCopy(value, 0);
  } finally {
    weight = outer;
  }
  if (copy !== UNFIT) return copy as Held;
  return encodedWrite(key, value);
}

/** What to buffer for a write encoded at once (validated as encodeValue does; same errors). A top-level null is bytes too. */
export function encodedWrite(key: string, value: unknown): Encoded {
  return new Encoded(encodeValue(key, value));
}

/** The value a held write stands for (a fresh decode for Encoded bytes). */
export function heldValue(write: Exclude<Held, null>): unknown {
  return write instanceof Encoded ? decodeValue(write.bytes) : write;
}

/** The bytes commit() writes for a held write. */
export function heldBytes(write: Exclude<Held, null>): Uint8Array {
  return write instanceof Encoded ? write.bytes : encodeChecked(write);
}

const UNFIT = Symbol('unfit');

/** Nesting beyond which frozenCopy gives up (checkValue then finds a cycle, or the codec takes the value). */
const MAX_COPY_DEPTH = 64;
/**
 * The largest tree held as a copy, in nodes plus string characters / 32
 * (about 2 KiB of strings, or 64 nodes): the kernel's hot records weigh at
 * most ~20 (a queued message with its capdata, a promise, a vat's
 * statistics); a bigger value is encoded at set(), as before write-behind.
 */
const HOLD_WEIGHT = 64;
/** Weight of the tree frozenCopy is walking (saved and restored around each holdValue). */
let weight = 0;

// A deep-frozen copy of a valid value, or UNFIT for one that is invalid,
// would not read back as itself, or is nested deeper than MAX_COPY_DEPTH (so
// a cycle ends here too). Validity is checkValue's (codec.ts): plain data only.
function frozenCopy(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'number':
      return Object.is(value, -0) ? UNFIT : value;
    case 'string':
      // A string alone is held as is: the copy would share it.
      if (depth > 0 && (weight += value.length >> 5) > HOLD_WEIGHT) return UNFIT;
      return isWellFormed(value) ? value : UNFIT;
    case 'bigint':
    case 'boolean':
      return value;
    case 'object':
      break;
    default:
      return UNFIT;
  }
  if (value === null) return null;
  if (depth >= MAX_COPY_DEPTH || value instanceof Uint8Array) return UNFIT;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return UNFIT;
    if ((weight += value.length + 1) > HOLD_WEIGHT) return UNFIT;
    const out = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) return UNFIT;
      const item = frozenCopy(value[i], depth + 1);
      if (item === UNFIT) return UNFIT;
      out[i] = item;
    }
    return Object.freeze(out);
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if ((proto !== Object.prototype && proto !== null) || Object.getOwnPropertySymbols(value).length > 0) return UNFIT;
  const out: Record<string, unknown> = {};
  weight++;
  for (const name in value) {
    if (!Object.hasOwn(value, name)) continue;
    if (++weight > HOLD_WEIGHT || name === '__proto__' || !isWellFormed(name)) return UNFIT;
    const item = frozenCopy((value as Record<string, unknown>)[name], depth + 1);
    if (item === UNFIT) return UNFIT;
    out[name] = item;
  }
  return Object.freeze(out);
}
