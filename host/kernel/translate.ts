// Translation between a vat's references (vrefs) and the kernel's (krefs)
// through the vat's c-list. A vat names only what it was given or exports;
// anything else is forged or stale, and aborts its crank.
import type { KernelState } from './kernel-state.js';
import { isKpid, SyscallError, type Capdata, type Kref, type VatId, type Vref } from './refs.js';

export class Translator {
  constructor(
    private readonly state: KernelState,
    /** The vat named one of its existing exports (o+N) in a syscall: GC must not drop it (gc.ts, `namedAgain`). */
    private readonly exportNamed: (kref: Kref) => void = () => {},
  ) {}

  /** The kref a vat means by `vref`; with `mayAllocate`, its own new exports get one. */
  krefFromVat(vat: VatId, vref: Vref, mayAllocate: boolean): Kref {
    const known = this.state.krefFor(vat, vref);
    if (known !== undefined) {
      if (vref.startsWith('o+')) this.exportNamed(known);
      return known;
    }
    if (mayAllocate && vref.startsWith('o+')) {
      const ko = this.state.allocateObject(vat);
      this.state.addClist(vat, vref, ko, true);
      return ko;
    }
    if (mayAllocate && vref.startsWith('p+')) {
      const kp = this.state.allocatePromise(vat);
      this.state.addClist(vat, vref, kp, true);
      return kp;
    }
    // In the vat's own terms: it may read this message.
    throw new SyscallError(`the vat used reference ${vref}, which it was never given (forged or stale)`);
  }

  fromVat(vat: VatId, data: Capdata): Capdata {
    return { body: data.body, slots: data.slots.map((s) => this.krefFromVat(vat, s, true)) };
  }

  /** The vref `vat` knows `kref` by, importing it into the vat's c-list if new. */
  vrefForVat(vat: VatId, kref: Kref): Vref {
    const known = this.state.vrefFor(vat, kref);
    if (known !== undefined) return known;
    const vref = this.state.allocateImportVref(vat, isKpid(kref) ? 'p' : 'o');
    this.state.addClist(vat, vref, kref, true);
    return vref;
  }

  toVat(vat: VatId, data: Capdata): Capdata {
    return { body: data.body, slots: data.slots.map((k) => this.vrefForVat(vat, k)) };
  }

  /**
   * Like toVat, but imports nothing (trials must leave no trace): a
   * reference new to the vat gets the vref toVat would give it now. `fresh`
   * holds those given so far; share it across the calls that stand for one
   * sequence of toVat calls (an upgrade's privateArgs, then vatParameters),
   * so pre-flight starts the new incarnation with exactly the references the
   * upgrade would (break16 #6).
   */
  provisionalToVat(vat: VatId, data: Capdata, fresh: Map<Kref, Vref>): Capdata {
    return {
      body: data.body,
      slots: data.slots.map((k) => {
        const vref = this.state.vrefFor(vat, k) ?? fresh.get(k);
        if (vref !== undefined) return vref;
        const kind = isKpid(k) ? 'p' : 'o';
        const ahead = [...fresh.keys()].filter((f) => (isKpid(f) ? 'p' : 'o') === kind).length;
        const next = this.state.peekImportVref(vat, kind, ahead);
        fresh.set(k, next);
        return next;
      }),
    };
  }

  /** Like toVat, but refuses to import anything new (trials must leave no trace). */
  existingToVat(vat: VatId, data: Capdata): Capdata {
    return {
      body: data.body,
      slots: data.slots.map((k) => {
        const vref = this.state.vrefFor(vat, k);
        if (vref === undefined) throw new Error(`a trial can only pass references vat ${vat} already holds; ${k} is new to it`);
        return vref;
      }),
    };
  }
}
