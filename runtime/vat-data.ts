// Virtual and durable objects and collections: state in the vatstore, not
// the heap. This is what survives an upgrade (durable) or at least outlives
// any one delivery's heap (virtual). This module joins the parts
// (vat-data-context.ts, virtual-objects.ts, collections.ts) into the
// contract-facing vat-data API.
//
// vatstore layout (keys are this vat's own):
//   d.meta.<name>                  durable counters and roots (baggage, kit)
//   d.kind.<kindId>                durable kind record
//   d.vo.<kindId>/<n>              state of a durable object
//   d.c.<kindId>/<n>.<key>         entry of a durable collection (key order-encoded)
//   d.cm.<kindId>/<n>              collection metadata (label, size)
//   d.cx.<kindId>/<n>              a deleted collection whose entries GC points still delete
//   d.gcc.<vref>                   a durable object a GC point has yet to look at
//   v<inc>.…                       the same for virtual (non-durable) data of
//                                  incarnation <inc>; deleted after an upgrade
// vrefs: o+d<kindId>/<n> durable, o+v<kindId>/<n> virtual, ":<i>" suffix for a
// facet of a multi-facet object.
import { makeCollections, type StoreShapes } from './collections.js';
import { makeVatDataContext, VREF, type Marshaller, type VatStore } from './vat-data-context.js';
import { makeVirtualObjects, type Behavior, type KindOptions } from './virtual-objects.js';
import { makeWatchedPromises } from './watched-promises.js';
import { baseOf, makeRefcounts } from './virtual-refcounts.js';

/**
 * Units of GC work (an object examined, an entry of a deleted collection
 * deleted) one GC point does at most: about 5M meter units at ~5k each, a
 * hundredth of the default delivery budget (issue #11's second hostile review).
 */
export const GC_WORK_PER_POINT = 1000;

/** What the GC needs from the heap WeakMap/WeakSet (vref-weak-collections.ts). */
export interface HeapWeakKeys {
  /** Drops every entry keyed by `vref`, an object that was deleted. */
  forget(vref: string): void;
  /** True while some live WeakMap/WeakSet has `vref` as a key. */
  recognizes(vref: string): boolean;
  /** Notices collections the program dropped (their keys may no longer be recognised). */
  sweep(): void;
}

/** Options of the big stores: Agoric's `durable`, `keyShape`, `valueShape`. */
type StoreOptions = StoreShapes & { readonly durable?: boolean };

export { DurabilityError, type Marshaller, type VatStore } from './vat-data-context.js';

/**
 * True for the reason a promise was rejected with because the vat deciding it
 * was upgraded: the record { name: 'vatUpgraded', upgradeMessage,
 * incarnationNumber } (Agoric's upgrade disconnection; issue #11).
 */
export function isUpgradeDisconnection(reason: unknown): boolean {
  if (typeof reason !== 'object' || reason === null) return false;
  const r = reason as Record<string, unknown>;
  return r.name === 'vatUpgraded' && typeof r.upgradeMessage === 'string' && typeof r.incarnationNumber === 'number';
}

export function makeVatData(rawStore: VatStore, marshal: Marshaller, incarnation: number) {
  const ctx = makeVatDataContext(rawStore, marshal, incarnation);
  const { store, recall, vrefOf, findNonDurable, reanimateOrImport } = ctx;
  const refs = makeRefcounts(ctx, marshal);
  const objects = makeVirtualObjects(ctx, refs);
  const { makeKindHandle, defineDurable, defineVirtual, reanimateObject, undefinedKinds, sampleRecords } = objects;
  const collections = makeCollections(ctx, refs);
  const { createCollection, makeCollection, collectionKinds } = collections;
  // The contract's heap WeakMap/WeakSet (vref-weak-collections.ts).
  let heapWeak: HeapWeakKeys = { forget: () => {}, recognizes: () => false, sweep: () => {} };

  /**
   * A GC point: deletes virtual and durable objects and collections nothing
   * holds any more (see virtual-refcounts.ts), and what only they held, with
   * the weak collection entries they were keys of. At most `budget` units of
   * work per call (an object, or an entry of a deleted collection, is one):
   * the rest waits for the next GC point, so no amount of garbage can
   * exhaust a delivery's meter. Returns how many objects it deleted, and
   * whether work is left for another GC point.
   */
  const collect = (budget = GC_WORK_PER_POINT): { deleted: number; more: boolean } => {
    heapWeak.sweep();
    const { candidates } = refs;
    for (const vref of ctx.takeDied()) candidates.add(baseOf(vref));
    for (const base of objects.takeReleasedStates()) candidates.add(base);
    let work = collections.deleteEntries(budget);
    work += refs.loadPending(budget - work);
    let deleted = 0;
    while (candidates.size > 0 && work < budget) {
      const [base] = candidates;
      candidates.delete(base);
      work++;
      const vrefs = objects.deleteIfUnreachable(base) ?? (collections.deleteIfUnreachable(base) ? [base] : undefined);
      refs.settled(base, vrefs !== undefined);
      if (vrefs === undefined) continue;
      deleted++;
      for (const vref of vrefs) {
        heapWeak.forget(vref);
        for (const [, collection] of refs.weakHolders(vref)) collections.dropWeakKey(collection, vref);
      }
    }
    return { deleted, more: work >= budget };
  };

  // ------------------------------------------------------------ reanimation
  /** The object for a virtual or durable vref (for deliveries and unserialization). */
  const reanimate = (vref: string): object => {
    const hit = recall(vref);
    if (hit) return hit;
    const m = VREF.exec(vref);
    if (!m) throw Error(`not a virtual object reference: ${vref}`);
    const [, dv, kindText, nText, facetText] = m;
    const kindId = Number(kindText);
    const n = Number(nText);
    if (collectionKinds[kindId]) return makeCollection(kindId, n);
    return reanimateObject(vref, dv, kindId, n, facetText);
  };
  const provideBaggage = (name: string) => {
    const key = `d.meta.${name}`;
    const existing = store.get(key);
    if (existing !== undefined) return reanimate(existing);
    const baggage = createCollection('map', name, true);
    store.set(key, vrefOf.get(baggage)!);
    // A root: held by the vat itself, never collected.
    refs.addRef(vrefOf.get(baggage)!);
    return baggage;
  };

  const provide = (baggage: any, key: unknown, make: (key: unknown) => unknown) => {
    if (baggage.has(key)) return baggage.get(key);
    const value = make(key);
    baggage.init(key, value);
    return value;
  };

  // Agoric's baggage key, so durable state written by Agoric-style code has Agoric's shape (issue 12).
  const provideKindHandle = (baggage: any, name: string) => provide(baggage, `${name}_kindHandle`, () => makeKindHandle(name));
  const watched = makeWatchedPromises({
    exportPromise: (p) => marshal.exportPromise(p),
    slotToVal: (vpid) => marshal.slotToVal(vpid),
    findNonDurable: (value, path) => findNonDurable(value, path),
    watchTable: (create) => (create || store.get('d.meta.watchedPromises') !== undefined ? provideBaggage('watchedPromises') : undefined),
    provideKindHandle,
    defineDurableKind: (handle, init, behavior) => defineDurable(handle, init, behavior, undefined, null) as () => object,
    provide: (baggage, key, make) => provide(baggage, key, make),
  });

  const canBeDurable = (value: unknown) => {
    try {
      return findNonDurable(harden(value), 'value') === undefined;
    } catch {
      return false;
    }
  };

  const api = harden({
    makeKindHandle,
    provideKindHandle,
    defineKind: (tag: string, init: any, behavior: Behavior, options?: KindOptions) => defineVirtual(tag, init, behavior, options, null),
    defineKindMulti: (tag: string, init: any, facets: Record<string, Behavior>, options?: KindOptions) =>
      defineVirtual(tag, init, facets, options, Object.keys(facets).sort()),
    defineDurableKind: (handle: unknown, init: any, behavior: Behavior, options?: KindOptions) => defineDurable(handle, init, behavior, options, null),
    defineDurableKindMulti: (handle: unknown, init: any, facets: Record<string, Behavior>, options?: KindOptions) =>
      defineDurable(handle, init, facets, options, Object.keys(facets).sort()),
    provide,
    makeScalarBigMapStore: (label = 'map', opts: StoreOptions = {}) => createCollection('map', label, !!opts?.durable, opts ?? {}),
    makeScalarBigSetStore: (label = 'set', opts: StoreOptions = {}) => createCollection('set', label, !!opts?.durable, opts ?? {}),
    makeScalarBigWeakMapStore: (label = 'weakMap', opts: StoreOptions = {}) => createCollection('weakMap', label, !!opts?.durable, opts ?? {}),
    makeScalarBigWeakSetStore: (label = 'weakSet', opts: StoreOptions = {}) => createCollection('weakSet', label, !!opts?.durable, opts ?? {}),
    provideDurableMapStore: (baggage: any, name: string, opts: StoreOptions = {}) => provide(baggage, name, () => createCollection('map', name, true, opts ?? {})),
    provideDurableSetStore: (baggage: any, name: string, opts: StoreOptions = {}) => provide(baggage, name, () => createCollection('set', name, true, opts ?? {})),
    provideDurableWeakMapStore: (baggage: any, name: string, opts: StoreOptions = {}) => provide(baggage, name, () => createCollection('weakMap', name, true, opts ?? {})),
    provideDurableWeakSetStore: (baggage: any, name: string, opts: StoreOptions = {}) => provide(baggage, name, () => createCollection('weakSet', name, true, opts ?? {})),
    canBeDurable,
    isUpgradeDisconnection,
    watchPromise: watched.watchPromise,
    providePromiseWatcher: watched.providePromiseWatcher,
  });

  return {
    api,
    reanimate,
    vrefOf: (value: unknown) => (typeof value === 'object' && value !== null ? vrefOf.get(value) : undefined),
    isVirtualVref: (vref: string) => VREF.test(vref),
    provideBaggage,
    /** Work every contract instance starts with, done once in an installation zygote's image: instanceBaggage and the kind handles' prototype. */
    prepareInstances: () => {
      provideBaggage('instanceBaggage');
      objects.prepareKindHandles();
    },
    undefinedKinds,
    sampleRecords,
    findNonDurable: (value: unknown, path: string) => findNonDurable(harden(value), path),
    reanimateOrImport,
    exported: refs.exported,
    unexported: refs.unexported,
    collect,
    recognizes: (vref: string) => heapWeak.recognizes(vref) || refs.recognizedByStores(vref),
    forgetKey: (vref: string) => {
      heapWeak.forget(vref);
      for (const [, collection] of refs.weakHolders(vref)) collections.dropWeakKey(collection, vref);
    },
    /** Connects the contract's heap WeakMap/WeakSet (they key virtual objects and imports by vref). */
    setHeapWeakKeys: (keys: HeapWeakKeys) => {
      heapWeak = keys;
    },
    /** Follows promises watched by earlier incarnations (once kinds are redefined). */
    reviveWatchedPromises: watched.revive,
  };
}

export type VatData = ReturnType<typeof makeVatData>;
