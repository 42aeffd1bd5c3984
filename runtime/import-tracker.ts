// The vat's imports (o-N) and what keeps each of them: its presence in the
// heap, stored data naming it (slot-refs.ts), and weak keys that merely
// recognise it. At a GC point an import nothing reaches is reported with
// dropImports; one nothing recognises either, with retireImports (Agoric's
// rule: a presence that is still a key of a weak collection is dropped, not
// retired, so the same vref, and so the same entry, comes back if the object
// is passed in again; garbage-collection.md, "reachable" vs "recognizable").
import type { SlotRefs } from './slot-refs.js';
import type { Syscall } from './syscall.js';

export interface ImportTracker {
  /** The live presence for `vref`, if the heap still holds one. */
  presence(vref: string): object | undefined;
  /** A presence was made for `vref`: it is reachable (again). */
  remember(vref: string, presence: object): void;
  /** The kernel named these references in a delivery: imports among them are in the vat's c-list. */
  seen(slots: readonly string[]): void;
  /** Something that held or recognised `vref` let go: the next GC point looks at it. */
  consider(vref: string): void;
  /**
   * The GC point's import half: reports imports nothing reaches (dropImports)
   * and those nothing recognises (retireImports). `recognizes` says whether a
   * weak collection still has the vref as a key.
   */
  collect(recognizes: (vref: string) => boolean): number;
}

export function makeImportTracker(syscall: Syscall, slotRefs: SlotRefs): ImportTracker {
  const presences = new Map<string, WeakRef<object>>();
  // Imports in the kernel's c-list for this vat (not retired), and those of
  // them already reported as dropped.
  const known = new Set<string>();
  const dropped = new Set<string>();
  const candidates = new Set<string>();
  const isImport = (vref: string) => vref.startsWith('o-');

  const reachable = (vref: string) => presences.get(vref)?.deref() !== undefined || slotRefs.held(vref);

  return {
    presence: (vref) => presences.get(vref)?.deref(),
    remember(vref, presence) {
      presences.set(vref, new WeakRef(presence));
      known.add(vref);
      dropped.delete(vref);
    },
    seen(slots) {
      for (const slot of slots) {
        if (!isImport(slot)) continue;
        known.add(slot);
        candidates.add(slot);
      }
    },
    consider(vref) {
      if (isImport(vref)) candidates.add(vref);
    },
    collect(recognizes) {
      for (const [vref, ref] of presences) {
        if (ref.deref() !== undefined) continue;
        presences.delete(vref);
        candidates.add(vref);
      }
      for (const vref of slotRefs.takeReleased()) if (isImport(vref)) candidates.add(vref);
      const drop: string[] = [];
      const retire: string[] = [];
      for (const vref of candidates) {
        if (!known.has(vref) || reachable(vref)) continue;
        if (!dropped.has(vref)) {
          drop.push(vref);
          dropped.add(vref);
        }
        if (!recognizes(vref)) {
          retire.push(vref);
          known.delete(vref);
          dropped.delete(vref);
        }
      }
      candidates.clear();
      // The kernel takes at most 10,000 references per call.
      for (let i = 0; i < drop.length; i += 10_000) syscall.dropImports(drop.slice(i, i + 10_000));
      for (let i = 0; i < retire.length; i += 10_000) syscall.retireImports(retire.slice(i, i + 10_000));
      return drop.length;
    },
  };
}
