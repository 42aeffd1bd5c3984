// The modules every vat can import without bundling them: the published Endo
// libraries (evaluated once into the base image, sharing one @endo/pass-style
// with liveslots' marshal) and the Agoric-named modules built over this
// vat's vat-data. The host reads the export names of each (build time, via
// __quickvat_builtin_exports) to refuse an import of a name that is not
// there (host/bundles/builtin-modules.ts).
import * as endoErrors from '@endo/errors';
import * as endoEventualSend from '@endo/eventual-send';
import * as endoExo from '@endo/exo';
import * as endoFar from '@endo/far';
import * as endoMarshal from '@endo/marshal';
import * as endoPassStyle from '@endo/pass-style';
import * as endoPatterns from '@endo/patterns';
import * as endoPromiseKit from '@endo/promise-kit';
import { makeExoUtils } from './exo.js';
import { makeScalarMapStore, makeScalarSetStore, makeScalarWeakMapStore, makeScalarWeakSetStore, provideLazy } from './heap-stores.js';
import { makeVatData, type Marshaller, type VatData, type VatStore } from './vat-data.js';
import { makeHeapZone, makeZoneMakers } from './zone.js';

type Namespace = Readonly<Record<string, unknown>>;

// esbuild's namespace objects are getter records; a vat gets plain frozen copies.
const plain = (ns: object): Namespace => harden({ ...ns }) as Namespace;

const patterns = plain(endoPatterns);
const exo = plain(endoExo);
const errors = plain(endoErrors);
const far = plain(endoFar);
const heapStores = { makeScalarMapStore, makeScalarSetStore, makeScalarWeakMapStore, makeScalarWeakSetStore };
const heapZone = harden({ makeHeapZone, M: endoPatterns.M });

// @agoric/store: the heap stores, the pattern library it re-exports, and the heap exo makers.
const agoricStore = harden({
  ...patterns,
  ...heapStores,
  provideLazy,
  makeExo: endoExo.makeExo,
  defineExoClass: endoExo.defineExoClass,
  defineExoClassKit: endoExo.defineExoClassKit,
  initEmpty: endoExo.initEmpty,
});

/** Modules that are the same in every vat (evaluated once, in the base image). */
const STATIC_MODULES: Readonly<Record<string, Namespace>> = harden({
  '@endo/patterns': patterns,
  '@endo/exo': exo,
  '@endo/errors': errors,
  '@endo/far': far,
  '@quickvat/far': far,
  '@endo/eventual-send': plain(endoEventualSend),
  '@endo/promise-kit': plain(endoPromiseKit),
  '@endo/marshal': plain(endoMarshal),
  '@endo/pass-style': plain(endoPassStyle),
  '@agoric/store': agoricStore,
  '@agoric/base-zone': heapZone,
  '@agoric/base-zone/heap.js': heapZone,
  '@agoric/zone/heap.js': heapZone,
});

/** Agoric's small vat-data utilities that need no vat state. */
const pickFacet =
  (maker: (...args: unknown[]) => Record<string, unknown>, facetName: string) =>
  (...args: unknown[]) =>
    maker(...args)[facetName];
const partialAssign = (target: Record<string, unknown>, source: Record<string, unknown>) => {
  for (const [key, value] of Object.entries(source)) {
    Object.prototype.hasOwnProperty.call(target, key) || endoErrors.Fail`${endoErrors.q(key)} is not a field of the target state`;
    target[key] = value;
  }
};

/** Every built-in module for one incarnation, by specifier. */
export function builtinModules(vatData: VatData): Readonly<Record<string, Namespace>> {
  const exoUtils = makeExoUtils(vatData.api);
  const vatDataModule = harden({
    ...vatData.api,
    ...exoUtils,
    ...heapStores,
    M: endoPatterns.M,
    pickFacet,
    partialAssign,
  });
  const { makeVirtualZone, makeDurableZone } = makeZoneMakers(vatDataModule);
  const M = endoPatterns.M;
  return harden({
    ...STATIC_MODULES,
    '@agoric/vat-data': vatDataModule,
    '@quickvat/vat-data': vatDataModule,
    '@agoric/zone': harden({ makeHeapZone, makeVirtualZone, makeDurableZone, M }),
    '@agoric/zone/virtual.js': harden({ makeVirtualZone, M }),
    '@agoric/zone/durable.js': harden({ makeDurableZone, M }),
  });
}

/**
 * Export names of every built-in module, sorted, as the host's build records
 * them. The per-vat modules are built over a throwaway in-memory vatstore:
 * their names do not depend on any vat.
 */
export function builtinExportNames(): Record<string, string[]> {
  const mem = new Map<string, string>();
  const store: VatStore = {
    get: (k) => mem.get(k),
    set: (k, v) => void mem.set(k, v),
    delete: (k) => void mem.delete(k),
    getNextKey: (prior) => [...mem.keys()].sort().find((k) => k > prior),
  };
  const noMarshal: Marshaller = {
    serialize: notForUse,
    unserialize: notForUse,
    knownSlot: () => undefined,
    slotToVal: notForUse,
    refSlot: notForUse,
    slotReleased: notForUse,
    exportPromise: notForUse,
  };
  const modules = builtinModules(makeVatData(store, noMarshal, 1));
  const out: Record<string, string[]> = {};
  for (const specifier of Object.keys(modules).sort()) out[specifier] = Object.keys(modules[specifier]).sort();
  return out;
}

function notForUse(): never {
  throw Error('the vat-data built for listing export names cannot marshal');
}
