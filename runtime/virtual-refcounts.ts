// Reference counts of virtual and durable objects and collections (the
// in-vat half of distributed GC, as in Agoric's virtualReferences). An object
// lives while any of these holds it:
//   - a reference stored in virtual or durable data (state of another object,
//     a collection value, a strong collection key): counted in the vatstore
//     under <p>rc.<vref>, where <p> is the object's own data prefix;
//   - the kernel, for each of its facets that was exported and not yet
//     dropped: <p>ex.<facet vref>, each counting as one reference (so one
//     facet dropped while another is held keeps the object; Agoric keeps
//     export status per facet vref as well);
//   - the heap (a live representative or facet): seen at the GC point.
// References stored data makes to imports, ordinary exports and promises are
// counted by liveslots (slot-refs.ts), told through `refSlot`.
// Weak collection keys do not count: they are recorded as recognisers,
// <h>ir.<vref>|<collection vref> where <h> is the weak store's own prefix,
// so that an import a weak key names is dropped but not retired, and the
// entries keyed by a deleted object can be found and removed.
import { VREF, type Marshaller, type VatDataContext } from './vat-data-context.js';

/** The vref of the object itself (a facet's vref names its object's facet). */
export const baseOf = (vref: string) => {
  const colon = vref.indexOf(':');
  return colon < 0 ? vref : vref.slice(0, colon);
};

/** The slots of stored capdata text, without parsing when there are none. */
export const slotsOf = (text: string | undefined): string[] =>
  text === undefined || text.endsWith('"slots":[]}') ? [] : (JSON.parse(text).slots as string[]);

const PENDING = 'd.gcc.';

export function makeRefcounts(ctx: VatDataContext, marshal: Pick<Marshaller, 'refSlot' | 'slotReleased'>) {
  const { store, prefixOf } = ctx;
  const isVirtual = (vref: string) => VREF.test(vref);
  const prefixFor = (base: string) => prefixOf(base.startsWith('o+d'));
  const rcKey = (base: string) => `${prefixFor(base)}rc.${base}`;
  /** Objects that may have become unreachable since the last GC point. */
  const candidates = new Set<string>();

  const count = (base: string) => Number(store.get(rcKey(base)) ?? '0');
  const addRef = (vref: string) => {
    const base = baseOf(vref);
    store.set(rcKey(base), String(count(base) + 1));
  };
  const dropRef = (vref: string) => {
    const base = baseOf(vref);
    const n = count(base) - 1;
    if (n > 0) store.set(rcKey(base), String(n));
    else {
      store.delete(rcKey(base));
      candidates.add(base);
      if (isDurable(base)) store.set(PENDING + base, '1');
    }
  };

  // A durable object that may have become unreachable is also marked in the
  // vatstore (d.gcc.<base>) until a GC point settles it, so that an upgrade,
  // which forgets the heap's candidates, does not forget it (break-11b #14).
  const isDurable = (base: string) => base.startsWith('o+d');
  /** A GC point looked at `base`: its mark goes once it was deleted or stored data holds it (a heap hold keeps it marked). */
  const settled = (base: string, deleted: boolean) => {
    if (isDurable(base) && (deleted || count(base) > 0)) store.delete(PENDING + base);
  };
  let pendingCursor: string | undefined = PENDING;
  /** Adds up to `budget` marked objects (from before this incarnation) to the candidates; returns how many. */
  const loadPending = (budget: number): number => {
    let n = 0;
    while (pendingCursor !== undefined && n < budget) {
      const k = store.getNextKey(pendingCursor);
      if (k === undefined || !k.startsWith(PENDING)) pendingCursor = undefined;
      else {
        candidates.add(k.slice(PENDING.length));
        pendingCursor = k;
        n++;
      }
    }
    return n;
  };
  /** One more (1) or one less (-1) stored reference to `vref`, from durable or virtual data. */
  const ref = (vref: string, delta: 1 | -1, durable: boolean) => {
    if (isVirtual(vref)) {
      if (delta > 0) addRef(vref);
      else dropRef(vref);
    } else {
      marshal.refSlot(vref, delta, durable);
    }
  };

  /**
   * Stored text `before` is replaced by `after` (either may be undefined) in
   * durable or virtual data: the references they hold are adjusted.
   */
  const adjust = (before: string | undefined, after: string | undefined, durable: boolean) => {
    for (const slot of slotsOf(after)) ref(slot, 1, durable);
    for (const slot of slotsOf(before)) ref(slot, -1, durable);
  };

  const exportKey = (vref: string) => `${prefixFor(vref)}ex.${vref}`;
  const exportedNow = new Set<string>();
  const exported = (vref: string) => {
    if (exportedNow.has(vref)) return;
    exportedNow.add(vref);
    if (store.get(exportKey(vref)) === undefined) {
      store.set(exportKey(vref), '1');
      addRef(vref);
    }
  };
  const unexported = (vref: string) => {
    exportedNow.delete(vref);
    if (store.get(exportKey(vref)) !== undefined) {
      store.delete(exportKey(vref));
      dropRef(vref);
    }
  };

  // ------------------------------------------------------------ recognisers
  const irPrefix = (durable: boolean, vref: string) => `${prefixOf(durable)}ir.${vref}|`;
  const weakKeyAdded = (durable: boolean, vref: string, collection: string) => {
    store.set(irPrefix(durable, vref) + collection, '1');
    // An ordinary object as a weak key does not keep it (liveslots holds it weakly).
    if (vref.startsWith('o+') && !isVirtual(vref)) marshal.slotReleased(vref);
  };
  const weakKeyRemoved = (durable: boolean, vref: string, collection: string) => {
    store.delete(irPrefix(durable, vref) + collection);
    if (vref.startsWith('o-')) marshal.slotReleased(vref);
  };
  const firstUnder = (prefix: string) => {
    const k = store.getNextKey(prefix);
    return k !== undefined && k.startsWith(prefix) ? k : undefined;
  };
  /** True while a weak store has `vref` as a key. */
  const recognizedByStores = (vref: string) => firstUnder(irPrefix(true, vref)) !== undefined || firstUnder(irPrefix(false, vref)) !== undefined;
  /** The weak stores that have `vref` as a key: [durable, collection vref]. */
  const weakHolders = (vref: string): [boolean, string][] => {
    const out: [boolean, string][] = [];
    for (const durable of [true, false]) {
      const prefix = irPrefix(durable, vref);
      for (let k = store.getNextKey(prefix); k !== undefined && k.startsWith(prefix); k = store.getNextKey(k)) out.push([durable, k.slice(prefix.length)]);
    }
    return out;
  };

  /**
   * Objects (their vrefs: a facet's each) made just now under an id never
   * used before: no count or export record can exist for them, so reading
   * one later costs no syscall.
   */
  const born = (vrefs: readonly string[]) => {
    for (const vref of vrefs) {
      store.knownAbsent(rcKey(baseOf(vref)));
      store.knownAbsent(exportKey(vref));
    }
  };

  return { born, candidates, settled, loadPending, count, addRef, dropRef, ref, adjust, exported, unexported, isVirtual, weakKeyAdded, weakKeyRemoved, recognizedByStores, weakHolders };
}

export type Refcounts = ReturnType<typeof makeRefcounts>;
