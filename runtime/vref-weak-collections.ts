// WeakMap and WeakSet for contract code that understand virtual and durable
// objects (Agoric installs the same replacements in contract compartments).
// A virtual object's representative is a heap object that comes and goes: the
// next delivery may see a fresh one for the same vref. Keying a plain WeakMap
// by it would lose the entry; these key such objects by vref instead, and
// everything else by identity, as before.

export interface VrefOf {
  /** vref of a virtual or durable object (o+v…, o+d…), else undefined. */
  (key: unknown): string | undefined;
}

export interface VrefAwareWeakCollections {
  readonly WeakMap: WeakMapConstructor;
  readonly WeakSet: WeakSetConstructor;
  /** Drops every entry keyed by a virtual object that no longer exists. */
  forget(vref: string): void;
}

export function makeVrefAwareWeakCollections(virtualVrefOf: VrefOf): VrefAwareWeakCollections {
  // Each collection's vref-keyed entries, so entries for a deleted virtual
  // object can be dropped (distributed GC calls forget()).
  const byVref = new Set<WeakRef<{ forget(vref: string): void }>>();

  const assertKey = (key: unknown, what: string) => {
    if ((typeof key !== 'object' || key === null) && typeof key !== 'function') {
      throw TypeError(`${what} keys must be objects, got ${key === null ? 'null' : typeof key}`);
    }
  };

  class WeakMap<K extends object, V> {
    #heap = new globalThis.WeakMap<K, V>();
    #virtual = new Map<string, V>();
    // Held by the collection, weakly by the registry: collected with it.
    #forgetter = { forget: (vref: string) => void this.#virtual.delete(vref) };
    constructor(entries?: Iterable<readonly [K, V]> | null) {
      byVref.add(new WeakRef(this.#forgetter));
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
      else this.#virtual.set(vref, value);
      return this;
    }
    delete(key: K): boolean {
      const vref = virtualVrefOf(key);
      return vref === undefined ? this.#heap.delete(key) : this.#virtual.delete(vref);
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

  /** Drops every entry keyed by a virtual object that no longer exists. */
  const forget = (vref: string) => {
    for (const ref of byVref) {
      const c = ref.deref();
      if (c === undefined) byVref.delete(ref);
      else c.forget(vref);
    }
  };

  return { WeakMap: harden(WeakMap) as unknown as WeakMapConstructor, WeakSet: harden(WeakSet) as unknown as WeakSetConstructor, forget };
}
