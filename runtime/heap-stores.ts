// `@agoric/store`'s heap stores: Map/Set-like collections that live in one
// incarnation's heap (nothing is written to the vatstore). Keys are scalars
// (primitives or remotables), values passable; iteration is in key rank
// order, as Agoric's heap stores iterate. `keyShape`/`valueShape` options are
// checked on every write. Names and messages follow Agoric's
// packages/store/src/stores/scalarMapStore.js and friends.
import { Fail, q } from '@endo/errors';
import { compareRank } from '@endo/marshal';
import { Far, passStyleOf } from '@endo/pass-style';
import { assertScalarKey, makeCopyMap, makeCopySet, matches, mustMatch } from '@endo/patterns';

export interface StoreOptions {
  readonly keyShape?: unknown;
  readonly valueShape?: unknown;
}

const pattern = (p: unknown) => p as any;

// The WeakMap weak stores are built on. A vat's contract code gets a WeakMap
// that knows virtual and durable objects by vref (vref-weak-collections.ts);
// the weak stores must use the same one, or an entry keyed by such an object
// is lost when its representative is dropped and re-made (break-12 t05b).
// Set by the runtime at each incarnation's start, before contract code runs.
let WeakMapForStores: WeakMapConstructor = WeakMap;

/** Makes the heap weak stores key virtual and durable objects by vref. */
export function useWeakMapForStores(ctor: WeakMapConstructor): void {
  WeakMapForStores = ctor;
}

function makeChecks(label: string, options: StoreOptions, weak: boolean) {
  const { keyShape, valueShape } = options;
  const checkKey = (key: unknown) => {
    harden(key);
    if (weak) passStyleOf(key as any) === 'remotable' || Fail`Only remotables can be keys of weak stores: ${key}`;
    else assertScalarKey(key as any);
    if (keyShape !== undefined) mustMatch(key as any, pattern(keyShape), `${label} key`);
  };
  const checkValue = (value: unknown) => {
    harden(value);
    passStyleOf(value as any);
    if (valueShape !== undefined) mustMatch(value as any, pattern(valueShape), `${label} value`);
  };
  return { checkKey, checkValue };
}

const notFound = (key: unknown, label: string) => Fail`key ${q(key)} not found in collection ${q(label)}`;

function makeMapCore(label: string, options: StoreOptions, weak: boolean) {
  const { checkKey, checkValue } = makeChecks(label, options, weak);
  const map: Map<unknown, unknown> | WeakMap<object, unknown> = weak ? new WeakMapForStores() : new Map();
  const m = map as Map<unknown, unknown>;
  // Keys in rank order, kept until a key is added or removed (sorting on
  // every keys()/values()/entries() call made iteration O(n log n) each time).
  let sorted: readonly unknown[] | undefined;
  const sortedKeys = (): readonly unknown[] => (sorted ??= [...m.keys()].sort((a, b) => compareRank(a as any, b as any)));
  /** Entries in key rank order, narrowed by optional patterns. */
  const selected = (keyPatt?: unknown, valuePatt?: unknown): [unknown, unknown][] => {
    const out: [unknown, unknown][] = [];
    for (const k of sortedKeys()) {
      if (keyPatt !== undefined && !matches(k as any, pattern(keyPatt))) continue;
      const v = m.get(k);
      if (valuePatt !== undefined && !matches(v as any, pattern(valuePatt))) continue;
      out.push([k, v]);
    }
    return out;
  };
  const remove = (key: unknown) => {
    m.delete(key);
    sorted = undefined;
  };
  /** Keys in rank order, narrowed by optional patterns (no pairs built). */
  const selectedKeys = (keyPatt?: unknown, valuePatt?: unknown): unknown[] =>
    keyPatt === undefined && valuePatt === undefined ? [...sortedKeys()] : selected(keyPatt, valuePatt).map(([k]) => k);
  return {
    m,
    selected,
    selectedKeys,
    remove,
    has: (key: unknown) => m.has(key),
    get: (key: unknown) => (m.has(key) ? m.get(key) : notFound(key, label)),
    init: (key: unknown, value: unknown) => {
      checkKey(key);
      !m.has(key) || Fail`key ${q(key)} already registered in collection ${q(label)}`;
      checkValue(value);
      m.set(key, value);
      sorted = undefined;
    },
    set: (key: unknown, value: unknown) => {
      m.has(key) || notFound(key, label);
      checkValue(value);
      m.set(key, value);
    },
    delete: (key: unknown) => {
      m.has(key) || notFound(key, label);
      remove(key);
    },
    getLabel: () => label,
  };
}

export const makeScalarMapStore = (label = 'map', options: StoreOptions = {}) => {
  const core = makeMapCore(label, options, false);
  const { m } = core;
  return Far(`scalarMapStore`, {
    has: core.has,
    get: core.get,
    init: core.init,
    set: core.set,
    delete: core.delete,
    getLabel: core.getLabel,
    keys: (keyPatt?: unknown, valuePatt?: unknown) => core.selectedKeys(keyPatt, valuePatt),
    values: (keyPatt?: unknown, valuePatt?: unknown) => core.selected(keyPatt, valuePatt).map(([, v]) => v),
    entries: (keyPatt?: unknown, valuePatt?: unknown) => core.selected(keyPatt, valuePatt),
    getSize: (keyPatt?: unknown, valuePatt?: unknown) => (keyPatt === undefined && valuePatt === undefined ? m.size : core.selected(keyPatt, valuePatt).length),
    snapshot: () => makeCopyMap(core.selected() as any),
    addAll: (entries: Iterable<[unknown, unknown]>) => {
      for (const [k, v] of entries) core.init(k, v);
    },
    clear: (keyPatt?: unknown, valuePatt?: unknown) => {
      for (const [k] of core.selected(keyPatt, valuePatt)) core.remove(k);
    },
  });
};

export const makeScalarWeakMapStore = (label = 'weakMap', options: StoreOptions = {}) => {
  const core = makeMapCore(label, options, true);
  return Far(`scalarWeakMapStore`, {
    has: core.has,
    get: core.get,
    init: core.init,
    set: core.set,
    delete: core.delete,
    getLabel: core.getLabel,
    addAll: (entries: Iterable<[unknown, unknown]>) => {
      for (const [k, v] of entries) core.init(k, v);
    },
  });
};

export const makeScalarSetStore = (label = 'set', options: StoreOptions = {}) => {
  const core = makeMapCore(label, options, false);
  const { m } = core;
  const add = (key: unknown) => {
    if (!m.has(key)) core.init(key, true);
  };
  return Far(`scalarSetStore`, {
    has: core.has,
    add,
    delete: core.delete,
    getLabel: core.getLabel,
    keys: (keyPatt?: unknown) => core.selectedKeys(keyPatt),
    values: (keyPatt?: unknown) => core.selectedKeys(keyPatt),
    getSize: (keyPatt?: unknown) => (keyPatt === undefined ? m.size : core.selected(keyPatt).length),
    snapshot: () => makeCopySet(core.selectedKeys() as any),
    addAll: (keys: Iterable<unknown>) => {
      for (const k of keys) add(k);
    },
    clear: (keyPatt?: unknown) => {
      for (const [k] of core.selected(keyPatt)) core.remove(k);
    },
  });
};

export const makeScalarWeakSetStore = (label = 'weakSet', options: StoreOptions = {}) => {
  const core = makeMapCore(label, options, true);
  const add = (key: unknown) => {
    if (!core.has(key)) core.init(key, true);
  };
  return Far(`scalarWeakSetStore`, {
    has: core.has,
    add,
    delete: core.delete,
    getLabel: core.getLabel,
    addAll: (keys: Iterable<unknown>) => {
      for (const k of keys) add(k);
    },
  });
};

/** Agoric's provideLazy: the value under `key`, made by `make(key)` and stored the first time. */
export const provideLazy = (store: { has(k: unknown): boolean; get(k: unknown): unknown; init(k: unknown, v: unknown): void }, key: unknown, make: (key: unknown) => unknown) => {
  if (!store.has(key)) store.init(key, make(key));
  return store.get(key);
};
