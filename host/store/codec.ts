// How store values are encoded. The encoded bytes are what commit() writes and
// what stateHash() hashes, so the same value must give the same bytes in every
// process, whatever was encoded before it.
import { Packr } from 'msgpackr';
import { describe } from './keys.js';

export const codec = new Packr({
  // Records and structured clone make the bytes of a value depend on the
  // structures and references seen earlier by this Packr, i.e. on history.
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  mapsAsObjects: true,
  // Bigints within 64 bits are int64/uint64 and decode as bigint; larger ones
  // use msgpackr's bigint extension rather than failing or losing precision.
  useBigIntExtension: true,
  int64AsType: 'bigint',
  // A toJSON() is a presentation choice of its class, not stored state.
  useToJSON: false,
  // lmdb hands the decoder a scratch buffer reused by the next read, so
  // binaries in a decoded value must be copies.
  copyBuffers: true,
});

/**
 * Checks that `value` round-trips unchanged and encodes it into fresh bytes the
 * caller owns (msgpackr returns a view of its reusable output buffer).
 *
 * Note that msgpack has no negative zero: -0 is stored, and read back, as 0.
 */
export function encodeValue(key: string, value: unknown): Buffer {
  if (value === undefined) {
    throw new TypeError(`store value for key ${describe(key)} is undefined; use delete() to remove a key`);
  }
  checkValue(key, value, [], new Set());
  let encoded: Uint8Array;
  try {
    encoded = codec.encode(value);
  } catch (error) {
    throw new TypeError(`store value for key ${describe(key)} cannot be encoded: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return Buffer.from(encoded);
}

/**
 * Encodes a value already checked (a held copy, held-values.ts, which its
 * walk validated as checkValue would): commit() encodes each surviving key
 * of a block, and walking it again cost as much as a third of the encoding.
 */
export function encodeChecked(value: unknown): Buffer {
  return Buffer.from(codec.encode(value));
}

export function decodeValue(bytes: Uint8Array): unknown {
  return codec.decode(bytes);
}

const ALLOWED = 'null, booleans, numbers, strings, bigints, Uint8Arrays, arrays and plain objects';

// msgpackr silently encodes many other things lossily (functions as undefined,
// Maps as objects, class instances as plain objects, holes as undefined), and
// nested undefined would make {a: undefined} and {} different states that read
// alike; refusing them keeps get() returning what set() was given.
function checkValue(key: string, value: unknown, path: PathStep[], ancestors: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'bigint':
    case 'boolean':
      return;
    case 'object':
      break;
    default:
      reject(key, path, `a ${typeof value}`);
  }
  if (value === null || value instanceof Uint8Array) return;
  if (ancestors.has(value)) reject(key, path, 'a cyclic reference');
  ancestors.add(value);
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) reject(key, path, 'an array subclass');
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      if (!(i in value)) reject(key, path, 'a hole in a sparse array');
      if (value[i] === undefined) reject(key, path, 'undefined');
      checkValue(key, value[i], path, ancestors);
      path.pop();
    }
  } else {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      reject(key, path, `an instance of ${(value as object).constructor?.name ?? 'a class'}`);
    }
    if (Object.getOwnPropertySymbols(value).length > 0) reject(key, path, 'an object with symbol keys');
    for (const name in value) {
      if (!Object.hasOwn(value, name)) continue;
      const item = (value as Record<string, unknown>)[name];
      path.push(name);
      if (item === undefined) reject(key, path, 'undefined');
      checkValue(key, item, path, ancestors);
      path.pop();
    }
  }
  ancestors.delete(value);
}

// Steps from the value's root: array indexes and property names. Formatted
// only for an error, so a valid value costs no string building.
type PathStep = string | number;

function formatPath(path: readonly PathStep[]): string {
  return path.map((step) => (typeof step === 'number' ? `[${step}]` : /^[A-Za-z_$][\w$]*$/.test(step) ? `.${step}` : `[${JSON.stringify(step)}]`)).join('');
}


function reject(key: string, steps: readonly PathStep[], what: string): never {
  const path = formatPath(steps);
  const where = path === '' ? '' : ` at ${path}`;
  throw new TypeError(`store value for key ${describe(key)}${where} is ${what}; values may contain only ${ALLOWED}`);
}
