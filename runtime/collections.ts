// Virtual and durable collections (map, set, weak map stores): entries live in
// the vatstore under order-preserving keys, so iteration and range queries
// read straight off the store.
//
// vatstore layout: <p>c.<kindId>/<n>.<encoded key> entry, <p>cm.<kindId>/<n>
// metadata (label, size), <p> as for virtual objects.
import { makePassableKit } from '@endo/marshal';
import { Far, passStyleOf } from '@endo/pass-style';
import { storePatterns } from './exo.js';
import { DurabilityError, K, VREF, type VatDataContext } from './vat-data-context.js';
import type { Refcounts } from './virtual-refcounts.js';

/** Agoric's store options that constrain entries (checked with mustMatch on init/set). */
export interface StoreShapes {
  readonly keyShape?: unknown;
  readonly valueShape?: unknown;
}

export function makeCollections(ctx: VatDataContext, refs: Refcounts) {
  const { M, makeCopyMap, makeCopySet, matches } = storePatterns;
  const mustMatch: (specimen: any, patt: any, label?: string) => void = storePatterns.mustMatch;
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

  /** Metadata stored per collection; `schema` is the encoded { keyShape?, valueShape? }. */
  interface CollectionMeta {
    label: string;
    size: number;
    schema?: string;
  }
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
  // quickvat's range record { start?, end? }: a record pattern could never
  // match a (scalar) key, so the two readings cannot be confused.
  const isRange = (x: unknown): boolean =>
    typeof x === 'object' && x !== null && Object.getPrototypeOf(x) === Object.prototype &&
    Object.keys(x).length > 0 && Object.keys(x).every((k) => k === 'start' || k === 'end');

  /** Where a collection's data lives, from its vref. */
  interface Place {
    readonly vref: string;
    readonly durable: boolean;
    readonly weak: boolean;
    readonly entryPrefix: string;
    readonly metaKey: string;
  }
  const placeOf = (vref: string): Place | undefined => {
    const m = VREF.exec(vref);
    const kind = m && collectionKinds[Number(m[2])];
    if (!kind) return undefined;
    const p = prefixOf(m[1] === 'd');
    return { vref, durable: m[1] === 'd', weak: kind[0] === 'weakMap' || kind[0] === 'weakSet', entryPrefix: `${p}c.${m[2]}/${m[3]}.`, metaKey: `${p}cm.${m[2]}/${m[3]}` };
  };

  // A strong collection's remotable key is a reference to its object; a weak
  // one's only recognises it (virtual-refcounts.ts). An ordinary heap object
  // as a weak key keeps its vref while the program holds the object
  // (liveslots holds it weakly), and its entries go once it is gone.
  const keyReference = (place: Place, k: string, delta: 1 | -1) => {
    if (k[place.entryPrefix.length] !== 'r') return;
    const ref = k.slice(place.entryPrefix.length + 1);
    if (!place.weak) refs.ref(ref, delta, place.durable);
    if (!place.weak) return;
    if (delta > 0) refs.weakKeyAdded(place.durable, ref, place.vref);
    else refs.weakKeyRemoved(place.durable, ref, place.vref);
  };
  const removeStoredEntry = (place: Place, k: string, raw: string) => {
    store.delete(k);
    if (raw !== '1') refs.adjust(raw, undefined, place.durable);
    keyReference(place, k, -1);
  };

  /**
   * Removes the entry weak collection `collection` has for `keyVref` (an
   * object that was deleted), if any.
   */
  const dropWeakKey = (collection: string, keyVref: string) => {
    const place = placeOf(collection);
    const raw = place && store.get(place.metaKey);
    if (!place || raw === undefined) return;
    const k = `${place.entryPrefix}r${keyVref}`;
    const entry = store.get(k);
    if (entry === undefined) return;
    removeStoredEntry(place, k, entry);
    const meta = JSON.parse(raw) as CollectionMeta;
    store.set(place.metaKey, JSON.stringify({ ...meta, size: meta.size - 1 }));
  };

  // A deleted collection's entries go a bounded number per GC point (Agoric
  // deletes them incrementally too): the collection itself is gone at once
  // (its metadata deleted), and a marker <p>cx.<kind>/<n> says entries may
  // remain. Markers live in the vatstore, so the work survives an upgrade.
  const pendingKey = (place: Place) => place.metaKey.replace(/cm\.([^.]*)$/, 'cx.$1');

  /** Deletes collection `vref` if nothing holds it; its entries go later (`deleteEntries`). True when deleted. */
  const deleteIfUnreachable = (vref: string): boolean => {
    const place = placeOf(vref);
    if (!place || refs.count(vref) > 0 || recall(vref)) return false;
    const { metaKey } = place;
    const raw = store.get(metaKey);
    if (raw === undefined) return false;
    const { schema } = JSON.parse(raw) as CollectionMeta;
    if (schema !== undefined) refs.adjust(schema, undefined, place.durable);
    store.delete(metaKey);
    store.set(pendingKey(place), '1');
    return true;
  };

  /**
   * Deletes up to `budget` entries of deleted collections (releasing what
   * they referenced). Returns how many entries it deleted; less than
   * `budget` means none are left.
   */
  const deleteEntries = (budget: number): number => {
    let done = 0;
    for (const durable of [true, false]) {
      const prefix = `${prefixOf(durable)}cx.`;
      for (let marker = store.getNextKey(prefix); marker !== undefined && marker.startsWith(prefix) && done < budget; marker = store.getNextKey(prefix)) {
        const vref = `o+${durable ? 'd' : 'v'}${marker.slice(prefix.length)}`;
        const place = placeOf(vref);
        let k = place && store.getNextKey(place.entryPrefix);
        while (place && k !== undefined && k.startsWith(place.entryPrefix) && done < budget) {
          const next = store.getNextKey(k);
          removeStoredEntry(place, k, store.get(k)!);
          done++;
          k = next;
        }
        if (done >= budget && place && k !== undefined && k.startsWith(place.entryPrefix)) break;
        store.delete(marker);
      }
    }
    return done;
  };

  const makeCollection = (kindId: number, n: number): object => {
    const [type, durable] = collectionKinds[kindId];
    const vref = `o+${durable ? 'd' : 'v'}${kindId}/${n}`;
    const existing = recall(vref);
    if (existing) return existing;
    const p = prefixOf(durable);
    const entryPrefix = `${p}c.${kindId}/${n}.`;
    const metaKey = `${p}cm.${kindId}/${n}`;
    // Every method and iterator keeps the store object alive (break-11b #8):
    // a program that holds only `get` or an iterator still uses the store,
    // and GC must not delete it. They all reach the data through meta,
    // keyOf or iterate, which name `self` through keepAlive.
    let self: object | undefined;
    const keepAlive = () => self;
    const meta = () => {
      keepAlive();
      const raw = store.get(metaKey);
      if (raw === undefined) throw Error(`collection ${vref} no longer exists (deleted by an upgrade?)`);
      return JSON.parse(raw) as CollectionMeta;
    };
    const { label, schema } = meta();
    // keyShape/valueShape, checked on every write (Agoric keeps them as the
    // collection's schemata); stored with the metadata, so durable ones hold
    // across upgrades.
    const shapes = schema === undefined ? {} : (decodeValue(schema) as StoreShapes);
    const bump = (delta: number) => {
      const m = meta();
      store.set(metaKey, JSON.stringify({ ...m, size: m.size + delta }));
    };
    const place = placeOf(vref)!;
    const weak = place.weak;
    const isSet = type === 'set' || type === 'weakSet';
    const refKey = (k: string, delta: 1 | -1) => keyReference(place, k, delta);
    function keyOf(key: unknown): string;
    function keyOf(key: unknown, lookup: true): string | undefined;
    /**
     * The entry key for `key`. For a lookup (`lookup`), an ordinary object
     * that has no vref yet cannot be a key of any store: undefined, and no
     * vref is allocated for it (allocating one registered the object for
     * ever: break-11b #10).
     */
    function keyOf(key: unknown, lookup = false): string | undefined {
      keepAlive();
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
      if (lookup && style === 'remotable' && slotOf(key as object) === undefined) return undefined;
      return entryPrefix + encodePassable(key as any);
    }
    const rawAt = (k: string | undefined) => (k === undefined ? undefined : store.get(k));
    const describeKey = (key: unknown) => (typeof key === 'string' ? JSON.stringify(key) : String(key));
    const has = (key: unknown) => rawAt(keyOf(key, true)) !== undefined;
    const get = (key: unknown) => {
      const raw = rawAt(keyOf(key, true));
      if (raw === undefined) throw Error(`key ${describeKey(key)} not found in collection "${label}"`);
      return type === 'set' || type === 'weakSet' ? key : decodeValue(raw);
    };
    const checkValue = (value: unknown) => {
      if (shapes.valueShape !== undefined) mustMatch(harden(value) as any, shapes.valueShape as any, `${label} value`);
    };
    const init = (key: unknown, value: unknown) => {
      const k = keyOf(key);
      if (shapes.keyShape !== undefined) mustMatch(key as any, shapes.keyShape as any, `${label} key`);
      if (!isSet) checkValue(value);
      if (store.get(k) !== undefined) throw Error(`key ${describeKey(key)} already registered in collection "${label}"`);
      const text = type === 'set' || type === 'weakSet' ? '1' : encodeValue(value, durable, `collection "${label}" value for ${describeKey(key)}`);
      refs.adjust(undefined, text === '1' ? undefined : text, durable);
      refKey(k, 1);
      store.set(k, text);
      bump(1);
    };
    const set = (key: unknown, value: unknown) => {
      const k = keyOf(key, true);
      const before = rawAt(k);
      if (k === undefined || before === undefined) throw Error(`key ${describeKey(key)} not found in collection "${label}"`);
      checkValue(value);
      const text = encodeValue(value, durable, `collection "${label}" value for ${describeKey(key)}`);
      refs.adjust(before, text, durable);
      store.set(k, text);
    };
    const del = (key: unknown) => {
      const k = keyOf(key, true);
      const before = rawAt(k);
      if (k === undefined || before === undefined) throw Error(`key ${describeKey(key)} not found in collection "${label}"`);
      removeEntry(k, before);
      bump(-1);
    };
    // Ordered iteration straight off the vatstore: nothing is loaded up front.
    function* iterate(range: Range = {}): Generator<[string, string]> {
      keepAlive();
      const lo = range.start === undefined ? undefined : keyOf(range.start);
      const hi = range.end === undefined ? undefined : keyOf(range.end);
      let k = lo !== undefined && store.get(lo) !== undefined ? lo : store.getNextKey(lo ?? entryPrefix);
      while (k !== undefined && k.startsWith(entryPrefix) && (hi === undefined || k < hi)) {
        const raw = store.get(k);
        if (raw !== undefined) yield [k, raw];
        k = store.getNextKey(k);
      }
    }
    const decodeKey = (k: string) => decodePassable(k.slice(entryPrefix.length)) as unknown;
    // Agoric's stores take (keyPatt, valuePatt) patterns that narrow every
    // query (packages/swingset-liveslots/src/collectionManager.js); quickvat's
    // own `{ start, end }` range record is kept. Entries come in key rank
    // order, which is the vatstore order of the encoded keys.
    function* select(keyPatt?: unknown, valuePatt?: unknown): Generator<[string, string, unknown]> {
      let range: Range = {};
      if (isRange(keyPatt)) {
        range = keyPatt as Range;
        keyPatt = undefined;
      }
      if (keyPatt !== undefined) mustMatch(harden(keyPatt) as any, M.pattern(), 'key pattern');
      if (valuePatt !== undefined) mustMatch(harden(valuePatt) as any, M.pattern(), 'value pattern');
      for (const [k, raw] of iterate(range)) {
        if (keyPatt === undefined && valuePatt === undefined) {
          yield [k, raw, undefined];
          continue;
        }
        const key = decodeKey(k);
        if (keyPatt !== undefined && !matches(key as any, keyPatt as any)) continue;
        if (valuePatt !== undefined && !matches((isSet ? key : decodeValue(raw)) as any, valuePatt as any)) continue;
        yield [k, raw, key];
      }
    }
    const keys = function* (keyPatt?: unknown, valuePatt?: unknown) {
      for (const [k, , key] of select(keyPatt, valuePatt)) yield key === undefined ? decodeKey(k) : key;
    };
    const values = function* (keyPatt?: unknown, valuePatt?: unknown) {
      for (const [k, raw] of select(keyPatt, valuePatt)) yield isSet ? decodeKey(k) : decodeValue(raw);
    };
    const entries = function* (keyPatt?: unknown, valuePatt?: unknown) {
      for (const [k, raw, key] of select(keyPatt, valuePatt)) yield harden([key === undefined ? decodeKey(k) : key, decodeValue(raw)]);
    };
    const getSize = (keyPatt?: unknown, valuePatt?: unknown) => {
      if (keyPatt === undefined && valuePatt === undefined) return meta().size;
      let n = 0;
      for (const _ of select(keyPatt, valuePatt)) n += 1;
      return n;
    };
    const removeEntry = (k: string, raw: string) => removeStoredEntry(place, k, raw);
    // As in Agoric, adding a member already present is not an error.
    const add = (key: unknown) => {
      if (!has(key)) init(key, undefined);
    };
    // Only the entries the patterns select (Agoric: clear(keyPatt, valuePatt)).
    const clear = (keyPatt?: unknown, valuePatt?: unknown) => {
      const doomed = [...select(keyPatt, valuePatt)];
      for (const [k, raw] of doomed) removeEntry(k, raw);
      if (doomed.length > 0) bump(-doomed.length);
    };
    let methods: Record<string, unknown>;
    if (type === 'map') {
      methods = {
        has, get, init, set, delete: del, keys, values, entries, clear, getSize,
        snapshot: (keyPatt?: unknown, valuePatt?: unknown) => makeCopyMap([...entries(keyPatt, valuePatt)] as any),
        addAll: (pairs: Iterable<[unknown, unknown]>) => { for (const [k, v] of pairs) init(k, v); },
        getLabel: () => label,
      };
    } else if (type === 'set') {
      methods = {
        has, add, delete: del, keys: (keyPatt?: unknown) => keys(keyPatt), values: (keyPatt?: unknown) => keys(keyPatt),
        clear: (keyPatt?: unknown) => clear(keyPatt),
        getSize: (keyPatt?: unknown) => getSize(keyPatt),
        snapshot: (keyPatt?: unknown) => makeCopySet([...keys(keyPatt)] as any),
        addAll: (items: Iterable<unknown>) => { for (const k of items) add(k); },
        getLabel: () => label,
      };
    } else if (type === 'weakSet') {
      methods = { has, add, delete: del, addAll: (items: Iterable<unknown>) => { for (const k of items) add(k); }, getLabel: () => label };
    } else {
      methods = { has, get, init, set, delete: del, getLabel: () => label };
    }
    const collection = Far(`${durable ? 'Durable' : 'Virtual'} ${type} store "${label}"`, methods as any);
    self = collection;
    remember(vref, collection);
    return collection;
  };

  const createCollection = (type: CollectionKind, label: string, durable: boolean, options: StoreShapes = {}) => {
    if (typeof label !== 'string') throw Error('a collection needs a string label');
    const { keyShape, valueShape } = options ?? {};
    const given: StoreShapes = {};
    for (const [name, shape] of [['keyShape', keyShape], ['valueShape', valueShape]] as const) {
      if (shape === undefined) continue;
      mustMatch(harden(shape) as any, M.pattern(), `collection "${label}" ${name}`);
      (given as any)[name] = shape;
    }
    if (valueShape !== undefined && (type === 'set' || type === 'weakSet')) throw Error(`collection "${label}": a set store takes no valueShape`);
    let schema: string | undefined;
    if (keyShape !== undefined || valueShape !== undefined) {
      schema = encodeValue(harden(given), durable, `collection "${label}" shapes`);
      refs.adjust(undefined, schema, durable);
    }
    const kindId = durable
      ? ({ map: K.durableMap, set: K.durableSet, weakMap: K.durableWeakMap, weakSet: K.durableWeakSet } as const)[type]
      : ({ map: K.virtualMap, set: K.virtualSet, weakMap: K.virtualWeakMap, weakSet: K.virtualWeakSet } as const)[type];
    const n = counter(`nextCollection.${kindId}`, 1);
    refs.born([`o+${durable ? 'd' : 'v'}${kindId}/${n}`]);
    store.set(`${prefixOf(durable)}cm.${kindId}/${n}`, JSON.stringify(schema === undefined ? { label, size: 0 } : { label, size: 0, schema }));
    return makeCollection(kindId, n);
  };

  return { createCollection, makeCollection, collectionKinds, deleteIfUnreachable, deleteEntries, dropWeakKey };
}
