// What the virtual-object and collection managers share: the vat's store (with
// a write-through cache of hot keys), the identity table of representatives,
// counters, and the rules for turning values into stored text and back
// (durability checks included).
import { passStyleOf } from '@endo/pass-style';
import type { Capdata } from './syscall.js';
import { scalarBody, startsSpecial } from './smallcaps-fast.js';

export interface VatStore {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
  delete(key: string): void;
  getNextKey(priorKey: string): string | undefined;
}

export interface Marshaller {
  serialize(value: unknown): Capdata;
  unserialize(data: Capdata): unknown;
  /** vref of a remotable the vat already knows (export, import, virtual), without allocating. */
  knownSlot(value: unknown): string | undefined;
  /** The value for one slot, as unserialize would give it. */
  slotToVal(vref: string): unknown;
  /**
   * Stored data (durable or virtual) names a promise, import or ordinary
   * export once more (delta 1) or once less (delta -1): while it does, a
   * promise stays readable by its vpid after it settles, an import stays
   * imported and an ordinary export stays exported (slot-refs.ts).
   */
  refSlot(vref: string, delta: 1 | -1, durable: boolean): void;
  /** A weak key naming an import was removed: the next GC point checks whether anything still recognises it. */
  slotReleased(vref: string): void;
  /** The vpid of a promise, made known to the kernel (for watches that outlive the incarnation). */
  exportPromise(p: Promise<unknown>): string;
}

// Built-in kinds. User kinds are numbered from FIRST_USER_KIND.
export const K = {
  durableMap: 1,
  durableSet: 2,
  durableWeakMap: 3,
  kindHandle: 4,
  virtualMap: 5,
  virtualSet: 6,
  virtualWeakMap: 7,
  durableWeakSet: 8,
  virtualWeakSet: 9,
} as const;
export const FIRST_USER_KIND = 10;
/** o+d<kindId>/<n> durable, o+v<kindId>/<n> virtual, ":<i>" suffix for a facet of a multi-facet object. */
export const VREF = /^o\+([dv])(\d+)\/(\d+)(?::(\d+))?$/;

export class DurabilityError extends Error {}

/** A scalar's capdata as the JSON text stored in the vatstore (see smallcaps-fast.ts). */
function fastEncode(value: unknown): string | undefined {
  const body = scalarBody(value);
  return body === undefined ? undefined : `{"body":${JSON.stringify(`#${body}`)},"slots":[]}`;
}

/**
 * A write-through cache for the few small keys every operation touches (kind
 * records, counters, collection sizes): each syscall costs tens of
 * microseconds, and only this incarnation's vat-data writes these keys, so
 * the heap copy cannot go stale (an aborted crank discards heap and vatstore
 * changes together).
 */
function cacheHotKeys(store: VatStore, hot: (key: string) => boolean): VatStore & { knownAbsent(key: string): void } {
  const cache = new Map<string, string | undefined>();
  return {
    /** `key` cannot be in the vatstore (it names an object made just now): a later get needs no syscall. */
    knownAbsent(key) {
      if (hot(key)) cache.set(key, undefined);
    },
    get(key) {
      if (!hot(key)) return store.get(key);
      if (cache.has(key)) return cache.get(key);
      const value = store.get(key);
      cache.set(key, value);
      return value;
    },
    set(key, value) {
      if (hot(key)) cache.set(key, value);
      store.set(key, value);
    },
    delete(key) {
      if (hot(key)) cache.set(key, undefined);
      store.delete(key);
    },
    getNextKey: (priorKey) => store.getNextKey(priorKey),
  };
}

export const isDurableVref = (vref: string) => vref.startsWith('o+d') || vref.startsWith('o-');

export function makeVatDataContext(rawStore: VatStore, marshal: Marshaller, incarnation: number) {
  const vprefix = `v${incarnation}.`;
  const hotPrefixes = ['d.meta.', 'd.kind.', 'd.cm.', 'd.rc.', 'd.ex.', `${vprefix}kind.`, `${vprefix}cm.`, `${vprefix}rc.`, `${vprefix}ex.`];
  const store = cacheHotKeys(rawStore, (key) => hotPrefixes.some((p) => key.startsWith(p)));
  const prefixOf = (durable: boolean) => (durable ? 'd.' : vprefix);

  // ------------------------------------------------------------ identity
  // A representative stays === for as long as the program can hold it: we
  // keep only weak references, so unreferenced ones cost no heap.
  const live = new Map<string, WeakRef<object>>();
  const holders = new Map<string, WeakRef<{ state: object }>>();
  const vrefOf = new WeakMap<object, string>();
  let insertions = 0;
  // vrefs whose representative died: the GC point looks at them.
  const died = new Set<string>();
  const sweepLive = () => {
    for (const [k, ref] of live) {
      if (ref.deref() !== undefined) continue;
      live.delete(k);
      died.add(k);
    }
    for (const [k, ref] of holders) if (ref.deref() === undefined) holders.delete(k);
  };
  const remember = (vref: string, value: object) => {
    live.set(vref, new WeakRef(value));
    vrefOf.set(value, vref);
    if (++insertions % 1024 === 0) sweepLive();
  };
  const recall = (vref: string): object | undefined => live.get(vref)?.deref();

  const counter = (name: string, start: number) => {
    const key = `d.meta.${name}`;
    const n = Number(store.get(key) ?? String(start));
    store.set(key, String(n + 1));
    return n;
  };

  // ------------------------------------------------------------ durability
  const slotOf = (value: object) => vrefOf.get(value) ?? marshal.knownSlot(value);

  /** Where in a value that cannot be passed at all the culprit sits (a Map, a function, a class instance). */
  const findUnpassable = (value: unknown, path: string): string => {
    if (typeof value === 'function') return `${path} is a function`;
    if (typeof value !== 'object' || value === null) return `${path} is a ${typeof value} that cannot be stored`;
    const proto = Object.getPrototypeOf(value);
    if (Array.isArray(value) || proto === Object.prototype || proto === null) {
      for (const [k, v] of Object.entries(value)) {
        const at = Array.isArray(value) ? `${path}[${k}]` : `${path}.${k}`;
        try {
          passStyleOf(v as any);
        } catch {
          return findUnpassable(v, at);
        }
      }
      return `${path} is not hardened plain data`;
    }
    const name = (proto?.constructor as { name?: unknown } | undefined)?.name;
    return `${path} is ${typeof name === 'string' && name ? `a ${name}` : 'an object with a custom prototype'}`;
  };

  /** Where in value something non-durable sits, or undefined. */
  const findNonDurable = (value: unknown, path: string): string | undefined => {
    let style;
    try {
      style = passStyleOf(value as any);
    } catch {
      // Not passable at all (a Map, a function, a class instance), here or
      // deeper: walk plain containers ourselves so the message names where.
      return findUnpassable(value, path);
    }
    switch (style) {
      case 'copyArray':
        for (const [i, v] of (value as unknown[]).entries()) {
          const bad = findNonDurable(v, `${path}[${i}]`);
          if (bad) return bad;
        }
        return undefined;
      case 'copyRecord':
        for (const [k, v] of Object.entries(value as object)) {
          const bad = findNonDurable(v, `${path}.${k}`);
          if (bad) return bad;
        }
        return undefined;
      case 'tagged':
        return findNonDurable((value as any).payload, `${path}.payload`);
      case 'promise':
        return `${path} is a promise`;
      case 'remotable': {
        const vref = slotOf(value as object);
        if (vref !== undefined && isDurableVref(vref)) return undefined;
        return `${path} is a non-durable object (${vref?.startsWith('o+v') ? 'of a virtual kind' : 'an ordinary Far object'})`;
      }
      default:
        return undefined;
    }
  };

  const encodeValue = (value: unknown, durable: boolean, path: string): string => {
    const fast = fastEncode(value) ?? fastEncodeReference(value, durable);
    if (fast !== undefined) return fast;
    harden(value);
    if (durable) {
      const bad = findNonDurable(value, path);
      if (bad) {
        throw new DurabilityError(`cannot store a non-durable value in durable state: ${bad}; durable state can hold only data, durable objects and presences`);
      }
    }
    const data = marshal.serialize(value);
    return JSON.stringify(data);
  };
  const decodeValue = (text: string): unknown => {
    const data = JSON.parse(text) as Capdata;
    if (data.slots.length === 0) {
      const v = JSON.parse(data.body.slice(1));
      if (typeof v !== 'object' && !(typeof v === 'string' && startsSpecial(v))) return v;
    } else if (data.slots.length === 1 && data.body.startsWith('#"$0.') && data.slots[0][0] === 'o') {
      return marshal.slotToVal(data.slots[0]);
    }
    return marshal.unserialize(data);
  };

  // A lone object reference the vat already knows, as smallcaps writes it.
  const fastEncodeReference = (value: unknown, durable: boolean): string | undefined => {
    if (typeof value !== 'object' || value === null) return undefined;
    const vref = slotOf(value);
    if (vref === undefined || vref[0] !== 'o' || (durable && !isDurableVref(vref))) return undefined;
    const tag = (value as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag];
    if (typeof tag !== 'string') return undefined;
    return `{"body":${JSON.stringify(`#${JSON.stringify(`$0.${tag}`)}`)},"slots":[${JSON.stringify(vref)}]}`;
  };

  /** The value for a vref, through the marshaller (imports, exports, virtual objects alike). */
  const reanimateOrImport = (vref: string): unknown => marshal.unserialize({ body: '#"$0"', slots: [vref] });

  return {
    incarnation,
    store,
    prefixOf,
    vrefOf,
    slotOf,
    holders,
    remember,
    recall,
    /** vrefs whose representatives died since the last call (a GC point). */
    takeDied: () => {
      sweepLive();
      const out = [...died];
      died.clear();
      return out;
    },
    counter,
    findNonDurable,
    encodeValue,
    decodeValue,
    reanimateOrImport,
    serialize: (value: unknown) => marshal.serialize(harden(value)),
  };
}

export type VatDataContext = ReturnType<typeof makeVatDataContext>;
