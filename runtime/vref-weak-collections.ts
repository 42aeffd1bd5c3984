// WeakMap and WeakSet for contract code that understand virtual and durable
// objects (Agoric installs the same replacements in contract compartments).
// A virtual object's representative is a heap object that comes and goes: the
// next delivery may see a fresh one for the same vref, and so may an import's
// presence (dropped at a GC point, made again when the object is passed in
// again). Keying a plain WeakMap by it would lose the entry; these key such
// objects by vref instead, and everything else by identity, as before. An
// import that is such a key stays recognisable: it is dropped but not retired
// (import-tracker.ts).
import type { HeapWeakKeys } from './vat-data.js';

export interface VrefOf {
  /** vref of a virtual or durable object (o+v…, o+d…) or of an import (o-N), else undefined. */
  (key: unknown): string | undefined;
}

export interface VrefAwareWeakCollections extends HeapWeakKeys {
  readonly WeakMap: WeakMapConstructor;
  readonly WeakSet: WeakSetConstructor;
}

/**
 * `released(vref)` is told when an import stops being a key of some
 * collection (its entry deleted, or the collection dropped by the program).
 */
export function makeVrefAwareWeakCollections(virtualVrefOf: VrefOf, released: (vref: string) => void): VrefAwareWeakCollections {
  // Each live collection's vref-keyed entries: the record outlives the
  // collection (held weakly through its token) until a GC point notices, so
  // the imports it recognised can be looked at again.
  interface Registered {
    readonly token: WeakRef<object>;
    readonly entries: Map<string, unknown>;
  }
  const registry = new Set<Registered>();
  const isImport = (vref: string) => vref.startsWith('o-');
  // How many live (or not yet swept) collections have each vref as a key.
  const keyedBy = new Map<string, number>();
  const keyAdded = (vref: string) => keyedBy.set(vref, (keyedBy.get(vref) ?? 0) + 1);
  const keyRemoved = (vref: string) => {
    const n = (keyedBy.get(vref) ?? 0) - 1;
    if (n > 0) {
      keyedBy.set(vref, n);
      return;
    }
    keyedBy.delete(vref);
    if (isImport(vref)) released(vref);
  };

  const assertKey = (key: unknown, what: string) => {
    if ((typeof key !== 'object' || key === null) && typeof key !== 'function') {
      throw TypeError(`${what} keys must be objects, got ${key === null ? 'null' : typeof key}`);
    }
  };

  class WeakMap<K extends object, V> {
    #heap = new globalThis.WeakMap<K, V>();
    #virtual = new Map<string, V>();
    // Held by the collection, weakly by the registry: collected with it.
    #token = {};
    constructor(entries?: Iterable<readonly [K, V]> | null) {
      registry.add({ token: new WeakRef(this.#token), entries: this.#virtual });
      if (entries) for (const [k, v] of entries) this.set(k, v);
    }
    has(key: K): boolean {
      const vref = virtualVrefOf(key);
      return vref === undefined ? this.#heap.has(key) : this.#virtual.has(vref);
    }
    get(key: K): V | undefined {
      const vref = virtualVrefOf(key);
      return vref === undefined ? this.#heap.get(key) : this.#virtual.get(vref);
    }
    set(key: K, value: V): this {
      assertKey(key, 'WeakMap');
      const vref = virtualVrefOf(key);
      if (vref === undefined) this.#heap.set(key, value);
      else {
        if (!this.#virtual.has(vref)) keyAdded(vref);
        this.#virtual.set(vref, value);
      }
      return this;
    }
    delete(key: K): boolean {
      const vref = virtualVrefOf(key);
      if (vref === undefined) return this.#heap.delete(key);
      const had = this.#virtual.delete(vref);
      if (had) keyRemoved(vref);
      return had;
    }
    get [Symbol.toStringTag]() {
      return 'WeakMap';
    }
  }

  class WeakSet<T extends object> {
    #map = new WeakMap<T, true>();
    constructor(values?: Iterable<T> | null) {
      if (values) for (const v of values) this.add(v);
    }
    has(value: T): boolean {
      return this.#map.has(value);
    }
    add(value: T): this {
      assertKey(value, 'WeakSet');
      this.#map.set(value, true);
      return this;
    }
    delete(value: T): boolean {
      return this.#map.delete(value);
    }
    get [Symbol.toStringTag]() {
      return 'WeakSet';
    }
  }

  const live = function* () {
    for (const r of registry) if (r.token.deref() !== undefined) yield r.entries;
  };
  const forget = (vref: string) => {
    if (!keyedBy.has(vref)) return;
    for (const entries of live()) if (entries.delete(vref)) keyRemoved(vref);
  };
  const recognizes = (vref: string) => keyedBy.has(vref);
  const sweep = () => {
    for (const r of registry) {
      if (r.token.deref() !== undefined) continue;
      registry.delete(r);
      for (const vref of r.entries.keys()) keyRemoved(vref);
    }
  };

  return { WeakMap: harden(WeakMap) as unknown as WeakMapConstructor, WeakSet: harden(WeakSet) as unknown as WeakSetConstructor, forget, recognizes, sweep };
}
