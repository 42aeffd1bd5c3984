// Byte-for-byte what @endo/marshal's smallcaps gives for plain data, without
// its per-value cost: inside QuickJS, harden and pass-style checks cost tens
// of microseconds each, and most capdata on the delivery path is scalars or
// small arrays and records of them. Anything else returns undefined and takes
// the full marshal path.
import type { Capdata } from './syscall.js';

const UNDEFINED_BODY = '"#undefined"';

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

/** scalarBody, and undefined's body too: the body of any answer that is not an object, or undefined. */
export function answerBody(value: unknown): string | undefined {
  return value === undefined ? UNDEFINED_BODY : scalarBody(value);
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
  return isPlain(v, 0) ? { value: freezeParsed(v) } : undefined;
}

/**
 * Smallcaps capdata for what most messages carry: a scalar (undefined
 * included) or a genuine array of scalars, byte-for-byte what @endo/marshal
 * gives (test/runtime/smallcaps-fast.test.ts). Anything else, including an
 * array with holes, extra or accessor properties, or a proxy whose traps
 * throw, returns undefined and takes the full path, which gives the same
 * result or the same error as before.
 */
export function encodeFast(value: unknown): Capdata | undefined {
  if (!Array.isArray(value)) {
    const body = answerBody(value);
    return body === undefined ? undefined : { body: `#${body}`, slots: [] };
  }
  try {
    const items = value.length > 64 ? undefined : passableArrayItems(value);
    if (items === undefined) return undefined;
    const parts: string[] = [];
    for (const item of items) {
      const body = answerBody(item);
      if (body === undefined) return undefined;
      parts.push(body);
    }
    return { body: `#[${parts.join(',')}]`, slots: [] };
  } catch {
    return undefined;
  }
}

/**
 * The items of an array marshal's pass-style check accepts (Array.prototype,
 * the length plus one enumerable data property per index, no other
 * property), read without running any getter; undefined for any other
 * array (an extra name would be dropped, a getter run: break-16c #2).
 */
function passableArrayItems(v: unknown[]): unknown[] | undefined {
  if (Object.getPrototypeOf(v) !== Array.prototype || Reflect.ownKeys(v).length !== v.length + 1) return undefined;
  const items = new Array<unknown>(v.length);
  for (let i = 0; i < v.length; i++) {
    const d = Object.getOwnPropertyDescriptor(v, i);
    if (d === undefined || !('value' in d) || !d.enumerable) return undefined;
    items[i] = d.value;
  }
  return items;
}

/** decodePlain, plus the body of undefined (what a method with no return value answers). */
export function decodeFast(data: Capdata): { value: unknown } | undefined {
  if (data.body === `#${UNDEFINED_BODY}` && data.slots.length === 0) return { value: undefined };
  return decodePlain(data);
}

/**
 * harden() for what JSON.parse just made: plain arrays and records whose
 * prototypes lockdown already hardened, so freezing every node gives what
 * harden gives, at a fraction of its cost inside QuickJS (~17 us for an
 * empty array).
 */
function freezeParsed<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const item of Object.values(v)) freezeParsed(item);
    Object.freeze(v);
  }
  return v;
}

const NOT_PLAIN = Symbol('not plain');

/** References met while encoding: slot indices by object, as marshal numbers them (first appearance). */
interface Refs {
  readonly slotOf: (value: object) => string | undefined;
  readonly slots: string[];
  readonly index: Map<object, number>;
}

// A remotable the vat already named (an export, import, virtual or durable
// object: its slot starts with "o"), as smallcaps writes it: "$<index>.<its
// alleged name>" the first time, "$<index>" again.
function referenceOf(v: object, refs: Refs): unknown {
  const seen = refs.index.get(v);
  if (seen !== undefined) return `$${seen}`;
  const slot = refs.slotOf(v);
  const tag = (v as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag];
  if (slot === undefined || slot[0] !== 'o' || typeof tag !== 'string') return NOT_PLAIN;
  const i = refs.slots.length;
  refs.slots.push(slot);
  refs.index.set(v, i);
  return `$${i}.${tag}`;
}

// What encodeToSmallcaps makes of plain data (strings, numbers, bigints,
// booleans, null, undefined, arrays, records with Object.prototype) and,
// given `refs`, of remotables the vat already named; NOT_PLAIN for anything
// else (other references, promises, errors, tagged, symbols, accessors,
// cycles deeper than the limit).
function smallcapsOf(v: unknown, depth: number, refs?: Refs): unknown {
  if (depth > 64) return NOT_PLAIN;
  switch (typeof v) {
    case 'string':
      return startsSpecial(v) ? `!${v}` : v;
    case 'number':
      if (Number.isNaN(v)) return '#NaN';
      if (v === Infinity) return '#Infinity';
      if (v === -Infinity) return '#-Infinity';
      return Object.is(v, -0) ? 0 : v;
    case 'bigint':
      return v < 0n ? String(v) : `+${v}`;
    case 'boolean':
      return v;
    case 'undefined':
      return '#undefined';
    case 'object': {
      if (v === null) return null;
      if (Array.isArray(v)) {
        const items = passableArrayItems(v);
        if (items === undefined) return NOT_PLAIN;
        const out = new Array(items.length);
        for (let i = 0; i < items.length; i++) {
          const x = smallcapsOf(items[i], depth + 1, refs);
          if (x === NOT_PLAIN) return NOT_PLAIN;
          out[i] = x;
        }
        return out;
      }
      if (Object.getPrototypeOf(v) !== Object.prototype) return refs ? referenceOf(v, refs) : NOT_PLAIN;
      const names = Reflect.ownKeys(v);
      const entries: [string, unknown][] = [];
      for (const name of names) {
        if (typeof name !== 'string') return NOT_PLAIN;
        const desc = Object.getOwnPropertyDescriptor(v, name)!;
        if (!('value' in desc) || !desc.enumerable) return NOT_PLAIN;
      }
      for (const name of (names as string[]).sort()) {
        const x = smallcapsOf((v as Record<string, unknown>)[name], depth + 1, refs);
        if (x === NOT_PLAIN) return NOT_PLAIN;
        entries.push([startsSpecial(name) ? `!${name}` : name, x]);
      }
      return Object.fromEntries(entries);
    }
    default:
      return NOT_PLAIN;
  }
}

// A proxy's traps may throw: the full marshal then gives the error it always gave.
function smallcapsOfOrNot(value: unknown, refs?: Refs): unknown {
  try {
    return smallcapsOf(value, 0, refs);
  } catch {
    return NOT_PLAIN;
  }
}

/**
 * Capdata for plain data (no references, promises, errors, tagged or
 * symbols), byte for byte what @endo/marshal's smallcaps gives, without
 * harden or pass-style checks; undefined for anything else. Used for
 * reports the runtime makes itself (pre-flight inspection), where the full
 * marshal costs milliseconds inside QuickJS.
 */
export function encodePlain(value: unknown): Capdata | undefined {
  const encoded = smallcapsOfOrNot(value);
  return encoded === NOT_PLAIN ? undefined : { body: `#${JSON.stringify(encoded)}`, slots: [] };
}

/**
 * Capdata for plain data and remotables `slotOf` already names (no other
 * references, promises, errors, tagged or symbols), byte for byte what
 * @endo/marshal's smallcaps gives when its convertValToSlot answers as
 * `slotOf` does; undefined for anything else. Neither hardens nor checks
 * pass styles: the caller hardens `value` first.
 */
export function encodeWithReferences(value: unknown, slotOf: (value: object) => string | undefined): Capdata | undefined {
  const refs: Refs = { slotOf, slots: [], index: new Map() };
  const encoded = smallcapsOfOrNot(value, refs);
  return encoded === NOT_PLAIN ? undefined : { body: `#${JSON.stringify(encoded)}`, slots: refs.slots };
}

/**
 * Capdata for `value`: encodeFast where it applies, else (given `slotOf`)
 * encodeWithReferences on the hardened value, else `full(value)` (the full
 * marshal, which hardens). An array is frozen before it is read, as harden
 * would, so what is encoded is what its owner is left holding. The guest's
 * liveslots and the host's marshal both encode through this.
 */
export function toCapDataFast(value: unknown, full: (value: unknown) => Capdata, slotOf?: (value: object) => string | undefined): Capdata {
  if (Array.isArray(value)) Object.freeze(value);
  const fast = typeof value === 'object' && value !== null && !Array.isArray(value) ? undefined : encodeFast(value);
  if (fast) return fast;
  if (slotOf && typeof value === 'object' && value !== null) {
    const known = encodeWithReferences(harden(value), slotOf);
    if (known) return known;
  }
  return full(value);
}

const NOT_DECODED = Symbol('not decoded');

// The inverse of smallcapsOf with references: plain JSON plus "$<index>" and
// "$<index>.<iface>" strings; NOT_DECODED for anything else (escaped or
// special strings, special record keys, promises, a slot `slotToVal` does not
// take). Containers are frozen as they are made.
function decodeRefs(v: unknown, depth: number, data: Capdata, slotToVal: (slot: string, iface: string | undefined) => unknown, made: Map<number, unknown>): unknown {
  if (depth > 64) return NOT_DECODED;
  if (typeof v === 'string') {
    if (!startsSpecial(v)) return v;
    const m = v[0] === '$' ? /^\$(0|[1-9][0-9]{0,8})(?:\.([^]*))?$/.exec(v) : null;
    if (!m) return NOT_DECODED;
    const index = Number(m[1]);
    if (made.has(index)) return made.get(index);
    if (index >= data.slots.length) return NOT_DECODED;
    const value = slotToVal(data.slots[index], m[2]);
    if (value === undefined) return NOT_DECODED;
    made.set(index, value);
    return value;
  }
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = decodeRefs(v[i], depth + 1, data, slotToVal, made);
      if (x === NOT_DECODED) return NOT_DECODED;
      v[i] = x;
    }
    return Object.freeze(v);
  }
  for (const k of Object.keys(v)) {
    if (startsSpecial(k)) return NOT_DECODED;
    const x = decodeRefs((v as Record<string, unknown>)[k], depth + 1, data, slotToVal, made);
    if (x === NOT_DECODED) return NOT_DECODED;
    (v as Record<string, unknown>)[k] = x;
  }
  return Object.freeze(v);
}

/**
 * The value of capdata holding plain data and remotables ("$<index>[.<iface>]"),
 * as @endo/marshal's smallcaps decodes it when its convertSlotToVal answers
 * as `slotToVal` does (each slot index decoded once); undefined for anything
 * else, or when `slotToVal` answers undefined.
 */
export function decodeWithReferences(data: Capdata, slotToVal: (slot: string, iface: string | undefined) => unknown): { value: unknown } | undefined {
  if (!data.body.startsWith('#')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.body.slice(1));
  } catch {
    return undefined;
  }
  const value = decodeRefs(parsed, 0, data, slotToVal, new Map());
  return value === NOT_DECODED ? undefined : { value };
}

/**
 * The value of `data`: decodeFast where it applies, else (given
 * `slotToVal`) decodeWithReferences, else `full(data)`.
 */
export function fromCapDataFast(data: Capdata, full: (data: Capdata) => unknown, slotToVal?: (slot: string, iface: string | undefined) => unknown): unknown {
  const fast = decodeFast(data) ?? (slotToVal && data.slots.length > 0 ? decodeWithReferences(data, slotToVal) : undefined);
  return fast === undefined ? full(data) : fast.value;
}
