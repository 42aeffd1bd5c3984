// Reference counts of virtual and durable objects and collections (the
// in-vat half of distributed GC, as in Agoric's virtualReferences). An object
// lives while any of these holds it:
//   - a reference stored in virtual or durable data (state of another object,
//     a collection value, a strong collection key): counted in the vatstore
//     under <p>rc.<vref>, where <p> is the object's own data prefix;
//   - the kernel (it was exported and not yet dropped): <p>ex.<vref>, which
//     also counts as one reference;
//   - the heap (a live representative or facet): seen at the GC point.
// Weak collection keys do not count. When nothing holds an object, the GC
// point deletes its state (or a collection's entries), and what that state
// referred to loses a reference in turn.
import { VREF, type VatDataContext } from './vat-data-context.js';

/** The vref of the object itself (a facet's vref names its object's facet). */
export const baseOf = (vref: string) => {
  const colon = vref.indexOf(':');
  return colon < 0 ? vref : vref.slice(0, colon);
};

/** The slots of stored capdata text, without parsing when there are none. */
export const slotsOf = (text: string | undefined): string[] =>
  text === undefined || text.endsWith('"slots":[]}') ? [] : (JSON.parse(text).slots as string[]);

export function makeRefcounts(ctx: VatDataContext, retainSlot: (vref: string) => void) {
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
    }
  };

  /**
   * Stored text `before` is replaced by `after` (either may be undefined):
   * the references they hold are adjusted, and promises and imports that
   * are now stored are kept by liveslots.
   */
  const adjust = (before: string | undefined, after: string | undefined) => {
    for (const slot of slotsOf(after)) {
      if (isVirtual(slot)) addRef(slot);
      else if (slot[0] === 'p' || slot.startsWith('o-')) retainSlot(slot);
    }
    for (const slot of slotsOf(before)) if (isVirtual(slot)) dropRef(slot);
  };

  const exportedNow = new Set<string>();
  const exported = (vref: string) => {
    const base = baseOf(vref);
    if (exportedNow.has(base)) return;
    exportedNow.add(base);
    const key = `${prefixFor(base)}ex.${base}`;
    if (store.get(key) === undefined) {
      store.set(key, '1');
      addRef(base);
    }
  };
  const unexported = (vref: string) => {
    const base = baseOf(vref);
    exportedNow.delete(base);
    const key = `${prefixFor(base)}ex.${base}`;
    if (store.get(key) !== undefined) {
      store.delete(key);
      dropRef(base);
    }
  };

  return { candidates, count, addRef, dropRef, adjust, exported, unexported, isVirtual };
}

export type Refcounts = ReturnType<typeof makeRefcounts>;
