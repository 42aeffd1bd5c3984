// Virtual and durable collections (map, set, weak map stores): entries live in
// the vatstore under order-preserving keys, so iteration and range queries
// read straight off the store.
//
// vatstore layout: <p>c.<kindId>/<n>.<encoded key> entry, <p>cm.<kindId>/<n>
// metadata (label, size), <p> as for virtual objects.
import { makePassableKit } from '@endo/marshal';
import { Far, passStyleOf } from '@endo/pass-style';
import { DurabilityError, K, VREF, type VatDataContext } from './vat-data-context.js';
import type { Refcounts } from './virtual-refcounts.js';

export function makeCollections(ctx: VatDataContext, refs: Refcounts) {
  const { store, prefixOf, slotOf, serialize, remember, recall, counter, findNonDurable, encodeValue, decodeValue, reanimateOrImport } = ctx;

  // ------------------------------------------------------------ collections
  const { encodePassable, decodePassable } = makePassableKit({
    encodeRemotable: (r: unknown) => {
      // An ordinary Far object gets a vref (as if exported), as in Agoric:
      // the vat keeps it while the key names it.
      const vref = slotOf(r as object) ?? serialize(r).slots[0];
      return `r${vref}`;
    },
    decodeRemotable: ((encoded: string) => reanimateOrImport(encoded.slice(1))) as any,
  });

  type CollectionKind = 'map' | 'set' | 'weakMap' | 'weakSet';
  const collectionKinds: Record<number, [CollectionKind, boolean]> = {
    [K.durableMap]: ['map', true],
    [K.durableSet]: ['set', true],
    [K.durableWeakMap]: ['weakMap', true],
    [K.durableWeakSet]: ['weakSet', true],
    [K.virtualWeakSet]: ['weakSet', false],
    [K.virtualMap]: ['map', false],
    [K.virtualSet]: ['set', false],
    [K.virtualWeakMap]: ['weakMap', false],
  };

  interface Range {
    start?: unknown;
    end?: unknown;
  }

  // A strong collection's remotable key is a reference to its object.
  const keyReference = (entryPrefix: string, weak: boolean, k: string, delta: 1 | -1) => {
    if (weak || k[entryPrefix.length] !== 'r') return;
    const ref = k.slice(entryPrefix.length + 1);
    if (refs.isVirtual(ref)) {
      if (delta > 0) refs.addRef(ref);
      else refs.dropRef(ref);
    } else if (delta > 0) refs.adjust(undefined, `{"slots":[${JSON.stringify(ref)}]}`);
  };
  const removeStoredEntry = (entryPrefix: string, weak: boolean, k: string, raw: string) => {
    store.delete(k);
    if (raw !== '1') refs.adjust(raw, undefined);
    keyReference(entryPrefix, weak, k, -1);
  };

  /** Deletes collection `vref` with its entries if nothing holds it. True when deleted. */
  const deleteIfUnreachable = (vref: string): boolean => {
    const m = VREF.exec(vref);
    const kind = m && collectionKinds[Number(m[2])];
    if (!kind || refs.count(vref) > 0 || recall(vref)) return false;
    const p = prefixOf(m[1] === 'd');
    const metaKey = `${p}cm.${m[2]}/${m[3]}`;
    if (store.get(metaKey) === undefined) return false;
    const entryPrefix = `${p}c.${m[2]}/${m[3]}.`;
    const weak = kind[0] === 'weakMap' || kind[0] === 'weakSet';
    let k = store.getNextKey(entryPrefix);
    while (k !== undefined && k.startsWith(entryPrefix)) {
      const next = store.getNextKey(k);
      removeStoredEntry(entryPrefix, weak, k, store.get(k)!);
      k = next;
    }
    store.delete(metaKey);
    return true;
  };

  const makeCollection = (kindId: number, n: number): object => {
    const [type, durable] = collectionKinds[kindId];
    const vref = `o+${durable ? 'd' : 'v'}${kindId}/${n}`;
    const existing = recall(vref);
    if (existing) return existing;
    const p = prefixOf(durable);
    const entryPrefix = `${p}c.${kindId}/${n}.`;
    const metaKey = `${p}cm.${kindId}/${n}`;
    const meta = () => {
      const raw = store.get(metaKey);
      if (raw === undefined) throw Error(`collection ${vref} no longer exists (deleted by an upgrade?)`);
      return JSON.parse(raw) as { label: string; size: number };
    };
    const label = meta().label;
    const bump = (delta: number) => {
      const m = meta();
      store.set(metaKey, JSON.stringify({ ...m, size: m.size + delta }));
    };
    const weak = type === 'weakMap' || type === 'weakSet';
    const refKey = (k: string, delta: 1 | -1) => keyReference(entryPrefix, weak, k, delta);
    const keyOf = (key: unknown) => {
      const t = typeof key;
      if (!weak && (t === 'string' || t === 'bigint' || t === 'boolean' || (t === 'number' && !Number.isNaN(key)))) {
        return entryPrefix + encodePassable(key as any);
      }
      harden(key);
      const style = passStyleOf(key as any);
      const got = `got ${/^[aeiou]/.test(style) ? 'an' : 'a'} ${style}`;
      if (weak && style !== 'remotable') throw Error(`weak collection "${label}" keys must be remotables, ${got}`);
      if (!['string', 'number', 'bigint', 'boolean', 'symbol', 'undefined', 'null', 'remotable'].includes(style)) {
        throw Error(`collection "${label}" keys must be scalars or remotables, ${got}`);
      }
      if (durable && style === 'remotable') {
        const bad = findNonDurable(key, 'key');
        if (bad) throw new DurabilityError(`durable collection "${label}": ${bad}`);
      }
      return entryPrefix + encodePassable(key as any);
    };
    const describeKey = (key: unknown) => (typeof key === 'string' ? JSON.stringify(key) : String(key));
    const has = (key: unknown) => store.get(keyOf(key)) !== undefined;
    const get = (key: unknown) => {
      const raw = store.get(keyOf(key));
      if (raw === undefined) throw Error(`key ${describeKey(key)} not found in collection "${label}"`);
      return type === 'set' || type === 'weakSet' ? key : decodeValue(raw);
    };
    const init = (key: unknown, value: unknown) => {
      const k = keyOf(key);
      if (store.get(k) !== undefined) throw Error(`key ${describeKey(key)} already registered in collection "${label}"`);
      const text = type === 'set' || type === 'weakSet' ? '1' : encodeValue(value, durable, `collection "${label}" value for ${describeKey(key)}`);
      refs.adjust(undefined, text === '1' ? undefined : text);
      refKey(k, 1);
      store.set(k, text);
      bump(1);
    };
    const set = (key: unknown, value: unknown) => {
      const k = keyOf(key);
      const before = store.get(k);
      if (before === undefined) throw Error(`key ${describeKey(key)} not found in collection "${label}"`);
      const text = encodeValue(value, durable, `collection "${label}" value for ${describeKey(key)}`);
      refs.adjust(before, text);
      store.set(k, text);
    };
    const del = (key: unknown) => {
      const k = keyOf(key);
      const before = store.get(k);
      if (before === undefined) throw Error(`key ${describeKey(key)} not found in collection "${label}"`);
      removeEntry(k, before);
      bump(-1);
    };
    // Ordered iteration straight off the vatstore: nothing is loaded up front.
    function* iterate(range: Range = {}): Generator<[string, string]> {
      const lo = range.start === undefined ? undefined : keyOf(range.start);
      const hi = range.end === undefined ? undefined : keyOf(range.end);
      let k = lo !== undefined && store.get(lo) !== undefined ? lo : store.getNextKey(lo ?? entryPrefix);
      while (k !== undefined && k.startsWith(entryPrefix) && (hi === undefined || k < hi)) {
        const raw = store.get(k);
        if (raw !== undefined) yield [k, raw];
        k = store.getNextKey(k);
      }
    }
    const keys = function* (range?: Range) {
      for (const [k] of iterate(range)) yield decodePassable(k.slice(entryPrefix.length)) as unknown;
    };
    const values = function* (range?: Range) {
      for (const [, raw] of iterate(range)) yield decodeValue(raw);
    };
    const entries = function* (range?: Range) {
      for (const [k, raw] of iterate(range)) yield [decodePassable(k.slice(entryPrefix.length)), decodeValue(raw)];
    };
    const removeEntry = (k: string, raw: string) => removeStoredEntry(entryPrefix, weak, k, raw);
    // As in Agoric, adding a member already present is not an error.
    const add = (key: unknown) => {
      if (!has(key)) init(key, undefined);
    };
    const clear = () => {
      for (const [k, raw] of [...iterate()]) removeEntry(k, raw);
      store.set(metaKey, JSON.stringify({ ...meta(), size: 0 }));
    };
    let methods: Record<string, unknown>;
    if (type === 'map') {
      methods = {
        has, get, init, set, delete: del, keys, values, entries, clear,
        getSize: () => meta().size,
        addAll: (pairs: Iterable<[unknown, unknown]>) => { for (const [k, v] of pairs) init(k, v); },
        getLabel: () => label,
      };
    } else if (type === 'set') {
      methods = {
        has, add, delete: del, keys, values: keys, clear,
        getSize: () => meta().size,
        addAll: (items: Iterable<unknown>) => { for (const k of items) add(k); },
        getLabel: () => label,
      };
    } else if (type === 'weakSet') {
      methods = { has, add, delete: del, addAll: (items: Iterable<unknown>) => { for (const k of items) add(k); }, getLabel: () => label };
    } else {
      methods = { has, get, init, set, delete: del, getLabel: () => label };
    }
    const collection = Far(`${durable ? 'Durable' : 'Virtual'} ${type} store "${label}"`, methods as any);
    remember(vref, collection);
    return collection;
  };

  const createCollection = (type: CollectionKind, label: string, durable: boolean) => {
    if (typeof label !== 'string') throw Error('a collection needs a string label');
    const kindId = durable
      ? ({ map: K.durableMap, set: K.durableSet, weakMap: K.durableWeakMap, weakSet: K.durableWeakSet } as const)[type]
      : ({ map: K.virtualMap, set: K.virtualSet, weakMap: K.virtualWeakMap, weakSet: K.virtualWeakSet } as const)[type];
    const n = counter(`nextCollection.${kindId}`, 1);
    store.set(`${prefixOf(durable)}cm.${kindId}/${n}`, JSON.stringify({ label, size: 0 }));
    return makeCollection(kindId, n);
  };

  return { createCollection, makeCollection, collectionKinds, deleteIfUnreachable };
}
