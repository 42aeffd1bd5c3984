// `@agoric/zone`: one interface for making exos and stores whatever their
// lifetime. A heap zone's objects live in this incarnation's heap, a virtual
// zone's in the vatstore until the next upgrade, a durable zone's (made from
// baggage) survive upgrades. Names, baggage keys and the once-per-incarnation
// rule follow Agoric's packages/zone (heap.js, virtual.js, durable.js,
// make-once.js, keys.js). A durable zone's `watchPromise` is vat-data's
// (watches survive upgrades; watcher and arguments must be durable); heap and
// virtual zones, whose objects end with the incarnation anyway, follow the
// promise in the heap.
import { Fail, q } from '@endo/errors';
import { defineExoClass, defineExoClassKit, initEmpty, makeExo } from '@endo/exo';
import { isPassable } from '@endo/pass-style';
import { M } from '@endo/patterns';
import { makeScalarMapStore, makeScalarSetStore, makeScalarWeakMapStore, makeScalarWeakSetStore } from './heap-stores.js';

type Provider = (label: string, ...rest: any[]) => any;

interface Stores {
  detached(): Stores;
  isStorable(specimen: unknown): boolean;
  mapStore: Provider;
  setStore: Provider;
  weakMapStore: Provider;
  weakSetStore: Provider;
}

interface Backing {
  has(key: unknown): boolean;
  get(key: unknown): any;
  init(key: unknown, value: unknown): void;
}

// The baggage keys Agoric's prepare* helpers use for one label.
const keysOf = {
  exoClass: (label: string) => [`${label}_kindHandle`],
  exoClassKit: (label: string) => [`${label}_kindHandle`],
  exo: (label: string) => [`${label}_kindHandle`, `${label}_singleton`],
  plain: (label: string) => [label],
};

/**
 * Each key of a zone may be provided once per incarnation: a second
 * `exoClass('Purse', ...)` in the same zone is a bug (two definitions of one
 * kind), so it fails at once rather than at the upgrade.
 */
function makeOnceKit(stores: Stores, backing?: Backing) {
  const used = new Set<string>();
  const assertOnlyOnce = (key: unknown) => {
    typeof key === 'string' || Fail`key ${key} must be a string`;
    !used.has(key as string) || Fail`key ${q(key)} has already been used in this zone and incarnation`;
    used.add(key as string);
  };
  const wrapProvider = <T extends Provider>(provider: T, labelToKeys: (label: string) => string[] = keysOf.plain): T =>
    ((label: string, ...rest: unknown[]) => {
      for (const key of labelToKeys(label)) assertOnlyOnce(key);
      return provider(label, ...rest);
    }) as T;
  const makeOnce = (key: string, maker: (key: string) => unknown) => {
    assertOnlyOnce(key);
    if (backing && backing.has(key)) return backing.get(key);
    const value = maker(key);
    stores.isStorable(value) || Fail`maker return value ${value} is not storable`;
    if (backing) backing.init(key, value);
    return value;
  };
  return { makeOnce, wrapProvider };
}

type WatchPromise = (p: unknown, watcher: any, ...args: unknown[]) => void;

/** Calls watcher.onFulfilled(value, ...args) or watcher.onRejected(reason, ...args) when `p` settles, in this incarnation. */
const heapWatchPromise: WatchPromise = (p, watcher, ...args) => {
  typeof watcher?.onFulfilled === 'function' || typeof watcher?.onRejected === 'function' || Fail`a promise watcher needs an onFulfilled or onRejected method`;
  void Promise.resolve(p)
    .then(
      (value) => watcher.onFulfilled?.(value, ...args),
      (reason) => watcher.onRejected?.(reason, ...args),
    )
    .catch(() => {});
};

function zoneOf(
  stores: Stores,
  once: ReturnType<typeof makeOnceKit>,
  exos: { exo: Provider; exoClass: Provider; exoClassKit: Provider },
  subZone: Provider,
  watchPromise: WatchPromise,
) {
  const { makeOnce, wrapProvider } = once;
  return harden({
    exo: wrapProvider(exos.exo, keysOf.exo),
    exoClass: wrapProvider(exos.exoClass, keysOf.exoClass),
    exoClassKit: wrapProvider(exos.exoClassKit, keysOf.exoClassKit),
    subZone,
    makeOnce,
    detached: stores.detached,
    isStorable: stores.isStorable,
    mapStore: wrapProvider(stores.mapStore),
    setStore: wrapProvider(stores.setStore),
    weakMapStore: wrapProvider(stores.weakMapStore),
    weakSetStore: wrapProvider(stores.weakSetStore),
    watchPromise,
  });
}

const heapStores: Stores = harden({
  detached: () => heapStores,
  isStorable: (specimen: unknown) => isPassable(specimen as any),
  mapStore: makeScalarMapStore,
  setStore: makeScalarSetStore,
  weakMapStore: makeScalarWeakMapStore,
  weakSetStore: makeScalarWeakSetStore,
});

/** A zone whose exos and stores live in this incarnation's heap. */
export const makeHeapZone = (baseLabel = 'heapZone'): any => {
  const once = makeOnceKit(heapStores);
  const subZone = once.wrapProvider((label: string) => makeHeapZone(`${baseLabel}.${label}`));
  return zoneOf(heapStores, once, { exo: makeExo as Provider, exoClass: defineExoClass as Provider, exoClassKit: defineExoClassKit as Provider }, subZone, heapWatchPromise);
};
harden(makeHeapZone);

/** The part of the per-vat `@agoric/vat-data` namespace zones are built from. */
export interface ZoneVatData {
  canBeDurable(value: unknown): boolean;
  makeScalarBigMapStore(label: string, options?: object): any;
  makeScalarBigSetStore(label: string, options?: object): any;
  makeScalarBigWeakMapStore(label: string, options?: object): any;
  makeScalarBigWeakSetStore(label: string, options?: object): any;
  provideDurableMapStore(baggage: unknown, label: string, options?: object): any;
  provideDurableSetStore(baggage: unknown, label: string, options?: object): any;
  provideDurableWeakMapStore(baggage: unknown, label: string, options?: object): any;
  provideDurableWeakSetStore(baggage: unknown, label: string, options?: object): any;
  defineVirtualExoClass: Provider;
  defineVirtualExoClassKit: Provider;
  prepareExo(baggage: unknown, ...rest: any[]): any;
  prepareExoClass(baggage: unknown, ...rest: any[]): any;
  prepareExoClassKit(baggage: unknown, ...rest: any[]): any;
  watchPromise: WatchPromise;
}

/** `makeVirtualZone` and `makeDurableZone` over one vat's vat-data. */
export function makeZoneMakers(vd: ZoneVatData) {
  const virtualStores: Stores = harden({
    detached: () => virtualStores,
    isStorable: (specimen: unknown) => isPassable(specimen as any),
    mapStore: (label: string, options?: object) => vd.makeScalarBigMapStore(label, options),
    setStore: (label: string, options?: object) => vd.makeScalarBigSetStore(label, options),
    weakMapStore: (label: string, options?: object) => vd.makeScalarBigWeakMapStore(label, options),
    weakSetStore: (label: string, options?: object) => vd.makeScalarBigWeakSetStore(label, options),
  });

  const makeVirtualZone = (baseLabel = 'virtualZone'): any => {
    const once = makeOnceKit(virtualStores);
    const exo = (label: string, interfaceGuard: unknown, methods: object, options?: object) =>
      vd.defineVirtualExoClass(label, interfaceGuard, initEmpty, methods, options)();
    const subZone = once.wrapProvider((label: string) => makeVirtualZone(`${baseLabel}.${label}`));
    return zoneOf(virtualStores, once, { exo, exoClass: vd.defineVirtualExoClass, exoClassKit: vd.defineVirtualExoClassKit }, subZone, heapWatchPromise);
  };

  const isStorable = (specimen: unknown) => isPassable(specimen as any) && vd.canBeDurable(specimen);
  // Durable stores not bound to any label in the zone's baggage.
  const detachedDurable: Stores = harden({
    detached: () => detachedDurable,
    isStorable,
    mapStore: (label: string, options?: object) => vd.makeScalarBigMapStore(label, { ...options, durable: true }),
    setStore: (label: string, options?: object) => vd.makeScalarBigSetStore(label, { ...options, durable: true }),
    weakMapStore: (label: string, options?: object) => vd.makeScalarBigWeakMapStore(label, { ...options, durable: true }),
    weakSetStore: (label: string, options?: object) => vd.makeScalarBigWeakSetStore(label, { ...options, durable: true }),
  });

  const makeDurableZone = (baggage: Backing, baseLabel = 'durableZone'): any => {
    baggage || Fail`baggage required`;
    const attached: Stores = harden({
      detached: () => detachedDurable,
      isStorable,
      mapStore: (label: string, options?: object) => vd.provideDurableMapStore(baggage, label, options),
      setStore: (label: string, options?: object) => vd.provideDurableSetStore(baggage, label, options),
      weakMapStore: (label: string, options?: object) => vd.provideDurableWeakMapStore(baggage, label, options),
      weakSetStore: (label: string, options?: object) => vd.provideDurableWeakSetStore(baggage, label, options),
    });
    const once = makeOnceKit(attached, baggage);
    // subZone and mapStore share the once-rule: a sub-zone's baggage is the map store of that label.
    const mapStore = once.wrapProvider(attached.mapStore);
    const subZone = (label: string) => makeDurableZone(mapStore(label), `${baseLabel}.${label}`);
    const zone = zoneOf(
      attached,
      once,
      {
        exo: (...args: any[]) => vd.prepareExo(baggage, ...args),
        exoClass: (...args: any[]) => vd.prepareExoClass(baggage, ...args),
        exoClassKit: (...args: any[]) => vd.prepareExoClassKit(baggage, ...args),
      },
      subZone,
      vd.watchPromise,
    );
    return harden({ ...zone, mapStore });
  };

  return harden({ makeVirtualZone, makeDurableZone });
}

export { M };
